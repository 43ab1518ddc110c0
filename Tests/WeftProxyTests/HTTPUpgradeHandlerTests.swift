import NIOCore
import NIOEmbedded
import Testing
import WeftCore
@testable import WeftProxy

/// Protocol switches (`Upgrade`, `101 Switching Protocols`) through an `http` listener's handler.
extension HTTPHandlerTests {
    static let upgradeRequest = "GET /chat HTTP/1.1\r\nHost: svc\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"
        + "Keep-Alive: timeout=5\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    static let switched = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"

    @Test func anUpgradeRequestKeepsUpgradeAndTheBytesAfter101AreRelayedBothWays() throws {
        let proxy = try EmbeddedHTTPProxy()
        // The client's first frame comes right behind the request: it waits for the switch.
        try proxy.fromClient(Self.upgradeRequest + "early")
        let upstream = try #require(proxy.upstream)
        #expect(try proxy.written(upstream) == "GET /chat HTTP/1.1\r\nHost: svc\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nconnection: upgrade\r\n\r\n")
        try proxy.fromUpstream(Self.switched + "hello")
        #expect(try proxy.written(proxy.client) == "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nconnection: upgrade\r\n\r\nhello")
        #expect(try proxy.written(upstream) == "early")
        // From now on bytes are not HTTP to the proxy, even when they look like it.
        try proxy.fromClient("GET / HTTP/1.1\r\n\r\nframe-1")
        #expect(try proxy.written(upstream) == "GET / HTTP/1.1\r\n\r\nframe-1")
        try proxy.fromUpstream("HTTP/1.1 101 x\r\n\r\nframe-2")
        #expect(try proxy.written(proxy.client) == "HTTP/1.1 101 x\r\n\r\nframe-2")
        var counters = proxy.runtime.counters()
        #expect(counters.backends.first?.responses == [1, 0, 0, 0, 0])
        #expect(counters.backends.first?.connectionsActive == 0)
        #expect(counters.connectionsActive == 1)
        // The backend's close ends the client's connection, which is released once.
        try upstream.close().wait()
        #expect(!proxy.client.isActive)
        counters = proxy.runtime.counters()
        #expect(counters.connectionsActive == 0)
        #expect(counters.backends.first?.bytesIn == "early".utf8.count + "GET / HTTP/1.1\r\n\r\nframe-1".utf8.count)
        #expect(counters.backends.first?.bytesOut == "hello".utf8.count + "HTTP/1.1 101 x\r\n\r\nframe-2".utf8.count)
    }

    @Test func theClientClosingEndsTheRelay() throws {
        let proxy = try EmbeddedHTTPProxy()
        try proxy.fromClient(Self.upgradeRequest)
        let upstream = try #require(proxy.upstream)
        try proxy.fromUpstream(Self.switched)
        try proxy.client.close().wait()
        #expect(!upstream.isActive)
        #expect(proxy.runtime.counters().connectionsActive == 0)
    }

    @Test func anAnswerOtherThan101IsAnOrdinaryResponseAndTheConnectionIsNotPooled() throws {
        let proxy = try EmbeddedHTTPProxy()
        try proxy.fromClient(Self.upgradeRequest)
        let first = try #require(proxy.upstream)
        _ = try proxy.written(first)
        try proxy.fromUpstream("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        #expect(try proxy.written(proxy.client) == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        #expect(proxy.client.isActive)
        #expect(!first.isActive)
        // The client's connection goes on with HTTP; the next request gets a new upstream connection.
        try proxy.fromClient("GET /next HTTP/1.1\r\nHost: svc\r\n\r\n")
        let second = try #require(proxy.upstream)
        #expect(second !== first)
        #expect(try proxy.written(second) == "GET /next HTTP/1.1\r\nHost: svc\r\n\r\n")
        try proxy.fromUpstream("HTTP/1.1 204 No Content\r\n\r\n")
        #expect(try proxy.written(proxy.client) == "HTTP/1.1 204 No Content\r\n\r\n")
        #expect(proxy.runtime.counters().backends.first?.responses == [0, 2, 0, 0, 0])
    }

    @Test func anUpgradeDoesNotTakeAPooledConnection() throws {
        let proxy = try EmbeddedHTTPProxy()
        try proxy.fromClient("GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
        let pooled = try #require(proxy.upstream)
        try proxy.fromUpstream("HTTP/1.1 204 No Content\r\n\r\n")
        #expect(pooled.isActive)
        _ = try proxy.written(proxy.client)
        try proxy.fromClient(Self.upgradeRequest)
        let upgraded = try #require(proxy.upstream)
        #expect(upgraded !== pooled)
        try proxy.fromUpstream(Self.switched)
        #expect(try proxy.written(proxy.client).hasPrefix("HTTP/1.1 101 Switching Protocols"))
        #expect(proxy.runtime.counters().backends.first?.connectionsTotal == 2)
    }

    @Test func a101TheRequestDidNotAskForGets502() throws {
        let proxy = try EmbeddedHTTPProxy()
        // Not idempotent, so not retried: the 101 closes the connection and the client gets the 502.
        try proxy.fromClient("POST /x HTTP/1.1\r\nHost: svc\r\n\r\n")
        let upstream = try #require(proxy.upstream)
        try proxy.fromUpstream(Self.switched + "frame")
        #expect(!upstream.isActive)
        let response = try proxy.written(proxy.client)
        #expect(response.hasPrefix("HTTP/1.1 502 Bad Gateway"))
        #expect(!response.contains("frame"))
        #expect(proxy.client.isActive)
    }

    @Test func anHTTP10ClientsUpgradeIsIgnored() throws {
        let proxy = try EmbeddedHTTPProxy(http: HTTPRouteSettings(retries: RetryPolicy(attempts: 0)))
        try proxy.fromClient("GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
        #expect(try proxy.written(proxy.upstream!) == "GET / HTTP/1.1\r\n\r\n")
        try proxy.fromUpstream(Self.switched)
        #expect(try proxy.written(proxy.client).hasPrefix("HTTP/1.0 502 Bad Gateway"))
    }

    @Test func anUpgradeIsNotRetriedOnceSent() throws {
        let proxy = try EmbeddedHTTPProxy(backends: [8001, 8002])
        try proxy.fromClient(Self.upgradeRequest)
        let upstream = try #require(proxy.upstream)
        try upstream.close().wait()
        #expect(proxy.upstream === upstream)
        #expect(try proxy.written(proxy.client).hasPrefix("HTTP/1.1 502 Bad Gateway"))
    }

    @Test func a101BeforeTheRequestBodyEndedGets502() throws {
        let proxy = try EmbeddedHTTPProxy()
        try proxy.fromClient("POST /x HTTP/1.1\r\nHost: svc\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 5\r\n\r\nab")
        let upstream = try #require(proxy.upstream)
        try proxy.fromUpstream("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n")
        #expect(!upstream.isActive)
        #expect(try proxy.written(proxy.client).hasPrefix("HTTP/1.1 502 Bad Gateway"))
        #expect(!proxy.client.isActive)
    }

    @Test func theListenersIdleTimeoutEndsAQuietRelay() throws {
        // The listener's default idle timeout: 300 s, checked every 75 s.
        let proxy = try EmbeddedHTTPProxy()
        try proxy.fromClient(Self.upgradeRequest)
        let upstream = try #require(proxy.upstream)
        try proxy.fromUpstream(Self.switched)
        for _ in 0..<3 {
            proxy.loop.advanceTime(by: .seconds(200))
            try proxy.fromUpstream("keepalive")
        }
        #expect(proxy.client.isActive && upstream.isActive)
        proxy.loop.advanceTime(by: .seconds(400))
        #expect(!proxy.client.isActive && !upstream.isActive)
        #expect(proxy.runtime.counters().connectionsActive == 0)
    }

    @Test func theRequestTimeoutEndsAtThe101() throws {
        let proxy = try EmbeddedHTTPProxy(http: HTTPRouteSettings(timeoutMs: 1000))
        try proxy.fromClient(Self.upgradeRequest)
        let upstream = try #require(proxy.upstream)
        _ = try proxy.written(upstream)
        try proxy.fromUpstream(Self.switched)
        _ = try proxy.written(proxy.client)
        proxy.loop.advanceTime(by: .seconds(5))
        #expect(proxy.client.isActive && upstream.isActive)
        try proxy.fromClient("still here")
        #expect(try proxy.written(upstream) == "still here")
    }
}
