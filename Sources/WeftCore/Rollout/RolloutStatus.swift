/// Where a deployment's rollout stands, kept by the rollout controller in `status.rollout`.
public struct RolloutStatus: Codable, Sendable, Hashable {
    public var phase: RolloutPhase
    /// Template hash of the replicas that carry the stable share of the traffic.
    public var stableRevision: String?
    /// Template hash under test; nil when no canary runs.
    public var canaryRevision: String?
    /// Index of the step being carried out (`steps.count` once every step is done).
    public var currentStep: Int?
    /// The canary's share of requests, 0–100.
    public var weight: Int
    /// RFC 3339 time the current step began.
    public var stepStartedAt: String?
    /// RFC 3339 time a timed pause ends and the next step begins.
    public var nextStepAt: String?
    /// Paused by `weft rollout pause`: no step advances (analysis still runs and may abort).
    public var paused: Bool?
    /// Set by `weft rollout promote`, cleared by the controller once acted on.
    public var promote: PromoteRequest?
    /// Set by `weft rollout abort`, cleared by the controller once acted on.
    public var abortRequested: Bool?
    /// Analysis intervals of this canary that failed.
    public var failures: Int
    /// The latest analysis interval's outcome and figures.
    public var lastAnalysis: AnalysisRun?
    /// Why the rollout is in its phase (for Degraded: what failed).
    public var message: String?
    /// Template hash of the last canary that was aborted: no new canary starts for it until the template
    /// changes (`weft rollout undo` or a new apply).
    public var abortedRevision: String?

    public init(phase: RolloutPhase, stableRevision: String? = nil, canaryRevision: String? = nil, currentStep: Int? = nil, weight: Int = 0,
                stepStartedAt: String? = nil, nextStepAt: String? = nil, paused: Bool? = nil, promote: PromoteRequest? = nil,
                abortRequested: Bool? = nil, failures: Int = 0, lastAnalysis: AnalysisRun? = nil, message: String? = nil,
                abortedRevision: String? = nil) {
        self.phase = phase
        self.stableRevision = stableRevision
        self.canaryRevision = canaryRevision
        self.currentStep = currentStep
        self.weight = weight
        self.stepStartedAt = stepStartedAt
        self.nextStepAt = nextStepAt
        self.paused = paused
        self.promote = promote
        self.abortRequested = abortRequested
        self.failures = failures
        self.lastAnalysis = lastAnalysis
        self.message = message
        self.abortedRevision = abortedRevision
    }
}

public enum RolloutPhase: String, Codable, Sendable, CaseIterable {
    /// A canary or rolling update is under way.
    case progressing = "Progressing"
    /// Waiting: a pause step without a duration, or `weft rollout pause`.
    case paused = "Paused"
    /// Every replica runs the current template.
    case healthy = "Healthy"
    /// The canary was aborted (by analysis or by hand): the stable version serves all traffic.
    case degraded = "Degraded"
}

/// `step`: go to the next step now; `full`: skip the remaining steps and analysis.
public enum PromoteRequest: String, Codable, Sendable, CaseIterable {
    case step
    case full
}

/// One analysis interval.
public struct AnalysisRun: Codable, Sendable, Hashable {
    /// RFC 3339 time the interval ended.
    public var at: String
    public var outcome: AnalysisOutcome
    /// Which threshold failed, or why the interval was inconclusive.
    public var reason: String?
    /// Figures per version over the interval (stable and canary).
    public var versions: [VersionMetrics]

    public init(at: String, outcome: AnalysisOutcome, reason: String? = nil, versions: [VersionMetrics]) {
        self.at = at
        self.outcome = outcome
        self.reason = reason
        self.versions = versions
    }
}

public enum AnalysisOutcome: String, Codable, Sendable {
    case passed = "Passed"
    case failed = "Failed"
    case inconclusive = "Inconclusive"
}

/// Requests, success rate and p99 latency of one version over an interval, across every node.
public struct VersionMetrics: Codable, Sendable, Hashable {
    public var revision: String
    /// `stable` or `canary`.
    public var role: String
    public var requests: Int
    /// Share of requests answered without 5xx or failure; nil without requests.
    public var successRate: Double?
    /// 99th-percentile latency in milliseconds; nil without requests.
    public var p99Ms: Double?

    public init(revision: String, role: String, requests: Int, successRate: Double? = nil, p99Ms: Double? = nil) {
        self.revision = revision
        self.role = role
        self.requests = requests
        self.successRate = successRate
        self.p99Ms = p99Ms
    }
}

/// Something that happened to a rollout, shown by `weft describe deployment` (newest last).
public struct RolloutEvent: Codable, Sendable, Hashable {
    /// RFC 3339.
    public var time: String
    /// `Normal` or `Warning`.
    public var type: String
    /// A CamelCase word: `CanaryStarted`, `StepAdvanced`, `AnalysisFailed`, `Aborted`, `Promoted`, ...
    public var reason: String
    public var message: String

    public init(time: String, type: String = "Normal", reason: String, message: String) {
        self.time = time
        self.type = type
        self.reason = reason
        self.message = message
    }

    /// How many events a deployment keeps.
    public static let limit = 50
}

/// A template the deployment has run, for `weft rollout history` and `undo`, and so that stable replicas
/// can be re-created from it while a canary runs.
public struct RevisionRecord: Codable, Sendable, Hashable {
    /// 1, 2, 3, ... in the order templates were first applied.
    public var revision: Int
    /// The template hash (replica names and `status.rollout` use it).
    public var hash: String
    public var template: ReplicaTemplate
    /// RFC 3339 time it was first applied.
    public var createdAt: String

    public init(revision: Int, hash: String, template: ReplicaTemplate, createdAt: String) {
        self.revision = revision
        self.hash = hash
        self.template = template
        self.createdAt = createdAt
    }

    /// How many revisions a deployment keeps.
    public static let limit = 10
}
