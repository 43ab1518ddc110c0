import Foundation
import Testing
@testable import WeftCore

// MARK: - Fixtures

/// A full Deployment manifest as a user might re-apply it after `get -o json`: it still carries
/// server-managed metadata and a status, which decoding must drop.
private let deploymentJSON = #"""
{
  "apiVersion": "weft/v1",
  "kind": "Deployment",
  "metadata": {
    "name": "cart",
    "labels": {"team": "shop"},
    "annotations": {"owner": "alice"},
    "uid": "3f1c9a2e",
    "resourceVersion": "42",
    "generation": 3,
    "creationTimestamp": "2024-05-01T10:00:00Z",
    "deletionTimestamp": "2024-05-02T10:00:00Z"
  },
  "spec": {
    "replicas": 3,
    "selector": {"matchLabels": {"app": "cart"}},
    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "50%", "maxUnavailable": 1}},
    "template": {
      "metadata": {"labels": {"app": "cart", "tier": "web"}},
      "spec": {
        "command": ["/usr/bin/cart", "--serve"],
        "args": ["-v"],
        "env": [{"name": "MODE", "value": "prod"}, {"name": "EMPTY"}],
        "workingDir": "/srv/cart",
        "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5, "failureThreshold": 2},
        "livenessProbe": {"tcpSocket": {"port": "8080"}},
        "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}},
        "terminationGracePeriodSeconds": 10
      }
    }
  },
  "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "readyReplicas": 1}
}
"""#

private let serviceJSON = #"""
{
  "apiVersion": "weft/v1",
  "kind": "Service",
  "metadata": {"name": "cart", "namespace": "shop", "uid": "u-1", "resourceVersion": "7", "creationTimestamp": "2024-05-01T10:00:00Z"},
  "spec": {
    "selector": {"app": "cart"},
    "type": "Headless",
    "ports": [
      {"name": "http", "port": 80, "targetPort": "http"},
      {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353}
    ]
  }
}
"""#

/// A minimal valid deployment with `spec.template.spec` contents spliced in.
private func deployment(workload: String = #""command": ["/bin/app"]"#, spec: String = "", metadata: String = #""name": "cart""#,
                        top: String = "") -> String {
    #"""
    {"apiVersion": "weft/v1", "kind": "Deployment", "metadata": {\#(metadata)}\#(top),
     "spec": {\#(spec)"template": {"metadata": {"labels": {"app": "cart"}}, "spec": {\#(workload)}}}}
    """#
}

private func service(ports: String = #"[{"port": 80}]"#, spec: String = "") -> String {
    #"""
    {"apiVersion": "weft/v1", "kind": "Service", "metadata": {"name": "cart"},
     "spec": {\#(spec)"selector": {"app": "cart"}, "ports": \#(ports)}}
    """#
}

// MARK: - Valid manifests

@Suite("Manifest decoding: valid documents")
struct ValidManifestTests {
    @Test func deploymentDecodesWithDefaultsAndDropsServerFields() throws {
        let object = try decodeManifest(deploymentJSON).get()
        guard case .deployment(let d) = object else {
            Issue.record("expected a deployment, got \(object)")
            return
        }
        #expect(object.kind == .deployment)
        #expect(d.apiVersion == "weft/v1")
        #expect(d.kind == "Deployment")

        // Namespace defaulted; user metadata kept; server-managed metadata and status dropped.
        #expect(d.metadata.name == "cart")
        #expect(d.metadata.namespace == "default")
        #expect(d.metadata.labels == ["team": "shop"])
        #expect(d.metadata.annotations == ["owner": "alice"])
        #expect(d.metadata.uid == nil)
        #expect(d.metadata.resourceVersion == nil)
        #expect(d.metadata.generation == nil)
        #expect(d.metadata.creationTimestamp == nil)
        #expect(d.metadata.deletionTimestamp == nil)
        #expect(d.status == nil)
        #expect(object.metadata == d.metadata)

        // Spec fields arrive intact, including IntOrString-style fields.
        #expect(d.spec.replicas == 3)
        #expect(d.spec.selector?.matchLabels == ["app": "cart"])
        #expect(d.spec.strategy?.type == "RollingUpdate")
        #expect(d.spec.strategy?.rollingUpdate?.maxSurge == .name("50%"))
        #expect(d.spec.strategy?.rollingUpdate?.maxUnavailable == .number(1))
        let workload = d.spec.template.spec
        #expect(d.spec.template.metadata?.labels == ["app": "cart", "tier": "web"])
        #expect(workload.command == ["/usr/bin/cart", "--serve"])
        #expect(workload.args == ["-v"])
        #expect(workload.env == [EnvVar(name: "MODE", value: "prod"), EnvVar(name: "EMPTY", value: nil)])
        #expect(workload.workingDir == "/srv/cart")
        #expect(workload.ports == [ContainerPort(name: "http", containerPort: 8080),
                                   ContainerPort(name: "metrics", containerPort: 9090, protocol: "TCP")])
        #expect(workload.readinessProbe?.httpGet == HTTPGetAction(path: "/healthz", port: .name("http")))
        #expect(workload.readinessProbe?.period == 5)
        #expect(workload.readinessProbe?.failures == 2)
        #expect(workload.readinessProbe?.timeout == 1, "default timeout")
        // A numeric string is a port number, not a port name.
        #expect(workload.livenessProbe?.tcpSocket?.port == .number(8080))
        #expect(workload.resources?.requests == ResourceList(cpu: "250m", memory: "64Mi"))
        #expect(workload.resources?.limits == ResourceList(cpu: "1", memory: "128Mi"))
        #expect(workload.gracePeriodSeconds == 10)
    }

    @Test func defaultNamespaceIsConfigurableAndExplicitNamespaceWins() throws {
        let staged = try decodeManifest(deploymentJSON, defaultNamespace: "staging").get()
        #expect(staged.metadata.namespace == "staging")

        let explicit = try decodeManifest(serviceJSON, defaultNamespace: "staging").get()
        #expect(explicit.metadata.namespace == "shop")
    }

    @Test func minimalDeploymentLeavesOptionalFieldsUnset() throws {
        let object = try decodeManifest(deployment()).get()
        guard case .deployment(let d) = object else {
            Issue.record("expected a deployment")
            return
        }
        #expect(d.spec.replicas == nil)
        #expect(d.spec.desiredReplicas == 1)
        #expect(d.spec.selector == nil)
        #expect(d.spec.strategy == nil)
        #expect(d.spec.template.spec.gracePeriodSeconds == 30)
        #expect(d.metadata.namespace == "default")
    }

    @Test func explicitNullsCountAsAbsentForOptionalFields() throws {
        let object = try decodeManifest(deployment(workload: #""command": ["/bin/app"], "env": null"#, spec: #""replicas": null, "#)).get()
        guard case .deployment(let d) = object else {
            Issue.record("expected a deployment")
            return
        }
        #expect(d.spec.replicas == nil)
        #expect(d.spec.template.spec.env == nil)
    }

    @Test func serviceDecodesWithServerFieldsDropped() throws {
        let object = try decodeManifest(serviceJSON).get()
        guard case .service(let s) = object else {
            Issue.record("expected a service, got \(object)")
            return
        }
        #expect(object.kind == .service)
        #expect(s.metadata.name == "cart")
        #expect(s.metadata.namespace == "shop")
        #expect(s.metadata.uid == nil)
        #expect(s.metadata.resourceVersion == nil)
        #expect(s.metadata.creationTimestamp == nil)
        #expect(s.spec.selector == ["app": "cart"])
        #expect(s.spec.serviceType == .headless)
        #expect(s.spec.clusterIP == nil)
        #expect(s.spec.ports == [
            ServicePort(name: "http", port: 80, targetPort: .name("http")),
            ServicePort(name: "dns", port: 53, targetPort: .number(5353), protocol: "UDP"),
        ])
    }

    @Test func serviceTypeDefaultsToVIP() throws {
        guard case .service(let s) = try decodeManifest(service()).get() else {
            Issue.record("expected a service")
            return
        }
        #expect(s.spec.type == nil)
        #expect(s.spec.serviceType == .vip)
        #expect(s.metadata.namespace == "default")
    }
}

// MARK: - Unknown fields

@Suite("Manifest decoding: unknown fields")
struct UnknownFieldTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var manifest: String
        var path: String
        var object: String
        var testDescription: String { path }
    }

    static let cases: [Case] = [
        Case(manifest: deployment(top: #", "spce": {}"#), path: "spce", object: "Deployment/cart"),
        Case(manifest: deployment(metadata: #""name": "cart", "lables": {"a": "b"}"#), path: "metadata.lables", object: "Deployment/cart"),
        Case(manifest: deployment(spec: #""replica": 2, "#), path: "spec.replica", object: "Deployment/cart"),
        Case(manifest: deployment(workload: #""command": ["/bin/app"], "portz": []"#), path: "spec.template.spec.portz", object: "Deployment/cart"),
        Case(manifest: deployment(workload: #""command": ["/bin/app"], "env": [{"name": "A", "value": "1"}, {"name": "B", "vaule": "2"}]"#),
             path: "spec.template.spec.env[1].vaule", object: "Deployment/cart"),
        Case(manifest: deployment(workload: #""command": ["/bin/app"], "ports": [{"name": "http"}], "readinessProbe": {"httpGet": {"port": "http", "paht": "/"}}"#),
             path: "spec.template.spec.readinessProbe.httpGet.paht", object: "Deployment/cart"),
        Case(manifest: deployment(spec: #""strategy": {"rollingUpdate": {"maxSurge": 1, "surge": 2}}, "#),
             path: "spec.strategy.rollingUpdate.surge", object: "Deployment/cart"),
        Case(manifest: deployment(workload: #""command": ["/bin/app"], "tolerations": [{"key": "gpu", "operater": "Exists"}]"#),
             path: "spec.template.spec.tolerations[0].operater", object: "Deployment/cart"),
        Case(manifest: deployment(workload: #""command": ["/bin/app"], "nodeSelectors": {"disk": "ssd"}"#),
             path: "spec.template.spec.nodeSelectors", object: "Deployment/cart"),
        Case(manifest: service(ports: #"[{"name": "a", "port": 80}, {"nmae": "b", "port": 81}]"#), path: "spec.ports[1].nmae", object: "Service/cart"),
        // A Service has no status at all.
        Case(manifest: #"{"apiVersion": "weft/v1", "kind": "Service", "metadata": {"name": "cart"}, "spec": {"selector": {"a": "b"}, "ports": [{"port": 80}]}, "status": {}}"#,
             path: "status", object: "Service/cart"),
    ]

    @Test(arguments: cases)
    func unknownFieldIsReportedAtItsPath(_ c: Case) throws {
        let error = try manifestError(c.manifest)
        #expect(error.object == c.object)
        expectSingleError(error.errors, path: c.path, contains: "unknown field")
    }
}

// MARK: - Type mismatches

@Suite("Manifest decoding: type mismatches")
struct TypeMismatchTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var manifest: String
        var path: String
        var fragments: [String]
        var testDescription: String { path }
    }

    static let cases: [Case] = [
        Case(manifest: deployment(spec: #""replicas": "three", "#), path: "spec.replicas",
             fragments: ["must be an integer", "got a string \"three\""]),
        Case(manifest: deployment(spec: #""replicas": 2.5, "#), path: "spec.replicas",
             fragments: ["must be an integer", "got a number 2.5"]),
        Case(manifest: deployment(metadata: #""name": "cart", "labels": {"app": 1}"#), path: "metadata.labels.app",
             fragments: ["must be a string", "got an integer 1"]),
        Case(manifest: deployment(workload: #""command": "/bin/app""#), path: "spec.template.spec.command",
             fragments: ["must be a list", "got a string \"/bin/app\""]),
        Case(manifest: deployment(workload: #""command": ["/bin/app", 7]"#), path: "spec.template.spec.command[1]",
             fragments: ["must be a string", "got an integer 7"]),
        Case(manifest: deployment(spec: #""selector": ["app"], "#), path: "spec.selector",
             fragments: ["must be an object", "got a list"]),
        Case(manifest: deployment(workload: #""command": ["/bin/app"], "ports": [{"name": "http", "containerPort": true}]"#),
             path: "spec.template.spec.ports[0].containerPort", fragments: ["must be an integer", "got a boolean true"]),
        Case(manifest: service(ports: #"[{"port": 80, "targetPort": true}]"#), path: "spec.ports[0].targetPort",
             fragments: ["must be a port number or a port name"]),
        Case(manifest: deployment(spec: #""strategy": {"rollingUpdate": {"maxSurge": [1]}}, "#), path: "spec.strategy.rollingUpdate.maxSurge",
             fragments: ["must be a port number or a port name"]),
        Case(manifest: service(ports: #"{"port": 80}"#), path: "spec.ports", fragments: ["must be a list", "got an object"]),
    ]

    @Test(arguments: cases)
    func mismatchNamesPathAndExpectedType(_ c: Case) throws {
        let error = try manifestError(c.manifest)
        #expect(error.errors.count == 1, "\(error.errors)")
        let first = try #require(error.errors.first)
        #expect(first.path == c.path)
        for fragment in c.fragments {
            #expect(first.message.contains(fragment), "\"\(first.message)\" lacks \"\(fragment)\"")
        }
    }

    @Test func longStringsAreTruncatedInMessages() throws {
        let long = String(repeating: "x", count: 100)
        let error = try manifestError(deployment(spec: #""replicas": "\#(long)", "#))
        let message = try #require(error.errors.first?.message)
        #expect(message.contains(String(repeating: "x", count: 40) + "…"))
        #expect(!message.contains(String(repeating: "x", count: 41)))
    }
}

// MARK: - Required fields

@Suite("Manifest decoding: required fields")
struct RequiredFieldTests {
    @Test func missingNameIsRequiredAndObjectIsKindOnly() throws {
        let error = try manifestError(deployment(metadata: #""labels": {"a": "b"}"#))
        #expect(error.object == "Deployment")
        expectSingleError(error.errors, path: "metadata.name", contains: "is required")
        #expect(error.description == "Deployment: metadata.name: is required")
    }

    @Test func missingCommandIsRequired() throws {
        let error = try manifestError(deployment(workload: #""args": ["x"]"#))
        expectSingleError(error.errors, path: "spec.template.spec.command", contains: "is required")
    }

    @Test func nullRequiredFieldIsRequired() throws {
        let error = try manifestError(deployment(workload: #""command": null"#))
        expectSingleError(error.errors, path: "spec.template.spec.command", contains: "is required")
    }

    @Test func nullListElementIsRefused() throws {
        let error = try manifestError(deployment(workload: #""command": ["/bin/app", null]"#))
        expectSingleError(error.errors, path: "spec.template.spec.command[1]", contains: "must not be null")
    }

    @Test func missingEnvNameInListElement() throws {
        let error = try manifestError(deployment(workload: #""command": ["/bin/app"], "env": [{"name": "A"}, {"value": "x"}]"#))
        expectSingleError(error.errors, path: "spec.template.spec.env[1].name", contains: "is required")
    }

    @Test func missingServicePorts() throws {
        let error = try manifestError(#"{"apiVersion": "weft/v1", "kind": "Service", "metadata": {"name": "cart"}, "spec": {"selector": {"a": "b"}}}"#)
        expectSingleError(error.errors, path: "spec.ports", contains: "is required")
    }

    @Test func missingSpecAndMetadata() throws {
        let noSpec = try manifestError(#"{"apiVersion": "weft/v1", "kind": "Deployment", "metadata": {"name": "cart"}}"#)
        expectSingleError(noSpec.errors, path: "spec", contains: "is required")
        let noMetadata = try manifestError(#"{"apiVersion": "weft/v1", "kind": "Service", "spec": {"ports": []}}"#)
        #expect(noMetadata.object == "Service")
        expectSingleError(noMetadata.errors, path: "metadata", contains: "is required")
    }

    @Test func missingAPIVersion() throws {
        let error = try manifestError(#"{"kind": "Service", "metadata": {"name": "cart"}, "spec": {"selector": {"a": "b"}, "ports": [{"port": 80}]}}"#)
        expectSingleError(error.errors, path: "apiVersion", contains: "is required")
    }
}

// MARK: - Document shape and kind

@Suite("Manifest decoding: document and kind")
struct DocumentKindTests {
    @Test(arguments: [
        (#"[1, 2]"#, "got a list"),
        (#""Deployment""#, "got a string"),
        (#"42"#, "got an integer"),
        (#"null"#, "got null"),
    ])
    func nonObjectDocumentIsRefused(text: String, got: String) throws {
        let error = try manifestError(text)
        #expect(error.object == nil)
        expectSingleError(error.errors, path: "", contains: "must be an object")
        #expect(error.errors.first?.message.contains(got) == true)
        // No path and no object: the description is the bare message.
        #expect(error.description == error.errors.first?.message)
    }

    @Test func missingKind() throws {
        let error = try manifestError(#"{"apiVersion": "weft/v1", "metadata": {"name": "cart"}, "spec": {}}"#)
        #expect(error.object == nil)
        expectSingleError(error.errors, path: "kind", contains: "is required")
    }

    @Test func nonStringKindIsTreatedAsMissing() throws {
        let error = try manifestError(#"{"apiVersion": "weft/v1", "kind": 3, "metadata": {"name": "cart"}, "spec": {}}"#)
        expectSingleError(error.errors, path: "kind", contains: "is required")
    }

    @Test(arguments: ["Pod", "deployment", "Deployments", ""])
    func unknownKind(kind: String) throws {
        let error = try manifestError(#"{"apiVersion": "weft/v1", "kind": "\#(kind)", "metadata": {"name": "cart"}, "spec": {}}"#)
        #expect(error.object == "\(kind)/cart")
        expectSingleError(error.errors, path: "kind", contains: "unknown kind \"\(kind)\"")
    }

    @Test(arguments: ["Replica", "Node"])
    func weftManagedKindsAreRefused(kind: String) throws {
        let error = try manifestError(#"{"apiVersion": "weft/v1", "kind": "\#(kind)", "metadata": {"name": "n1"}, "spec": {}}"#)
        #expect(error.object == "\(kind)/n1")
        expectSingleError(error.errors, path: "kind", contains: "\(kind) objects are managed by Weft and cannot be applied")
    }

    @Test(arguments: ["v1", "apps/v1", "weft/v2", "Weft/v1"])
    func apiVersionMustBeWeftV1(apiVersion: String) throws {
        let text = deployment().replacingOccurrences(of: "\"weft/v1\"", with: "\"\(apiVersion)\"")
        let error = try manifestError(text)
        expectSingleError(error.errors, path: "apiVersion", contains: "must be weft/v1, got \"\(apiVersion)\"")

        let serviceText = service().replacingOccurrences(of: "\"weft/v1\"", with: "\"\(apiVersion)\"")
        let serviceError = try manifestError(serviceText)
        expectSingleError(serviceError.errors, path: "apiVersion", contains: "must be weft/v1")
    }

    @Test func descriptionPrefixesEveryErrorWithKindAndName() throws {
        let error = try manifestError(deployment(workload: #""command": [], "workingDir": "rel""#, spec: #""replicas": 5000, "#))
        #expect(error.object == "Deployment/cart")
        let lines = error.description.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines.allSatisfy { $0.hasPrefix("Deployment/cart: ") })
        #expect(lines.contains("Deployment/cart: spec.replicas: must be between 0 and 1000"))
        #expect(lines.contains("Deployment/cart: spec.template.spec.workingDir: must be an absolute path"))
    }

    @Test func manifestErrorDescriptionFormats() {
        let withObject = ManifestError(object: "Service/db", errors: [FieldError(path: "spec.ports", message: "must list at least one port")])
        #expect(withObject.description == "Service/db: spec.ports: must list at least one port")
        let noPath = ManifestError(object: "Service/db", errors: [FieldError(path: "", message: "bad")])
        #expect(noPath.description == "Service/db: bad")
        let noObject = ManifestError(object: nil, errors: [FieldError(path: "kind", message: "is required")])
        #expect(noObject.description == "kind: is required")
    }
}

// MARK: - StrictDecoder and paths directly

@Suite("StrictDecoder and FieldPath")
struct StrictDecoderTests {
    @Test func decodesAtABasePath() throws {
        let value = try json(#"{"port": 80, "prot": "TCP"}"#)
        let base = FieldPath() / "spec" / "ports"
        do {
            _ = try StrictDecoder.decode(ServicePort.self, from: value, at: base[3])
            Issue.record("unknown field accepted")
        } catch {
            #expect(error.path == "spec.ports[3].prot")
        }
    }

    @Test func decodesPlainValues() throws {
        let port = try StrictDecoder.decode(ServicePort.self, from: json(#"{"port": 443, "targetPort": "8443"}"#))
        #expect(port == ServicePort(port: 443, targetPort: .number(8443)))
        let numbers = try StrictDecoder.decode([Int].self, from: json("[1, 2.0, -3]"))
        #expect(numbers == [1, 2, -3])
    }

    @Test func integerOutOfRangeForNarrowType() throws {
        let value = try json("[1, 300]")
        do {
            _ = try StrictDecoder.decode([UInt8].self, from: value)
            Issue.record("300 accepted as UInt8")
        } catch {
            #expect(error.path == "[1]")
            #expect(error.message.contains("300 is out of range"))
        }
    }

    @Test func fieldPathDescription() {
        let path = (FieldPath() / "spec" / "template" / "spec" / "ports")[0] / "containerPort"
        #expect(path.description == "spec.template.spec.ports[0].containerPort")
        #expect(FieldPath()[2].child("a").description == "[2].a")
        #expect(FieldPath().description == "")
        #expect(path.error("bad").description == "spec.template.spec.ports[0].containerPort: bad")
        #expect(FieldError(path: "", message: "bad").description == "bad")
    }

    @Test func jsonValueParsesEachType() throws {
        let value = try json(#"{"n": null, "b": false, "i": -7, "d": 1.5, "s": "x", "a": [1], "o": {}}"#)
        #expect(value["n"] == .null)
        #expect(value["b"] == .bool(false))
        #expect(value["i"] == .int(-7))
        #expect(value["d"] == .double(1.5))
        #expect(value["s"]?.stringValue == "x")
        #expect(value["a"] == .array([.int(1)]))
        #expect(value["o"] == .object([:]))
        #expect(value["missing"] == nil)
        #expect(JSONValue.int(1)["key"] == nil)
        #expect(JSONValue.int(1).stringValue == nil)
    }

    @Test func jsonValueSerialisesWithSortedKeys() throws {
        let value = try json(#"{"b": 1, "a": {"d": "/x", "c": true}}"#)
        let text = String(decoding: try value.serialized(), as: UTF8.self)
        #expect(text == #"{"a":{"c":true,"d":"/x"},"b":1}"#)
        #expect(try JSONValue.parse(value.serialized()) == value)
    }
}
