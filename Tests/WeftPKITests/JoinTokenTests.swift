import Foundation
import Testing
import X509
@testable import WeftPKI

@Suite("Join tokens, node credentials and CA pinning")
struct JoinTokenTests {
    let hash = String(repeating: "ab", count: 32)

    @Test func aGeneratedTokenPrintsAndParsesBack() throws {
        let token = try JoinToken.generate(caHash: hash)
        #expect(token.id.count == 6 && token.secret.count == 24)
        let text = token.description
        #expect(text == "weft1.\(token.id).\(token.secret).\(hash)")
        #expect(try JoinToken(parsing: text) == token)
        #expect(try JoinToken(parsing: " \(text)\n") == token, "surrounding whitespace (a pasted line) is ignored")
        #expect(try JoinToken.generate(caHash: hash) != token)
        #expect(token.secretHash == SecretHash.of(token.secret) && token.secretHash.count == 64)
    }

    @Test(arguments: [
        ("", "not a join token"),
        ("weft2.abcdef.abcdefghijklmnopqrstuvwx.\(String(repeating: "ab", count: 32))", "not a join token"),
        ("weft1.abcdef.abcdefghijklmnopqrstuvwx", "not a join token"),
        ("weft1.abcde.abcdefghijklmnopqrstuvwx.\(String(repeating: "ab", count: 32))", "id"),
        ("weft1.ABCDEF.abcdefghijklmnopqrstuvwx.\(String(repeating: "ab", count: 32))", "id"),
        ("weft1.abcdef.short.\(String(repeating: "ab", count: 32))", "secret"),
        ("weft1.abcdef.abcdefghijklmnopqrstuvwx.\(String(repeating: "AB", count: 32))", "CA hash"),
        ("weft1.abcdef.abcdefghijklmnopqrstuvwx.abcd", "CA hash"),
    ])
    func malformedTokensAreRefusedNamingThePart(text: String, part: String) {
        #expect {
            try JoinToken(parsing: text)
        } throws: { error in
            let reason = (error as? PKIError)?.reason ?? ""
            return reason.contains(part) && !reason.contains("abcdefghijklmnopqrstuvwx")
        }
    }

    @Test func nodeCredentialsCarryTheirNode() throws {
        let credential = NodeCredential.generate(node: "worker-1")
        #expect(credential.description.hasPrefix("weftnode1.worker-1."))
        #expect(NodeCredential(parsing: credential.description) == credential)
        #expect(NodeCredential(parsing: "weftnode1.worker-1.short") == nil)
        #expect(NodeCredential(parsing: "weft1.worker-1.\(credential.secret)") == nil)
        #expect(NodeCredential(parsing: "weftnode1..\(credential.secret)") == nil)
        #expect(SecretHash.matches(credential.secret, storedHash: credential.secretHash))
        #expect(!SecretHash.matches(credential.secret + "0", storedHash: credential.secretHash))
        #expect(!SecretHash.matches(credential.secret, storedHash: "short"))
    }

    @Test func theCAPinIsTheSHA256OfTheSubjectPublicKeyInfo() throws {
        let ca = try CertificateAuthority.create(now: referenceNow)
        let pin = try CAPin.hash(of: ca.certificate)
        #expect(pin.count == 64 && pin == pin.lowercased())
        #expect(try CAPin.hash(ofPEM: ca.certificatePEM) == pin)
        // Another CA, another key, another pin.
        #expect(try CAPin.hash(of: try CertificateAuthority.create(now: referenceNow).certificate) != pin)
        try CAPin.verify(pem: ca.certificatePEM, expected: pin)
        let other = try CertificateAuthority.create(now: referenceNow)
        #expect {
            try CAPin.verify(pem: other.certificatePEM, expected: pin)
        } throws: { error in
            let error = error as? PKIError
            return error?.code == .keyMismatch && error?.reason.contains(pin) == true && error?.remedy?.contains("join token was not sent") == true
        }
        #expect(throws: PKIError.self) { try CAPin.verify(pem: "not pem", expected: pin) }
    }

    @Test("the pin equals openssl's sha256 of the DER public key", .enabled(if: executableOnPath("openssl") != nil, "needs openssl"))
    func pinMatchesOpenSSL() async throws {
        try await withTemporaryDirectory { directory in
            let ca = try CertificateAuthority.create(now: referenceNow)
            let path = directory + "/ca.crt"
            try ca.certificatePEM.write(toFile: path, atomically: true, encoding: .utf8)
            let script = "openssl x509 -pubkey -noout -in '\(path)' | openssl pkey -pubin -outform der | openssl dgst -sha256 -r"
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", script]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(output.split(separator: " ").first.map(String.init) == (try CAPin.hash(of: ca.certificate)))
        }
    }
}
