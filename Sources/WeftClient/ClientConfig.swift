import Foundation
import Yams

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How to reach and authenticate to a Weft API server: the contents of `admin.yaml`.
public struct ClientConfig: Sendable, Codable, Equatable {
    /// The API server's base URL, e.g. `https://127.0.0.1:7443`.
    public var server: String
    /// The bearer token sent on every request.
    public var token: String
    /// PEM of the cluster CA; the only certificate authority the client trusts.
    public var certificateAuthority: String

    public init(server: String, token: String, certificateAuthority: String) {
        self.server = server
        self.token = token
        self.certificateAuthority = certificateAuthority
    }

    /// Reads a YAML config file, with an error that names the file and says what to do.
    public static func load(path: String) throws -> ClientConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist"
            throw ClientError("client config \(path) \(reason); start `weft server` first (it writes admin.yaml in its data directory) or pass --config FILE")
        }
        let config: ClientConfig
        do {
            config = try YAMLDecoder().decode(ClientConfig.self, from: text)
        } catch let error as DecodingError {
            throw ClientError("client config \(path) is invalid: \(Self.describe(error)); expected the keys server, token and certificateAuthority")
        } catch {
            throw ClientError("client config \(path) is not valid YAML: \(YAMLText.describe(error))")
        }
        if config.server.isEmpty || config.token.isEmpty || !config.certificateAuthority.contains("BEGIN CERTIFICATE") {
            throw ClientError("client config \(path) is incomplete: server, token and certificateAuthority (a PEM certificate) must all be set")
        }
        return config
    }

    /// Writes the config as YAML, owner-only (0600), replacing any existing file atomically.
    public func write(to path: String) throws {
        // The CA as a literal block, so the file reads like the PEM it holds.
        let document = Node([
            (Node("server"), (try? server.represented()) ?? Node(server)),
            (Node("token"), (try? token.represented()) ?? Node(token)),
            (Node("certificateAuthority"), Node(certificateAuthority, Tag(.str), .literal)),
        ])
        let text: String
        do {
            text = try Yams.serialize(node: document)
        } catch {
            throw ClientError("cannot encode client config: \(error)")
        }
        try AtomicFile.write(Data(text.utf8), to: path, mode: 0o600)
    }

    /// The config file to use: `explicit` (`--config`), else `$WEFT_CONFIG`, else `~/.weft/admin.yaml`.
    public static func defaultPath(explicit: String?, environment: [String: String]) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let fromEnvironment = environment["WEFT_CONFIG"], !fromEnvironment.isEmpty { return fromEnvironment }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return (home as NSString).appendingPathComponent(".weft/admin.yaml")
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, _): return "missing key \"\(key.stringValue)\""
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return (path.isEmpty ? "" : "\(path): ") + context.debugDescription
        @unknown default: return "\(error)"
        }
    }
}

/// A client-side failure (configuration, files, transport) with a message meant for the user.
public struct ClientError: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

/// Atomic replacement of a small file: temporary file with the final mode, fsync, rename.
enum AtomicFile {
    static func write(_ data: Data, to path: String, mode: mode_t) throws {
        let directory = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        if !FileManager.default.fileExists(atPath: directory) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw ClientError("cannot create directory \(directory): \(error.localizedDescription)")
            }
        }
        let temporary = "\(directory)/.\((path as NSString).lastPathComponent).tmp-\(UInt32.random(in: 0 ... .max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw posixError("cannot create", temporary) }
        var renamed = false
        defer { if !renamed { unlink(temporary) } }
        do {
            defer { close(fd) }
            guard fchmod(fd, mode) == 0 else { throw posixError("cannot set the mode of", temporary) }
            try data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
                var offset = 0
                while offset < buffer.count {
                    #if canImport(Darwin)
                    let written = Darwin.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                    #else
                    let written = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                    #endif
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw posixError("cannot write", temporary)
                    }
                    offset += written
                }
            }
            guard fsync(fd) == 0 else { throw posixError("cannot fsync", temporary) }
        }
        guard rename(temporary, path) == 0 else { throw posixError("cannot replace", path) }
        renamed = true
    }

    private static func posixError(_ what: String, _ path: String) -> ClientError {
        ClientError("\(what) \(path): \(String(cString: strerror(errno)))")
    }
}
