import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
import WeftCore
@testable import WeftProxy

/// An `http` listener's client connection on an EmbeddedChannel, whose backend connections are
/// EmbeddedChannels on the same loop: the test reads the bytes the proxy sends each way.
final class EmbeddedHTTPProxy {
    let loop = EmbeddedEventLoop()
    let runtime: ListenerRuntime
    let client: EmbeddedChannel
    var upstreams: [EmbeddedChannel] = []

    init(backends: [Int] = [8001], http: HTTPRouteSettings? = nil) throws {
        runtime = ListenerRuntime(ListenerConfiguration(
            name: "test", address: "127.0.0.1", port: 9000, loadBalancer: .roundRobin,
            backends: backends.map { BackendConfiguration(address: "127.0.0.1", port: $0) }, protocol: .http, http: http))
        client = EmbeddedChannel(loop: loop)
        let box = UpstreamBox()
        let connector = BackendConnector { _, client, _ in
            let channel = EmbeddedChannel(loop: client.eventLoop as! EmbeddedEventLoop)
            box.channels.append(channel)
            return channel.connect(to: try! SocketAddress(ipAddress: "127.0.0.1", port: 8001)).map { channel }
        }
        self.box = box
        try client.pipeline.syncOperations.addHandler(HTTPProxyHandler(runtime: runtime, connector: connector))
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9000)).wait()
    }

    private let box: UpstreamBox
    var upstream: EmbeddedChannel? { box.channels.last }

    func fromClient(_ text: String) throws { try client.writeInbound(ByteBuffer(string: text)) }
    func fromUpstream(_ text: String) throws { try upstream!.writeInbound(ByteBuffer(string: text)) }

    /// Everything written so far on `channel`, as text, once the loop's turn has ended (the proxy
    /// flushes at the end of a turn: `FlushBatch`).
    func written(_ channel: EmbeddedChannel) throws -> String {
        loop.run()
        var text = ""
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) { text += buffer.readString(length: buffer.readableBytes) ?? "" }
        return text
    }
}

final class UpstreamBox: @unchecked Sendable {
    var channels: [EmbeddedChannel] = []
}

@Suite("HTTP proxy handler (EmbeddedChannel)")
struct HTTPHandlerTests {
    @Test func hopByHopHeadersAreNotForwardedEitherWay() throws {
        let proxy = try EmbeddedHTTPProxy()
        try proxy.fromClient(
            "GET /a HTTP/1.1\r\nHost: svc\r\nConnection: keep-alive, x-hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n"
                + "TE: trailers\r\nProxy-Authorization: basic x\r\nX-End-To-End: yes\r\n\r\n")
        let request = try proxy.written(proxy.upstream!).lowercased()
        #expect(request.hasPrefix("get /a http/1.1\r\n"))
        #expect(request.contains("host: svc") && request.contains("x-end-to-end: yes"))
        for header in ["connection", "x-hop", "keep-alive", "te:", "proxy-authorization"] {
            #expect(!request.contains(header), "\(header) forwarded: \(request)")
        }
        try proxy.fromUpstream("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, x-private\r\nX-Private: 1\r\nX-Public: 1\r\n\r\nok")
        let response = try proxy.written(proxy.client).lowercased()
        #expect(response.hasPrefix("http/1.1 200 ok\r\n"))
        #expect(response.contains("x-public: 1") && response.contains("content-length: 2") && response.hasSuffix("\r\n\r\nok"))
        #expect(!response.contains("x-private") && !response.contains("connection"))
    }

    @Test func aChunkedRequestStaysChunkedAndItsBodyIsStreamed() throws {
        let proxy = try EmbeddedHTTPProxy()
        try proxy.fromClient("POST /up HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        let first = try proxy.written(proxy.upstream!)
        #expect(first.lowercased().contains("transfer-encoding: chunked"))
        #expect(first.hasSuffix("5\r\nhello\r\n"))
        try proxy.fromClient("6\r\n world\r\n0\r\n\r\n")
        #expect(try proxy.written(proxy.upstream!) == "6\r\n world\r\n0\r\n\r\n")
    }

    @Test func theUpstreamConnectionIsReusedForTheNextRequest() throws {
        let proxy = try EmbeddedHTTPProxy()
        for i in 0..<3 {
            try proxy.fromClient("GET /\(i) HTTP/1.1\r\nHost: svc\r\n\r\n")
            #expect(try proxy.written(proxy.upstream!).hasPrefix("GET /\(i) HTTP/1.1"))
            try proxy.fromUpstream("HTTP/1.1 204 No Content\r\n\r\n")
            #expect(try proxy.written(proxy.client).hasPrefix("HTTP/1.1 204 No Content"))
        }
        let counters = proxy.runtime.counters()
        #expect(counters.backends.first?.connectionsTotal == 1)
        #expect(counters.backends.first?.responses == [0, 3, 0, 0, 0])
    }

    @Test func aResponseWithConnectionCloseIsNotPooled() throws {
        let proxy = try EmbeddedHTTPProxy()
        try proxy.fromClient("GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
        let first = proxy.upstream!
        try proxy.fromUpstream("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        #expect(!first.isActive)
        try proxy.fromClient("GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
        #expect(proxy.upstream !== first)
    }

    @Test func aMalformedRequestGets400AndTheConnectionCloses() throws {
        let proxy = try EmbeddedHTTPProxy()
        try? proxy.fromClient("NOT HTTP AT ALL\r\n\r\n")
        let response = try proxy.written(proxy.client)
        #expect(response.hasPrefix("HTTP/1.1 400 Bad Request"))
        #expect(response.lowercased().contains("x-weft-proxy: malformed-request"))
        #expect(!proxy.client.isActive)
    }

    @Test func aMalformedPipelinedRequestIsAnsweredAfterTheOnesBeforeIt() throws {
        let proxy = try EmbeddedHTTPProxy()
        try? proxy.fromClient("GET /ok HTTP/1.1\r\nHost: svc\r\n\r\nBROKEN\r\n\r\n")
        #expect(try proxy.written(proxy.upstream!).hasPrefix("GET /ok HTTP/1.1"))
        try proxy.fromUpstream("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        let replies = try proxy.written(proxy.client)
        #expect(replies.hasPrefix("HTTP/1.1 200 OK"))
        #expect(replies.contains("\r\n\r\nokHTTP/1.1 400 Bad Request"))
        #expect(!proxy.client.isActive)
    }

    @Test func aHeadInPiecesIsForwardedWhole() throws {
        let proxy = try EmbeddedHTTPProxy()
        let request = "GET /pieces HTTP/1.1\r\nHost: svc\r\nX-A: 1\r\n\r\n"
        for byte in request.utf8 { try proxy.client.writeInbound(ByteBuffer(bytes: [byte])) }
        #expect(try proxy.written(proxy.upstream!) == request)
    }

    @Test func aRequestWithBothLengthAndChunkedGets400() throws {
        let proxy = try EmbeddedHTTPProxy()
        try proxy.fromClient("POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        let response = try proxy.written(proxy.client)
        #expect(response.hasPrefix("HTTP/1.1 400 Bad Request"))
        #expect(response.contains("both Content-Length and Transfer-Encoding"))
        #expect(proxy.upstream == nil)
        #expect(!proxy.client.isActive)
    }

    @Test func anOversizedHeadGets400() throws {
        let proxy = try EmbeddedHTTPProxy()
        try proxy.fromClient("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 70_000))
        #expect(try proxy.written(proxy.client).hasPrefix("HTTP/1.1 400 Bad Request"))
        #expect(!proxy.client.isActive)
    }

    @Test func aContinueGoesToTheClientBeforeTheFinalResponse() throws {
        let proxy = try EmbeddedHTTPProxy()
        try proxy.fromClient("PUT /up HTTP/1.1\r\nHost: svc\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        #expect(try proxy.written(proxy.upstream!).contains("Expect: 100-continue"))
        try proxy.fromUpstream("HTTP/1.1 100 Continue\r\n\r\n")
        #expect(try proxy.written(proxy.client) == "HTTP/1.1 100 Continue\r\n\r\n")
        try proxy.fromClient("hi")
        #expect(try proxy.written(proxy.upstream!) == "hi")
        try proxy.fromUpstream("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        #expect(try proxy.written(proxy.client).hasPrefix("HTTP/1.1 201 Created"))
    }

    @Test func anHTTP10ClientGetsAChunkedResponseDecoded() throws {
        let proxy = try EmbeddedHTTPProxy()
        try proxy.fromClient("GET / HTTP/1.0\r\n\r\n")
        #expect(try proxy.written(proxy.upstream!).hasPrefix("GET / HTTP/1.1\r\n"))
        try proxy.fromUpstream("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        let response = try proxy.written(proxy.client)
        #expect(response == "HTTP/1.0 200 OK\r\nX: y\r\nconnection: close\r\n\r\nabcde")
        #expect(!proxy.client.isActive)
    }

    @Test func aCloseDelimitedResponseEndsWithTheBackendsClose() throws {
        let proxy = try EmbeddedHTTPProxy()
        try proxy.fromClient("GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
        let upstream = proxy.upstream!
        try proxy.fromUpstream("HTTP/1.1 200 OK\r\n\r\nuntil the end")
        #expect(proxy.client.isActive)
        try upstream.close().wait()
        let response = try proxy.written(proxy.client)
        #expect(response == "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end")
        #expect(!proxy.client.isActive)
        #expect(proxy.runtime.counters().backends.first?.responses == [0, 1, 0, 0, 0])
    }

    @Test func aPipelinedRequestAfterAChunkedOneStartsAtItsFirstByte() throws {
        let proxy = try EmbeddedHTTPProxy()
        try proxy.fromClient("POST /a HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: svc\r\n\r\n")
        let first = try proxy.written(proxy.upstream!)
        #expect(first.hasSuffix("\r\n\r\n1\r\nx\r\n0\r\n\r\n"))
        #expect(!first.contains("GET /b"))
        try proxy.fromUpstream("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na")
        #expect(try proxy.written(proxy.upstream!) == "GET /b HTTP/1.1\r\nHost: svc\r\n\r\n")
        try proxy.fromUpstream("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb")
        #expect(try proxy.written(proxy.client) == "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb")
    }

    @Test func bytesAfterAResponseMakeTheUpstreamConnectionUnusable() throws {
        let proxy = try EmbeddedHTTPProxy()
        try proxy.fromClient("GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
        let first = proxy.upstream!
        try proxy.fromUpstream("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\n")
        #expect(try proxy.written(proxy.client).hasSuffix("\r\n\r\na"))
        #expect(!first.isActive)
        try proxy.fromClient("GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
        #expect(proxy.upstream !== first)
    }

    @Test func aKeepAliveOnlyConnectionFieldPassesUnchangedUnlessTheClientLeaves() throws {
        let proxy = try EmbeddedHTTPProxy()
        try proxy.fromClient("GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
        _ = try proxy.written(proxy.upstream!)
        let response = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\na"
        try proxy.fromUpstream(response)
        #expect(try proxy.written(proxy.client) == response)
        // A client that asked to close gets close instead of the backend's keep-alive.
        try proxy.fromClient("GET / HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n")
        #expect(try proxy.written(proxy.upstream!) == "GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
        try proxy.fromUpstream(response)
        #expect(try proxy.written(proxy.client) == "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nconnection: close\r\n\r\na")
        #expect(!proxy.client.isActive)
    }

    @Test func aResponseThatArrivesWholeGoesToTheClientInOneWrite() throws {
        let proxy = try EmbeddedHTTPProxy()
        let response = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello"
        for _ in 0..<2 {  // a new upstream connection, then a pooled one
            try proxy.fromClient("GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
            _ = try proxy.written(proxy.upstream!)
            try proxy.fromUpstream(response)
            var writes: [String] = []
            proxy.loop.run()
            while var buffer = try proxy.client.readOutbound(as: ByteBuffer.self) {
                writes.append(buffer.readString(length: buffer.readableBytes) ?? "")
            }
            #expect(writes == [response])
        }
        // One that arrives in two reads goes on as it arrives.
        try proxy.fromClient("GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
        try proxy.fromUpstream("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhe")
        try proxy.fromUpstream("llo")
        #expect(try proxy.written(proxy.client) == "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
        #expect(proxy.runtime.counters().backends.first?.connectionsTotal == 1)
    }
}
