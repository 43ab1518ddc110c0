import Foundation
import WeftCore

/// Resolves a template and its image into what one container runs.
public enum ContainerProcess {
    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The image's `User` (`uid[:gid]` or names from the root filesystem's /etc/passwd and /etc/group),
    /// overridden by the template's securityContext.
    public static func user(image: String?, securityContext: SecurityContext?, rootfs: String) throws -> (uid: UInt32, gid: UInt32) {
        var uid: UInt32 = 0, gid: UInt32 = 0
        if let image, !image.isEmpty {
            let parts = image.split(separator: ":", maxSplits: 1).map(String.init)
            let passwd = entries((rootfs as NSString).appendingPathComponent("etc/passwd"))
            if let number = UInt32(parts[0]) {
                uid = number
                gid = passwd.first { $0.count > 3 && $0[2] == parts[0] }.flatMap { UInt32($0[3]) } ?? 0
            } else if let entry = passwd.first(where: { $0.count > 3 && $0[0] == parts[0] }), let number = UInt32(entry[2]) {
                uid = number
                gid = UInt32(entry[3]) ?? 0
            } else {
                throw RuntimeError(code: .container, message: "the image's user \"\(parts[0])\" is not in its /etc/passwd; set securityContext.runAsUser")
            }
            if parts.count == 2 {
                if let number = UInt32(parts[1]) {
                    gid = number
                } else if let entry = entries((rootfs as NSString).appendingPathComponent("etc/group")).first(where: { $0.count > 2 && $0[0] == parts[1] }),
                          let number = UInt32(entry[2]) {
                    gid = number
                } else {
                    throw RuntimeError(code: .container, message: "the image's group \"\(parts[1])\" is not in its /etc/group; set securityContext.runAsGroup")
                }
            }
        }
        if let runAsUser = securityContext?.runAsUser { uid = UInt32(runAsUser) }
        if let runAsGroup = securityContext?.runAsGroup { gid = UInt32(runAsGroup) }
        return (uid, gid)
    }

    private static func entries(_ path: String) -> [[String]] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) }
    }

    /// The image's `Env` (`K=V`) as a dictionary, with a default PATH.
    public static func imageEnvironment(_ env: [String]?) -> [String: String] {
        var result = ["PATH": defaultPath]
        for entry in env ?? [] {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            if parts.count == 2 { result[parts[0]] = parts[1] }
        }
        return result
    }

    /// `runc run`'s exit status as the container's: 128 + n is signal n (runc cannot die of its child's signal).
    public static func containerExit(_ exit: ExitStatus) -> ExitStatus {
        if case .exited(let code) = exit, code > 128, code < 128 + 65 { return .signaled(code - 128) }
        return exit
    }
}
