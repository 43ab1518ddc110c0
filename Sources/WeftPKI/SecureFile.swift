import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// File operations for secrets and certificates: atomic replacement with the final mode set from the
/// first byte, and permission inspection.
public enum SecureFile {
    /// Atomically replaces `path` with `data`: a temporary file in the same directory is created with
    /// `mode` (`O_CREAT|O_EXCL`, then `fchmod` so the umask cannot widen or narrow it), written, fsynced and
    /// renamed over `path`; a reader sees the old file or the new one, never a partial one.
    public static func write(_ data: Data, to path: String, mode: mode_t) throws {
        let directory = parentDirectory(of: path)
        let temporary = "\(directory)/.\(fileName(of: path)).tmp-\(randomHex(bytes: 8))"

        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw posixError("cannot create temporary file", path: temporary) }
        var committed = false
        defer {
            if !committed { unlink(temporary) }
        }
        do {
            defer { close(fd) }
            guard fchmod(fd, mode) == 0 else { throw posixError("cannot set mode of temporary file", path: temporary) }
            try data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
                var offset = 0
                while offset < buffer.count {
                    let written = systemWrite(fd, buffer.baseAddress! + offset, buffer.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw posixError("cannot write temporary file", path: temporary)
                    }
                    offset += written
                }
            }
            guard fsync(fd) == 0 else { throw posixError("cannot fsync temporary file", path: temporary) }
        }
        guard rename(temporary, path) == 0 else { throw posixError("cannot rename temporary file into place", path: path) }
        committed = true

        // Persist the rename itself; failure here leaves a correct file that may not survive a power cut.
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            _ = fsync(dirFD)
            close(dirFD)
        }
    }

    /// Returns the permission bits (`0o7777` mask) of `path`, following symbolic links.
    public static func mode(of path: String) throws -> mode_t {
        var info = stat()
        guard stat(path, &info) == 0 else { throw posixError("cannot stat", path: path) }
        return info.st_mode & 0o7777
    }

    /// Whether anything exists at `path` (a dangling symbolic link counts as existing).
    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// Reads the whole file at `path`.
    public static func read(_ path: String) throws -> Data {
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw PKIError(code: .fileSystem, path: path, reason: "cannot read file (\(error))")
        }
    }

    /// Removes group and world permission bits from `path` if any are set, so a secret that was copied
    /// around with a lax umask is owner-only again; returns whether the mode was changed.
    @discardableResult
    public static func restrictToOwner(_ path: String) throws -> Bool {
        let current = try mode(of: path)
        guard current & 0o077 != 0 else { return false }
        guard chmod(path, current & 0o700) == 0 else {
            throw posixError("cannot restrict permissions", path: path)
        }
        return true
    }

    /// Creates `path` (and missing parents) if absent; a directory this call creates gets `mode`, an
    /// existing one is left as it is.
    public static func createDirectory(_ path: String, mode: mode_t) throws {
        var info = stat()
        if stat(path, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                throw PKIError(
                    code: .fileSystem, path: path, reason: "exists but is not a directory",
                    remedy: "move it away or choose another data directory")
            }
            return
        }
        let parent = parentDirectory(of: path)
        if parent != path, !exists(parent) {
            try createDirectory(parent, mode: 0o755)
        }
        if mkdir(path, mode) != 0, errno != EEXIST {
            throw posixError("cannot create directory", path: path)
        }
        // mkdir applies the umask; the directory holding keys must not be wider than asked.
        _ = chmod(path, mode)
    }

    static func posixError(_ what: String, path: String) -> PKIError {
        let code = errno
        let message = String(cString: strerror(code))
        return PKIError(
            code: .fileSystem, path: path, reason: "\(what): \(message)",
            remedy: code == EACCES || code == EPERM ? "check ownership and permissions of the data directory" : nil)
    }

    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    static func fileName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    static func randomHex(bytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in hexByte(UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    static func hexByte(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]])
    }
}

// `write` is shadowed by `SecureFile.write` inside the enum.
@inline(__always)
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}
