/// Rolling a deployment when a ConfigMap or Secret its template uses changes.
///
/// The control plane keeps a digest of the referenced objects' contents in the template's annotation
/// `weft.io/config-hash`; the template hash covers annotations, so a changed digest is a new template
/// revision that the deployment's strategy rolls out like any other change.
public enum ConfigRollout {
    /// Template annotation holding the digest of the referenced ConfigMaps and Secrets (set by Weft).
    public static let hashAnnotation = "weft.io/config-hash"
    /// Deployment annotation: `"false"` turns rolling on config changes off for that deployment.
    public static let enabledAnnotation = "weft.io/rollout-on-config-change"

    /// Whether `deployment` rolls when its configuration changes (default yes).
    public static func isEnabled(_ deployment: Deployment) -> Bool {
        deployment.metadata.annotations?[enabledAnnotation]?.lowercased() != "false"
    }

    /// The digest of the objects the template refers to: `digests` maps `ConfigMap/name` or `Secret/name`
    /// to a digest of the object's contents, nil when the object does not exist. Nil when the template
    /// refers to no object.
    public static func hash(_ references: ConfigReferences, digests: [String: String?]) -> String? {
        guard !references.isEmpty else { return nil }
        let names = references.configMaps.keys.map { "ConfigMap/\($0)" } + references.secrets.keys.map { "Secret/\($0)" }
        var text = ""
        for name in names.sorted() {
            text += "\(name)=\((digests[name] ?? nil) ?? "-")\n"
        }
        return TemplateHash.fnv(Array(text.utf8))
    }

    /// The template of `deployment` with the annotation set to `hash` (removed when nil or when the
    /// deployment opted out).
    public static func annotated(_ deployment: Deployment, hash: String?) -> ReplicaTemplate {
        var template = deployment.spec.template
        let wanted = isEnabled(deployment) ? hash : nil
        // A template that needs no change keeps its exact form, so its hash stays what it was.
        guard template.metadata?.annotations?[hashAnnotation] != wanted else { return template }
        var metadata = template.metadata ?? TemplateMetadata()
        var annotations = metadata.annotations ?? [:]
        annotations[hashAnnotation] = wanted
        metadata.annotations = annotations.isEmpty ? nil : annotations
        template.metadata = metadata
        return template
    }
}
