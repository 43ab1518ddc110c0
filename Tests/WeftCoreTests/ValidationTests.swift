import Testing
@testable import WeftCore

/// One broken rule of a deployment: how to break it, and where and how it must be reported.
struct DeploymentRule: Sendable, CustomTestStringConvertible {
    var name: String
    var path: String
    var message: String
    var mutate: @Sendable (inout Deployment) -> Void

    init(_ name: String, _ path: String, _ message: String, _ mutate: @escaping @Sendable (inout Deployment) -> Void) {
        self.name = name
        self.path = path
        self.message = message
        self.mutate = mutate
    }

    var testDescription: String { name }
}

/// A change that must keep a deployment valid (edge values just inside each rule).
struct DeploymentEdit: Sendable, CustomTestStringConvertible {
    var name: String
    var mutate: @Sendable (inout Deployment) -> Void

    init(_ name: String, _ mutate: @escaping @Sendable (inout Deployment) -> Void) {
        self.name = name
        self.mutate = mutate
    }

    var testDescription: String { name }
}

struct ServiceRule: Sendable, CustomTestStringConvertible {
    var name: String
    var path: String
    var message: String
    var mutate: @Sendable (inout Service) -> Void

    init(_ name: String, _ path: String, _ message: String, _ mutate: @escaping @Sendable (inout Service) -> Void) {
        self.name = name
        self.path = path
        self.message = message
        self.mutate = mutate
    }

    var testDescription: String { name }
}

struct ServiceEdit: Sendable, CustomTestStringConvertible {
    var name: String
    var mutate: @Sendable (inout Service) -> Void

    init(_ name: String, _ mutate: @escaping @Sendable (inout Service) -> Void) {
        self.name = name
        self.mutate = mutate
    }

    var testDescription: String { name }
}

private let tpl = "spec.template.spec"

// MARK: - Deployment

@Suite("Validation: Deployment")
struct DeploymentValidationTests {
    @Test func baselineIsValid() {
        #expect(Validation.validate(validDeployment()) == [])
    }

    static let rules: [DeploymentRule] = [
        // apiVersion
        DeploymentRule("apiVersion", "apiVersion", "must be weft/v1, got \"v2\"") { $0.apiVersion = "v2" },
        // metadata.name: DNS label of at most 46 characters
        DeploymentRule("name empty", "metadata.name", "must not be empty") { $0.metadata.name = "" },
        DeploymentRule("name upper-case", "metadata.name", "is not a valid name") { $0.metadata.name = "Web" },
        DeploymentRule("name leading dash", "metadata.name", "is not a valid name") { $0.metadata.name = "-web" },
        DeploymentRule("name trailing dash", "metadata.name", "is not a valid name") { $0.metadata.name = "web-" },
        DeploymentRule("name underscore", "metadata.name", "is not a valid name") { $0.metadata.name = "my_web" },
        DeploymentRule("name dot", "metadata.name", "is not a valid name") { $0.metadata.name = "web.v2" },
        DeploymentRule("name 47 chars", "metadata.name", "must be at most 46 characters") { $0.metadata.name = String(repeating: "a", count: 47) },
        // metadata.namespace
        DeploymentRule("namespace upper-case", "metadata.namespace", "is not a valid name") { $0.metadata.namespace = "Prod" },
        DeploymentRule("namespace empty", "metadata.namespace", "must not be empty") { $0.metadata.namespace = "" },
        DeploymentRule("namespace 64 chars", "metadata.namespace", "must be at most 63 characters") { $0.metadata.namespace = String(repeating: "n", count: 64) },
        // metadata.labels
        DeploymentRule("label key space", "metadata.labels.bad key", "invalid label key") { $0.metadata.labels = ["bad key": "x"] },
        DeploymentRule("label key two slashes", "metadata.labels.a/b/c", "invalid label key") { $0.metadata.labels = ["a/b/c": "x"] },
        DeploymentRule("label key empty prefix", "metadata.labels./app", "invalid label key") { $0.metadata.labels = ["/app": "x"] },
        DeploymentRule("label key upper-case prefix", "metadata.labels.Example.com/app", "invalid label key") { $0.metadata.labels = ["Example.com/app": "x"] },
        DeploymentRule("label key leading dash", "metadata.labels.-app", "invalid label key") { $0.metadata.labels = ["-app": "x"] },
        DeploymentRule("label key 64 chars", "metadata.labels.\(String(repeating: "k", count: 64))", "invalid label key") {
            $0.metadata.labels = [String(repeating: "k", count: 64): "x"]
        },
        DeploymentRule("label value trailing dot", "metadata.labels.team", "invalid label value \"shop.\"") { $0.metadata.labels = ["team": "shop."] },
        DeploymentRule("label value slash", "metadata.labels.team", "invalid label value") { $0.metadata.labels = ["team": "a/b"] },
        DeploymentRule("label value 64 chars", "metadata.labels.team", "invalid label value") { $0.metadata.labels = ["team": String(repeating: "v", count: 64)] },
        // spec.replicas
        DeploymentRule("replicas negative", "spec.replicas", "must be between 0 and 1000") { $0.spec.replicas = -1 },
        DeploymentRule("replicas 1001", "spec.replicas", "must be between 0 and 1000") { $0.spec.replicas = 1001 },
        // spec.selector
        DeploymentRule("selector empty", "spec.selector.matchLabels", "must not be empty") { $0.spec.selector = LabelSelector(matchLabels: [:]) },
        DeploymentRule("selector without matchLabels", "spec.selector.matchLabels", "must not be empty") { $0.spec.selector = LabelSelector() },
        DeploymentRule("selector value differs", "spec.selector.matchLabels", "app=api does not match spec.template.metadata.labels") {
            $0.spec.selector = LabelSelector(matchLabels: ["app": "api"])
        },
        DeploymentRule("selector key absent from template", "spec.selector.matchLabels", "env=prod does not match") {
            $0.spec.selector = LabelSelector(matchLabels: ["app": "web", "env": "prod"])
        },
        DeploymentRule("template label invalid", "spec.template.metadata.labels.app", "invalid label value") {
            $0.spec.template.metadata = TemplateMetadata(labels: ["app": "-web"])
            $0.spec.selector = nil
        },
        // spec.strategy
        DeploymentRule("strategy type", "spec.strategy.type", "must be RollingUpdate, Recreate or Canary, got \"BlueGreen\"") {
            $0.spec.strategy = DeploymentStrategy(type: "BlueGreen")
        },
        DeploymentRule("rollingUpdate with Recreate", "spec.strategy.rollingUpdate", "may only be set when type is RollingUpdate") {
            $0.spec.strategy = DeploymentStrategy(type: "Recreate", rollingUpdate: RollingUpdateStrategy(maxSurge: .number(1)))
        },
        DeploymentRule("maxSurge word", "spec.strategy.rollingUpdate.maxSurge", "must be a non-negative integer or a percentage") {
            $0.spec.strategy = DeploymentStrategy(rollingUpdate: RollingUpdateStrategy(maxSurge: .name("lots")))
        },
        DeploymentRule("maxSurge over 100%", "spec.strategy.rollingUpdate.maxSurge", "got \"150%\"") {
            $0.spec.strategy = DeploymentStrategy(rollingUpdate: RollingUpdateStrategy(maxSurge: .name("150%")))
        },
        DeploymentRule("maxUnavailable negative", "spec.strategy.rollingUpdate.maxUnavailable", "must be a non-negative integer or a percentage") {
            $0.spec.strategy = DeploymentStrategy(rollingUpdate: RollingUpdateStrategy(maxUnavailable: .number(-1)))
        },
        DeploymentRule("maxUnavailable bare percent", "spec.strategy.rollingUpdate.maxUnavailable", "must be a non-negative integer or a percentage") {
            $0.spec.strategy = DeploymentStrategy(rollingUpdate: RollingUpdateStrategy(maxUnavailable: .name("%")))
        },
        DeploymentRule("both zero", "spec.strategy.rollingUpdate", "maxSurge and maxUnavailable must not both be 0") {
            $0.spec.strategy = DeploymentStrategy(rollingUpdate: RollingUpdateStrategy(maxSurge: .number(0), maxUnavailable: .name("0%")))
        },
        // command
        DeploymentRule("command empty", "\(tpl).command", "must name the program to run") { $0.spec.template.spec.command = [] },
        DeploymentRule("command program empty", "\(tpl).command[0]", "must not be empty") { $0.spec.template.spec.command = ["", "-x"] },
        // env
        DeploymentRule("env leading digit", "\(tpl).env[0].name", "\"1ABC\" is not a valid variable name") { $0.spec.template.spec.env = [EnvVar(name: "1ABC", value: "x")] },
        DeploymentRule("env dash", "\(tpl).env[0].name", "is not a valid variable name") { $0.spec.template.spec.env = [EnvVar(name: "MY-VAR", value: "x")] },
        DeploymentRule("env empty", "\(tpl).env[0].name", "is not a valid variable name") { $0.spec.template.spec.env = [EnvVar(name: "", value: "x")] },
        DeploymentRule("env duplicate", "\(tpl).env[2].name", "duplicate variable A") {
            $0.spec.template.spec.env = [EnvVar(name: "A", value: "1"), EnvVar(name: "B", value: "2"), EnvVar(name: "A", value: "3")]
        },
        DeploymentRule("env PORT", "\(tpl).env[0].name", "PORT is set by Weft for every replica") { $0.spec.template.spec.env = [EnvVar(name: "PORT", value: "80")] },
        DeploymentRule("env PORT_", "\(tpl).env[0].name", "PORT_HTTP is set by Weft") { $0.spec.template.spec.env = [EnvVar(name: "PORT_HTTP", value: "80")] },
        DeploymentRule("env WEFT_", "\(tpl).env[1].name", "WEFT_NODE is set by Weft") {
            $0.spec.template.spec.env = [EnvVar(name: "OK", value: nil), EnvVar(name: "WEFT_NODE", value: "n1")]
        },
        // workingDir
        DeploymentRule("workingDir relative", "\(tpl).workingDir", "must be an absolute path") { $0.spec.template.spec.workingDir = "srv/web" },
        // ports
        DeploymentRule("port name upper-case", "\(tpl).ports[1].name", "\"HTTP\" is not a valid port name") { $0.spec.template.spec.ports = [ContainerPort(name: "http"), ContainerPort(name: "HTTP")] },
        DeploymentRule("port name digits only", "\(tpl).ports[1].name", "is not a valid port name") { $0.spec.template.spec.ports = [ContainerPort(name: "http"), ContainerPort(name: "8080")] },
        DeploymentRule("port name double dash", "\(tpl).ports[1].name", "is not a valid port name") { $0.spec.template.spec.ports = [ContainerPort(name: "http"), ContainerPort(name: "a--b")] },
        DeploymentRule("port name leading dash", "\(tpl).ports[1].name", "is not a valid port name") { $0.spec.template.spec.ports = [ContainerPort(name: "http"), ContainerPort(name: "-http")] },
        DeploymentRule("port name 16 chars", "\(tpl).ports[1].name", "is not a valid port name") {
            $0.spec.template.spec.ports = [ContainerPort(name: "http"), ContainerPort(name: String(repeating: "p", count: 16))]
        },
        DeploymentRule("port name empty", "\(tpl).ports[1].name", "is not a valid port name") { $0.spec.template.spec.ports = [ContainerPort(name: "http"), ContainerPort(name: "")] },
        DeploymentRule("port name duplicate", "\(tpl).ports[1].name", "duplicate port name \"http\"") {
            $0.spec.template.spec.ports = [ContainerPort(name: "http", containerPort: 80), ContainerPort(name: "http", containerPort: 81)]
        },
        DeploymentRule("containerPort 0", "\(tpl).ports[0].containerPort", "must be between 1 and 65535") {
            $0.spec.template.spec.ports = [ContainerPort(name: "http", containerPort: 0)]
        },
        DeploymentRule("containerPort 65536", "\(tpl).ports[0].containerPort", "must be between 1 and 65535") {
            $0.spec.template.spec.ports = [ContainerPort(name: "http", containerPort: 65536)]
        },
        DeploymentRule("port protocol", "\(tpl).ports[0].protocol", "must be TCP or UDP, got \"SCTP\"") {
            $0.spec.template.spec.ports = [ContainerPort(name: "http", protocol: "SCTP")]
        },
        DeploymentRule("port protocol lower-case", "\(tpl).ports[0].protocol", "must be TCP or UDP") {
            $0.spec.template.spec.ports = [ContainerPort(name: "http", protocol: "tcp")]
        },
        // probes
        DeploymentRule("probe no handler", "\(tpl).readinessProbe", "must set exactly one of httpGet, tcpSocket, exec (0 set)") {
            $0.spec.template.spec.readinessProbe = Probe(periodSeconds: 5)
        },
        DeploymentRule("probe two handlers", "\(tpl).livenessProbe", "(2 set)") {
            $0.spec.template.spec.livenessProbe = Probe(tcpSocket: TCPSocketAction(port: .number(8080)), exec: ExecAction(command: ["/bin/true"]))
        },
        DeploymentRule("probe port name undeclared", "\(tpl).readinessProbe.httpGet.port", "names no declared port \"admin\" (declared: http)") {
            $0.spec.template.spec.readinessProbe = Probe(httpGet: HTTPGetAction(path: "/", port: .name("admin")))
        },
        DeploymentRule("probe port name with no ports declared", "\(tpl).livenessProbe.tcpSocket.port", "declare it under ports") {
            $0.spec.template.spec.ports = nil
            $0.spec.template.spec.readinessProbe = nil
            $0.spec.template.spec.livenessProbe = Probe(tcpSocket: TCPSocketAction(port: .name("http")))
        },
        DeploymentRule("probe port name syntax", "\(tpl).readinessProbe.httpGet.port", "\"Http\" is not a valid port name") {
            $0.spec.template.spec.readinessProbe = Probe(httpGet: HTTPGetAction(port: .name("Http")))
        },
        DeploymentRule("probe port number 0", "\(tpl).livenessProbe.tcpSocket.port", "must be between 1 and 65535") {
            $0.spec.template.spec.livenessProbe = Probe(tcpSocket: TCPSocketAction(port: .number(0)))
        },
        DeploymentRule("probe port number too big", "\(tpl).readinessProbe.httpGet.port", "must be between 1 and 65535") {
            $0.spec.template.spec.readinessProbe = Probe(httpGet: HTTPGetAction(port: .number(70000)))
        },
        DeploymentRule("probe path relative", "\(tpl).readinessProbe.httpGet.path", "must start with /") {
            $0.spec.template.spec.readinessProbe = Probe(httpGet: HTTPGetAction(path: "healthz", port: .name("http")))
        },
        DeploymentRule("probe exec empty", "\(tpl).readinessProbe.exec.command", "must name the program to run") {
            $0.spec.template.spec.readinessProbe = Probe(exec: ExecAction(command: []))
        },
        DeploymentRule("probe exec empty program", "\(tpl).livenessProbe.exec.command", "must name the program to run") {
            $0.spec.template.spec.livenessProbe = Probe(exec: ExecAction(command: ["", "x"]))
        },
        DeploymentRule("probe initialDelay negative", "\(tpl).readinessProbe.initialDelaySeconds", "must be between 0 and 3600") {
            $0.spec.template.spec.readinessProbe?.initialDelaySeconds = -1
        },
        DeploymentRule("probe period 0", "\(tpl).readinessProbe.periodSeconds", "must be between 1 and 3600") {
            $0.spec.template.spec.readinessProbe?.periodSeconds = 0
        },
        DeploymentRule("probe timeout 3601", "\(tpl).livenessProbe.timeoutSeconds", "must be between 1 and 3600") {
            $0.spec.template.spec.livenessProbe?.timeoutSeconds = 3601
        },
        DeploymentRule("probe successThreshold 0", "\(tpl).readinessProbe.successThreshold", "must be between 1 and 3600") {
            $0.spec.template.spec.readinessProbe?.successThreshold = 0
        },
        DeploymentRule("probe failureThreshold 0", "\(tpl).readinessProbe.failureThreshold", "must be between 1 and 3600") {
            $0.spec.template.spec.readinessProbe?.failureThreshold = 0
        },
        DeploymentRule("liveness successThreshold 2", "\(tpl).livenessProbe.successThreshold", "must be 1 for a liveness probe") {
            $0.spec.template.spec.livenessProbe?.successThreshold = 2
        },
        // resources
        DeploymentRule("cpu malformed", "\(tpl).resources.requests.cpu", "\"lots\" is not a CPU quantity") {
            $0.spec.template.spec.resources?.requests?.cpu = "lots"
        },
        DeploymentRule("cpu negative", "\(tpl).resources.limits.cpu", "is not a CPU quantity") {
            $0.spec.template.spec.resources?.limits?.cpu = "-1"
        },
        DeploymentRule("memory malformed", "\(tpl).resources.limits.memory", "\"128MB\" is not a memory quantity") {
            $0.spec.template.spec.resources?.limits?.memory = "128MB"
        },
        DeploymentRule("cpu request over limit", "\(tpl).resources.requests.cpu", "must not exceed limits.cpu") {
            $0.spec.template.spec.resources = ResourceRequirements(requests: ResourceList(cpu: "1.5"), limits: ResourceList(cpu: "1200m"))
        },
        DeploymentRule("memory request over limit", "\(tpl).resources.requests.memory", "must not exceed limits.memory") {
            // 1Gi is 1073741824 bytes; 1000M is 10^9.
            $0.spec.template.spec.resources = ResourceRequirements(requests: ResourceList(memory: "1Gi"), limits: ResourceList(memory: "1000M"))
        },
        // scheduling
        DeploymentRule("hostPort 0", "\(tpl).ports[0].hostPort", "must be between 1 and 65535") {
            $0.spec.template.spec.ports = [ContainerPort(name: "http", hostPort: 0)]
        },
        DeploymentRule("hostPort duplicate", "\(tpl).ports[1].hostPort", "duplicate host port 8080/TCP") {
            $0.spec.template.spec.ports = [ContainerPort(name: "http", hostPort: 8080), ContainerPort(name: "admin", protocol: "TCP", hostPort: 8080)]
        },
        DeploymentRule("nodeSelector key", "\(tpl).nodeSelector.-bad", "invalid label key") {
            $0.spec.template.spec.nodeSelector = ["-bad": "x"]
        },
        DeploymentRule("nodeSelector value", "\(tpl).nodeSelector.disk", "invalid label value") {
            $0.spec.template.spec.nodeSelector = ["disk": "fast ssd"]
        },
        DeploymentRule("toleration operator", "\(tpl).tolerations[0].operator", "must be Equal or Exists") {
            $0.spec.template.spec.tolerations = [Toleration(key: "gpu", operator: "In")]
        },
        DeploymentRule("toleration Equal without key", "\(tpl).tolerations[0].key", "is required with operator Equal") {
            $0.spec.template.spec.tolerations = [Toleration(value: "x")]
        },
        DeploymentRule("toleration Exists with value", "\(tpl).tolerations[0].value", "must be empty with operator Exists") {
            $0.spec.template.spec.tolerations = [Toleration(key: "gpu", operator: "Exists", value: "x")]
        },
        DeploymentRule("toleration effect", "\(tpl).tolerations[0].effect", "must be NoSchedule") {
            $0.spec.template.spec.tolerations = [Toleration(key: "gpu", value: "x", effect: "NoExecute")]
        },
        DeploymentRule("toleration key", "\(tpl).tolerations[0].key", "invalid label key") {
            $0.spec.template.spec.tolerations = [Toleration(key: "a/b/c", operator: "Exists")]
        },
        // terminationGracePeriodSeconds
        DeploymentRule("grace negative", "\(tpl).terminationGracePeriodSeconds", "must be between 0 and 3600") { $0.spec.template.spec.terminationGracePeriodSeconds = -1 },
        DeploymentRule("grace 3601", "\(tpl).terminationGracePeriodSeconds", "must be between 0 and 3600") { $0.spec.template.spec.terminationGracePeriodSeconds = 3601 },
        // serviceAccountName: a DNS label
        DeploymentRule("serviceAccountName empty", "\(tpl).serviceAccountName", "must not be empty") { $0.spec.template.spec.serviceAccountName = "" },
        DeploymentRule("serviceAccountName upper-case", "\(tpl).serviceAccountName", "\"Web\" is not a valid name") { $0.spec.template.spec.serviceAccountName = "Web" },
        DeploymentRule("serviceAccountName with namespace", "\(tpl).serviceAccountName", "is not a valid name") { $0.spec.template.spec.serviceAccountName = "shop/web" },
        // runtime: process, netns or oci; oci needs exactly one of image and rootfs
        DeploymentRule("runtime unknown", "\(tpl).runtime", "must be process, netns or oci, got \"docker\"") { $0.spec.template.spec.runtime = "docker" },
        DeploymentRule("oci without image or rootfs", "\(tpl).image", "is required with runtime: oci") { $0.spec.template.spec.runtime = "oci" },
        DeploymentRule("oci with image and rootfs", "\(tpl).rootfs", "must not be given together with image") {
            $0.spec.template.spec.runtime = "oci"; $0.spec.template.spec.image = "shop/cart:1"; $0.spec.template.spec.rootfs = "/srv/cart"
        },
        DeploymentRule("oci image upper-case", "\(tpl).image", "is not an image name") {
            $0.spec.template.spec.runtime = "oci"; $0.spec.template.spec.image = "Shop/Cart"
        },
        DeploymentRule("oci image bad tag", "\(tpl).image", "has an invalid tag") {
            $0.spec.template.spec.runtime = "oci"; $0.spec.template.spec.image = "shop/cart:-1"
        },
        DeploymentRule("oci rootfs relative", "\(tpl).rootfs", "must be an absolute path") {
            $0.spec.template.spec.runtime = "oci"; $0.spec.template.spec.rootfs = "srv/../cart"
        },
        DeploymentRule("oci rootfs dotdot", "\(tpl).rootfs", "without '..'") {
            $0.spec.template.spec.runtime = "oci"; $0.spec.template.spec.rootfs = "/srv/../etc"
        },
        DeploymentRule("oci runAsUser negative", "\(tpl).securityContext.runAsUser", "must be a user or group id") {
            $0.spec.template.spec.runtime = "oci"; $0.spec.template.spec.rootfs = "/srv/cart"
            $0.spec.template.spec.securityContext = SecurityContext(runAsUser: -1)
        },
        DeploymentRule("image without oci", "\(tpl).image", "needs runtime: oci") { $0.spec.template.spec.image = "shop/cart" },
        DeploymentRule("rootfs without oci", "\(tpl).rootfs", "needs runtime: oci") {
            $0.spec.template.spec.runtime = "netns"; $0.spec.template.spec.rootfs = "/srv/cart"
        },
        DeploymentRule("securityContext without oci", "\(tpl).securityContext", "needs runtime: oci") {
            $0.spec.template.spec.securityContext = SecurityContext(runAsUser: 1000)
        },
        DeploymentRule("command missing without an image", "\(tpl).command", "only runtime: oci with an image may leave it out") {
            $0.spec.template.spec.runtime = "oci"; $0.spec.template.spec.rootfs = "/srv/cart"; $0.spec.template.spec.command = nil
        },
        DeploymentRule("serviceAccountName 64 chars", "\(tpl).serviceAccountName", "must be at most 63 characters") {
            $0.spec.template.spec.serviceAccountName = String(repeating: "s", count: 64)
        },
    ]

    @Test(arguments: rules)
    func brokenRuleIsReportedAtItsPath(_ rule: DeploymentRule) {
        var deployment = validDeployment()
        rule.mutate(&deployment)
        expectSingleError(Validation.validate(deployment), path: rule.path, contains: rule.message)
    }

    static let edits: [DeploymentEdit] = [
        DeploymentEdit("oci image without command") {
            $0.spec.template.spec.runtime = "oci"; $0.spec.template.spec.image = "example.com/shop/cart_x:v1.2-rc"
            $0.spec.template.spec.command = nil; $0.spec.template.spec.securityContext = SecurityContext(runAsUser: 1000, runAsGroup: 0)
        },
        DeploymentEdit("oci rootfs with command") { $0.spec.template.spec.runtime = "oci"; $0.spec.template.spec.rootfs = "/srv/cart" },
        DeploymentEdit("name 46 chars") { $0.metadata.name = String(repeating: "a", count: 46) },
        DeploymentEdit("name starting with a digit") { $0.metadata.name = "1web" },
        DeploymentEdit("name single char") { $0.metadata.name = "w" },
        DeploymentEdit("namespace unset") { $0.metadata.namespace = nil },
        DeploymentEdit("namespace 63 chars") { $0.metadata.namespace = String(repeating: "n", count: 63) },
        DeploymentEdit("label key with prefix") { $0.metadata.labels = ["example.com/app": "x", "a_b.c-d": "A-1_b.2"] },
        DeploymentEdit("label value empty") { $0.metadata.labels = ["team": ""] },
        DeploymentEdit("label value 63 chars") { $0.metadata.labels = ["team": String(repeating: "v", count: 63)] },
        DeploymentEdit("replicas 0") { $0.spec.replicas = 0 },
        DeploymentEdit("replicas 1000") { $0.spec.replicas = 1000 },
        DeploymentEdit("replicas unset") { $0.spec.replicas = nil },
        DeploymentEdit("selector unset") { $0.spec.selector = nil },
        DeploymentEdit("selector equals template labels") { $0.spec.selector = LabelSelector(matchLabels: ["app": "web", "tier": "frontend"]) },
        DeploymentEdit("strategy Recreate") { $0.spec.strategy = DeploymentStrategy(type: "Recreate") },
        DeploymentEdit("strategy explicit RollingUpdate") {
            $0.spec.strategy = DeploymentStrategy(type: "RollingUpdate", rollingUpdate: RollingUpdateStrategy(maxSurge: .name("100%"), maxUnavailable: .number(0)))
        },
        DeploymentEdit("maxSurge 0 maxUnavailable 1") {
            $0.spec.strategy = DeploymentStrategy(rollingUpdate: RollingUpdateStrategy(maxSurge: .number(0), maxUnavailable: .number(1)))
        },
        DeploymentEdit("maxSurge 0 alone") { $0.spec.strategy = DeploymentStrategy(rollingUpdate: RollingUpdateStrategy(maxSurge: .name("0%"))) },
        DeploymentEdit("env lower-case and underscore") { $0.spec.template.spec.env = [EnvVar(name: "_x1", value: nil), EnvVar(name: "PORTAL", value: "y"), EnvVar(name: "MY_PORT", value: "1")] },
        DeploymentEdit("containerPort bounds") {
            $0.spec.template.spec.ports = [ContainerPort(name: "http", containerPort: 1), ContainerPort(name: "dns-udp2", containerPort: 65535, protocol: "UDP")]
        },
        DeploymentEdit("port name 15 chars") { $0.spec.template.spec.ports = [ContainerPort(name: "a12345678901234")]; $0.spec.template.spec.readinessProbe = nil },
        DeploymentEdit("exec probe") { $0.spec.template.spec.readinessProbe = Probe(exec: ExecAction(command: ["/bin/check"])) },
        DeploymentEdit("http probe without path by number") { $0.spec.template.spec.readinessProbe = Probe(httpGet: HTTPGetAction(port: .number(9000))) },
        DeploymentEdit("readiness successThreshold 3") { $0.spec.template.spec.readinessProbe?.successThreshold = 3 },
        DeploymentEdit("liveness successThreshold 1") { $0.spec.template.spec.livenessProbe?.successThreshold = 1 },
        DeploymentEdit("probe bounds") {
            $0.spec.template.spec.readinessProbe = Probe(httpGet: HTTPGetAction(port: .name("http")), initialDelaySeconds: 0, periodSeconds: 3600,
                                                         timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3600)
        },
        DeploymentEdit("requests equal limits") {
            $0.spec.template.spec.resources = ResourceRequirements(requests: ResourceList(cpu: "0.5", memory: "1Gi"), limits: ResourceList(cpu: "500m", memory: "1024Mi"))
        },
        DeploymentEdit("only requests") { $0.spec.template.spec.resources = ResourceRequirements(requests: ResourceList(cpu: "8", memory: "2G")) },
        DeploymentEdit("same hostPort for TCP and UDP") {
            $0.spec.template.spec.ports = [ContainerPort(name: "dns", hostPort: 53), ContainerPort(name: "dns-udp", protocol: "UDP", hostPort: 53)]
            $0.spec.template.spec.readinessProbe = nil
            $0.spec.template.spec.livenessProbe = nil
        },
        DeploymentEdit("nodeSelector with zone") { $0.spec.template.spec.nodeSelector = ["topology.weft.io/zone": "eu-1a", "disk": "ssd"] },
        DeploymentEdit("tolerations") {
            $0.spec.template.spec.tolerations = [Toleration(key: "gpu", value: "true", effect: "NoSchedule"), Toleration(key: "spot", operator: "Exists"),
                                                 Toleration(operator: "Exists"), Toleration(key: "x", operator: "Equal", value: "", effect: "")]
        },
        DeploymentEdit("grace 0") { $0.spec.template.spec.terminationGracePeriodSeconds = 0 },
        DeploymentEdit("grace 3600") { $0.spec.template.spec.terminationGracePeriodSeconds = 3600 },
        DeploymentEdit("minimal workload") { $0.spec.template.spec = WorkloadSpec(command: ["/bin/app"]) },
        DeploymentEdit("runtime process") { $0.spec.template.spec.runtime = "process" },
        DeploymentEdit("runtime netns") { $0.spec.template.spec.runtime = "netns" },
        DeploymentEdit("serviceAccountName") { $0.spec.template.spec.serviceAccountName = "web-frontend" },
        DeploymentEdit("serviceAccountName 63 chars, digit first") { $0.spec.template.spec.serviceAccountName = "1" + String(repeating: "s", count: 62) },
    ]

    @Test(arguments: edits)
    func editInsideTheRulesStaysValid(_ edit: DeploymentEdit) {
        var deployment = validDeployment()
        edit.mutate(&deployment)
        #expect(Validation.validate(deployment) == [])
    }

    @Test func everyProblemIsReportedAtOnce() {
        var d = validDeployment()
        d.metadata.name = "Bad_Name"
        d.spec.replicas = -3
        d.spec.template.spec.command = []
        d.spec.template.spec.env = [EnvVar(name: "PORT", value: "1")]
        d.spec.template.spec.ports = [ContainerPort(name: "http", containerPort: 0)]
        d.spec.template.spec.terminationGracePeriodSeconds = 9999
        let errors = Validation.validate(d)
        #expect(Set(errors.map(\.path)) == [
            "metadata.name", "spec.replicas", "\(tpl).command", "\(tpl).env[0].name",
            "\(tpl).ports[0].containerPort", "\(tpl).terminationGracePeriodSeconds",
        ])
        #expect(errors.count == 6)
        #expect(errors.map(\.description).contains("spec.template.spec.ports[0].containerPort: must be between 1 and 65535"))
    }

    @Test func selectorProblemsAreEachReported() {
        var d = validDeployment()
        d.spec.selector = LabelSelector(matchLabels: ["app": "api", "zone": "eu"])
        let errors = Validation.validate(d)
        #expect(errors.count == 2)
        #expect(errors.allSatisfy { $0.path == "spec.selector.matchLabels" })
        #expect(errors.contains { $0.message.hasPrefix("app=api ") })
        #expect(errors.contains { $0.message.hasPrefix("zone=eu ") })
    }

    @Test func bothRollingBoundsInvalidGiveTwoErrors() {
        var d = validDeployment()
        d.spec.strategy = DeploymentStrategy(rollingUpdate: RollingUpdateStrategy(maxSurge: .name("x%"), maxUnavailable: .number(-2)))
        let errors = Validation.validate(d)
        #expect(Set(errors.map(\.path)) == ["spec.strategy.rollingUpdate.maxSurge", "spec.strategy.rollingUpdate.maxUnavailable"])
    }

    @Test func validationErrorsComeThroughManifestDecode() throws {
        let text = #"""
        {"apiVersion": "weft/v1", "kind": "Deployment", "metadata": {"name": "cart"},
         "spec": {"template": {"spec": {"command": ["/bin/app"], "ports": [{"name": "http", "containerPort": 0}]}}}}
        """#
        let error = try manifestError(text)
        #expect(error.description == "Deployment/cart: spec.template.spec.ports[0].containerPort: must be between 1 and 65535")
    }
}

// MARK: - Service

@Suite("Validation: Service")
struct ServiceValidationTests {
    @Test func baselineIsValid() {
        #expect(Validation.validate(validService()) == [])
    }

    static let rules: [ServiceRule] = [
        ServiceRule("apiVersion", "apiVersion", "must be weft/v1") { $0.apiVersion = "weft/v1beta1" },
        ServiceRule("name starts with digit", "metadata.name", "starting with a letter") { $0.metadata.name = "1web" },
        ServiceRule("name upper-case", "metadata.name", "is not a valid name") { $0.metadata.name = "Web" },
        ServiceRule("name 64 chars", "metadata.name", "must be at most 63 characters") { $0.metadata.name = "s" + String(repeating: "a", count: 63) },
        ServiceRule("namespace invalid", "metadata.namespace", "is not a valid name") { $0.metadata.namespace = "a.b" },
        ServiceRule("metadata label invalid", "metadata.labels.x y", "invalid label key") { $0.metadata.labels = ["x y": "1"] },
        ServiceRule("selector missing", "spec.selector", "is required") { $0.spec.selector = nil },
        ServiceRule("selector empty", "spec.selector", "is required") { $0.spec.selector = [:] },
        ServiceRule("selector value invalid", "spec.selector.app", "invalid label value") { $0.spec.selector = ["app": "web!"] },
        ServiceRule("type", "spec.type", "must be VIP or Headless, got \"LoadBalancer\"") { $0.spec.type = "LoadBalancer" },
        ServiceRule("type lower-case", "spec.type", "must be VIP or Headless") { $0.spec.type = "vip" },
        ServiceRule("clusterIP hostname", "spec.clusterIP", "must be an IPv4 or IPv6 address, got \"web.local\"") { $0.spec.clusterIP = "web.local" },
        ServiceRule("clusterIP octet", "spec.clusterIP", "must be an IPv4 or IPv6 address") { $0.spec.clusterIP = "10.0.0.256" },
        ServiceRule("no ports", "spec.ports", "must list at least one port") { $0.spec.ports = [] },
        ServiceRule("port 0", "spec.ports[0].port", "must be between 1 and 65535") { $0.spec.ports = [ServicePort(port: 0)] },
        ServiceRule("port 65536", "spec.ports[0].port", "must be between 1 and 65535") { $0.spec.ports = [ServicePort(port: 65536)] },
        ServiceRule("second port unnamed", "spec.ports[1].name", "is required when a service has more than one port") {
            $0.spec.ports = [ServicePort(name: "http", port: 80), ServicePort(port: 443)]
        },
        ServiceRule("duplicate name", "spec.ports[1].name", "duplicate port name \"http\"") {
            $0.spec.ports = [ServicePort(name: "http", port: 80), ServicePort(name: "http", port: 8080)]
        },
        ServiceRule("duplicate port and default protocol", "spec.ports[1].port", "duplicate port 80/TCP") {
            $0.spec.ports = [ServicePort(name: "a", port: 80, protocol: "TCP"), ServicePort(name: "b", port: 80)]
        },
        ServiceRule("port name invalid", "spec.ports[0].name", "\"HTTP\" is not a valid port name") { $0.spec.ports = [ServicePort(name: "HTTP", port: 80)] },
        ServiceRule("protocol", "spec.ports[0].protocol", "must be TCP or UDP, got \"SCTP\"") { $0.spec.ports = [ServicePort(port: 80, protocol: "SCTP")] },
        ServiceRule("targetPort 0", "spec.ports[0].targetPort", "must be between 1 and 65535") { $0.spec.ports = [ServicePort(port: 80, targetPort: .number(0))] },
        ServiceRule("targetPort 65536", "spec.ports[0].targetPort", "must be between 1 and 65535") { $0.spec.ports = [ServicePort(port: 80, targetPort: .number(65536))] },
        ServiceRule("targetPort name invalid", "spec.ports[0].targetPort", "\"Web_Port\" is not a valid port name") {
            $0.spec.ports = [ServicePort(port: 80, targetPort: .name("Web_Port"))]
        },
        ServiceRule("targetPort name too long", "spec.ports[0].targetPort", "is not a valid port name") {
            $0.spec.ports = [ServicePort(port: 80, targetPort: .name("a-very-long-port-name"))]
        },
        ServiceRule("appProtocol unknown", "spec.ports[0].appProtocol", "must be http or tcp, got \"grpc\"") {
            $0.spec.ports = [ServicePort(port: 80, appProtocol: "grpc")]
        },
        ServiceRule("appProtocol empty", "spec.ports[0].appProtocol", "must be http or tcp, got \"\"") {
            $0.spec.ports = [ServicePort(port: 80, appProtocol: "")]
        },
        ServiceRule("appProtocol http over UDP", "spec.ports[1].appProtocol", "http needs protocol TCP") {
            $0.spec.ports = [ServicePort(name: "a", port: 80), ServicePort(name: "b", port: 81, protocol: "UDP", appProtocol: "http")]
        },
        ServiceRule("http timeoutMs 0", "spec.http.timeoutMs", "must be between 1 and 3600000 (one hour), got 0") {
            $0.spec.http = HTTPRouteSettings(timeoutMs: 0)
        },
        ServiceRule("http timeoutMs negative", "spec.http.timeoutMs", "must be between 1 and 3600000 (one hour), got -5") {
            $0.spec.http = HTTPRouteSettings(timeoutMs: -5)
        },
        ServiceRule("http timeoutMs over an hour", "spec.http.timeoutMs", "got 3600001") {
            $0.spec.http = HTTPRouteSettings(timeoutMs: 3_600_001)
        },
        ServiceRule("retries attempts negative", "spec.http.retries.attempts", "must be between 0 (no retries) and 10, got -1") {
            $0.spec.http = HTTPRouteSettings(retries: RetryPolicy(attempts: -1))
        },
        ServiceRule("retries attempts 11", "spec.http.retries.attempts", "must be between 0 (no retries) and 10, got 11") {
            $0.spec.http = HTTPRouteSettings(retries: RetryPolicy(attempts: 11))
        },
        ServiceRule("retries budgetPercent negative", "spec.http.retries.budgetPercent", "must be between 0 and 100, got -1") {
            $0.spec.http = HTTPRouteSettings(retries: RetryPolicy(budgetPercent: -1))
        },
        ServiceRule("retries budgetPercent 101", "spec.http.retries.budgetPercent", "must be between 0 and 100, got 101") {
            $0.spec.http = HTTPRouteSettings(retries: RetryPolicy(budgetPercent: 101))
        },
        ServiceRule("retries minRetriesPerSecond negative", "spec.http.retries.minRetriesPerSecond", "must be 0 or more, got -1") {
            $0.spec.http = HTTPRouteSettings(retries: RetryPolicy(minRetriesPerSecond: -1))
        },
    ]

    @Test(arguments: rules)
    func brokenRuleIsReportedAtItsPath(_ rule: ServiceRule) {
        var service = validService()
        rule.mutate(&service)
        expectSingleError(Validation.validate(service), path: rule.path, contains: rule.message)
    }

    static let edits: [ServiceEdit] = [
        ServiceEdit("name 63 chars") { $0.metadata.name = "s" + String(repeating: "a", count: 62) },
        ServiceEdit("Headless") { $0.spec.type = "Headless" },
        ServiceEdit("VIP with IPv4") { $0.spec.type = "VIP"; $0.spec.clusterIP = "10.96.0.10" },
        ServiceEdit("IPv6 clusterIP") { $0.spec.clusterIP = "fd00::a" },
        ServiceEdit("single unnamed port") { $0.spec.ports = [ServicePort(port: 8080)] },
        ServiceEdit("same port on both protocols") {
            $0.spec.ports = [ServicePort(name: "dns", port: 53), ServicePort(name: "dns-udp", port: 53, protocol: "UDP")]
        },
        ServiceEdit("port bounds") { $0.spec.ports = [ServicePort(name: "lo", port: 1), ServicePort(name: "hi", port: 65535, targetPort: .number(65535))] },
        // Service target ports are names on the replicas; they are not checked against any deployment.
        ServiceEdit("targetPort any valid name") { $0.spec.ports = [ServicePort(port: 80, targetPort: .name("metrics"))] },
        ServiceEdit("appProtocol http, tcp, any case") {
            $0.spec.ports = [ServicePort(name: "web", port: 80, appProtocol: "http"), ServicePort(name: "raw", port: 81, appProtocol: "tcp"),
                             ServicePort(name: "up", port: 82, protocol: "TCP", appProtocol: "HTTP"), ServicePort(name: "dns", port: 53, protocol: "UDP", appProtocol: "tcp")]
        },
        ServiceEdit("http settings at their bounds") {
            $0.spec.http = HTTPRouteSettings(timeoutMs: 1, retries: RetryPolicy(attempts: 0, budgetPercent: 0, minRetriesPerSecond: 0))
        },
        ServiceEdit("http settings at their upper bounds") {
            $0.spec.http = HTTPRouteSettings(timeoutMs: 3_600_000, retries: RetryPolicy(attempts: 10, budgetPercent: 100, minRetriesPerSecond: 1_000_000))
        },
        ServiceEdit("empty http settings") { $0.spec.http = HTTPRouteSettings(retries: RetryPolicy()) },
    ]

    @Test func everyBrokenHTTPSettingIsReportedAtOnce() {
        var service = validService()
        service.spec.http = HTTPRouteSettings(timeoutMs: 0, retries: RetryPolicy(attempts: 99, budgetPercent: 200, minRetriesPerSecond: -3))
        #expect(Validation.validate(service).map(\.path) == [
            "spec.http.timeoutMs", "spec.http.retries.attempts", "spec.http.retries.budgetPercent", "spec.http.retries.minRetriesPerSecond",
        ])
    }

    @Test(arguments: edits)
    func editInsideTheRulesStaysValid(_ edit: ServiceEdit) {
        var service = validService()
        edit.mutate(&service)
        #expect(Validation.validate(service) == [])
    }

    @Test func digitFirstNameIsOnlyRefusedForServices() {
        var service = validService()
        service.metadata.name = "9lives"
        var deployment = validDeployment()
        deployment.metadata.name = "9lives"
        #expect(Validation.validate(service).map(\.path) == ["metadata.name"])
        #expect(Validation.validate(deployment) == [])
    }

    @Test func everyProblemIsReportedAtOnce() {
        var s = validService()
        s.metadata.name = "-svc"
        s.spec.selector = nil
        s.spec.type = "NodePort"
        s.spec.clusterIP = "1.2.3"
        s.spec.ports = [ServicePort(name: "a", port: 80), ServicePort(port: 80), ServicePort(name: "a", port: 0, protocol: "ICMP")]
        let errors = Validation.validate(s)
        let paths = errors.map(\.path)
        for expected in ["metadata.name", "spec.selector", "spec.type", "spec.clusterIP", "spec.ports[1].name", "spec.ports[1].port",
                         "spec.ports[2].name", "spec.ports[2].port", "spec.ports[2].protocol"] {
            #expect(paths.contains(expected), "missing \(expected) in \(errors)")
        }
        #expect(errors.count == 9)
    }
}

// MARK: - Lexical helpers

@Suite("Validation: names")
struct NameRuleTests {
    @Test(arguments: ["a", "web", "web-1", "a1-b2-c3", "0", String(repeating: "x", count: 63)])
    func validDNSLabels(name: String) {
        #expect(Validation.dnsLabelProblem(name) == nil)
    }

    @Test(arguments: ["", "-a", "a-", "A", "a_b", "a.b", "é", "a b", String(repeating: "x", count: 64)])
    func invalidDNSLabels(name: String) {
        #expect(Validation.dnsLabelProblem(name) != nil)
    }

    @Test func startWithLetterAndLengthOptions() {
        #expect(Validation.dnsLabelProblem("1a", mustStartWithLetter: true) != nil)
        #expect(Validation.dnsLabelProblem("a1", mustStartWithLetter: true) == nil)
        #expect(Validation.dnsLabelProblem("abcd", maxLength: 3) == "must be at most 3 characters (\"abcd\" has 4)")
    }
}
