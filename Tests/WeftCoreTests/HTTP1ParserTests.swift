import Testing
import WeftCore

private func request(_ text: String) -> Result<HTTP1Head, HTTP1ParseError> {
    Array(text.utf8).withUnsafeBytes { HTTP1Parser.parseRequest($0) }
}

private func response(_ text: String, to method: HTTP1Method = .get) -> Result<HTTP1Head, HTTP1ParseError> {
    Array(text.utf8).withUnsafeBytes { HTTP1Parser.parseResponse($0, requestMethod: method) }
}

private func headEnd(_ text: String, from: Int = 0) -> (end: Int?, resume: Int) {
    Array(text.utf8).withUnsafeBytes { HTTP1Parser.headEnd($0, from: from) }
}

/// The head's field lines that are forwarded, as text.
private func kept(_ text: String, droppingTransferEncoding: Bool = false, isRequest: Bool = true) throws -> String {
    let bytes = Array(text.utf8)
    let head = try (isRequest ? request(text) : response(text)).get()
    return bytes.withUnsafeBytes { p in
        HTTP1Parser.keptFieldLines(p, head, droppingTransferEncoding: droppingTransferEncoding)
            .map { String(decoding: bytes[$0], as: UTF8.self) }.joined()
    }
}

/// Feeds `text` to a body reader in pieces of `piece` bytes: how many bytes it took, whether it
/// completed, and the payload it reported.
private func readBody(_ framing: HTTP1Head.Framing, _ text: String, piece: Int = .max) throws -> (taken: Int, complete: Bool, payload: String) {
    var reader = HTTP1BodyReader(framing)
    let bytes = Array(text.utf8)
    var taken = 0
    var payload: [UInt8] = []
    while taken < bytes.count, !reader.isComplete {
        let end = min(bytes.count, taken + min(piece, bytes.count))
        let slice = Array(bytes[taken..<end])
        let n = try slice.withUnsafeBytes { p throws(HTTP1ParseError) in
            try reader.read(p) { payload += slice[$0] }
        }
        taken += n
        if n < slice.count { break }
    }
    return (taken, reader.isComplete, String(decoding: payload, as: UTF8.self))
}

@Suite("HTTP/1.1 parser")
struct HTTP1ParserTests {
    @Test func findsTheEndOfAHeadInPieces() {
        let text = "GET / HTTP/1.1\r\nHost: a\r\n\r\nNEXT"
        #expect(headEnd(text).end == 27)
        // Arriving in pieces: the search resumes where it stopped and still finds the end.
        var resume = 0
        let bytes = Array(text.utf8)
        for length in 1...27 {
            let (end, next) = Array(bytes.prefix(length)).withUnsafeBytes { HTTP1Parser.headEnd($0, from: resume) }
            #expect(end == (length == 27 ? 27 : nil), "after \(length) bytes")
            resume = next
        }
        // Empty lines before a request line are skipped, not taken for the end of the head.
        #expect(headEnd("\r\n\r\nGET / HTTP/1.1\r\n\r\n").end == 22)
        #expect(headEnd("\r\n\r\n").end == nil)
    }

    @Test func parsesARequestWithoutCopyingAnything() throws {
        let head = try request("GET /a?b=c HTTP/1.1\r\nHost: svc\r\nAccept: */*\r\n\r\n").get()
        #expect(head.method == .get && head.minorVersion == 1 && head.framing == .none)
        #expect(head.keepAlive && !head.hasHopByHopFields && head.isIdempotent)
        #expect(head.versionRange == 11..<19 && head.startLineEnd == 21)
        let post = try request("POST /p HTTP/1.1\r\nContent-Length: 12\r\n\r\n").get()
        #expect(post.framing == .length(12) && !post.isIdempotent)
        let chunked = try request("PUT /p HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").get()
        #expect(chunked.framing == .chunked && !chunked.hasHopByHopFields)
        #expect(try request("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").get().framing == .none)
        #expect(try request("GET / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n").get().framing == .length(3))
    }

    @Test func keepAliveFollowsTheVersionAndConnection() throws {
        #expect(try request("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").get().keepAlive == false)
        #expect(try request("GET / HTTP/1.0\r\n\r\n").get().keepAlive == false)
        #expect(try request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").get().keepAlive == true)
        #expect(try request("GET / HTTP/1.1\r\nConnection: keep-alive, CLOSE\r\n\r\n").get().keepAlive == false)
        // Keep-alive alone may pass as the proxy's own option; close or a named field must be dropped.
        let keepAlive = try response("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").get()
        #expect(!keepAlive.hasHopByHopFields && keepAlive.hasConnectionField)
        #expect(try response("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").get().hasHopByHopFields)
        #expect(try response("HTTP/1.1 200 OK\r\nConnection: keep-alive, x\r\nContent-Length: 0\r\n\r\n").get().hasHopByHopFields)
        #expect(try request("GET / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n").get().expectsContinue)
    }

    @Test(arguments: [
        ("NOT HTTP AT ALL\r\n\r\n", "malformed start line"),
        ("GET  / HTTP/1.1\r\n\r\n", "malformed start line"),
        ("GET / HTTP/2.0\r\n\r\n", "unsupported HTTP version"),
        ("GET /\r\n\r\n", "malformed start line"),
        ("GET / HTTP/1.1\nHost: a\r\n\r\n", "malformed start line"),
        ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", "malformed header field name"),
        ("GET / HTTP/1.1\r\n: a\r\n\r\n", "malformed header field name"),
        ("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", "obsolete line folding"),
        ("GET / HTTP/1.1\r\nX: a\u{0}b\r\n\r\n", "control character"),
        ("GET / HTTP/1.1\r\nX: a\nY: b\r\n\r\n", "does not end with CRLF"),
        ("GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", "invalid Content-Length"),
        ("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length"),
        ("GET / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n", "invalid Content-Length"),
        ("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "invalid Content-Length"),
        ("GET / HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n", "invalid Content-Length"),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "must end with chunked"),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", "both Content-Length and Transfer-Encoding"),
        ("CONNECT a:443 HTTP/1.1\r\n\r\n", "CONNECT is not supported"),
    ])
    func refusesWhatCouldBeFramedTwoWays(text: String, reason: String) {
        guard case .failure(let error) = request(text) else {
            Issue.record("accepted: \(text.debugDescription)")
            return
        }
        #expect(error.description.contains(reason), "\(text.debugDescription): \(error)")
    }

    @Test func responseFramingFollowsRFC9112() throws {
        #expect(try response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").get().framing == .length(5))
        #expect(try response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", to: .head).get().framing == .none)
        #expect(try response("HTTP/1.1 204 No Content\r\n\r\n").get().framing == .none)
        #expect(try response("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n").get().framing == .none)
        #expect(try response("HTTP/1.1 100 Continue\r\n\r\n").get().status == 100)
        let closeDelimited = try response("HTTP/1.1 200 OK\r\n\r\n").get()
        #expect(closeDelimited.framing == .untilClose && !closeDelimited.keepAlive)
        let both = try response("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n").get()
        #expect(both.framing == .chunked && both.hasHopByHopFields)
        #expect(try response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n").get().framing == .untilClose)
        #expect(try response("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n").get().status == 200)
        #expect(try response("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").get().keepAlive == false)
        for bad in ["HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 099 X\r\n\r\n", "HTTP/1.1 200 O\u{1}K\r\n\r\n", "ICY 200 OK\r\n\r\n"] {
            guard case .failure = response(bad) else {
                Issue.record("accepted: \(bad.debugDescription)")
                continue
            }
        }
    }

    @Test func hopByHopFieldsAreDroppedWithTheOnesConnectionNames() throws {
        let text = "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Hop\r\nx-hop: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\n"
            + "Upgrade: h2c\r\nProxy-Authorization: b\r\nTransfer-Encoding: chunked\r\nX-Keep: 2\r\n\r\n"
        #expect(try request(text).get().hasHopByHopFields)
        #expect(try kept(text) == "Host: a\r\nTransfer-Encoding: chunked\r\nX-Keep: 2\r\n")
        #expect(try kept(text, droppingTransferEncoding: true) == "Host: a\r\nX-Keep: 2\r\n")
        // Naming a framing field in Connection does not remove it (the next hop would frame the body differently).
        #expect(try kept("POST / HTTP/1.1\r\nConnection: content-length, transfer-encoding\r\nContent-Length: 2\r\n\r\n")
            == "Content-Length: 2\r\n")
        let both = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n"
        #expect(try kept(both, isRequest: false) == "Transfer-Encoding: chunked\r\nX: y\r\n")
    }

    @Test func aLengthBodyEndsAfterItsBytes() throws {
        let result = try readBody(.length(5), "hello GET / ...", piece: 2)
        #expect(result.taken == 5 && result.complete && result.payload == "hello")
        let partial = try readBody(.length(10), "hello")
        #expect(partial.taken == 5 && !partial.complete)
    }

    @Test(arguments: [1, 3, 1000])
    func aChunkedBodyEndsAfterItsLastChunkAndTrailers(piece: Int) throws {
        let body = "5;ext=\"a b\"\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"
        let result = try readBody(.chunked, body + "GET /next", piece: piece)
        #expect(result.taken == body.utf8.count)
        #expect(result.complete)
        #expect(result.payload == "hello0123456789")
    }

    @Test(arguments: ["x\r\n", "5\r\nhello\n", "5\r\nhelloXY", "\r\n", "5\nhello\r\n", "10000000000000000\r\n", "0\r\n\u{1}\r\n\r\n"])
    func aMalformedChunkedBodyIsRefused(text: String) {
        #expect(throws: HTTP1ParseError.self) { _ = try readBody(.chunked, text) }
    }

    @Test func aCloseDelimitedBodyTakesEverything() throws {
        let result = try readBody(.untilClose, "all of it")
        #expect(result.taken == 9 && !result.complete && result.payload == "all of it")
    }
}
