// libFuzzer target over WeftCore's HTTP/1.1 framing (Sources/WeftCore/HTTP1), which the node proxy's
// http listeners run on every byte a client or backend sends. For every input it checks:
//
// - `HTTP1Parser.headEnd` finds the same end when the bytes arrive in pieces (resuming its search) as
//   in one piece;
// - a head that parses (as a request, and as a response to GET and to HEAD) has its ranges inside the
//   head and in order, and `keptFieldLines` gives ordered, disjoint field lines that each end in CRLF;
// - the head rebuilt from its start line and kept field lines parses again, with the same method or
//   status, version and body framing (dropping hop-by-hop fields never changes how a message is framed);
// - `HTTP1BodyReader` takes the same bytes, ends at the same byte and reports the same payload whether
//   the body arrives in one piece or byte by byte, and never takes more than it was given.
//
// Any violation is a bug: it stops the run with `fatalError`, and libFuzzer keeps the input.

import WeftCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Array(UnsafeRawBufferPointer(start: size == 0 ? nil : data, count: size))
    checkFraming(input)
    return 0
}

private func checkFraming(_ input: [UInt8]) {
    let end = input.withUnsafeBytes { HTTP1Parser.headEnd($0, from: 0).end }
    // The same search over pieces of 1, 2 and 5 bytes, resuming each time.
    for piece in [1, 2, 5] {
        var resume = 0, length = 0
        var found: Int?
        while found == nil, length < input.count {
            length = min(input.count, length + piece)
            let (e, next) = Array(input[0..<length]).withUnsafeBytes { HTTP1Parser.headEnd($0, from: resume) }
            found = e
            resume = next
            guard resume <= length else { fail("headEnd resumed past its input (\(resume) > \(length))", input) }
        }
        guard found == end else { fail("headEnd in pieces of \(piece) found \(String(describing: found)), in one \(String(describing: end))", input) }
    }
    guard let end else { return }
    let head = Array(input[0..<end])
    let rest = Array(input[end...])
    if case .success(let request) = head.withUnsafeBytes({ HTTP1Parser.parseRequest($0) }) {
        checkHead(request, head, isRequest: true, input)
        checkBody(request.framing, rest, input)
    }
    for method in [HTTP1Method.get, .head] {
        if case .success(let response) = head.withUnsafeBytes({ HTTP1Parser.parseResponse($0, requestMethod: method) }) {
            checkHead(response, head, isRequest: false, input)
            checkBody(response.framing, rest, input)
        }
    }
}

private func checkHead(_ parsed: HTTP1Head, _ bytes: [UInt8], isRequest: Bool, _ input: [UInt8]) {
    guard parsed.length == bytes.count, parsed.start <= parsed.versionRange.lowerBound,
          parsed.versionRange.upperBound < parsed.startLineEnd, parsed.startLineEnd <= parsed.length - 2
    else { fail("head ranges out of order: \(parsed)", input) }
    for dropTE in [false, true] {
        let lines = bytes.withUnsafeBytes { HTTP1Parser.keptFieldLines($0, parsed, droppingTransferEncoding: dropTE) }
        var previous = parsed.startLineEnd
        var rebuilt = Array(bytes[parsed.start..<parsed.startLineEnd])
        for line in lines {
            guard line.lowerBound >= previous, line.upperBound <= parsed.length - 2, line.count >= 3,
                  bytes[line.upperBound - 2] == 13, bytes[line.upperBound - 1] == 10
            else { fail("kept field line \(line) is out of order or does not end in CRLF", input) }
            previous = line.upperBound
            rebuilt += bytes[line]
        }
        rebuilt += [13, 10]
        let again = rebuilt.withUnsafeBytes { p in
            isRequest ? HTTP1Parser.parseRequest(p) : HTTP1Parser.parseResponse(p, requestMethod: parsed.method)
        }
        guard case .success(let second) = again else { fail("the rebuilt head does not parse: \(again)", input) }
        guard second.method == parsed.method, second.status == parsed.status, second.minorVersion == parsed.minorVersion else {
            fail("the rebuilt head has another start line", input)
        }
        // Without Transfer-Encoding a chunked message is no longer chunked: only the kept-coding form must agree.
        if !dropTE, second.framing != parsed.framing, !(parsed.framing == .untilClose && !isRequest) {
            fail("the rebuilt head is framed \(second.framing), the original \(parsed.framing)", input)
        }
    }
}

private func checkBody(_ framing: HTTP1Head.Framing, _ bytes: [UInt8], _ input: [UInt8]) {
    func read(piece: Int) -> (taken: Int, complete: Bool, payload: [UInt8], failed: Bool) {
        var reader = HTTP1BodyReader(framing)
        var taken = 0
        var payload: [UInt8] = []
        while taken < bytes.count, !reader.isComplete {
            let slice = Array(bytes[taken..<min(bytes.count, taken + piece)])
            do {
                let n = try slice.withUnsafeBytes { p throws(HTTP1ParseError) in try reader.read(p) { payload += slice[$0] } }
                guard n <= slice.count else { fail("the body reader took \(n) of \(slice.count) bytes", input) }
                taken += n
                if n < slice.count { break }
            } catch {
                return (taken, false, payload, true)
            }
        }
        return (taken, reader.isComplete, payload, false)
    }
    let whole = read(piece: max(bytes.count, 1))
    let bytewise = read(piece: 1)
    if whole.failed != bytewise.failed {
        fail("the body fails in one piece: \(whole.failed), byte by byte: \(bytewise.failed)", input)
    }
    if !whole.failed, whole.taken != bytewise.taken || whole.complete != bytewise.complete || whole.payload != bytewise.payload {
        fail("the body reads differently in one piece (\(whole.taken), \(whole.complete)) and byte by byte (\(bytewise.taken), \(bytewise.complete))", input)
    }
}

private func fail(_ message: String, _ input: [UInt8]) -> Never {
    let hex = input.map { byte in String(byte, radix: 16).count == 1 ? "0" + String(byte, radix: 16) : String(byte, radix: 16) }.joined()
    fatalError("HTTP/1.1 framing bug: \(message)\n  input (\(input.count) bytes): \(hex)")
}
