import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The first three octets of a /24 written as `a.b.c.0/24`.
private struct IPv4Block {
    let prefix: String
    init(_ cidr: String) { prefix = String(cidr.split(separator: "/")[0].split(separator: ".").prefix(3).joined(separator: ".")) + "." }
    func contains(_ ip: String) -> Bool { ip.hasPrefix(prefix) }
}

/// End to end: services get a virtual IP on loopback, and the node proxy spreads connections across the
/// ready replicas while they come and go. Part of the serialized single-node suite, so that no two
/// servers with their replicas compete for the machine at once.
extension ClusterTests {
    /// The `replica` field of weft-demo's answer through the VIP.
    private func replicaBehind(_ ip: String, port: Int) async throws -> String {
        let answer = try await httpGet(host: ip, port: port, path: "/", timeout: .seconds(5))
        guard answer.status == 200, let replica = try answer.jsonObject()["replica"] as? String else {
            throw TestSupportError(description: "unexpected answer through \(ip):\(port): \(answer)")
        }
        return replica
    }

    private func readyNames(_ server: WeftServer, _ deployment: String) async throws -> Set<String> {
        Set(try await server.items("replicas").filter { $0["deployment"] as? String == deployment && $0["ready"] as? Bool == true }
            .compactMap { $0["name"] as? String })
    }

    @Test("a VIP reaches every ready replica, survives kill -9 without failed requests, follows scaling and goes away with its service")
    func vipFollowsReplicas() async throws {
        try await withWeftServer { server in
            let marker = "net-\(UUID().uuidString.prefix(8))"
            let path = try writeTemporaryFile(demoManifest(name: "web", replicas: 3, marker: marker, dataDirectory: server.dataDirectory),
                                              in: server.dataDirectory, name: "web.yaml")
            #expect(try await server.cli(["apply", "-f", path]).exit == .exited(0))
            try await eventually("3 ready replicas") { try await readyNames(server, "web").count == 3 }
            let service = try #require(try await server.items("services").first { $0["name"] as? String == "web" })
            let vip = try #require(service["clusterIP"] as? String)
            #expect(IPv4Block(server.serviceCIDR).contains(vip), "\(vip) is outside \(server.serviceCIDR)")

            // Every ready replica serves through the VIP (once the node proxy listens there).
            var seen = Set<String>()
            try await eventually("all 3 replicas answer through \(vip):80") {
                do {
                    for _ in 0..<30 { seen.insert(try await replicaBehind(vip, port: 80)) }
                } catch {
                    return false
                }
                return seen == (try await readyNames(server, "web"))
            }

            // kill -9 one replica while requests flow: no connection made after its death fails (a TCP
            // proxy cannot replay a request already sent to a process that dies mid-way, so the next
            // request waits until the process is really gone).
            let victim = try #require(try await server.items("replicas").first { $0["deployment"] as? String == "web" })
            let pid = try #require((victim["status"] as? [String: Any])?["pid"] as? Int)
            var failures: [String] = []
            for i in 0..<150 {
                if i == 20 {
                    kill(Int32(pid), SIGKILL)
                    try await eventually(timeout: .seconds(5), "the killed process is gone") { !isAlive(Int32(pid)) }
                }
                do { _ = try await replicaBehind(vip, port: 80) } catch { failures.append("\(error)") }
            }
            #expect(failures.isEmpty, "requests failed across kill -9: \(failures.prefix(3))")

            // A deleted replica stops getting traffic; its replacement and a scale-up get it.
            let deletedName = try #require(victim["name"] as? String)
            #expect(try await server.cli(["delete", "replica", deletedName]).exit == .exited(0))
            #expect(try await server.cli(["scale", "deployment", "web", "--replicas", "4"]).exit == .exited(0))
            try await eventually("4 ready replicas, the deleted one gone") {
                let names = try await readyNames(server, "web")
                return names.count == 4 && !names.contains(deletedName)
            }
            let expected = try await readyNames(server, "web")
            seen = []
            try await eventually("all 4 replicas answer, never the deleted one") {
                for _ in 0..<40 { seen.insert(try await replicaBehind(vip, port: 80)) }
                return seen.isSuperset(of: expected)
            }
            #expect(!seen.contains(deletedName))

            // Deleting the service stops the VIP listening.
            #expect(try await server.cli(["delete", "service", "web"]).exit == .exited(0))
            try await eventually("\(vip):80 refuses connections") {
                do {
                    _ = try await httpGet(host: vip, port: 80, path: "/healthz", timeout: .seconds(1))
                    return false
                } catch {
                    return true
                }
            }
        }
    }
}
