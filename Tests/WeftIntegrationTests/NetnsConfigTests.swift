import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// ConfigMaps and Secrets on a joined node: its agent reads them with its node credential (a Secret
/// only because a replica on it uses it), and a netns replica gets the variables and the volume files.
@Suite("ConfigMaps and Secrets on a joined netns node", .serialized, .timeLimit(.minutes(5)),
       .enabled(if: NetnsSupport.available, Comment(rawValue: NetnsSupport.unavailableReason ?? "")))
struct NetnsConfigTests {
    static let password = "netns-pw-\(UUID().uuidString.prefix(10))"

    @Test("a netns replica on a joined node gets env from a ConfigMap and a Secret and reads the secret volume's file")
    func joinedNodeReadsConfig() async throws {
        try await withNetnsCluster(agents: 1, serverArguments: ["--service-cidr", "10.96.0.0/16"],
                                   agentArguments: { ["--runtime", "netns", "--pod-cidr", "10.244.\($0).0/24"] }) { cluster in
            try await cluster.apply("""
                apiVersion: weft/v1
                kind: ConfigMap
                metadata: {name: web-config}
                data: {VERSION: netns-from-configmap}
                ---
                apiVersion: weft/v1
                kind: Secret
                metadata: {name: db}
                stringData: {password: "\(Self.password)"}
                ---
                apiVersion: weft/v1
                kind: Deployment
                metadata: {name: cfg}
                spec:
                  template:
                    metadata:
                      labels: {app: cfg}
                    spec:
                      command: ["weft-demo"]
                      envFrom:
                        - configMapRef: {name: web-config}
                      env:
                        - name: DB_PASSWORD
                          valueFrom:
                            secretKeyRef: {name: db, key: password}
                      volumes:
                        - name: creds
                          secret: {secretName: db}
                      ports: [{name: http, containerPort: 8080}]
                      readinessProbe:
                        httpGet: {path: /healthz, port: http}
                        periodSeconds: 1
                """, name: "cfg.yaml")
            var replica: [String: Any] = [:]
            try await eventually(timeout: .seconds(60), "a ready cfg replica") {
                guard let ready = try await cluster.items("replicas").first(where: { $0["ready"] as? Bool == true }) else { return false }
                replica = ready
                return true
            }
            let pid = try #require(replica["pid"] as? Int)
            let environ = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ")).split(separator: 0)
                .map { String(decoding: $0, as: UTF8.self) }
            #expect(environ.contains("DB_PASSWORD=\(Self.password)"))
            #expect(environ.contains("VERSION=netns-from-configmap"))
            let volume = try #require(environ.first { $0.hasPrefix("WEFT_VOLUME_CREDS=") }?.dropFirst("WEFT_VOLUME_CREDS=".count))
            // Inside the replica's own namespaces the directory is there (the netns runtime shares the mounts).
            let child = ChildProcess(executable: URL(fileURLWithPath: "/usr/bin/nsenter"),
                                     arguments: ["-t", String(pid), "-n", "-m", "--", "cat", "\(volume)/password"])
            try child.start()
            #expect(try await child.waitForExit(timeout: .seconds(10)) == .exited(0))
            #expect(child.lines(.stdout).joined() == Self.password)
            let shown = try await cluster.cli(["get", "secret", "db", "-o", "yaml"])
            #expect(shown.stdout.contains("<redacted>") && !shown.stdout.contains(Self.password))

            // Static stability: with the control plane down, a crashed replica restarts with the values its
            // last start read.
            try await cluster.crashServer()
            kill(Int32(pid), SIGKILL)
            try await eventually(timeout: .seconds(30), "the replica restarted without the API, with its secret") {
                processes(withEnvironment: "DB_PASSWORD=\(Self.password)").contains { $0 != Int32(pid) }
            }
            try await cluster.startServer()
        }
    }
}
