import Foundation
import SwiftASN1
import X509

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Validated, de-duplicated subject alternative names, with IP addresses in their binary form.
struct SubjectAltNames: Equatable {
    var dnsNames: [String] = []
    /// 4 bytes for IPv4, 16 for IPv6.
    var ipAddresses: [[UInt8]] = []
    var uris: [String] = []

    init(dnsNames: [String], ipAddresses: [String], uris: [String]) throws {
        for name in dnsNames {
            let normalized = try Self.validatedDNSName(name)
            if !self.dnsNames.contains(normalized) { self.dnsNames.append(normalized) }
        }
        for text in ipAddresses {
            guard let bytes = Self.ipAddressBytes(text) else {
                throw PKIError.invalid("\"\(text)\" is not an IPv4 or IPv6 address")
            }
            if !self.ipAddresses.contains(bytes) { self.ipAddresses.append(bytes) }
        }
        for uri in uris {
            guard let url = URL(string: uri), let scheme = url.scheme, !scheme.isEmpty,
                uri.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7f })
            else {
                throw PKIError.invalid("\"\(uri)\" is not an absolute URI")
            }
            if !self.uris.contains(uri) { self.uris.append(uri) }
        }
    }

    /// Reads the SAN extension of `certificate`; names of other kinds are ignored.
    init(of certificate: Certificate) throws {
        guard let extensionValue = try certificate.extensions.subjectAlternativeNames else { return }
        for name in extensionValue {
            switch name {
            case .dnsName(let dns): dnsNames.append(dns.lowercased())
            case .ipAddress(let octets): ipAddresses.append(Array(octets.bytes))
            case .uniformResourceIdentifier(let uri): uris.append(uri)
            default: continue
            }
        }
    }

    var isEmpty: Bool { dnsNames.isEmpty && ipAddresses.isEmpty && uris.isEmpty }

    var generalNames: [GeneralName] {
        dnsNames.map { GeneralName.dnsName($0) }
            + ipAddresses.map { GeneralName.ipAddress(ASN1OctetString(contentBytes: $0[...])) }
            + uris.map { GeneralName.uniformResourceIdentifier($0) }
    }

    /// Whether every name in `other` is also in `self`.
    func covers(_ other: SubjectAltNames) -> Bool {
        other.dnsNames.allSatisfy(dnsNames.contains)
            && other.ipAddresses.allSatisfy(ipAddresses.contains)
            && other.uris.allSatisfy(uris.contains)
    }

    static func validatedDNSName(_ name: String) throws -> String {
        let lowered = name.lowercased()
        let allowed = lowered.unicodeScalars.allSatisfy { scalar in
            switch scalar {
            case "a"..."z", "0"..."9", "-", ".", "_", "*": return true
            default: return false
            }
        }
        guard !lowered.isEmpty, lowered.utf8.count <= 253, allowed, !lowered.hasPrefix("."),
            !lowered.contains("..")
        else {
            throw PKIError.invalid("\"\(name)\" is not a valid DNS name for a certificate")
        }
        guard ipAddressBytes(lowered) == nil else {
            throw PKIError.invalid("\"\(name)\" is an IP address; pass it as an IP address, not a DNS name")
        }
        return lowered
    }

    /// Parses an IPv4 or IPv6 literal (an IPv6 literal may be wrapped in brackets).
    static func ipAddressBytes(_ text: String) -> [UInt8]? {
        var literal = Substring(text)
        if literal.hasPrefix("["), literal.hasSuffix("]") { literal = literal.dropFirst().dropLast() }
        var v4 = in_addr()
        if inet_pton(AF_INET, String(literal), &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, String(literal), &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}
