import NIOCore

/// Splits a DNS-over-TCP stream into messages: each is preceded by its length in two bytes (RFC 1035
/// §4.2.2). A length of 0 is not a message; the connection is closed.
struct DNSFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) else { return .needMoreData }
        guard length > 0 else { throw DNSFrameError.emptyMessage }
        guard buffer.readableBytes >= 2 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        buffer.moveReaderIndex(to: buffer.writerIndex)  // a message cut off by the close is dropped
        return .needMoreData
    }
}

enum DNSFrameError: Error {
    case emptyMessage
}

extension ByteBuffer {
    /// `bytes` behind their two-byte length, as DNS over TCP sends a message.
    mutating func writeDNSFrame(_ bytes: [UInt8]) {
        writeInteger(UInt16(bytes.count))
        writeBytes(bytes)
    }
}
