import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Replicas as a user sees them through the real `weft` binary.
@Suite("Replicas", .serialized)
struct ReplicaTests {
    @Test("a replica whose readiness probe never passes is Running with ready false, not Starting, and is not restarted")
    func neverReadyIsRunning() async throws {
        try await withWeftServer { server in
            let manifest = demoManifest(name: "lame", replicas: 1, marker: "lame-\(UUID().uuidString.prefix(8))", dataDirectory: server.dataDirectory)
                .replacingOccurrences(of: "path: /healthz", with: "path: /no-such-path")
            #expect(manifest.contains("path: /no-such-path"))
            let path = try writeTemporaryFile(manifest, in: server.dataDirectory, name: "lame.yaml")
            let applied = try await server.cli(["apply", "-f", path])
            #expect(applied.exit == .exited(0), "\(applied)")
            var replica: [String: Any] = [:]
            try await eventually("the replica Running and not ready") {
                replica = try await server.items("replicas").first { $0["deployment"] as? String == "lame" } ?? [:]
                return replica["phase"] as? String == "Running"
            }
            #expect(replica["ready"] as? Bool == false, "\(replica)")
            let message = (replica["status"] as? [String: Any])?["message"] as? String
            #expect(message?.hasPrefix("readiness probe failed") == true, "\(replica)")
            // It stays so: a failing readiness probe keeps the process running.
            try await Task.sleep(for: .seconds(2))
            let later = try #require(try await server.items("replicas").first { $0["deployment"] as? String == "lame" })
            #expect(later["phase"] as? String == "Running" && later["ready"] as? Bool == false, "\(later)")
            #expect(later["restarts"] as? Int == 0, "\(later)")
        }
    }
}
