#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import WeftCore
@testable import WeftDNS

struct DNSTestError: Error, CustomStringConvertible {
    var description: String
}

func name(_ text: String) -> DNSName { try! DNSName(text) }

func query(_ text: String, _ type: DNSType, id: UInt16 = UInt16.random(in: 0...UInt16.max), edns: EDNS? = nil) -> DNSMessage {
    var flags = DNSFlags()
    flags.recursionDesired = true
    return DNSMessage(id: id, flags: flags, questions: [DNSQuestion(name: name(text), type: type)], edns: edns)
}

/// A blocking loopback socket speaking raw DNS, as a client would.
final class DNSTestClient {
    let descriptor: Int32
    let port: Int
    let isTCP: Bool

    init(port: Int, tcp: Bool = false, timeout: Double = 3) throws {
        self.port = port
        isTCP = tcp
        descriptor = socket(AF_INET, Int32(tcp ? SOCK_STREAM.rawValue : SOCK_DGRAM.rawValue), 0)
        var time = timeval(tv_sec: Int(timeout), tv_usec: Int(timeout.truncatingRemainder(dividingBy: 1) * 1_000_000))
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw DNSTestError(description: "connect to 127.0.0.1:\(port): errno \(errno)") }
    }

    deinit { close(descriptor) }

    func sendRaw(_ bytes: [UInt8]) throws {
        var payload = bytes
        if isTCP { payload = [UInt8(bytes.count >> 8), UInt8(bytes.count & 0xFF)] + bytes }
        let sent = payload.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == payload.count else { throw DNSTestError(description: "send: errno \(errno)") }
    }

    /// The next message, nil on timeout (or, over TCP, when the server closed).
    func receiveRaw() throws -> [UInt8]? {
        if isTCP {
            guard let prefix = try read(2) else { return nil }
            return try read(Int(prefix[0]) << 8 | Int(prefix[1]))
        }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return nil }
        guard count >= 0 else { throw DNSTestError(description: "recv: errno \(errno)") }
        return Array(buffer[0..<count])
    }

    private func read(_ count: Int) throws -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let got = bytes.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress! + offset, count - offset, 0) }
            if got == 0 { return nil }
            if got < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { return nil }
                throw DNSTestError(description: "recv: errno \(errno)")
            }
            offset += got
        }
        return bytes
    }

    func ask(_ message: DNSMessage) throws -> DNSMessage {
        try sendRaw(message.encoded())
        guard let bytes = try receiveRaw() else { throw DNSTestError(description: "no answer to \(message.questions)") }
        return try DNSMessage(decoding: bytes)
    }
}

/// Runs blocking work off the Swift concurrency pool.
func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}

/// A stub upstream resolver on 127.0.0.1 (UDP and TCP on one port) that answers with `answer` and
/// counts the queries it gets.
final class StubUpstream: Sendable {
    let port: Int
    private let channels: [any Channel]
    private let counts: NIOLockedValueBox<[String: Int]>

    var queries: [String: Int] { counts.withLockedValue { $0 } }

    private init(port: Int, channels: [any Channel], counts: NIOLockedValueBox<[String: Int]>) {
        self.port = port
        self.channels = channels
        self.counts = counts
    }

    /// `answer(query, overTCP)` builds the response; nil sends nothing.
    static func start(group: any EventLoopGroup, answer: @escaping @Sendable (DNSMessage, Bool) -> DNSMessage?) async throws -> StubUpstream {
        // The kernel picks the UDP port; TCP on the same port may be taken by then: try again.
        for attempt in 1...8 {
            do {
                return try await bind(group: group, answer: answer)
            } catch where attempt < 8 {
                continue
            }
        }
        fatalError("unreachable")
    }

    private static func bind(group: any EventLoopGroup, answer: @escaping @Sendable (DNSMessage, Bool) -> DNSMessage?) async throws -> StubUpstream {
        let counts = NIOLockedValueBox([String: Int]())
        let record: @Sendable (DNSMessage, Bool) -> DNSMessage? = { query, tcp in
            counts.withLockedValue { $0["\(tcp ? "tcp" : "udp") \(query.questions.first?.name.description ?? "")", default: 0] += 1 }
            return answer(query, tcp)
        }
        let udp = try await DatagramBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(StubUDPHandler(answer: record)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = udp.localAddress!.port!
        let tcpBound = ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(DNSFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(StubTCPHandler(answer: record))
                }
            }
            .bind(host: "127.0.0.1", port: port)
        let tcp: any Channel
        do {
            tcp = try await tcpBound.get()
        } catch {
            try? await udp.close()
            throw error
        }
        return StubUpstream(port: port, channels: [udp, tcp], counts: counts)
    }

    func stop() async {
        for channel in channels { try? await channel.close() }
    }
}

private final class StubUDPHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>
    let answer: @Sendable (DNSMessage, Bool) -> DNSMessage?
    init(answer: @escaping @Sendable (DNSMessage, Bool) -> DNSMessage?) { self.answer = answer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let query = try? DNSMessage(decoding: Array(envelope.data.readableBytesView)),
              let response = answer(query, false) else { return }
        let bytes = response.encoded(maximumLength: DNSQueryHandler.responseLimit(for: query, overTCP: false))
        context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: ByteBuffer(bytes: bytes))), promise: nil)
    }
}

private final class StubTCPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let answer: @Sendable (DNSMessage, Bool) -> DNSMessage?
    init(answer: @escaping @Sendable (DNSMessage, Bool) -> DNSMessage?) { self.answer = answer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let query = try? DNSMessage(decoding: Array(unwrapInboundIn(data).readableBytesView)),
              let response = answer(query, true) else { return }
        var buffer = ByteBuffer()
        buffer.writeDNSFrame(response.encoded())
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }
}

/// The reply a stub gives: `records` as answers to the query's question.
func reply(to query: DNSMessage, code: DNSResponseCode = .noError, answers: [DNSRecordData] = [], authorities: [DNSRecord] = [], ttl: UInt32 = 60) -> DNSMessage {
    var response = DNSMessage(id: query.id, questions: query.questions, authorities: authorities, edns: query.edns.map { _ in EDNS() })
    response.flags.isResponse = true
    response.flags.recursionAvailable = true
    response.flags.recursionDesired = query.flags.recursionDesired
    response.answers = answers.map { DNSRecord(name: query.questions[0].name, ttl: ttl, data: $0) }
    response.responseCode = code
    return response
}

let testLogger = Logger(label: "dns-test")
