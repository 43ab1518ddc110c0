import NIOCore
import NIOEmbedded
import Testing
@testable import WeftProxy

@Suite("FlushCoalescer under a tunnel connection's HTTP/2 handler")
struct FlushCoalescerTests {
    private func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(FlushCoalescer())
        return channel
    }

    private func outbound(_ channel: EmbeddedChannel) throws -> [String] {
        var written: [String] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            written.append(String(buffer: buffer))
        }
        return written
    }

    @Test func smallWritesOfOneTurnLeaveAsOneBufferWithOneFlush() throws {
        let channel = try channel()
        let promises = (0..<3).map { _ in channel.eventLoop.makePromise(of: Void.self) }
        channel.write(ByteBuffer(string: "frame-header"), promise: promises[0])
        channel.write(ByteBuffer(string: "payload-1"), promise: nil)
        channel.flush()
        channel.write(ByteBuffer(string: "payload-2"), promise: promises[1])
        channel.write(ByteBuffer(string: "payload-3"), promise: promises[2])
        channel.flush()
        #expect(try outbound(channel).isEmpty)  // nothing before the end of the turn
        channel.embeddedEventLoop.run()
        #expect(try outbound(channel) == ["frame-headerpayload-1payload-2payload-3"])
        for promise in promises { try promise.futureResult.wait() }

        // The next turn reuses the batch and carries only its own bytes.
        channel.write(ByteBuffer(string: "next"), promise: nil)
        channel.flush()
        channel.embeddedEventLoop.run()
        #expect(try outbound(channel) == ["next"])
        _ = try channel.finish()
    }

    @Test func largeWritesPassUncopiedInOrder() throws {
        let channel = try channel()
        let large = String(repeating: "x", count: FlushCoalescer.maxCopyBytes + 1)
        channel.write(ByteBuffer(string: "a"), promise: nil)
        channel.write(ByteBuffer(string: "b"), promise: nil)
        channel.write(ByteBuffer(string: large), promise: nil)
        channel.write(ByteBuffer(string: "c"), promise: nil)
        channel.flush()
        channel.embeddedEventLoop.run()
        #expect(try outbound(channel) == ["ab", large, "c"])
        _ = try channel.finish()
    }

    @Test func aBatchIsAtMostOneTLSRecord() throws {
        let channel = try channel()
        let piece = String(repeating: "y", count: FlushCoalescer.maxCopyBytes)
        let pieces = FlushCoalescer.maxBatchBytes / FlushCoalescer.maxCopyBytes + 1
        for _ in 0..<pieces { channel.write(ByteBuffer(string: piece), promise: nil) }
        channel.flush()
        channel.embeddedEventLoop.run()
        let written = try outbound(channel)
        #expect(written.map(\.utf8.count) == [FlushCoalescer.maxBatchBytes, FlushCoalescer.maxCopyBytes])
        _ = try channel.finish()
    }

    @Test func closingWritesOutWhatIsBatched() throws {
        let channel = try channel()
        channel.write(ByteBuffer(string: "last words"), promise: nil)
        channel.flush()
        channel.close(promise: nil)
        #expect(try outbound(channel) == ["last words"])
    }
}
