import Foundation

/// RFC 3339 times as rollout status and events carry them.
public enum RolloutTime {
    /// Whole seconds, as `metadata.creationTimestamp`: `2026-11-23T21:54:56Z`.
    public static func text(_ date: Date) -> String { date.formatted(.iso8601) }

    /// With milliseconds, for due times a timer waits for (`nextStepAt`).
    public static func preciseText(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    /// Reads either form back; nil when `text` is neither.
    public static func parse(_ text: String) -> Date? {
        (try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))) ?? (try? Date(text, strategy: .iso8601))
    }
}

/// What the rollout controller should record and do for one deployment at one moment.
public struct RolloutDecision: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable {
        case none
        /// A canary of the current template started.
        case started
        /// The canary became the stable version.
        case promoted
        /// The canary was aborted; its replicas go.
        case aborted
    }

    public var rollout: RolloutStatus
    /// Events to append to `status.events`, oldest first.
    public var events: [RolloutEvent]
    public var history: [RevisionRecord]
    public var outcome: Outcome
    /// When a timed pause ends: the controller must look again then.
    public var wakeAt: Date?

    /// Whether a canary runs that carries traffic: analysis intervals are measured while it does.
    public var analysing: Bool { rollout.canaryRevision != nil && rollout.weight > 0 }

    /// `status` with this decision's rollout, history and events (the newest `RolloutEvent.limit` kept).
    public func applied(to status: DeploymentStatus) -> DeploymentStatus {
        var status = status
        status.rollout = rollout
        status.history = history
        status.events = RolloutEvent.appending(events, to: status.events)
        return status
    }
}

extension RolloutEvent {
    /// `existing` followed by `new`, keeping the newest `limit`; nil when there are none.
    public static func appending(_ new: [RolloutEvent], to existing: [RolloutEvent]?) -> [RolloutEvent]? {
        let all = (existing ?? []) + new
        return all.isEmpty ? nil : Array(all.suffix(limit))
    }
}

extension RevisionRecord {
    /// `history` with `hash` as its newest revision: a new template gets the next number; one run before
    /// moves to the next number (as `kubectl rollout history` shows a rolled-back template). The oldest
    /// records beyond `limit` are dropped, except those of `keeping` (the stable template, whose replicas
    /// may have to be re-created).
    public static func recording(_ hash: String, template: ReplicaTemplate, in history: [RevisionRecord], at time: String,
                                 keeping: Set<String> = []) -> [RevisionRecord] {
        guard history.last?.hash != hash else { return history }
        var history = history
        let next = (history.map(\.revision).max() ?? 0) + 1
        if let index = history.firstIndex(where: { $0.hash == hash }) {
            var record = history.remove(at: index)
            record.revision = next
            history.append(record)
        } else {
            history.append(RevisionRecord(revision: next, hash: hash, template: template, createdAt: time))
        }
        while history.count > limit, let oldest = history.firstIndex(where: { !keeping.contains($0.hash) }) {
            history.remove(at: oldest)
        }
        return history
    }
}

/// The rollout state machine: from a deployment's spec and status, the replicas that exist, the time
/// and the analysis interval that just ended, decides the next `status.rollout`, the events to record
/// and what changes. Pure; the controller calls it on every reconcile and carries the decision out.
///
/// A canary starts when the template's hash differs from the stable one, walks its steps (a `setWeight`
/// step waits for the canary replicas that weight needs to be ready; a timed pause for its end; a pause
/// without a duration for `promote`), and is promoted after the last step. Failed analysis intervals up
/// to `failureLimit`, or `abort`, abort it; an aborted template stays aborted until the template changes.
/// Rolling updates and recreates are only recorded: Progressing while old replicas exist or new ones are
/// not ready, then Healthy.
public enum RolloutProgress {
    public struct Input: Sendable {
        public var deployment: Deployment
        /// `TemplateHash.of(deployment.spec.template)`.
        public var templateHash: String
        public var replicas: [DeploymentPlan.ReplicaView]
        public var now: Date
        /// The analysis interval that ended just now, if one did.
        public var analysis: AnalysisRun?

        public init(deployment: Deployment, templateHash: String, replicas: [DeploymentPlan.ReplicaView], now: Date, analysis: AnalysisRun? = nil) {
            self.deployment = deployment
            self.templateHash = templateHash
            self.replicas = replicas
            self.now = now
            self.analysis = analysis
        }
    }

    /// Canary replicas for `weight` percent of `desired`: rounded up, at least one for any weight above 0.
    public static func canaryReplicas(desired: Int, weight: Int) -> Int {
        guard desired > 0, weight > 0 else { return 0 }
        return max(1, (desired * min(weight, 100) + 99) / 100)
    }

    public static func decide(_ input: Input) -> RolloutDecision {
        var machine = Machine(input)
        machine.run()
        return RolloutDecision(rollout: machine.rollout, events: machine.events, history: machine.history, outcome: machine.outcome, wakeAt: machine.wakeAt)
    }

    /// One decision being worked out.
    private struct Machine {
        let input: Input
        let hash: String
        let time: String
        let live: [DeploymentPlan.ReplicaView]
        var rollout: RolloutStatus
        var history: [RevisionRecord]
        var events: [RolloutEvent] = []
        var outcome = RolloutDecision.Outcome.none
        var wakeAt: Date?

        init(_ input: Input) {
            self.input = input
            hash = input.templateHash
            time = RolloutTime.text(input.now)
            live = input.replicas.filter { !$0.terminating && !$0.lost }
            let previous = input.deployment.status?.rollout
            rollout = previous ?? RolloutStatus(phase: .progressing)
            // No rollout recorded before: the current template is the stable one, with no canary.
            if rollout.stableRevision == nil { rollout.stableRevision = input.templateHash }
            let keep = Set([rollout.stableRevision, rollout.canaryRevision].compactMap { $0 })
            history = RevisionRecord.recording(input.templateHash, template: input.deployment.spec.template,
                                               in: input.deployment.status?.history ?? [], at: time, keeping: keep)
        }

        var deployment: Deployment { input.deployment }
        var desired: Int { deployment.spec.desiredReplicas }
        var steps: [CanaryStep] { deployment.spec.strategy?.canary?.steps ?? [] }
        var analysis: CanaryAnalysis { deployment.spec.strategy?.canary?.analysis ?? CanaryAnalysis() }

        func label(_ revision: String) -> String {
            history.first { $0.hash == revision }.map { "revision \($0.revision) (\(revision))" } ?? "revision \(revision)"
        }

        func ready(_ revision: String) -> Int { live.filter { $0.templateHash == revision && $0.ready }.count }

        /// Only the current template runs, with every desired replica ready.
        var settled: Bool { live.allSatisfy { $0.templateHash == hash } && ready(hash) >= desired }

        mutating func record(_ reason: String, _ message: String, warning: Bool = false) {
            events.append(RolloutEvent(time: time, type: warning ? "Warning" : "Normal", reason: reason, message: message))
        }

        mutating func run() {
            let stable = rollout.stableRevision ?? hash
            if deployment.spec.strategy?.resolvedType != "Canary" {
                if let canary = rollout.canaryRevision {
                    record("CanaryCancelled", "the strategy is no longer Canary; canary \(label(canary)) is replaced by a \(deployment.spec.strategy?.resolvedType ?? "RollingUpdate")")
                    clearCanary()
                }
                if stable != hash { startReplacement(from: stable) }
                settle()
            } else if hash == stable {
                // Back on the stable template: a template aborted before may be tried again later.
                rollout.abortedRevision = nil
                if let canary = rollout.canaryRevision {
                    record("CanaryCancelled", "the template is back to stable \(label(stable)); canary \(label(canary)) is removed")
                    clearCanary()
                    rollout.phase = .progressing
                }
                settle()
            } else if rollout.abortedRevision == hash {
                // Stays aborted until the template changes; requests made meanwhile have nothing to act on.
                rollout.promote = nil
                rollout.abortRequested = nil
                rollout.paused = nil
            } else {
                if rollout.canaryRevision != hash { startCanary(stable: stable) }
                progressCanary()
            }
        }

        /// A rolling update or recreate toward the current template begins.
        mutating func startReplacement(from stable: String) {
            let kind = deployment.spec.strategy?.resolvedType == "Recreate" ? "recreate" : "rolling update"
            record("RolloutStarted", "\(kind) from \(label(stable)) to \(label(hash))")
            rollout = RolloutStatus(phase: .progressing, stableRevision: hash, message: "\(kind) to \(label(hash))")
        }

        /// Healthy once only the current template runs, all ready; a Healthy rollout stays so until the next
        /// template change.
        mutating func settle() {
            guard rollout.phase != .healthy else { return }
            if settled {
                rollout.phase = .healthy
                rollout.message = nil
                record("RolloutCompleted", "\(label(hash)): \(ready(hash))/\(desired) replicas ready")
            } else if rollout.phase != .progressing {
                rollout.phase = .progressing
                rollout.message = nil
            }
        }

        mutating func startCanary(stable: String) {
            var message = "canary \(label(hash)) started beside stable \(label(stable)): \(steps.count) step\(steps.count == 1 ? "" : "s")"
            if let replaced = rollout.canaryRevision { message += "; it replaces canary \(label(replaced))" }
            rollout = RolloutStatus(phase: .progressing, stableRevision: stable, canaryRevision: hash, currentStep: 0, weight: 0, stepStartedAt: time)
            record("CanaryStarted", message)
            outcome = .started
        }

        mutating func progressCanary() {
            if rollout.abortRequested == true {
                abort("aborted by hand (weft rollout abort)")
                return
            }
            if let run = input.analysis {
                rollout.lastAnalysis = run
                if run.outcome == .failed {
                    rollout.failures += 1
                    let reason = run.reason ?? "a threshold was broken"
                    record("AnalysisFailed", "analysis failed (\(rollout.failures)/\(analysis.failures)): \(reason)", warning: true)
                    if rollout.failures >= analysis.failures {
                        abort("analysis failed \(rollout.failures) time\(rollout.failures == 1 ? "" : "s"): \(reason)")
                        return
                    }
                }
            }
            if rollout.promote == .full {
                let remaining = steps.count - (rollout.currentStep ?? 0)
                promote("promoted by hand, skipping \(remaining) remaining step\(remaining == 1 ? "" : "s")")
                return
            }
            var stepRequested = rollout.promote == .step
            if stepRequested { rollout.paused = nil }
            rollout.promote = nil
            let userPaused = rollout.paused == true
            var waiting: (phase: RolloutPhase, message: String)?
            while let index = rollout.currentStep, index < steps.count {
                let step = steps[index]
                let place = "step \(index + 1)/\(steps.count)"
                if let weight = step.setWeight {
                    rollout.weight = weight
                    let needed = RolloutProgress.canaryReplicas(desired: desired, weight: weight)
                    let readyCanaries = ready(hash)
                    if !stepRequested {
                        if readyCanaries < needed {
                            waiting = (.progressing, "\(place): \(readyCanaries)/\(needed) canary replicas ready for weight \(weight)%")
                            break
                        }
                        if userPaused { break }
                    }
                } else if let duration = step.pause?.duration.flatMap(DurationText.parse) {
                    let end = rollout.nextStepAt.flatMap(RolloutTime.parse) ?? input.now.addingTimeInterval(duration.timeInterval)
                    rollout.nextStepAt = RolloutTime.preciseText(end)
                    if !stepRequested {
                        if input.now < end {
                            waiting = (.progressing, "\(place): pausing until \(RolloutTime.text(end))")
                            if !userPaused { wakeAt = end }
                            break
                        }
                        if userPaused { break }
                    }
                } else if !stepRequested {
                    waiting = (.paused, "\(place): paused until `weft rollout promote`")
                    break
                }
                stepRequested = false
                rollout.currentStep = index + 1
                rollout.stepStartedAt = time
                rollout.nextStepAt = nil
                record("StepAdvanced", "\(place) (\(Self.describe(step))) done; canary at \(rollout.weight)%")
            }
            if let index = rollout.currentStep, index >= steps.count {
                promote("all \(steps.count) step\(steps.count == 1 ? "" : "s") done")
                return
            }
            if userPaused {
                rollout.phase = .paused
                rollout.message = "paused by `weft rollout pause`; `weft rollout resume` continues" + (waiting.map { " (\($0.message))" } ?? "")
            } else {
                rollout.phase = waiting?.phase ?? .progressing
                rollout.message = waiting?.message
            }
        }

        static func describe(_ step: CanaryStep) -> String {
            if let weight = step.setWeight { return "setWeight \(weight)" }
            if let duration = step.pause?.duration { return "pause \(duration)" }
            return "pause"
        }

        mutating func promote(_ why: String) {
            guard let canary = rollout.canaryRevision else { return }
            let stable = rollout.stableRevision.map(label) ?? "the old revision"
            record("Promoted", "\(label(canary)) is now stable (\(why)); the replicas of \(stable) are replaced")
            clearCanary()
            rollout.currentStep = steps.count
            rollout.stableRevision = canary
            rollout.phase = .healthy
            rollout.message = nil
            outcome = .promoted
        }

        mutating func abort(_ reason: String) {
            guard let canary = rollout.canaryRevision else { return }
            let stable = rollout.stableRevision.map(label) ?? "the stable revision"
            record("Aborted", "canary \(label(canary)) aborted: \(reason); \(stable) serves all traffic", warning: true)
            clearCanary()
            rollout.abortedRevision = canary
            rollout.phase = .degraded
            rollout.message = reason
            outcome = .aborted
        }

        mutating func clearCanary() {
            rollout.canaryRevision = nil
            rollout.currentStep = nil
            rollout.weight = 0
            rollout.stepStartedAt = nil
            rollout.nextStepAt = nil
            rollout.paused = nil
            rollout.promote = nil
            rollout.abortRequested = nil
        }
    }
}

extension Duration {
    /// Whole and fractional seconds, for `Date` arithmetic.
    public var timeInterval: TimeInterval {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
