import Foundation
import Testing
@testable import WeftCore

@Suite("Pod networks of the netns driver")
struct PodNetworkTests {
    private func names(_ replica: String) -> (IPv4Address) -> PodSandboxNames {
        { PodSandboxNames(node: "node-a", replica: replica, address: $0) }
    }

    @Test func blockGatewayAndCapacity() throws {
        let network = try #require(PodNetwork("10.244.2.0/24"))
        #expect(network.gateway.description == "10.244.2.1")
        #expect(network.prefixLength == 24)
        #expect(network.replicaCapacity == 253)
        #expect(network.isReplicaAddress(IPv4Address("10.244.2.2")!))
        #expect(network.isReplicaAddress(IPv4Address("10.244.2.254")!))
        for reserved in ["10.244.2.0", "10.244.2.1", "10.244.2.255", "10.244.3.2"] {
            #expect(!network.isReplicaAddress(IPv4Address(reserved)!), "\(reserved)")
        }
    }

    @Test(arguments: [
        ("10.244.1.0/24", nil),
        ("10.244.1.0/29", nil),
        ("10.244.1.0/30", "too small"),
        ("10.244.1.1/24", "not an IPv4 block"),
        ("127.1.0.0/16", "127.0.0.0/8"),
        ("cart", "not an IPv4 block"),
    ] as [(String, String?)])
    func podCIDRFlag(text: String, problem: String?) {
        if let problem {
            #expect(PodNetwork.problem(text)?.contains(problem) == true, "\(String(describing: PodNetwork.problem(text)))")
            #expect(PodNetwork(text) == nil)
        } else {
            #expect(PodNetwork.problem(text) == nil)
            #expect(PodNetwork(text) != nil)
        }
    }

    @Test func allocationSkipsReservedAddressesAndMovesOn() throws {
        let network = try #require(PodNetwork("10.244.2.0/29"))  // replicas .2 to .6
        var book = PodAddressBook()
        var given: [String] = []
        for i in 0..<5 {
            let (address, allocation) = try book.allocate(in: network, replica: "default/r\(i)", names: names("default/r\(i)"))
            given.append(address.description)
            #expect(allocation.replica == "default/r\(i)")
        }
        #expect(given == ["10.244.2.2", "10.244.2.3", "10.244.2.4", "10.244.2.5", "10.244.2.6"])
        #expect(throws: PodNetworkError.self) { try book.allocate(in: network, replica: "default/r5", names: names("default/r5")) }

        // A freed address is given again only after the ones after it: a restarted replica moves on.
        book.release("10.244.2.3")
        book.release("10.244.2.5")
        let (next, _) = try book.allocate(in: network, replica: "default/r1", names: names("default/r1"))
        #expect(next.description == "10.244.2.3")
        let (after, _) = try book.allocate(in: network, replica: "default/r3", names: names("default/r3"))
        #expect(after.description == "10.244.2.5")
    }

    @Test func restartGetsAnotherAddressAndRecordedOnesAreNeverReused() throws {
        let network = try #require(PodNetwork("10.244.7.0/24"))
        var book = PodAddressBook()
        let (first, _) = try book.allocate(in: network, replica: "default/cart-1", names: names("default/cart-1"))
        let (other, _) = try book.allocate(in: network, replica: "default/cart-2", names: names("default/cart-2"))
        book.release(first.description)
        let (again, _) = try book.allocate(in: network, replica: "default/cart-1", names: names("default/cart-1"))
        #expect(again != first && again != other)

        // The state survives a round trip through JSON, as the agent persists it.
        let data = try JSONEncoder().encode(book)
        var restored = try JSONDecoder().decode(PodAddressBook.self, from: data)
        #expect(restored == book)
        let (fresh, _) = try restored.allocate(in: network, replica: "default/cart-3", names: names("default/cart-3"))
        #expect(![other, again].contains(fresh))
        #expect(fresh.description == "10.244.7.5")
    }

    @Test func sandboxNamesFitLinuxLimitsAndDiffer() {
        let a = PodSandboxNames(node: "host2", replica: "default/cart-7d9f-abcde", address: IPv4Address("10.244.2.2")!)
        let b = PodSandboxNames(node: "host2", replica: "default/cart-7d9f-abcde", address: IPv4Address("10.244.2.3")!)
        let c = PodSandboxNames(node: "host3", replica: "default/cart-7d9f-abcde", address: IPv4Address("10.244.2.2")!)
        #expect(a.hostInterface.utf8.count <= 15 && a.namespace.utf8.count <= 15)
        #expect(a.namespace.hasPrefix("weft-") && a.hostInterface.hasPrefix("wv"))
        #expect(a.namespace.dropFirst(5) == a.hostInterface.dropFirst(2))
        #expect(a != b && a != c)
        #expect(a == PodSandboxNames(node: "host2", replica: "default/cart-7d9f-abcde", address: IPv4Address("10.244.2.2")!))
    }

    @Test func resolvConfSearchesTheReplicasNamespaceFirst() {
        let text = PodResolvConf.text(nameserver: IPv4Address("10.244.2.1")!, namespace: "shop", clusterDomain: "weft.internal")
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains("nameserver 10.244.2.1"))
        #expect(lines.contains("search shop.svc.weft.internal svc.weft.internal weft.internal"))
        #expect(lines.contains { $0.hasPrefix("options ndots:5") })
    }

    @Test func runtimeNames() {
        #expect(WorkloadRuntime.problem("process") == nil)
        #expect(WorkloadRuntime.problem("netns") == nil)
        #expect(WorkloadRuntime.problem("oci") == nil)
        #expect(WorkloadRuntime.problem("Process")?.contains("must be process, netns or oci") == true)
    }
}
