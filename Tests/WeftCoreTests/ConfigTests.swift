import Foundation
import Testing
@testable import WeftCore

@Suite struct ConfigManifestTests {
    @Test func configMapDecodesWithShortNames() throws {
        guard case .success(.configMap(let configMap)) = try decodeManifest("""
            {"apiVersion": "weft/v1", "kind": "ConfigMap", "metadata": {"name": "web-config"},
             "data": {"greeting": "hello", "app.properties": "a=1\\nb=2"}}
            """) else {
            Issue.record("ConfigMap was refused")
            return
        }
        #expect(configMap.namespace == "default")
        #expect(configMap.data?["greeting"] == "hello")
        #expect(ResourceKind(name: "cm") == .configMap)
        #expect(ResourceKind(name: "secret") == .secret)
        #expect(ResourceKind(name: "secrets") == .secret)
    }

    @Test func secretStringDataIsFoldedIntoBase64Data() throws {
        guard case .success(.secret(let secret)) = try decodeManifest("""
            {"apiVersion": "weft/v1", "kind": "Secret", "metadata": {"name": "db"},
             "data": {"user": "YWRtaW4="}, "stringData": {"password": "s3cret!"}}
            """) else {
            Issue.record("Secret was refused")
            return
        }
        #expect(secret.stringData == nil)
        #expect(secret.type == "Opaque")
        #expect(secret.data == ["user": "YWRtaW4=", "password": Data("s3cret!".utf8).base64EncodedString()])
        #expect(secret.contents["password"] == Data("s3cret!".utf8))
    }

    @Test func invalidBase64IsReportedWithItsPathAndWithoutTheValue() throws {
        let error = try manifestError("""
            {"apiVersion": "weft/v1", "kind": "Secret", "metadata": {"name": "db"}, "data": {"password": "not base64!!"}}
            """)
        expectSingleError(error.errors, path: "data.password", contains: "not valid base64")
        #expect(!error.description.contains("not base64!!"))
        #expect(error.description.hasPrefix("Secret/db: data.password: not valid base64"))
    }

    @Test(arguments: ["", "a/b", "..", "with space", "ünï"])
    func invalidKeysAreRefused(key: String) {
        let errors = Validation.validate(ConfigMap(metadata: ObjectMeta(name: "c", namespace: "default"), data: [key: "v"]))
        expectSingleError(errors, path: "data.\(key)", contains: "is not a valid key")
    }

    @Test func sizeLimitCountsAllValues() {
        let half = String(repeating: "x", count: Validation.maxConfigBytes / 2 + 1)
        let errors = Validation.validate(ConfigMap(metadata: ObjectMeta(name: "c", namespace: "default"), data: ["a": half, "b": half]))
        expectSingleError(errors, path: "data", contains: "more than the limit")
        let secret = Secret(metadata: ObjectMeta(name: "s", namespace: "default"), stringData: ["a": half, "b": half])
        expectSingleError(Validation.validate(secret), path: "data", contains: "more than the limit")
    }
}

@Suite struct ConfigUseValidationTests {
    func deployment(_ edit: (inout WorkloadSpec) -> Void) -> [FieldError] {
        var deployment = validDeployment()
        edit(&deployment.spec.template.spec)
        return Validation.validate(deployment)
    }

    @Test func validReferencesPass() {
        let errors = deployment { spec in
            spec.env = [EnvVar(name: "GREETING", value: nil, valueFrom: EnvVarSource(configMapKeyRef: KeySelector(name: "web-config", key: "greeting"))),
                        EnvVar(name: "PASSWORD", value: nil, valueFrom: EnvVarSource(secretKeyRef: KeySelector(name: "db", key: "password")))]
            spec.envFrom = [EnvFromSource(prefix: "CFG_", configMapRef: ObjectReference(name: "web-config"))]
            spec.volumes = [Volume(name: "config", configMap: ConfigMapVolumeSource(name: "web-config", items: [KeyToPath(key: "greeting", path: "conf/greeting.txt")])),
                            Volume(name: "creds", secret: SecretVolumeSource(secretName: "db"))]
            spec.volumeMounts = [VolumeMount(name: "config", mountPath: "/etc/web"), VolumeMount(name: "creds", mountPath: "/run/secrets/db", readOnly: true)]
        }
        #expect(errors.isEmpty, "\(errors)")
    }

    @Test func mountOfUnknownVolumeNamesThePath() {
        let errors = deployment { spec in
            spec.volumes = [Volume(name: "config", configMap: ConfigMapVolumeSource(name: "web-config"))]
            spec.volumeMounts = [VolumeMount(name: "conf", mountPath: "/etc/web")]
        }
        expectSingleError(errors, path: "spec.template.spec.volumeMounts[0].name", contains: "names no volume \"conf\" (volumes: config)")
    }

    @Test func valueFromNeedsExactlyOneSource() {
        let both = deployment { spec in
            spec.env = [EnvVar(name: "X", value: nil, valueFrom: EnvVarSource(configMapKeyRef: KeySelector(name: "a", key: "k"),
                                                                              secretKeyRef: KeySelector(name: "b", key: "k")))]
        }
        expectSingleError(both, path: "spec.template.spec.env[0].valueFrom", contains: "exactly one of configMapKeyRef or secretKeyRef (2 set)")
        let withValue = deployment { spec in
            spec.env = [EnvVar(name: "X", value: "v", valueFrom: EnvVarSource(configMapKeyRef: KeySelector(name: "a", key: "k")))]
        }
        expectSingleError(withValue, path: "spec.template.spec.env[0]", contains: "both value and valueFrom")
        let badKey = deployment { spec in
            spec.env = [EnvVar(name: "X", value: nil, valueFrom: EnvVarSource(secretKeyRef: KeySelector(name: "db", key: "a/b")))]
        }
        expectSingleError(badKey, path: "spec.template.spec.env[0].valueFrom.secretKeyRef.key", contains: "is not a valid key")
    }

    @Test func volumeRules() {
        let errors = deployment { spec in
            spec.volumes = [Volume(name: "a"), Volume(name: "b", configMap: ConfigMapVolumeSource(name: "c", items: [KeyToPath(key: "k", path: "../escape")]))]
            spec.volumeMounts = [VolumeMount(name: "b", mountPath: "relative")]
        }
        #expect(errors.map(\.path) == ["spec.template.spec.volumes[0]", "spec.template.spec.volumes[1].configMap.items[0].path",
                                       "spec.template.spec.volumeMounts[0].mountPath"])
    }

    @Test func unknownFieldInVolumeIsRefusedByTheDecoder() throws {
        let error = try manifestError("""
            {"apiVersion": "weft/v1", "kind": "Deployment", "metadata": {"name": "web"},
             "spec": {"template": {"metadata": {"labels": {"app": "web"}},
               "spec": {"command": ["/bin/web"], "volumes": [{"name": "c", "configMap": {"nmae": "x"}}]}}}}
            """)
        #expect(error.errors.first?.path == "spec.template.spec.volumes[0].configMap.nmae")
    }
}

@Suite struct ReplicaConfigTests {
    let workload = WorkloadSpec(
        command: ["/bin/web"],
        env: [EnvVar(name: "GREETING", value: nil, valueFrom: EnvVarSource(configMapKeyRef: KeySelector(name: "web", key: "greeting"))),
              EnvVar(name: "OPTIONAL", value: nil, valueFrom: EnvVarSource(secretKeyRef: KeySelector(name: "gone", key: "x", optional: true)))],
        envFrom: [EnvFromSource(prefix: "DB_", secretRef: ObjectReference(name: "db"))],
        volumes: [Volume(name: "creds", secret: SecretVolumeSource(secretName: "db", items: [KeyToPath(key: "password", path: "pw")]))])

    @Test func environmentAndFilesComeFromTheObjects() throws {
        let config = ReplicaConfig(configMaps: ["web": ["greeting": Data("hello".utf8)]],
                                   secrets: ["db": ["password": Data("s3cret".utf8), "bad-name": Data("x".utf8)], "gone": nil])
        let env = try config.environment(for: workload)
        #expect(env == ["GREETING": "hello", "DB_password": "s3cret"])
        let files = try config.files(of: workload.volumes![0])
        #expect(files == [ReplicaConfig.File(path: "pw", contents: Data("s3cret".utf8))])
    }

    @Test func missingRequiredObjectOrKeyIsTheReason() {
        let noConfigMap = ReplicaConfig(configMaps: ["web": nil], secrets: ["db": [:], "gone": nil])
        #expect(throws: ReplicaConfig.Unavailable("configmap \"web\" not found")) { try noConfigMap.environment(for: workload) }
        let noKey = ReplicaConfig(configMaps: ["web": [:]], secrets: ["db": [:], "gone": nil])
        #expect(throws: ReplicaConfig.Unavailable("key \"greeting\" not found in configmap \"web\" (for variable GREETING)")) {
            try noKey.environment(for: workload)
        }
        #expect(throws: ReplicaConfig.Unavailable("key \"password\" not found in secret \"db\" (for volume creds)")) {
            try noKey.files(of: workload.volumes![0])
        }
    }

    @Test func referencesCollectEveryUse() {
        let references = ConfigReferences(workload)
        #expect(references.configMaps == ["web": true])
        #expect(references.secrets == ["db": true, "gone": false])
    }
}

@Suite struct ConfigRolloutTests {
    func deployment() -> Deployment {
        var deployment = validDeployment()
        deployment.spec.template.spec.envFrom = [EnvFromSource(configMapRef: ObjectReference(name: "web-config"))]
        return deployment
    }

    @Test func templateHashChangesWhenReferencedConfigChanges() {
        let deployment = deployment()
        let references = ConfigReferences(deployment.spec.template.spec)
        let before = ConfigRollout.annotated(deployment, hash: ConfigRollout.hash(references, digests: ["ConfigMap/web-config": "aaaa"]))
        let same = ConfigRollout.annotated(deployment, hash: ConfigRollout.hash(references, digests: ["ConfigMap/web-config": "aaaa"]))
        let after = ConfigRollout.annotated(deployment, hash: ConfigRollout.hash(references, digests: ["ConfigMap/web-config": "bbbb"]))
        let missing = ConfigRollout.annotated(deployment, hash: ConfigRollout.hash(references, digests: ["ConfigMap/web-config": nil]))
        #expect(TemplateHash.of(before) == TemplateHash.of(same))
        #expect(TemplateHash.of(before) != TemplateHash.of(after))
        #expect(TemplateHash.of(before) != TemplateHash.of(missing))
        #expect(before.metadata?.annotations?[ConfigRollout.hashAnnotation] != nil)
    }

    @Test func optOutAndNoReferencesLeaveTheTemplateAlone() {
        var optedOut = deployment()
        optedOut.metadata.annotations = [ConfigRollout.enabledAnnotation: "false"]
        #expect(ConfigRollout.annotated(optedOut, hash: "abc") == optedOut.spec.template)
        let plain = validDeployment()
        #expect(ConfigRollout.hash(ConfigReferences(plain.spec.template.spec), digests: [:]) == nil)
        #expect(ConfigRollout.annotated(plain, hash: nil) == plain.spec.template)
        // An empty annotations map is kept as it is: the template hash of an unrelated deployment never moves.
        var empty = validDeployment()
        empty.spec.template.metadata?.annotations = [:]
        #expect(TemplateHash.of(ConfigRollout.annotated(empty, hash: nil)) == TemplateHash.of(empty.spec.template))
    }
}
