import Foundation
import WeftCore
import WeftStore

/// Hands out service virtual IPs from a CIDR block. Each address in use is a `ServiceIP` object in the
/// store, created in the same transaction as its service, so two services can never get one address
/// (a concurrent apply fails its precondition and retries) and allocations survive restarts.
struct ServiceIPAllocator: Sendable {
    static let kind = "ServiceIP"
    let block: IPv4CIDR

    static func key(_ ip: String) -> ObjectKey { ObjectKey(kind: kind, namespace: "", name: ip) }

    /// Sets `service.spec.clusterIP` (kept, asked for, or newly chosen) and returns the writes that reserve
    /// or release addresses. `reserved` carries the addresses taken earlier in the same apply.
    func assign(_ service: inout Service, existing: Service?, reserved: inout Set<String>, store: any ObjectStore) async throws -> [Write] {
        let path = "spec.clusterIP"
        let owner = "\(service.namespace)/\(service.name)"
        let previous = existing?.spec.clusterIP
        guard service.spec.serviceType == .vip else {
            if let asked = service.spec.clusterIP {
                throw invalid(service, path, "must be empty for a Headless service (got \(asked))")
            }
            guard let previous, try await store.get(Self.key(previous)) != nil else { return [] }
            return [.delete(Self.key(previous), ifRevision: nil)]
        }
        if let previous {
            if let asked = service.spec.clusterIP, asked != previous {
                throw invalid(service, path, "is immutable (\(previous)); delete the service and create it again to change it")
            }
            service.spec.clusterIP = previous
            return []
        }
        let ip: String
        if let asked = service.spec.clusterIP {
            guard block.index(of: asked) != nil else {
                throw invalid(service, path, "\(asked) is outside the service range \(block); omit it to have one assigned")
            }
            if reserved.contains(asked) {
                throw invalid(service, path, "\(asked) is already taken by another service in this apply")
            }
            if let holder = try await store.get(Self.key(asked)) {
                throw invalid(service, path, "\(asked) is already in use by \(Self.owner(of: holder))")
            }
            ip = asked
        } else {
            let (taken, _) = try await store.list(kind: Self.kind, namespace: nil)
            let used = Set(taken.map(\.key.name)).union(reserved)
            guard let free = Self.choose(in: block, for: owner, used: used) else {
                throw APIFailure(code: 422, message: "the service range \(block) is exhausted (\(block.capacity) addresses); delete services or restart the server with a larger --service-cidr")
            }
            ip = free
        }
        service.spec.clusterIP = ip
        reserved.insert(ip)
        let record = try JSONEncoder().encode(["service": owner])
        return [.create(Self.key(ip), record)]
    }

    /// The first free address at or after a position derived from the service's name, so a service that
    /// is deleted and created again usually gets its old address back.
    static func choose(in block: IPv4CIDR, for owner: String, used: Set<String>) -> String? {
        guard used.count < block.capacity else { return nil }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in owner.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        let start = Int(hash % UInt64(block.capacity))
        for offset in 0..<block.capacity {
            let candidate = block.address(at: (start + offset) % block.capacity)
            if !used.contains(candidate) { return candidate }
        }
        return nil
    }

    private static func owner(of stored: StoredObject) -> String {
        (try? JSONDecoder().decode([String: String].self, from: stored.data))?["service"] ?? "another service"
    }

    private func invalid(_ service: Service, _ path: String, _ message: String) -> APIFailure {
        APIFailure(code: 422, message: "\(path): \(message)",
                   details: [InvalidField(object: "Service/\(service.name)", path: path, message: message)])
    }
}
