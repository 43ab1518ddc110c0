import Foundation

/// What a user asks of a deployment's rollout (`weft rollout ...`, `POST .../deployments/{name}/rollout`).
/// Applying one only records the request in the deployment; the controller acts on it.
public enum RolloutAction: Sendable, Hashable {
    /// Go to the next step now, or (`full`) skip the remaining steps and promote.
    case promote(full: Bool)
    /// Stop the canary: its replicas go, the stable version takes all traffic.
    case abort
    /// Stop advancing steps (analysis still runs and may abort).
    case pause
    /// Undo `pause`.
    case resume
    /// Set the template back to the previous revision's, or to revision `toRevision`.
    case undo(toRevision: Int?)

    public static let names = ["promote", "abort", "pause", "resume", "undo"]

    /// The action a request body names; `full` applies only to promote, `toRevision` only to undo.
    public init(name: String, full: Bool? = nil, toRevision: Int? = nil) throws(RolloutActionError) {
        if full != nil && name != "promote" {
            throw RolloutActionError(code: 422, path: "full", message: "applies only to action promote, not \(name)")
        }
        if toRevision != nil && name != "undo" {
            throw RolloutActionError(code: 422, path: "toRevision", message: "applies only to action undo, not \(name)")
        }
        switch name {
        case "promote": self = .promote(full: full ?? false)
        case "abort": self = .abort
        case "pause": self = .pause
        case "resume": self = .resume
        case "undo":
            if let toRevision, toRevision < 1 {
                throw RolloutActionError(code: 422, path: "toRevision", message: "must be a revision number (1 or more), got \(toRevision)")
            }
            self = .undo(toRevision: toRevision)
        default:
            throw RolloutActionError(code: 422, path: "action",
                                     message: "unknown action \"\(name)\"; valid actions: \(Self.names.joined(separator: ", "))")
        }
    }

    /// Records the action in `deployment` (an event, and the request in `status.rollout` or, for undo, the
    /// template in `spec`). Throws with code 409 when it does not apply to the rollout's state.
    public func apply(to deployment: inout Deployment, now: Date) throws(RolloutActionError) {
        let id = "deployment \(deployment.namespace)/\(deployment.name)"
        let time = RolloutTime.text(now)
        var status = deployment.status ?? DeploymentStatus()
        var event: RolloutEvent
        if case .undo(let toRevision) = self {
            let current = TemplateHash.of(deployment.spec.template)
            let history = status.history ?? []
            let target: RevisionRecord
            if let toRevision {
                guard let record = history.first(where: { $0.revision == toRevision }) else {
                    let kept = history.map { String($0.revision) }.joined(separator: ", ")
                    throw RolloutActionError(code: 409, path: "toRevision",
                                             message: "\(id) has no revision \(toRevision); it keeps revisions \(kept.isEmpty ? "none" : kept) (see weft rollout history)")
                }
                guard record.hash != current else {
                    throw RolloutActionError(code: 409, message: "\(id) already runs revision \(toRevision) (\(current)); nothing to undo")
                }
                target = record
            } else {
                guard let record = history.last(where: { $0.hash != current }) else {
                    throw RolloutActionError(code: 409, message: "\(id) has no earlier revision to go back to; apply the template you want instead")
                }
                target = record
            }
            deployment.spec.template = target.template
            deployment.metadata.generation = (deployment.metadata.generation ?? 1) + 1
            event = RolloutEvent(time: time, reason: "UndoRequested", message: "template set back to revision \(target.revision) (\(target.hash)) by weft rollout undo")
        } else {
            guard var rollout = status.rollout, let canary = rollout.canaryRevision else {
                throw RolloutActionError(code: 409, message: noCanaryMessage(id, status.rollout))
            }
            switch self {
            case .promote(let full):
                rollout.promote = full || rollout.promote == .full ? .full : .step
                event = RolloutEvent(time: time, reason: "PromoteRequested",
                                     message: full ? "promote of canary \(canary) requested, skipping the remaining steps" : "promote of canary \(canary) to the next step requested")
            case .abort:
                rollout.abortRequested = true
                event = RolloutEvent(time: time, type: "Warning", reason: "AbortRequested", message: "abort of canary \(canary) requested")
            case .pause:
                guard rollout.paused != true else { return }
                rollout.paused = true
                event = RolloutEvent(time: time, reason: "PauseRequested", message: "canary \(canary) paused by weft rollout pause")
            case .resume:
                guard rollout.paused == true else {
                    throw RolloutActionError(code: 409, message: "\(id) is not paused; nothing to resume (a pause step without a duration continues with weft rollout promote)")
                }
                rollout.paused = nil
                event = RolloutEvent(time: time, reason: "ResumeRequested", message: "canary \(canary) resumed")
            case .undo:
                preconditionFailure("handled above")
            }
            status.rollout = rollout
        }
        status.events = RolloutEvent.appending([event], to: status.events)
        deployment.status = status
    }

    private func noCanaryMessage(_ id: String, _ rollout: RolloutStatus?) -> String {
        let verb: String
        switch self {
        case .promote: verb = "nothing to promote"
        case .abort: verb = "nothing to abort"
        case .pause: verb = "nothing to pause"
        default: verb = "nothing to resume"
        }
        var message = "\(id) has no canary in progress; \(verb)"
        if let aborted = rollout?.abortedRevision, rollout?.phase == .degraded {
            message += " (canary \(aborted) was aborted; weft rollout undo or a new apply starts over)"
        } else {
            message += " (a canary starts when a new template is applied with strategy type Canary)"
        }
        return message
    }
}

/// A rollout action that cannot be applied: 409 when it does not fit the rollout's state, 422 when the
/// request itself is wrong (`path` names the field).
public struct RolloutActionError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: Int
    public var path: String?
    public var message: String

    public init(code: Int, path: String? = nil, message: String) {
        self.code = code
        self.path = path
        self.message = message
    }

    public var description: String { path.map { "\($0): \(message)" } ?? message }
}
