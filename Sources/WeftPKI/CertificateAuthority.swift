import Crypto
import Foundation
import SwiftASN1
import X509

/// What a leaf certificate may be used for in TLS; becomes its extendedKeyUsage extension.
public struct LeafUsage: OptionSet, Hashable, Sendable {
    /// The bit set; use the static members instead.
    public let rawValue: UInt8

    /// Creates a usage set from raw bits; use the static members instead.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The certificate may authenticate a TLS server (EKU `serverAuth`).
    public static let serverAuth = LeafUsage(rawValue: 1 << 0)
    /// The certificate may authenticate a TLS client (EKU `clientAuth`).
    public static let clientAuth = LeafUsage(rawValue: 1 << 1)
}

/// A certificate together with the PEM text of it and of its freshly generated private key.
public struct IssuedIdentity: Sendable {
    /// The issued certificate.
    public let certificate: Certificate
    /// `certificate` as a PEM `CERTIFICATE` block.
    public let certificatePEM: String
    /// The certificate's private key as a PEM `PRIVATE KEY` (PKCS#8) block.
    public let privateKeyPEM: String
}

/// The cluster's certificate authority: a self-signed CA certificate and its signing key, able to issue
/// leaf certificates for any public key.
///
/// The private key never leaves this value except through ``write(certificatePath:keyPath:)``.
public struct CertificateAuthority: Sendable {
    /// The CA's self-signed certificate, the trust root every Weft component is given.
    public let certificate: Certificate
    /// ``certificate`` as a PEM `CERTIFICATE` block.
    public let certificatePEM: String

    private let privateKey: Certificate.PrivateKey
    private let privateKeyPEM: String

    /// Ten years (3652 days), the default lifetime of a new cluster CA.
    public static let defaultValidity: TimeInterval = 3652 * 86_400
    /// How far before `now` a new certificate's notBefore is placed, to tolerate clocks a little behind.
    public static let backdating: TimeInterval = 5 * 60

    private init(certificate: Certificate, privateKey: Certificate.PrivateKey, certificatePEM: String, privateKeyPEM: String) {
        self.certificate = certificate
        self.privateKey = privateKey
        self.certificatePEM = certificatePEM
        self.privateKeyPEM = privateKeyPEM
    }

    /// Generates a new ECDSA P-256 key and a self-signed CA certificate (`CN=<commonName>, O=<organization>`,
    /// basicConstraints CA critical, keyUsage keyCertSign+cRLSign, random serial, subjectKeyIdentifier).
    public static func create(
        commonName: String = "weft-cluster-ca",
        organization: String = "weft",
        validity: TimeInterval = defaultValidity,
        now: Date = Date()
    ) throws -> CertificateAuthority {
        guard validity > 0 else { throw PKIError.invalid("CA validity must be positive, got \(validity) s") }
        guard !commonName.isEmpty else { throw PKIError.invalid("CA common name must not be empty") }
        let key = P256.Signing.PrivateKey()
        let privateKey = Certificate.PrivateKey(key)
        let publicKey = privateKey.publicKey
        do {
            let name = try DistinguishedName {
                CommonName(commonName)
                OrganizationName(organization)
            }
            let extensions = try Certificate.Extensions([
                Certificate.Extension(BasicConstraints.isCertificateAuthority(maxPathLength: nil), critical: true),
                Certificate.Extension(KeyUsage(keyCertSign: true, cRLSign: true), critical: true),
                Certificate.Extension(SubjectKeyIdentifier(hash: publicKey), critical: false),
            ])
            let certificate = try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: publicKey,
                notValidBefore: now - backdating,
                notValidAfter: now + validity,
                issuer: name,
                subject: name,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: extensions,
                issuerPrivateKey: privateKey
            )
            return CertificateAuthority(
                certificate: certificate, privateKey: privateKey,
                certificatePEM: try certificate.serializeAsPEM().pemString,
                privateKeyPEM: key.pemRepresentation)
        } catch let error as PKIError {
            throw error
        } catch {
            throw PKIError(code: .signingFailed, reason: "cannot build the CA certificate (\(error))")
        }
    }

    /// Builds a CA from PEM text, checking that the certificate is a CA certificate and that the key belongs
    /// to it; `certificateSource`/`keySource` name the origin (a file path) in errors.
    public init(
        certificatePEM: String, privateKeyPEM: String,
        certificateSource: String? = nil, keySource: String? = nil
    ) throws {
        let remedy = "restore the file from a backup, or delete the PKI directory to create a new cluster CA "
            + "(every certificate and token issued so far then stops working)"
        let certificate: Certificate
        do {
            certificate = try Certificate(pemEncoded: certificatePEM)
        } catch {
            throw PKIError.corrupt(certificateSource, "not a PEM certificate", error, remedy: remedy)
        }
        let privateKey: Certificate.PrivateKey
        do {
            privateKey = try Certificate.PrivateKey(pemEncoded: privateKeyPEM)
        } catch {
            throw PKIError.corrupt(keySource, "not a PEM private key", error, remedy: remedy)
        }
        guard case .isCertificateAuthority = try? certificate.extensions.basicConstraints else {
            throw PKIError.corrupt(
                certificateSource, "certificate \(certificate.subject) is not a CA certificate (basicConstraints CA missing)",
                nil, remedy: remedy)
        }
        guard privateKey.publicKey == certificate.publicKey else {
            throw PKIError(
                code: .keyMismatch, path: keySource,
                reason: "private key does not belong to the CA certificate\(certificateSource.map { " \($0)" } ?? "")",
                remedy: remedy)
        }
        self.init(
            certificate: certificate, privateKey: privateKey, certificatePEM: certificatePEM,
            privateKeyPEM: privateKeyPEM)
    }

    /// Reads a CA from PEM files; a key file readable by group or others is tightened to 0600 (rather than
    /// rejected) before use.
    public static func load(certificatePath: String, keyPath: String) throws -> CertificateAuthority {
        let certificateText = try readText(certificatePath)
        let keyText = try readText(keyPath)
        try SecureFile.restrictToOwner(keyPath)
        return try CertificateAuthority(
            certificatePEM: certificateText, privateKeyPEM: keyText,
            certificateSource: certificatePath, keySource: keyPath)
    }

    /// Writes the key (0600) and then the certificate (0644), each atomically.
    public func write(certificatePath: String, keyPath: String) throws {
        try SecureFile.write(Data(privateKeyPEM.utf8), to: keyPath, mode: 0o600)
        try SecureFile.write(Data(certificatePEM.utf8), to: certificatePath, mode: 0o644)
    }

    /// Whether `certificate` names this CA as issuer and carries a valid signature by this CA's key.
    public func isIssuer(of certificate: Certificate) -> Bool {
        certificate.issuer == self.certificate.subject
            && self.certificate.publicKey.isValidSignature(certificate.signature, for: certificate)
    }

    /// Signs a leaf certificate for `publicKey`.
    ///
    /// The leaf has basicConstraints CA:false and keyUsage digitalSignature (both critical), an
    /// extendedKeyUsage from `usage`, the given SANs (IP addresses as IPv4/IPv6 literals, URIs such as
    /// `spiffe://…`), subject/authority key identifiers and a random serial. It is valid from `now` (minus
    /// ``backdating``) for `validity` seconds, cut short at the CA's own expiry. With `commonName` nil the
    /// subject is empty and the SAN extension is marked critical, as RFC 5280 (and SPIFFE) ask.
    public func issue(
        publicKey: Certificate.PublicKey,
        commonName: String?,
        dnsNames: [String] = [],
        ipAddresses: [String] = [],
        uris: [String] = [],
        validity: TimeInterval,
        usage: LeafUsage,
        now: Date = Date()
    ) throws -> Certificate {
        guard validity > 0 else { throw PKIError.invalid("certificate validity must be positive, got \(validity) s") }
        guard !usage.isEmpty else { throw PKIError.invalid("certificate usage must include serverAuth or clientAuth") }
        guard now < certificate.notValidAfter else {
            throw PKIError(
                code: .expired, reason: "the cluster CA expired at \(certificate.notValidAfter) and cannot issue certificates",
                remedy: "create a new cluster CA")
        }
        let names = try SubjectAltNames(dnsNames: dnsNames, ipAddresses: ipAddresses, uris: uris)
        guard commonName != nil || !names.isEmpty else {
            throw PKIError.invalid("a certificate needs a common name or at least one subject alternative name")
        }

        let notBefore = max(now - Self.backdating, certificate.notValidBefore)
        let notAfter = min(now + validity, certificate.notValidAfter)
        do {
            let subject: DistinguishedName
            if let commonName {
                subject = try DistinguishedName { CommonName(commonName) }
            } else {
                subject = DistinguishedName()
            }
            var extendedUsages: [ExtendedKeyUsage.Usage] = []
            if usage.contains(.serverAuth) { extendedUsages.append(.serverAuth) }
            if usage.contains(.clientAuth) { extendedUsages.append(.clientAuth) }
            let authorityKeyID =
                (try? certificate.extensions.subjectKeyIdentifier)?.keyIdentifier
                ?? SubjectKeyIdentifier(hash: certificate.publicKey).keyIdentifier

            var extensions = try Certificate.Extensions([
                Certificate.Extension(BasicConstraints.notCertificateAuthority, critical: true),
                Certificate.Extension(KeyUsage(digitalSignature: true), critical: true),
                Certificate.Extension(ExtendedKeyUsage(extendedUsages), critical: false),
                Certificate.Extension(SubjectKeyIdentifier(hash: publicKey), critical: false),
                Certificate.Extension(AuthorityKeyIdentifier(keyIdentifier: authorityKeyID), critical: false),
            ])
            if !names.isEmpty {
                try extensions.append(
                    Certificate.Extension(SubjectAlternativeNames(names.generalNames), critical: commonName == nil))
            }
            return try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: publicKey,
                notValidBefore: notBefore,
                notValidAfter: notAfter,
                issuer: certificate.subject,
                subject: subject,
                signatureAlgorithm: signatureAlgorithm,
                extensions: extensions,
                issuerPrivateKey: privateKey
            )
        } catch {
            throw PKIError(code: .signingFailed, reason: "cannot build or sign the certificate (\(error))")
        }
    }

    /// Generates a fresh ECDSA P-256 key and issues a certificate for it with ``issue(publicKey:commonName:dnsNames:ipAddresses:uris:validity:usage:now:)``.
    public func issueIdentity(
        commonName: String?,
        dnsNames: [String] = [],
        ipAddresses: [String] = [],
        uris: [String] = [],
        validity: TimeInterval,
        usage: LeafUsage,
        now: Date = Date()
    ) throws -> IssuedIdentity {
        let key = P256.Signing.PrivateKey()
        let certificate = try issue(
            publicKey: Certificate.PrivateKey(key).publicKey, commonName: commonName, dnsNames: dnsNames,
            ipAddresses: ipAddresses, uris: uris, validity: validity, usage: usage, now: now)
        let certificatePEM: String
        do {
            certificatePEM = try certificate.serializeAsPEM().pemString
        } catch {
            throw PKIError(code: .signingFailed, reason: "cannot encode the certificate as PEM (\(error))")
        }
        return IssuedIdentity(certificate: certificate, certificatePEM: certificatePEM, privateKeyPEM: key.pemRepresentation)
    }

    private var signatureAlgorithm: Certificate.SignatureAlgorithm {
        // The digest follows the CA key's curve; a CA loaded from disk may use a larger key than P-256.
        if P384.Signing.PublicKey(certificate.publicKey) != nil { return .ecdsaWithSHA384 }
        if P521.Signing.PublicKey(certificate.publicKey) != nil { return .ecdsaWithSHA512 }
        if P256.Signing.PublicKey(certificate.publicKey) != nil { return .ecdsaWithSHA256 }
        return certificate.signatureAlgorithm
    }

    static func readText(_ path: String) throws -> String {
        guard SecureFile.exists(path) else {
            throw PKIError(code: .missingFile, path: path, reason: "file does not exist")
        }
        let data = try SecureFile.read(path)
        guard let text = String(data: data, encoding: .utf8) else {
            throw PKIError.corrupt(path, "file is not UTF-8 text", nil, remedy: "restore it or delete it")
        }
        return text
    }
}
