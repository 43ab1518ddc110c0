import Foundation
import Logging
import WeftClient
import WeftPKI

/// The SVIDs of the workloads running on this node, one per service account in use
/// (`spiffe://<trust-domain>/ns/<namespace>/sa/<account>`), handed to their replicas as files.
///
/// The key is made here and never leaves the node; the certificate comes from the API from a CSR, and
/// is renewed (with a fresh key) at half its lifetime, with backoff while the API cannot be reached.
/// Files live in `identity/workloads/<namespace>/<account>/`: `svid.key` (0600), `svid.pem`,
/// `bundle.pem`; they are replaced atomically, so a replica that re-reads them gets the new pair. The
/// directory goes when the last replica of the account on this node stops.
actor WorkloadIdentities {
    struct Files: Sendable {
        var identity: SPIFFEID
        var directory: String
        var certificate: String { (directory as NSString).appendingPathComponent("svid.pem") }
        var key: String { (directory as NSString).appendingPathComponent("svid.key") }
        var bundle: String { (directory as NSString).appendingPathComponent("bundle.pem") }
    }

    private struct Entry {
        var users = 0
        var files: Files?
        var pending: Task<Files?, Never>?
        var renewal: Task<Void, Never>?
    }

    private let trustDomain: String
    private let directory: String
    private let client: APIClient
    private let logger: Logger
    private var entries: [SPIFFEID: Entry] = [:]

    init(trustDomain: String, directory: String, client: APIClient, logger: Logger) {
        self.trustDomain = trustDomain
        self.directory = directory
        self.client = client
        self.logger = logger
    }

    /// The account's SVID files for one more replica, issued if this node has none yet; nil when it
    /// cannot be issued now (the replica then runs without; a later start tries again).
    func acquire(namespace: String, serviceAccount: String) async -> Files? {
        guard let identity = try? SPIFFEID.workload(namespace: namespace, serviceAccount: serviceAccount, trustDomain: trustDomain) else {
            return nil
        }
        entries[identity, default: Entry()].users += 1
        if let files = entries[identity]?.files { return files }
        let task: Task<Files?, Never>
        if let pending = entries[identity]?.pending {
            task = pending
        } else {
            let files = Files(identity: identity, directory: (directory as NSString).appendingPathComponent("\(namespace)/\(serviceAccount)"))
            task = Task { await self.firstIssue(files) }
            entries[identity]?.pending = task
        }
        return await task.value
    }

    /// One replica of the account stopped; the last one takes the files with it.
    func release(namespace: String, serviceAccount: String) {
        guard let identity = try? SPIFFEID.workload(namespace: namespace, serviceAccount: serviceAccount, trustDomain: trustDomain),
              var entry = entries[identity] else { return }
        entry.users -= 1
        guard entry.users <= 0 else {
            entries[identity] = entry
            return
        }
        entry.renewal?.cancel()
        entries[identity] = nil
        if let files = entry.files { try? FileManager.default.removeItem(atPath: files.directory) }
    }

    /// Renews every certificate now (the signing root changed), then at half-life again.
    func renewAll() {
        for (identity, entry) in entries {
            guard let files = entry.files else { continue }
            entry.renewal?.cancel()
            entries[identity]?.renewal = Task { await self.renew(files, expiry: Date(), immediately: true) }
        }
    }

    /// Rewrites every `bundle.pem` (the trust roots changed).
    func writeBundles(_ bundle: [String]) {
        for entry in entries.values {
            guard let files = entry.files else { continue }
            do {
                try SecureFile.write(Data(bundle.joined().utf8), to: files.bundle, mode: 0o644)
            } catch {
                logger.warning("cannot update a workload trust bundle", metadata: ["path": "\(files.bundle)", "error": "\(error)"])
            }
        }
    }

    /// Stops renewing everything (agent shutdown); the files stay for replicas that outlive the agent.
    func stop() {
        for entry in entries.values { entry.renewal?.cancel() }
    }

    private func firstIssue(_ files: Files) async -> Files? {
        defer { entries[files.identity]?.pending = nil }
        do {
            let expiry = try await issue(files)
            guard entries[files.identity] != nil else {
                // Every replica of the account stopped meanwhile.
                try? FileManager.default.removeItem(atPath: files.directory)
                return nil
            }
            entries[files.identity]?.files = files
            entries[files.identity]?.renewal = Task { await self.renew(files, expiry: expiry) }
            return files
        } catch {
            logger.warning("cannot obtain a workload certificate; the replica starts without one",
                           metadata: ["identity": "\(files.identity)", "error": "\(error)"])
            return nil
        }
    }

    private func renew(_ files: Files, expiry firstExpiry: Date, immediately: Bool = false) async {
        var expiry = firstExpiry
        var issuedAt = Date()
        var failures = 0
        var first = immediately
        while !Task.isCancelled {
            let wait: Duration = first ? .zero : failures == 0
                ? .seconds(max(1, expiry.timeIntervalSince(issuedAt) / 2))
                : .seconds(min(60, 1 << min(failures - 1, 6)))
            first = false
            try? await Task.sleep(for: wait)
            guard !Task.isCancelled else { return }
            do {
                issuedAt = Date()
                expiry = try await issue(files)
                failures = 0
            } catch {
                failures += 1
                logger.warning("cannot renew a workload certificate; retrying", metadata: [
                    "identity": "\(files.identity)", "error": "\(error)", "validFor": "\(Int(expiry.timeIntervalSinceNow)) s",
                ])
            }
        }
    }

    /// A fresh key and CSR, certified through the API, written atomically (key first).
    private func issue(_ files: Files) async throws -> Date {
        let request = try IdentityRequest(identity: files.identity)
        let issued = try await client.signCertificate(csrPEM: try request.csrPEM(), identity: files.identity.description)
        guard let expiry = try? Date(issued.notAfter, strategy: .iso8601) else {
            throw PKIError(code: .invalidArgument, reason: "the API answered a certificate with an unreadable notAfter \"\(issued.notAfter)\"")
        }
        try FileManager.default.createDirectory(atPath: files.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try SecureFile.write(Data(try request.privateKey.serializeAsPEM().pemString.utf8), to: files.key, mode: 0o600)
        try SecureFile.write(Data(issued.certificate.utf8), to: files.certificate, mode: 0o644)
        try SecureFile.write(Data(issued.trustBundle.joined().utf8), to: files.bundle, mode: 0o644)
        logger.info("workload certificate issued", metadata: ["identity": "\(files.identity)", "notAfter": "\(issued.notAfter)"])
        return expiry
    }
}
