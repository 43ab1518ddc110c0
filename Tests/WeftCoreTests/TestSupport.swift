import Foundation
import Testing
@testable import WeftCore

/// Parses JSON text the way the API server receives manifests.
func json(_ text: String) throws -> JSONValue {
    try JSONValue.parse(Data(text.utf8))
}

/// Decodes a manifest written as JSON text; returns the error instead of throwing it.
func decodeManifest(_ text: String, defaultNamespace namespace: String = defaultNamespace) throws -> Result<AppliedObject, ManifestError> {
    let document = try json(text)
    do {
        return .success(try Manifest.decode(document, defaultNamespace: namespace))
    } catch {
        return .failure(error)
    }
}

/// The ManifestError of a manifest that must be refused (records an issue when it was accepted).
func manifestError(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> ManifestError {
    switch try decodeManifest(text) {
    case .success(let object):
        Issue.record("manifest was accepted: \(object)", sourceLocation: sourceLocation)
        return ManifestError(object: nil, errors: [])
    case .failure(let error):
        return error
    }
}

/// A deployment that passes validation; tests break one rule at a time.
func validDeployment() -> Deployment {
    Deployment(
        metadata: ObjectMeta(name: "web", namespace: "default", labels: ["team": "shop"]),
        spec: DeploymentSpec(
            replicas: 2,
            selector: LabelSelector(matchLabels: ["app": "web"]),
            template: ReplicaTemplate(
                metadata: TemplateMetadata(labels: ["app": "web", "tier": "frontend"]),
                spec: WorkloadSpec(
                    command: ["/usr/bin/web", "--serve"],
                    env: [EnvVar(name: "MODE", value: "prod")],
                    workingDir: "/srv/web",
                    ports: [ContainerPort(name: "http", containerPort: 8080)],
                    readinessProbe: Probe(httpGet: HTTPGetAction(path: "/healthz", port: .name("http"))),
                    livenessProbe: Probe(tcpSocket: TCPSocketAction(port: .number(8080))),
                    resources: ResourceRequirements(requests: ResourceList(cpu: "250m", memory: "64Mi"),
                                                    limits: ResourceList(cpu: "1", memory: "128Mi")),
                    terminationGracePeriodSeconds: 10))))
}

/// A service that passes validation.
func validService() -> Service {
    Service(
        metadata: ObjectMeta(name: "web", namespace: "default"),
        spec: ServiceSpec(selector: ["app": "web"], ports: [ServicePort(name: "http", port: 80, targetPort: .name("http"))]))
}

/// Expects exactly one error, at `path`, whose message contains `fragment`.
func expectSingleError(_ errors: [FieldError], path: String, contains fragment: String,
                       sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(errors.count == 1, "expected one error, got \(errors)", sourceLocation: sourceLocation)
    guard let error = errors.first else { return }
    #expect(error.path == path, "errors: \(errors)", sourceLocation: sourceLocation)
    #expect(error.message.contains(fragment), "message \"\(error.message)\" lacks \"\(fragment)\"", sourceLocation: sourceLocation)
}

