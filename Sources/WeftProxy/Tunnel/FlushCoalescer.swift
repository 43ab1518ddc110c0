import NIOCore

/// Sits between a tunnel connection's HTTP/2 handler and its TLS handler and batches what goes down
/// within one event-loop turn, so the frames of many streams leave in few TLS records:
///
/// - Flushes: the flushes of all streams become one, run as a task at the end of the turn, after the
///   loop has handled every socket that was ready, so nothing waits longer than that turn. Each
///   stream's flush would otherwise seal its own TLS record and make its own `write` system call.
/// - Small writes: swift-nio-http2 writes each DATA frame as two buffers (the 9-byte frame header,
///   then the payload), and NIOSSL seals every write in a TLS record of its own (22 bytes of overhead
///   and an AEAD seal each). Writes of up to `maxCopyBytes` are copied into one batch of at most
///   `maxBatchBytes` (a full TLS record) instead. Larger writes (bulk data) pass through uncopied,
///   after what was batched before them, so the order of bytes never changes.
final class FlushCoalescer: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// Writes up to this size are copied into the batch.
    static let maxCopyBytes = 4096
    /// A batch is written once it would grow past this (the largest TLS record's plaintext).
    static let maxBatchBytes = 16384

    private var scheduled = false
    /// Reused between batches: once the TLS handler has sealed a batch, the storage is ours again.
    private var batch: ByteBuffer?
    private var batchPromise: EventLoopPromise<Void>?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .byteBuffer(var buffer) = unwrapOutboundIn(data), buffer.readableBytes <= Self.maxCopyBytes else {
            writeBatch(context: context)
            context.write(data, promise: promise)
            return
        }
        if var batch, batch.readableBytes > 0 {
            if batch.readableBytes + buffer.readableBytes > Self.maxBatchBytes {
                writeBatch(context: context)
                batch.clear()
            }
            self.batch = nil  // keep the storage uniquely referenced while appending
            batch.writeBuffer(&buffer)
            self.batch = batch
        } else if var batch {
            self.batch = nil
            batch.clear()
            batch.writeBuffer(&buffer)
            self.batch = batch
        } else {
            var batch = context.channel.allocator.buffer(capacity: Self.maxBatchBytes)
            batch.writeBuffer(&buffer)
            self.batch = batch
        }
        if let promise {
            if let batchPromise {
                batchPromise.futureResult.cascade(to: promise)
            } else {
                batchPromise = promise
            }
        }
    }

    /// Passes the batch down (leaving the storage in `batch` for reuse once the TLS handler is done).
    private func writeBatch(context: ChannelHandlerContext) {
        guard var batch, batch.readableBytes > 0 else { return }
        let promise = batchPromise
        batchPromise = nil
        context.write(wrapOutboundOut(.byteBuffer(batch)), promise: promise)
        batch.moveReaderIndex(to: batch.writerIndex)
        self.batch = batch
    }

    func flush(context: ChannelHandlerContext) {
        guard !scheduled else { return }
        scheduled = true
        context.eventLoop.assumeIsolated().execute { [self] in
            scheduled = false
            writeBatch(context: context)
            context.flush()
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // Whatever is pending goes out before the connection closes.
        writeBatch(context: context)
        if scheduled {
            scheduled = false
            context.flush()
        }
        context.close(mode: mode, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        batchPromise?.fail(ChannelError.ioOnClosedChannel)
        batchPromise = nil
        batch = nil
    }
}

@available(*, unavailable)
extension FlushCoalescer: Sendable {}
