import Foundation
import Testing
import WeftCore
@testable import WeftRuntime

@Suite("runc config.json of the oci driver")
struct ContainerConfigTests {
    private func config(cpu: Int? = nil, user: UInt32 = 0, mounts: [ContainerMount] = []) -> ContainerConfig {
        ContainerConfig(arguments: ["/usr/local/bin/weft-demo", "--port", "8080"], environment: ["PORT": "8080", "A": "1"],
                        workingDirectory: "/srv", user: user, group: 65534, hostname: "cart-1", rootfs: "/var/lib/weft/images/rootfs/abc",
                        networkNamespace: "/run/netns/weft-n1-cart", resolvConf: "/etc/netns/weft-n1-cart/resolv.conf",
                        mounts: mounts, cpuMillicores: cpu, cgroupsPath: "/weft/n1/default_cart-1/container")
    }

    @Test func processArgumentsEnvironmentUserAndWorkingDirectory() throws {
        let spec = config(user: 1000).document()
        #expect(spec.process.args == ["/usr/local/bin/weft-demo", "--port", "8080"])
        #expect(spec.process.env == ["A=1", "PORT=8080"])
        #expect(spec.process.cwd == "/srv")
        #expect(spec.process.user == .init(uid: 1000, gid: 65534))
        #expect(spec.process.terminal == false && spec.process.noNewPrivileges)
        // Not root inside: no capabilities at all.
        #expect(spec.process.capabilities.bounding.isEmpty)
        #expect(config().document().process.capabilities.effective.contains("CAP_NET_BIND_SERVICE"))
        #expect(!config().document().process.capabilities.effective.contains("CAP_SYS_ADMIN"))
        #expect(spec.hostname == "cart-1")
        #expect(spec.root == .init(path: "/var/lib/weft/images/rootfs/abc", readonly: true))
    }

    @Test func networkNamespaceIsTheSandboxAndResolvConfIsMounted() throws {
        let spec = config().document()
        #expect(spec.linux.namespaces.contains(.init(type: "network", path: "/run/netns/weft-n1-cart")))
        #expect(Set(spec.linux.namespaces.map(\.type)) == ["pid", "ipc", "uts", "mount", "network"])
        let resolv = try #require(spec.mounts.first { $0.destination == "/etc/resolv.conf" })
        #expect(resolv.source == "/etc/netns/weft-n1-cart/resolv.conf" && resolv.type == "bind" && resolv.options?.contains("ro") == true)
        #expect(spec.mounts.contains { $0.destination == "/tmp" && $0.type == "tmpfs" })
    }

    @Test(arguments: [(500, 50_000), (2000, 200_000), (1, 1000)])
    func cpuLimitIsAQuotaPerPeriod(millicores: Int, quota: Int64) {
        let spec = config(cpu: millicores).document()
        #expect(spec.linux.resources.cpu == .init(quota: quota, period: 100_000))
        #expect(spec.linux.cgroupsPath == "/weft/n1/default_cart-1/container")
        #expect(config().document().linux.resources.cpu == nil)
    }

    @Test func mountsHookBindsHostDirectories() throws {
        let spec = config(mounts: [ContainerMount(hostPath: "/var/lib/weft/configs/cart", containerPath: "/etc/cart"),
                                   ContainerMount(hostPath: "/var/lib/weft/scratch", containerPath: "/data", readOnly: false)]).document()
        let etc = try #require(spec.mounts.first { $0.destination == "/etc/cart" })
        #expect(etc.source == "/var/lib/weft/configs/cart" && etc.options == ["rbind", "nosuid", "nodev", "ro"])
        #expect(spec.mounts.first { $0.destination == "/data" }?.options?.last == "rw")
    }

    @Test func jsonHasTheRuntimeSpecFieldNames() throws {
        let object = try #require(try JSONSerialization.jsonObject(with: config(cpu: 250).data()) as? [String: Any])
        #expect(object["ociVersion"] as? String == "1.0.2")
        let linux = try #require(object["linux"] as? [String: Any])
        let resources = try #require(linux["resources"] as? [String: Any])
        #expect((resources["cpu"] as? [String: Any])?["quota"] as? Int == 25_000)
        let namespaces = try #require(linux["namespaces"] as? [[String: Any]])
        #expect(namespaces.contains { $0["type"] as? String == "network" && $0["path"] as? String == "/run/netns/weft-n1-cart" })
    }

    @Test func imageDefaultsWithKubernetesSemantics() {
        let image = ImageRuntimeConfig(entrypoint: ["/entry"], cmd: ["--default"])
        #expect(image.arguments(command: nil, args: nil) == ["/entry", "--default"])
        #expect(image.arguments(command: nil, args: ["--mine"]) == ["/entry", "--mine"])
        #expect(image.arguments(command: ["/other"], args: nil) == ["/other"])
        #expect(image.arguments(command: ["/other"], args: ["x"]) == ["/other", "x"])
        #expect(ImageRuntimeConfig().arguments(command: nil, args: nil).isEmpty)
    }

    @Test func unavailableReasons() {
        #expect(OCIDriverSupport.unavailableReason(uid: 1000, runcPath: "/usr/sbin/runc", netnsUnavailable: nil, missingControllers: [])?.contains("needs root") == true)
        #expect(OCIDriverSupport.unavailableReason(uid: 0, runcPath: nil, netnsUnavailable: nil, missingControllers: [])?.contains("apt-get install runc") == true)
        #expect(OCIDriverSupport.unavailableReason(uid: 0, runcPath: "/r", netnsUnavailable: "no pod network", missingControllers: [])?.contains("no pod network") == true)
        #expect(OCIDriverSupport.unavailableReason(uid: 0, runcPath: "/r", netnsUnavailable: nil, missingControllers: ["memory"])?.contains("memory cgroup controller") == true)
        #expect(OCIDriverSupport.unavailableReason(uid: 0, runcPath: "/r", netnsUnavailable: nil, missingControllers: []) == nil)
    }

    @Test func cgroupControllersOfAFakeHierarchy() throws {
        let root = NSTemporaryDirectory() + "weft-cgroup-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try "cpuset cpu io pids\n".write(toFile: root + "/cgroup.controllers", atomically: true, encoding: .utf8)
        #expect(CgroupVersion.current(root: root) == .v2)
        #expect(OCIDriverSupport.missingControllers(version: .v2, root: root) == ["memory"])
        try FileManager.default.removeItem(atPath: root + "/cgroup.controllers")
        try FileManager.default.createDirectory(atPath: root + "/memory", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: root + "/memory/memory.limit_in_bytes", contents: Data())
        #expect(CgroupVersion.current(root: root) == .v1)
        #expect(OCIDriverSupport.missingControllers(version: .v1, root: root) == ["cpu"])
    }
}

@Suite("What a container runs: user, environment, exit status")
struct ContainerProcessTests {
    private func rootfs() throws -> String {
        let root = NSTemporaryDirectory() + "weft-rootfs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/srv:/bin/sh\n".write(toFile: root + "/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\nstaff:x:50:\n".write(toFile: root + "/etc/group", atomically: true, encoding: .utf8)
        return root
    }

    @Test func userFromImageAndSecurityContext() throws {
        let root = try rootfs()
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(try ContainerProcess.user(image: nil, securityContext: nil, rootfs: root) == (0, 0))
        #expect(try ContainerProcess.user(image: "app", securityContext: nil, rootfs: root) == (1000, 1001))
        #expect(try ContainerProcess.user(image: "app:staff", securityContext: nil, rootfs: root) == (1000, 50))
        #expect(try ContainerProcess.user(image: "1000", securityContext: nil, rootfs: root) == (1000, 1001))
        #expect(try ContainerProcess.user(image: "42:7", securityContext: nil, rootfs: root) == (42, 7))
        #expect(try ContainerProcess.user(image: "app", securityContext: SecurityContext(runAsUser: 65534), rootfs: root) == (65534, 1001))
        #expect(try ContainerProcess.user(image: nil, securityContext: SecurityContext(runAsUser: 5, runAsGroup: 6), rootfs: root) == (5, 6))
        #expect(throws: RuntimeError.self) { try ContainerProcess.user(image: "nobody-here", securityContext: nil, rootfs: root) }
        #expect(throws: RuntimeError.self) { try ContainerProcess.user(image: "app:nogroup", securityContext: nil, rootfs: root) }
    }

    @Test func imageEnvironmentHasADefaultPath() {
        #expect(ContainerProcess.imageEnvironment(nil) == ["PATH": ContainerProcess.defaultPath])
        #expect(ContainerProcess.imageEnvironment(["PATH=/bin", "A=b=c", "EMPTY="]) == ["PATH": "/bin", "A": "b=c", "EMPTY": ""])
    }

    @Test func runcExitStatusIsTheContainers() {
        #expect(ContainerProcess.containerExit(.exited(137)) == .signaled(9))
        #expect(ContainerProcess.containerExit(.exited(143)) == .signaled(15))
        #expect(ContainerProcess.containerExit(.exited(3)) == .exited(3))
        #expect(ContainerProcess.containerExit(.signaled(9)) == .signaled(9))
    }
}
