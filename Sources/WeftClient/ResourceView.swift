import Foundation
import WeftCore

/// How objects look in `weft get`: table columns and the flat fields added to JSON and YAML output.
public enum ResourceView {
    /// Table headers for `kind`; with `allNamespaces`, namespaced kinds start with NAMESPACE.
    public static func headers(_ kind: ResourceKind, allNamespaces: Bool) -> [String] {
        let columns: [String]
        switch kind {
        case .deployment: columns = ["NAME", "READY", "UP-TO-DATE", "AGE"]
        case .service: columns = ["NAME", "TYPE", "CLUSTER-IP", "PORTS", "SELECTOR", "AGE"]
        case .replica: columns = ["NAME", "PHASE", "READY", "RESTARTS", "ADDRESS", "NODE", "AGE"]
        case .node: columns = ["NAME", "STATUS", "CAPACITY", "ALLOCATED", "REPLICAS", "HEARTBEAT", "ADDRESS", "AGE"]
        case .endpoints: columns = ["NAME", "ENDPOINTS", "AGE"]
        case .authorizationPolicy: columns = ["NAME", "SERVICE", "RULES", "AGE"]
        case .peerAuthentication: columns = ["NAME", "MODE", "AGE"]
        case .configMap: columns = ["NAME", "DATA", "AGE"]
        case .secret: columns = ["NAME", "TYPE", "DATA", "AGE"]
        }
        return showsNamespace(kind, allNamespaces) ? ["NAMESPACE"] + columns : columns
    }

    /// The table row of one object (JSON as the API serves it). Node rows take what runs on each node from
    /// `nodeUsage` (``NodeUsage/of(nodes:replicas:)``); a node missing from it shows nothing allocated.
    public static func row(_ kind: ResourceKind, _ object: JSONValue, allNamespaces: Bool, now: Date = Date(),
                           nodeUsage: [String: NodeUsage] = [:]) -> [String] {
        let metadata = decode(ObjectMeta.self, object["metadata"]) ?? ObjectMeta(name: object["metadata"]?["name"]?.stringValue ?? "?")
        let age = Age.since(metadata.creationTimestamp, now: now)
        var cells: [String]
        switch kind {
        case .deployment:
            let deployment = decode(Deployment.self, object)
            let status = deployment?.status
            cells = [metadata.name, "\(status?.readyReplicas ?? 0)/\(deployment?.spec.desiredReplicas ?? 0)", "\(status?.updatedReplicas ?? 0)", age]
        case .service:
            let spec = decode(Service.self, object)?.spec
            cells = [metadata.name, spec?.serviceType.rawValue ?? "?", spec?.clusterIP ?? "<none>",
                     spec.map(portsText) ?? "", selectorText(spec?.selector), age]
        case .replica:
            let replica = decode(Replica.self, object)
            let status = replica?.status
            // As kubectl's STATUS shows it, an OOM kill stands next to the restart count.
            let oom = status?.lastExitReason == "OOMKilled" ? " (OOMKilled)" : ""
            cells = [metadata.name, phase(replica), (replica?.isReady ?? false) ? "true" : "false", "\(status?.restarts ?? 0)\(oom)",
                     replica.flatMap(address) ?? "<none>", replica?.spec.node ?? "<none>", age]
        case .node:
            let node = decode(Node.self, object)
            let addresses = node?.status?.addresses ?? []
            let heartbeat = node?.status?.lastHeartbeat.map { Age.since($0, now: now) + " ago" } ?? "<never>"
            let usage = nodeUsage[metadata.name] ?? NodeUsage()
            cells = [metadata.name, node.map(nodeStatus) ?? "Unknown", resourcesText(node?.status?.capacity) ?? "<unknown>",
                     usage.allocatedText, "\(usage.replicas)", heartbeat, addresses.isEmpty ? "<none>" : addresses.joined(separator: ","), age]
        case .endpoints:
            cells = [metadata.name, decode(Endpoints.self, object).map(endpointsText) ?? "<none>", age]
        case .authorizationPolicy:
            let spec = decode(AuthorizationPolicy.self, object)?.spec
            cells = [metadata.name, spec?.service ?? "?", spec.map { $0.allow.isEmpty ? "0 (deny all)" : "\($0.allow.count)" } ?? "?", age]
        case .peerAuthentication:
            cells = [metadata.name, decode(PeerAuthentication.self, object)?.spec.mtls.mode ?? "?", age]
        case .configMap:
            cells = [metadata.name, "\(object["data"]?.objectValue?.count ?? 0)", age]
        case .secret:
            // Never a value: only the type and how many keys.
            cells = [metadata.name, object["type"]?.stringValue ?? Secret.defaultType, "\(object["data"]?.objectValue?.count ?? 0)", age]
        }
        if showsNamespace(kind, allNamespaces) { cells.insert(metadata.namespace ?? defaultNamespace, at: 0) }
        return cells
    }

    /// A table of `objects`.
    public static func table(_ kind: ResourceKind, _ objects: [JSONValue], allNamespaces: Bool, now: Date = Date(),
                             nodeUsage: [String: NodeUsage] = [:]) -> Table {
        Table(headers: headers(kind, allNamespaces: allNamespaces),
              rows: objects.map { row(kind, $0, allNamespaces: allNamespaces, now: now, nodeUsage: nodeUsage) })
    }

    /// `Ready` or `NotReady`, with `,SchedulingDisabled` when cordoned.
    public static func nodeStatus(_ node: Node) -> String {
        var state = (node.status?.ready ?? false) ? "Ready" : "NotReady"
        if node.spec?.unschedulable == true { state += ",SchedulingDisabled" }
        return state
    }

    /// `cpu=4,memory=8Gi` as the node reported it; nil when it reported none.
    public static func resourcesText(_ list: ResourceList?) -> String? {
        let parts = [list?.cpu.map { "cpu=\($0)" }, list?.memory.map { "memory=\($0)" }].compactMap { $0 }
        return parts.isEmpty ? nil : parts.joined(separator: ",")
    }

    /// Convenience fields for scripts and tests: `name` and `namespace` for every kind (`""` for
    /// nodes), and the state that matters per kind (for replicas: deployment, node, phase, ready,
    /// address, ip, ports, restarts, pid, lastExitReason, message; for authorization policies: service, rules; for peer
    /// authentications: mode).
    public static func flatFields(_ kind: ResourceKind, _ object: JSONValue) -> [String: JSONValue] {
        let name = object["metadata"]?["name"]?.stringValue ?? ""
        let namespace = kind.isNamespaced ? (object["metadata"]?["namespace"]?.stringValue ?? defaultNamespace) : ""
        var fields: [String: JSONValue] = ["name": .string(name), "namespace": .string(namespace)]
        func optional(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        func int(_ value: Int) -> JSONValue { .int(Int64(value)) }
        switch kind {
        case .deployment:
            let deployment = decode(Deployment.self, object)
            fields["replicas"] = int(deployment?.spec.desiredReplicas ?? 0)
            fields["readyReplicas"] = int(deployment?.status?.readyReplicas ?? 0)
            fields["updatedReplicas"] = int(deployment?.status?.updatedReplicas ?? 0)
        case .service:
            let spec = decode(Service.self, object)?.spec
            fields["type"] = optional(spec?.serviceType.rawValue)
            fields["clusterIP"] = optional(spec?.clusterIP)
        case .replica:
            let replica = decode(Replica.self, object)
            fields["deployment"] = optional(replica?.spec.deployment)
            fields["node"] = optional(replica?.spec.node)
            fields["phase"] = .string(phase(replica))
            fields["ready"] = .bool(replica?.isReady ?? false)
            fields["address"] = optional(replica.flatMap(address))
            fields["ip"] = optional(replica?.status?.address)
            fields["ports"] = .object((replica?.status?.ports ?? [:]).mapValues { .int(Int64($0)) })
            fields["restarts"] = int(replica?.status?.restarts ?? 0)
            fields["pid"] = replica?.status?.pid.map(int) ?? .null
            fields["lastExitReason"] = optional(replica?.status?.lastExitReason)
            fields["message"] = optional(replica?.status?.message)
        case .node:
            let node = decode(Node.self, object)
            fields["ready"] = .bool(node?.status?.ready ?? false)
            fields["status"] = .string(node.map(nodeStatus) ?? "Unknown")
            fields["addresses"] = .array((node?.status?.addresses ?? []).map(JSONValue.string))
            fields["lastHeartbeat"] = optional(node?.status?.lastHeartbeat)
        case .endpoints:
            let endpoints = decode(Endpoints.self, object)?.endpoints ?? []
            fields["addresses"] = .array(endpoints.flatMap { endpoint in
                endpoint.ports.values.sorted().map { JSONValue.string(hostPort(endpoint.ip, $0)) }
            })
        case .authorizationPolicy:
            let spec = decode(AuthorizationPolicy.self, object)?.spec
            fields["service"] = optional(spec?.service)
            fields["rules"] = spec.map { int($0.allow.count) } ?? .null
        case .peerAuthentication:
            fields["mode"] = optional(decode(PeerAuthentication.self, object)?.spec.mtls.mode)
        case .configMap, .secret:
            fields["keys"] = .array((object["data"]?.objectValue ?? [:]).keys.sorted().map(JSONValue.string))
        }
        return fields
    }

    /// The object with `flatFields` added at its top level (the object's own fields win).
    public static func flattened(_ kind: ResourceKind, _ object: JSONValue) -> JSONValue {
        guard case .object(var members) = object else { return object }
        for (key, value) in flatFields(kind, object) where members[key] == nil {
            members[key] = value
        }
        return .object(members)
    }

    /// What a Secret's values are replaced with when they are not asked for.
    public static let redactedValue = "<redacted>"

    /// `object` with every value of a Secret's `data` (and `stringData`) replaced by ``redactedValue``;
    /// other kinds unchanged.
    public static func redacted(_ kind: ResourceKind, _ object: JSONValue) -> JSONValue {
        guard kind == .secret, case .object(var members) = object else { return object }
        for field in ["data", "stringData"] {
            if let values = members[field]?.objectValue {
                members[field] = .object(values.mapValues { _ in .string(redactedValue) })
            }
        }
        return .object(members)
    }

    /// `address:port` of a replica's first declared port, or its address alone when no port is known.
    public static func address(_ replica: Replica) -> String? {
        guard let address = replica.status?.address, !address.isEmpty else { return nil }
        let ports = replica.status?.ports ?? [:]
        let declared = (replica.spec.template.ports ?? []).map(\.name)
        guard let port = declared.lazy.compactMap({ ports[$0] }).first ?? ports.sorted(by: { $0.key < $1.key }).first?.value else {
            return address
        }
        return address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
    }

    /// The replica's phase, `Pending` before an agent has reported, `Terminating` once deletion began.
    public static func phase(_ replica: Replica?) -> String {
        guard let replica else { return "Unknown" }
        if replica.isTerminating { return ReplicaPhase.terminating.rawValue }
        return replica.status?.phase.rawValue ?? ReplicaPhase.pending.rawValue
    }

    /// What one rule of an AuthorizationPolicy in `namespace` allows, with bare service account names
    /// resolved: `service accounts default/frontend, payments/worker`, `any service account in namespace ops`.
    public static func ruleText(_ rule: AuthorizationRule, namespace: String) -> String {
        func list(_ noun: String, _ items: [String]) -> String {
            "\(noun)\(items.count == 1 ? "" : "s") \(items.joined(separator: ", "))"
        }
        switch (rule.serviceAccounts, rule.namespaces) {
        case (nil, nil):
            return "any mesh identity"
        case (nil, let namespaces?):
            return "any service account in " + list("namespace", namespaces)
        case (let accounts?, nil):
            return list("service account", accounts.map { $0.contains("/") ? $0 : "\(namespace)/\($0)" })
        case (let accounts?, let namespaces?):
            return list("service account", accounts) + " in " + list("namespace", namespaces)
        }
    }

    /// `ip:port` of every endpoint, at most five and a count of the rest, as kubectl shows them.
    static func endpointsText(_ endpoints: Endpoints) -> String {
        let all = endpoints.endpoints.flatMap { endpoint in endpoint.ports.values.sorted().map { hostPort(endpoint.ip, $0) } }
        if all.isEmpty { return "<none>" }
        return all.prefix(5).joined(separator: ",") + (all.count > 5 ? " + \(all.count - 5) more..." : "")
    }

    static func hostPort(_ ip: String, _ port: Int) -> String {
        ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    static func portsText(_ spec: ServiceSpec) -> String {
        let text = spec.ports.map { port -> String in
            var s = "\(port.port)"
            if let target = port.targetPort, target != .number(port.port) { s += ":\(target)" }
            return s + "/\(port.protocol ?? "TCP")"
        }.joined(separator: ",")
        return text.isEmpty ? "<none>" : text
    }

    static func selectorText(_ selector: [String: String]?) -> String {
        guard let selector, !selector.isEmpty else { return "<none>" }
        return selector.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    static func showsNamespace(_ kind: ResourceKind, _ allNamespaces: Bool) -> Bool { allNamespaces && kind.isNamespaced }

    /// Lenient decoding for display: unknown fields are ignored, failures give nil.
    public static func decode<T: Decodable>(_ type: T.Type, _ value: JSONValue?) -> T? {
        guard let value, let data = try? value.serialized() else { return nil }
        return try? JSONDecoder().decode(T.self, from: data)
    }
}
