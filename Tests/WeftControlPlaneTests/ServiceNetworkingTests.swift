import Foundation
import Logging
import Testing
import WeftControlPlane
import WeftCore
import WeftStore

private func service(_ name: String, type: String? = nil, clusterIP: String? = nil, namespace: String = "default") -> JSONValue {
    var spec: [String: JSONValue] = ["selector": .object(["app": .string(name)]), "ports": .array([.object(["name": .string("http"), "port": .int(80), "targetPort": .string("http")])])]
    if let type { spec["type"] = .string(type) }
    if let clusterIP { spec["clusterIP"] = .string(clusterIP) }
    return .object(["apiVersion": .string("weft/v1"), "kind": .string("Service"),
                    "metadata": .object(["name": .string(name), "namespace": .string(namespace)]), "spec": .object(spec)])
}

private func clusterIP(_ registry: Registry, _ name: String, namespace: String = "default") async throws -> String? {
    try await registry.typed(Service.self, namespace: namespace, name: name)?.0.spec.clusterIP
}

@Suite("Service virtual IPs")
struct ServiceIPTests {
    @Test("every VIP service gets a distinct address in the range; headless ones get none")
    func distinctAddresses() async throws {
        try await withRegistry { fixture in
            let names = (0..<40).map { "svc\($0)" }
            _ = try await fixture.registry.apply(names.map { service($0) } + [service("headless", type: "Headless")], namespace: "default")
            var seen = Set<String>()
            for name in names {
                let ip = try #require(try await clusterIP(fixture.registry, name))
                #expect(Registry.defaultServiceCIDR.index(of: ip) != nil, "\(ip) outside the range")
                #expect(seen.insert(ip).inserted, "\(ip) handed out twice")
            }
            #expect(try await clusterIP(fixture.registry, "headless") == nil)
        }
    }

    @Test("concurrent applies never share an address")
    func concurrentApplies() async throws {
        try await withRegistry { fixture in
            let registry = fixture.registry
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<16 {
                    group.addTask { _ = try await registry.apply([service("c\(i)")], namespace: "default") }
                }
                try await group.waitForAll()
            }
            var ips: [String] = []
            for i in 0..<16 { ips.append(try #require(try await clusterIP(registry, "c\(i)"))) }
            #expect(Set(ips).count == 16)
        }
    }

    @Test("the address is kept on re-apply, immutable, released on delete and reused by the same name")
    func lifecycle() async throws {
        try await withRegistry { fixture in
            let registry = fixture.registry
            _ = try await registry.apply([service("cart")], namespace: "default")
            let ip = try #require(try await clusterIP(registry, "cart"))
            #expect(try await registry.apply([service("cart")], namespace: "default").map(\.action) == ["unchanged"])
            #expect(try await clusterIP(registry, "cart") == ip)

            let other = ip == "127.10.0.9" ? "127.10.0.10" : "127.10.0.9"
            await #expect {
                _ = try await registry.apply([service("cart", clusterIP: other)], namespace: "default")
            } throws: { ($0 as? APIFailure)?.details.first?.path == "spec.clusterIP" }

            _ = try await registry.delete(.service, namespace: "default", name: "cart")
            // Released: another service may now ask for it explicitly.
            _ = try await registry.apply([service("taker", clusterIP: ip)], namespace: "default")
            #expect(try await clusterIP(registry, "taker") == ip)
            _ = try await registry.delete(.service, namespace: "default", name: "taker")
            _ = try await registry.apply([service("cart")], namespace: "default")
            #expect(try await clusterIP(registry, "cart") == ip, "a re-created service should get its old address back when free")
        }
    }

    @Test("an explicit address must be in the range and free")
    func explicitAddress() async throws {
        try await withRegistry { fixture in
            let registry = fixture.registry
            await #expect {
                _ = try await registry.apply([service("a", clusterIP: "10.1.2.3")], namespace: "default")
            } throws: { ($0 as? APIFailure)?.message.contains("outside the service range") == true }
            _ = try await registry.apply([service("a", clusterIP: "127.10.3.4")], namespace: "default")
            await #expect {
                _ = try await registry.apply([service("b", clusterIP: "127.10.3.4")], namespace: "default")
            } throws: { ($0 as? APIFailure)?.message.contains("already in use by default/a") == true }
            await #expect {
                _ = try await registry.apply([service("h", type: "Headless", clusterIP: "127.10.3.5")], namespace: "default")
            } throws: { ($0 as? APIFailure)?.code == 422 }
        }
    }

    @Test("switching to Headless releases the address")
    func headlessReleases() async throws {
        try await withRegistry { fixture in
            _ = try await fixture.registry.apply([service("x")], namespace: "default")
            let ip = try #require(try await clusterIP(fixture.registry, "x"))
            _ = try await fixture.registry.apply([service("x", type: "Headless")], namespace: "default")
            #expect(try await clusterIP(fixture.registry, "x") == nil)
            _ = try await fixture.registry.apply([service("y", clusterIP: ip)], namespace: "default")
            #expect(try await clusterIP(fixture.registry, "y") == ip)
        }
    }

    @Test("IPv4 blocks parse, count and index")
    func cidr() {
        let block = IPv4CIDR("127.10.0.0/16")!
        #expect(block.capacity == 65_534)
        #expect(block.address(at: 0) == "127.10.0.1")
        #expect(block.address(at: 65_533) == "127.10.255.254")
        #expect(block.index(of: "127.10.0.1") == 0)
        #expect(block.index(of: "127.10.0.0") == nil)
        #expect(block.index(of: "127.10.255.255") == nil)
        #expect(block.index(of: "127.11.0.1") == nil)
        #expect(block.isLoopback)
        #expect(IPv4CIDR("127.10.0.1/16") == nil)
        #expect(IPv4CIDR("127.10.0.0/31") == nil)
        #expect(IPv4CIDR("nonsense") == nil)
    }
}

@Suite("Endpoints")
struct EndpointsTests {
    private func replica(_ name: String, labels: [String: String], ready: Bool, ports: [String: Int], terminating: Bool = false) -> Replica {
        var metadata = ObjectMeta(name: name, namespace: "default", labels: labels)
        if terminating { metadata.deletionTimestamp = "2026-01-01T00:00:00Z" }
        return Replica(metadata: metadata,
                       spec: ReplicaSpec(deployment: "cart", node: "n1", templateHash: "h",
                                         template: WorkloadSpec(command: ["x"], ports: [ContainerPort(name: "http", containerPort: 8080)])),
                       status: ReplicaStatus(phase: ready ? .ready : .running, ready: ready, address: "127.0.0.1", ports: ports))
    }

    @Test("only ready, matching, non-terminating replicas with the target port are endpoints")
    func compute() {
        let cart = Service(metadata: ObjectMeta(name: "cart", namespace: "default"),
                           spec: ServiceSpec(selector: ["app": "cart"], ports: [ServicePort(name: "http", port: 80, targetPort: .name("http"))]))
        let replicas = [
            replica("a", labels: ["app": "cart"], ready: true, ports: ["http": 4001]),
            replica("b", labels: ["app": "cart"], ready: false, ports: ["http": 4002]),
            replica("c", labels: ["app": "other"], ready: true, ports: ["http": 4003]),
            replica("d", labels: ["app": "cart"], ready: true, ports: ["http": 4004], terminating: true),
            replica("e", labels: ["app": "cart", "v": "2"], ready: true, ports: [:]),
        ]
        let endpoints = Endpoints.compute(for: cart, replicas: replicas)
        #expect(endpoints == [Endpoint(replica: "a", node: "n1", ip: "127.0.0.1", ports: ["80": 4001], revision: "h")])

        // A numeric target port refers to the declared port with that containerPort.
        var byNumber = cart
        byNumber.spec.ports[0].targetPort = .number(8080)
        #expect(Endpoints.compute(for: byNumber, replicas: replicas).first?.ports == ["80": 4001])
    }

    @Test("the controller keeps Endpoints in step with replica readiness and deletes them with the service")
    func controller() async throws {
        try await withRegistry { fixture in
            let controller = EndpointsController(registry: fixture.registry, logger: Logger(label: "test"))
            let running = Task { try await controller.run() }
            defer { running.cancel() }
            _ = try await fixture.registry.apply([service("cart")], namespace: "default")
            let key = ObjectKey(kind: "Replica", namespace: "default", name: "cart-1")
            try await fixture.store.commit([.create(key, try JSONEncoder().encode(replica("cart-1", labels: ["app": "cart"], ready: true, ports: ["http": 4100])))])

            func endpoints() async throws -> [Endpoint]? {
                try await fixture.registry.typed(Endpoints.self, namespace: "default", name: "cart")?.0.endpoints
            }
            try await eventually { try await endpoints()?.count == 1 }
            #expect(try await endpoints()?.first?.ports == ["80": 4100])

            _ = try await fixture.registry.updateReplicaStatus(namespace: "default", name: "cart-1",
                                                               status: ReplicaStatus(phase: .running, ready: false, address: "127.0.0.1", ports: ["http": 4100]))
            try await eventually { try await endpoints()?.isEmpty == true }

            _ = try await fixture.registry.delete(.service, namespace: "default", name: "cart")
            try await eventually { try await endpoints() == nil }
        }
    }

    private func eventually(_ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("condition not met within 10 s")
    }
}
