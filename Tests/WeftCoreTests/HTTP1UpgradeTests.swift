import Testing
import WeftCore

@Suite("HTTP/1.1 parser: Upgrade")
struct HTTP1UpgradeTests {
    private func parse(_ text: String) throws -> HTTP1Head {
        try Array(text.utf8).withUnsafeBytes { HTTP1Parser.parseRequest($0) }.get()
    }

    private func kept(_ text: String, keepingUpgrade: Bool) throws -> String {
        let bytes = Array(text.utf8)
        let head = try parse(text)
        return bytes.withUnsafeBytes { p in
            HTTP1Parser.keptFieldLines(p, head, keepingUpgrade: keepingUpgrade).map { String(decoding: bytes[$0], as: UTF8.self) }.joined()
        }
    }

    @Test func anUpgradeNeedsTheFieldAndTheConnectionOptionOnHTTP11() throws {
        #expect(try parse("GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n").upgrade)
        #expect(try parse("GET / HTTP/1.1\r\nUPGRADE: h2c\r\nconnection: upgrade\r\n\r\n").upgrade)
        // Upgrade without the option (or the option without the field) is only a hop-by-hop field.
        #expect(try !parse("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n").upgrade)
        #expect(try !parse("GET / HTTP/1.1\r\nConnection: upgrade\r\n\r\n").upgrade)
        // RFC 9110 §7.8: an HTTP/1.0 request's Upgrade is ignored.
        #expect(try !parse("GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n").upgrade)
        let confirmed = try Array("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n".utf8)
            .withUnsafeBytes { HTTP1Parser.parseResponse($0, requestMethod: .get) }.get()
        #expect(confirmed.upgrade && confirmed.status == 101 && confirmed.framing == .none)
    }

    @Test func keepingUpgradeKeepsOnlyTheUpgradeField() throws {
        let text = "GET / HTTP/1.1\r\nConnection: upgrade, x-hop\r\nUpgrade: websocket\r\nX-Hop: 1\r\nTE: trailers\r\nX-Key: k\r\n\r\n"
        #expect(try kept(text, keepingUpgrade: true) == "Upgrade: websocket\r\nX-Key: k\r\n")
        #expect(try kept(text, keepingUpgrade: false) == "X-Key: k\r\n")
    }
}
