#if canImport(Glibc)
import Glibc
#endif
import NIOCore

extension RotatingLog {
    /// Returns the last `count` lines of a replica's log, continuing into the rotated files
    /// (`.log.1` … `.log.<keep>`) when the current file holds fewer; returns `[]` when there is no log.
    public static func lastLines(_ count: Int, directory: String, replica: String, keep: Int = 2) throws -> [String] {
        try validate(replica: replica)
        guard count > 0 else { return [] }
        var sources: [TailSource] = []
        defer { for source in sources { _ = Glibc.close(source.fd) } }
        for generation in 0...max(0, keep) {
            if let source = TailSource(path: path(directory: directory, replica: replica, generation: generation)) {
                sources.append(source)
            }
        }
        return splitLines(tailBytes(count, newestFirst: sources))
    }

    /// Streams a replica's log as it grows: first the last `initialLines` lines as of this call, then every
    /// chunk appended after it, following the file across rotations; the stream ends when the consuming task is cancelled.
    ///
    /// The file is checked every `pollInterval` (default 200 ms) rather than watched with inotify: it
    /// is simple, needs no extra descriptor or thread, and the stream is pull-driven, so a slow reader
    /// applies backpressure instead of buffering. Rotation is detected by the path's inode changing; the
    /// old file is read to its end before switching. Data is lost only if the file rotates twice within one interval.
    public static func follow(
        directory: String,
        replica: String,
        initialLines: Int = 0,
        keep: Int = 2,
        pollInterval: Duration = .milliseconds(200)
    ) throws -> AsyncStream<ByteBuffer> {
        try validate(replica: replica)
        let follower = LogFollower(
            directory: directory,
            replica: replica,
            initialLines: initialLines,
            keep: keep,
            pollInterval: pollInterval
        )
        return AsyncStream(unfolding: { await follower.next() })
    }
}

/// An open log file and the offset up to which it should be read backwards.
struct TailSource {
    var fd: Int32
    var end: Int

    /// Opens `path` and takes its current size as the end; `nil` if it cannot be opened.
    init?(path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            _ = close(fd)
            return nil
        }
        self.init(fd: fd, end: Int(info.st_size))
    }

    init(fd: Int32, end: Int) {
        self.fd = fd
        self.end = end
    }
}

/// The shortest suffix of the concatenated sources (given newest first) that starts at a line boundary
/// and holds the last `count` lines, reading each file backwards in blocks.
func tailBytes(_ count: Int, newestFirst sources: [TailSource]) -> [UInt8] {
    guard count > 0 else { return [] }
    let newline = UInt8(ascii: "\n")
    let blockSize = 64 * 1024
    var blocksNewestFirst: [[UInt8]] = []
    var newlines = 0
    var lastByte: UInt8?
    collect: for source in sources {
        var position = source.end
        while position > 0 {
            let length = min(blockSize, position)
            position -= length
            var block = [UInt8](repeating: 0, count: length)
            var filled = 0
            while filled < length {
                let n = block.withUnsafeMutableBytes {
                    pread(source.fd, $0.baseAddress! + filled, length - filled, off_t(position + filled))
                }
                if n > 0 {
                    filled += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            // A file that shrank under us leaves a hole; drop the unread tail of the block.
            block.removeLast(length - filled)
            if lastByte == nil, let last = block.last { lastByte = last }
            newlines += block.reduce(0) { $1 == newline ? $0 + 1 : $0 }
            blocksNewestFirst.append(block)
            // One more newline than lines wanted marks the start of the first wanted line,
            // unless the text ends with a newline, which ends the last line rather than starting one.
            if newlines - (lastByte == newline ? 1 : 0) >= count { break collect }
        }
    }
    let all = Array(blocksNewestFirst.reversed().joined())
    var index = all.count
    if all.last == newline { index -= 1 }
    var seen = 0
    while index > 0 {
        index -= 1
        if all[index] == newline {
            seen += 1
            if seen == count { return Array(all[(index + 1)...]) }
        }
    }
    return all
}

/// Splits text into lines; a final newline ends the last line rather than starting an empty one.
func splitLines(_ bytes: [UInt8]) -> [String] {
    guard !bytes.isEmpty else { return [] }
    var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
    if bytes.last == UInt8(ascii: "\n") { lines.removeLast() }
    return lines.map { String(decoding: $0, as: UTF8.self) }
}

/// The state of one `follow` stream: the open file, its inode and the read offset.
actor LogFollower {
    private let directory: String
    private let replica: String
    private let pollInterval: Duration
    private var pending: [UInt8]
    private var fd: Int32
    private var device: UInt64
    private var inode: UInt64
    private var offset: Int

    /// Opens the log right away, so that the stream starts at the end of the file as it is now,
    /// not as it is when the consumer first asks for data.
    init(directory: String, replica: String, initialLines: Int, keep: Int, pollInterval: Duration) {
        self.directory = directory
        self.replica = replica
        self.pollInterval = pollInterval
        let opened = Self.openAtEnd(directory: directory, replica: replica, initialLines: initialLines, keep: keep)
        self.fd = opened.fd
        self.device = opened.device
        self.inode = opened.inode
        self.offset = opened.offset
        self.pending = opened.initial
    }

    deinit {
        if fd >= 0 { _ = close(fd) }
    }

    private var path: String { RotatingLog.path(directory: directory, replica: replica) }

    /// The next chunk of the log, waiting for one if needed; `nil` once the calling task is cancelled.
    func next() async -> ByteBuffer? {
        if !pending.isEmpty {
            defer { pending = [] }
            return ByteBuffer(bytes: pending)
        }
        while !Task.isCancelled {
            if let chunk = readAvailable() { return chunk }
            if switchIfRotated() { continue }
            do {
                try await Task.sleep(for: pollInterval)
            } catch {
                return nil
            }
        }
        return nil
    }

    /// Opens the current file at its end (if it exists) and collects the requested initial lines.
    private static func openAtEnd(
        directory: String,
        replica: String,
        initialLines: Int,
        keep: Int
    ) -> (fd: Int32, device: UInt64, inode: UInt64, offset: Int, initial: [UInt8]) {
        var opened: (fd: Int32, device: UInt64, inode: UInt64, offset: Int) = (-1, 0, 0, 0)
        var sources: [TailSource] = []
        if let current = TailSource(path: RotatingLog.path(directory: directory, replica: replica)) {
            var info = stat()
            _ = fstat(current.fd, &info)
            opened = (current.fd, UInt64(info.st_dev), UInt64(info.st_ino), current.end)
            sources.append(current)
        }
        guard initialLines > 0 else { return (opened.fd, opened.device, opened.inode, opened.offset, []) }
        var rotated: [TailSource] = []
        defer { for source in rotated { _ = close(source.fd) } }
        for generation in stride(from: 1, through: max(0, keep), by: 1) {
            if let source = TailSource(path: RotatingLog.path(directory: directory, replica: replica, generation: generation)) {
                rotated.append(source)
            }
        }
        let initial = tailBytes(initialLines, newestFirst: sources + rotated)
        return (opened.fd, opened.device, opened.inode, opened.offset, initial)
    }

    private func adopt(_ newFD: Int32) {
        var info = stat()
        _ = fstat(newFD, &info)
        if fd >= 0 { _ = close(fd) }
        fd = newFD
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        offset = 0
    }

    private func readAvailable() -> ByteBuffer? {
        guard fd >= 0 else { return nil }
        var buffer = ByteBuffer()
        let capacity = 64 * 1024
        let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { raw in
            let n = pread(fd, raw.baseAddress, min(capacity, raw.count), off_t(offset))
            return max(0, n)
        }
        guard n > 0 else { return nil }
        offset += n
        return buffer
    }

    /// Switches to the file now at `path` if it is a different file (rotated) or restarts a truncated one.
    /// Only called once the open file is read to its end, so a rotated file is never cut short.
    private func switchIfRotated() -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        if fd < 0 || UInt64(info.st_dev) != device || UInt64(info.st_ino) != inode {
            let newFD = open(path, O_RDONLY | O_CLOEXEC)
            guard newFD >= 0 else { return false }
            adopt(newFD)
            return true
        }
        if Int(info.st_size) < offset {
            offset = 0
            return true
        }
        return false
    }
}
