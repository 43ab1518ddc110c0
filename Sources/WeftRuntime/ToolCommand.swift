import Foundation
import Logging

/// Runs a helper program (ip, runc, tar) to its end for the netns and oci drivers and the image store.
public struct ToolCommand: Sendable {
    public let path: String
    public let code: RuntimeError.Code
    let logger: Logger

    public init(path: String, code: RuntimeError.Code, logger: Logger) {
        self.path = path
        self.code = code
        self.logger = logger
    }

    /// Runs `path ARGUMENTS` and returns its combined output; throws a ``RuntimeError`` with `code`
    /// naming the command and what it said when it fails or outlives `timeout`.
    @discardableResult
    public func run(_ arguments: [String], timeout: Duration = .seconds(30), outputLimit: Int = 1 << 20) async throws -> String {
        let output = OutputCapture(limit: outputLimit)
        let shown = ([(path as NSString).lastPathComponent] + arguments).joined(separator: " ")
        let process: ReplicaProcess
        do {
            process = try ReplicaProcess.start(ProcessSpec(executable: path, arguments: arguments, environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]),
                                               logger: logger, output: { output.append($0) })
        } catch {
            throw RuntimeError(code: code, message: "cannot run '\(shown)': \(error)")
        }
        let exit: ExitStatus? = await withTaskGroup(of: ExitStatus?.self) { group in
            group.addTask { await process.waitForExit() }
            group.addTask {
                do {
                    try await Task.sleep(for: timeout)
                    return nil
                } catch {
                    // Cancelled: cleanup (a replica stopping with its agent) must still run to its end.
                    return await process.waitForExit()
                }
            }
            let first = await group.next() ?? nil
            if first == nil { await process.stop(grace: .zero) }
            group.cancelAll()
            return first
        }
        guard let exit else {
            throw RuntimeError(code: code, message: "'\(shown)' did not finish within \(timeout)")
        }
        guard exit.isSuccess else {
            throw RuntimeError(code: code, message: "'\(shown)' \(exit): \(output.text)")
        }
        return output.rawText
    }
}
