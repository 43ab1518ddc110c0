import Foundation
import WeftCore

/// The text of `weft rollout status` and `weft rollout history`: pure, from the deployment and its replicas.
public enum RolloutText {
    /// Where the rollout stands: strategy, phase, step and weight, each version's replicas, weight and last
    /// analysis figures, and when the next step is due.
    public static func status(_ deployment: Deployment, replicas: [Replica], now: Date = Date()) -> String {
        let status = deployment.status
        let rollout = status?.rollout
        let strategy = deployment.spec.strategy
        let steps = strategy?.canary?.steps ?? []
        let currentHash = TemplateHash.of(deployment.spec.template)
        var lines: [String] = []

        var head = "deployment \(deployment.namespace)/\(deployment.name): \(strategy?.resolvedType ?? "RollingUpdate")"
        head += ", " + (rollout?.phase.rawValue ?? (status?.updatedReplicas == deployment.spec.desiredReplicas ? "Healthy" : "Progressing"))
        if rollout?.paused == true { head += " (paused by hand)" }
        lines.append(head)
        if rollout?.phase == .degraded, let message = rollout?.message, !message.isEmpty { lines.append("  reason: \(message)") }

        if let rollout, let canary = rollout.canaryRevision {
            if let step = rollout.currentStep, !steps.isEmpty {
                let text = step < steps.count ? stepText(steps[step]) : "done"
                lines.append("  step \(min(step + 1, steps.count))/\(steps.count): \(text); canary weight \(rollout.weight)%")
            }
            let rows = [
                versionRow("stable", revision: rollout.stableRevision, weight: 100 - rollout.weight, deployment: deployment, replicas: replicas, rollout: rollout),
                versionRow("canary", revision: canary, weight: rollout.weight, deployment: deployment, replicas: replicas, rollout: rollout),
            ]
            lines += Table(headers: ["VERSION", "REVISION", "READY", "WEIGHT", "SUCCESS", "P99", "REQUESTS"], rows: rows)
                .render().split(separator: "\n").map { "  " + $0 }
        } else if rollout?.phase == .degraded, let stable = rollout?.stableRevision {
            let mine = replicas.filter { $0.spec.templateHash == stable && !$0.isTerminating }
            lines.append("  stable revision \(revisionLabel(stable, deployment)) serves all traffic: \(mine.filter(\.isReady).count)/\(deployment.spec.desiredReplicas) replicas ready")
            lines.append("  revision \(revisionLabel(currentHash, deployment)) (the template) was aborted; apply a fixed template or `weft rollout undo \(deployment.name)`")
        } else {
            let current = replicas.filter { $0.spec.templateHash == currentHash && !$0.isTerminating }
            let old = replicas.filter { $0.spec.templateHash != currentHash && !$0.isTerminating }
            var line = "  \(current.filter(\.isReady).count)/\(deployment.spec.desiredReplicas) replicas of revision \(revisionLabel(currentHash, deployment)) ready"
            if !old.isEmpty { line += ", \(old.count) of older revisions still running" }
            lines.append(line)
        }
        if let analysis = rollout?.lastAnalysis, rollout?.canaryRevision != nil || rollout?.phase == .degraded {
            let limit = strategy?.canary?.analysis?.failures ?? CanaryAnalysis.defaultFailureLimit
            var line = "  analysis: \(analysis.outcome.rawValue) \(Age.since(analysis.at, now: now)) ago (failed intervals \(rollout?.failures ?? 0)/\(limit))"
            if let reason = analysis.reason { line += ": \(reason)" }
            lines.append(line)
        }
        if let next = rollout?.nextStepAt, let date = Age.parse(next), rollout?.phase == .progressing {
            lines.append("  next step in \(max(0, Int(date.timeIntervalSince(now).rounded(.up))))s")
        } else if rollout?.phase == .paused {
            lines.append("  waiting: `weft rollout promote \(deployment.name)` to go on, `weft rollout abort \(deployment.name)` to roll back")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `setWeight 10`, `pause 30s`, `pause (until promoted)`.
    public static func stepText(_ step: CanaryStep) -> String {
        if let weight = step.setWeight { return "setWeight \(weight)" }
        if let duration = step.pause?.duration { return "pause \(duration)" }
        return "pause (until promoted)"
    }

    static func versionRow(_ role: String, revision: String?, weight: Int, deployment: Deployment, replicas: [Replica], rollout: RolloutStatus) -> [String] {
        let mine = replicas.filter { $0.spec.templateHash == revision && !$0.isTerminating }
        let metrics = rollout.lastAnalysis?.versions.first { $0.revision == revision }
        return [
            role,
            revision.map { revisionLabel($0, deployment) } ?? "-",
            "\(mine.filter(\.isReady).count)/\(mine.count)",
            "\(weight)%",
            metrics?.successRate.map { String(format: "%.2f%%", $0 * 100) } ?? "-",
            metrics?.p99Ms.map { String(format: "%.1fms", $0) } ?? "-",
            metrics.map { String($0.requests) } ?? "-",
        ]
    }

    /// `3 (5f8c2d1a)`: the revision number from the history, and the template hash.
    static func revisionLabel(_ hash: String, _ deployment: Deployment) -> String {
        if let record = deployment.status?.history?.first(where: { $0.hash == hash }) { return "\(record.revision) (\(hash))" }
        return hash
    }

    /// The revisions a deployment has run, oldest first, with what changed from the one before.
    public static func history(_ deployment: Deployment, now: Date = Date()) -> String {
        let records = deployment.status?.history ?? []
        let current = TemplateHash.of(deployment.spec.template)
        let rollout = deployment.status?.rollout
        var rows: [[String]] = []
        for (i, record) in records.enumerated() {
            var marks: [String] = []
            if record.hash == current { marks.append("current") }
            if record.hash == rollout?.stableRevision { marks.append("stable") }
            if record.hash == rollout?.canaryRevision { marks.append("canary") }
            let change = i == 0 ? "first revision" : changeSummary(from: records[i - 1].template, to: record.template)
            rows.append([String(record.revision), record.hash, Age.since(record.createdAt, now: now), marks.joined(separator: ","), change])
        }
        if rows.isEmpty { return "deployment \(deployment.namespace)/\(deployment.name) has no recorded revisions yet\n" }
        return Table(headers: ["REVISION", "TEMPLATE", "AGE", "STATUS", "CHANGE"], rows: rows).render()
    }

    /// What differs between two templates, briefly: changed environment variables, command, ports, probes.
    static func changeSummary(from old: ReplicaTemplate, to new: ReplicaTemplate) -> String {
        var parts: [String] = []
        let before = Dictionary((old.spec.env ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        let after = Dictionary((new.spec.env ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        for name in Set(before.keys).union(after.keys).sorted() where before[name] != after[name] {
            parts.append(after[name].map { "\(name)=\($0)" } ?? "-\(name)")
        }
        if old.spec.command != new.spec.command || old.spec.args != new.spec.args { parts.append("command") }
        if old.spec.image != new.spec.image { parts.append("image=\(new.spec.image ?? "none")") }
        if old.spec.rootfs != new.spec.rootfs { parts.append("rootfs") }
        if old.spec.ports != new.spec.ports { parts.append("ports") }
        if old.spec.readinessProbe != new.spec.readinessProbe || old.spec.livenessProbe != new.spec.livenessProbe { parts.append("probes") }
        if old.metadata?.labels != new.metadata?.labels { parts.append("labels") }
        if parts.isEmpty { parts.append("other fields") }
        return parts.joined(separator: " ")
    }
}
