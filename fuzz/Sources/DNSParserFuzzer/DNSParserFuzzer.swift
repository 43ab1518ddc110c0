// libFuzzer entry point over WeftCore's DNS wire codec (Sources/WeftCore/DNS).
//
// For every input:
// - both decoders (`[UInt8]` and `UnsafeRawBufferPointer`) agree, and a failed decode still reads the
//   header exactly when there are 12 bytes;
// - a decoded message re-encodes (`encoded()`) to bytes that decode to the same message, and encoding
//   that message again gives the same bytes (the encoding is a fixed point);
// - encoding with a small `maximumLength` (12 + 4 * the first input byte) gives a message that decodes,
//   fits the limit whenever the header, question and OPT record do, and is a truncation of the original:
//   same question and EDNS, each section a prefix, TC set exactly when answers or authorities were dropped.
//
// Any violation is a bug in the codec: it stops the run with `fatalError`, and libFuzzer keeps the input.

import WeftCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    checkCodec(UnsafeRawBufferPointer(start: size == 0 ? nil : data, count: size))
    return 0
}

func checkCodec(_ input: UnsafeRawBufferPointer) {
    let fromBuffer = Result { () throws(DNSWireError) -> DNSMessage in try DNSMessage(decoding: input) }
    let fromArray = Result { () throws(DNSWireError) -> DNSMessage in try DNSMessage(decoding: Array(input)) }
    guard fromBuffer == fromArray else {
        fail("the [UInt8] and buffer decoders disagree: \(fromArray) vs \(fromBuffer)", input)
    }
    guard case .success(let message) = fromBuffer else {
        guard (DNSHeader(input) != nil) == (input.count >= DNSHeader.length) else {
            fail("DNSHeader on \(input.count) bytes", input)
        }
        return
    }

    // Full re-encode.
    let encoded = message.encoded()
    guard encoded.count <= DNSMessage.maximumLength else {
        fail("encoded() made \(encoded.count) bytes, over the 65,535 limit", input)
    }
    let again = decode(encoded, "encoded()", input)
    checkTruncation(of: message, to: again, "encoded()", input)
    if again == message {
        let reencoded = again.encoded()
        guard reencoded == encoded else {
            fail("encoding is not a fixed point:\n  first:  \(hex(encoded))\n  second: \(hex(reencoded))", input)
        }
    }
    // Otherwise records were dropped to fit 65,535 bytes (an input with compressed SRV targets can grow).

    // Encode under a small limit.
    let limit = DNSHeader.length + 4 * Int(input[0])
    let small = message.encoded(maximumLength: limit)
    let floor = DNSMessage(id: message.id, flags: message.flags, questions: message.questions, edns: message.edns).encoded().count
    guard floor > limit || small.count <= limit else {
        fail("encoded(maximumLength: \(limit)) made \(small.count) bytes though header+question+OPT take \(floor)", input)
    }
    let truncated = decode(small, "encoded(maximumLength: \(limit))", input)
    checkTruncation(of: message, to: truncated, "encoded(maximumLength: \(limit))", input)
}

/// Decodes what the encoder made; it must be valid.
func decode(_ bytes: [UInt8], _ what: String, _ input: UnsafeRawBufferPointer) -> DNSMessage {
    do {
        return try DNSMessage(decoding: bytes)
    } catch {
        fail("\(what) made bytes that do not decode (\(error)): \(hex(bytes))", input)
    }
}

/// `result` is `original` with whole records dropped from the end as the encoder's truncation rules say:
/// answers, then authorities, then additionals; TC set when answers or authorities were dropped.
func checkTruncation(of original: DNSMessage, to result: DNSMessage, _ what: String, _ input: UnsafeRawBufferPointer) {
    func problem(_ text: String) -> Never {
        fail("\(what) does not round-trip: \(text)\n  original: \(original)\n  decoded:  \(result)", input)
    }
    guard result.id == original.id else { problem("id") }
    guard result.questions == original.questions else { problem("questions") }
    guard result.edns == original.edns else { problem("EDNS") }
    guard original.answers.starts(with: result.answers) else { problem("answers are not a prefix") }
    guard original.authorities.starts(with: result.authorities) else { problem("authorities are not a prefix") }
    guard original.additionals.starts(with: result.additionals) else { problem("additionals are not a prefix") }
    let answersDropped = result.answers.count < original.answers.count
    let authoritiesDropped = result.authorities.count < original.authorities.count
    let additionalsDropped = result.additionals.count < original.additionals.count
    if answersDropped {
        guard result.authorities.isEmpty, result.additionals.isEmpty else { problem("records after dropped answers") }
    }
    if authoritiesDropped {
        guard result.additionals.isEmpty else { problem("additionals after dropped authorities") }
    }
    var flags = original.flags
    if answersDropped || authoritiesDropped { flags.isTruncated = true }
    guard result.flags == flags else {
        problem("flags 0x\(String(result.flags.rawValue, radix: 16)), expected 0x\(String(flags.rawValue, radix: 16))")
    }
    if !answersDropped && !authoritiesDropped && !additionalsDropped {
        guard result == original else { problem("messages differ") }
    }
}

func hex(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    for byte in bytes {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0xF)])
    }
    return String(decoding: text, as: UTF8.self)
}

func fail(_ message: String, _ input: UnsafeRawBufferPointer) -> Never {
    fatalError("DNS codec bug: \(message)\n  input (\(input.count) bytes): \(hex(input))")
}
