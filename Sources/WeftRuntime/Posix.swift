#if canImport(Glibc)
import Glibc
#endif

/// glibc extensions that the Swift `Glibc` module hides because it is not built with `_GNU_SOURCE`.
/// They are looked up once with `dlsym`; the package has no C target to declare them.
enum GNU {
    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, UnsafePointer<CChar>?) -> Int32
    typealias AddClosefrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
    typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>?, Int32) -> Int32
    typealias EventFD = @convention(c) (UInt32, Int32) -> Int32

    /// `POSIX_SPAWN_SETSID` from glibc's `<spawn.h>` (glibc 2.26+).
    static let spawnSetSID: Int32 = 0x80

    /// `posix_spawn_file_actions_addchdir_np` (glibc 2.29+).
    static let addChdir: AddChdir? = lookup("posix_spawn_file_actions_addchdir_np")
    /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34+).
    static let addClosefrom: AddClosefrom? = lookup("posix_spawn_file_actions_addclosefrom_np")
    /// `pipe2`.
    static let pipe2: Pipe2? = lookup("pipe2")
    /// `eventfd` (`<sys/eventfd.h>`); its flags are `O_NONBLOCK` and `O_CLOEXEC`.
    static let eventfd: EventFD? = lookup("eventfd")

    private static func lookup<F>(_ name: String) -> F? {
        // A nil handle is RTLD_DEFAULT on glibc: search the global symbol scope.
        guard let symbol = dlsym(nil, name) else { return nil }
        return unsafeBitCast(symbol, to: F.self)
    }
}

/// Creates a pipe whose both ends are close-on-exec (and optionally non-blocking), atomically when `pipe2` exists.
func makePipe(nonBlocking: Bool = false) throws -> (read: Int32, write: Int32) {
    var fds: [Int32] = [-1, -1]
    var flags = O_CLOEXEC
    if nonBlocking { flags |= O_NONBLOCK }
    let rc: Int32
    if let pipe2 = GNU.pipe2 {
        rc = fds.withUnsafeMutableBufferPointer { pipe2($0.baseAddress, flags) }
    } else {
        rc = fds.withUnsafeMutableBufferPointer { pipe($0.baseAddress) }
        if rc == 0 {
            for fd in fds {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                if nonBlocking { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
            }
        }
    }
    guard rc == 0 else {
        let code = errno
        throw RuntimeError(code: .system, message: "cannot create pipe: \(errnoText(code))", errno: code)
    }
    return (fds[0], fds[1])
}

/// Writes all of `bytes` to `fd`, retrying on EINTR and short writes; returns the errno on failure.
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
    var offset = 0
    while offset < bytes.count {
        let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if n >= 0 {
            offset += n
        } else if errno != EINTR {
            return errno
        }
    }
    return nil
}

/// A plain OS thread for work that blocks in the kernel (`waitid`, `poll`) and so must not
/// occupy a NIO event loop or a Swift concurrency thread.
struct NativeThread: @unchecked Sendable {  // pthread_t is an integer handle; it is joined at most once by its creator.
    private let handle: pthread_t

    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    /// Starts `body` on a new thread; a detached thread cannot be joined.
    static func start(detached: Bool, _ body: @escaping @Sendable () -> Void) throws -> NativeThread {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        let rc = pthread_create(&thread, nil, { context in
            let body = Unmanaged<Body>.fromOpaque(context!).takeRetainedValue()
            body.run()
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            throw RuntimeError(code: .system, message: "cannot start a thread: \(errnoText(rc))", errno: rc)
        }
        if detached { pthread_detach(thread) }
        return NativeThread(handle: thread)
    }

    /// Waits for a joinable thread to finish.
    func join() {
        pthread_join(handle, nil)
    }
}
