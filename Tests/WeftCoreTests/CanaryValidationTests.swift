import Testing
@testable import WeftCore

@Suite("Canary strategy validation")
struct CanaryValidationTests {
    private static func canary(_ steps: [CanaryStep], analysis: CanaryAnalysis? = nil, type: String? = nil) -> DeploymentStrategy {
        DeploymentStrategy(type: type, canary: CanaryStrategy(steps: steps, analysis: analysis))
    }

    static let rules: [DeploymentRule] = [
        DeploymentRule("weight above 100", "spec.strategy.canary.steps[2].setWeight", "must be between 0 and 100") {
            $0.spec.strategy = canary([CanaryStep(setWeight: 10), CanaryStep(pause: CanaryPause()), CanaryStep(setWeight: 101)])
        },
        DeploymentRule("weight negative", "spec.strategy.canary.steps[0].setWeight", "must be between 0 and 100") {
            $0.spec.strategy = canary([CanaryStep(setWeight: -1)])
        },
        DeploymentRule("step with both", "spec.strategy.canary.steps[0]", "exactly one of setWeight or pause; it sets both") {
            $0.spec.strategy = canary([CanaryStep(setWeight: 10, pause: CanaryPause())])
        },
        DeploymentRule("empty step", "spec.strategy.canary.steps[1]", "exactly one of setWeight or pause; it sets neither") {
            $0.spec.strategy = canary([CanaryStep(setWeight: 10), CanaryStep()])
        },
        DeploymentRule("no steps", "spec.strategy.canary.steps", "must list at least one step") {
            $0.spec.strategy = canary([])
        },
        DeploymentRule("pause duration unreadable", "spec.strategy.canary.steps[0].pause.duration", "\"30 seconds\" is not a duration: write a whole number with a unit, such as 500ms, 30s, 5m, 1h or 1m30s") {
            $0.spec.strategy = canary([CanaryStep(pause: CanaryPause(duration: "30 seconds"))])
        },
        DeploymentRule("canary with RollingUpdate", "spec.strategy.canary", "may only be set when type is Canary") {
            $0.spec.strategy = canary([CanaryStep(setWeight: 10)], type: "RollingUpdate")
        },
        DeploymentRule("Canary without canary", "spec.strategy.canary", "is required when type is Canary") {
            $0.spec.strategy = DeploymentStrategy(type: "Canary")
        },
        DeploymentRule("rollingUpdate with Canary", "spec.strategy.rollingUpdate", "may only be set when type is RollingUpdate") {
            $0.spec.strategy = DeploymentStrategy(rollingUpdate: RollingUpdateStrategy(maxSurge: .number(1)), canary: CanaryStrategy(steps: [CanaryStep(setWeight: 5)]))
        },
        DeploymentRule("successRate above 1", "spec.strategy.canary.analysis.successRate", "must be between 0 and 1") {
            $0.spec.strategy = canary([CanaryStep(setWeight: 10)], analysis: CanaryAnalysis(successRate: 99))
        },
        DeploymentRule("p99 zero", "spec.strategy.canary.analysis.p99LatencyMs", "must be greater than 0") {
            $0.spec.strategy = canary([CanaryStep(setWeight: 10)], analysis: CanaryAnalysis(p99LatencyMs: 0))
        },
        DeploymentRule("interval below 1s", "spec.strategy.canary.analysis.interval", "must be at least 1s, got 500ms") {
            $0.spec.strategy = canary([CanaryStep(setWeight: 10)], analysis: CanaryAnalysis(interval: "500ms"))
        },
        DeploymentRule("interval unreadable", "spec.strategy.canary.analysis.interval", "is not a duration") {
            $0.spec.strategy = canary([CanaryStep(setWeight: 10)], analysis: CanaryAnalysis(interval: "10"))
        },
        DeploymentRule("failureLimit zero", "spec.strategy.canary.analysis.failureLimit", "must be at least 1") {
            $0.spec.strategy = canary([CanaryStep(setWeight: 10)], analysis: CanaryAnalysis(failureLimit: 0))
        },
        DeploymentRule("minRequests zero", "spec.strategy.canary.analysis.minRequests", "must be at least 1") {
            $0.spec.strategy = canary([CanaryStep(setWeight: 10)], analysis: CanaryAnalysis(minRequests: 0))
        },
    ]

    @Test(arguments: rules)
    func brokenRuleIsReportedAtItsPath(_ rule: DeploymentRule) {
        var deployment = validDeployment()
        rule.mutate(&deployment)
        expectSingleError(Validation.validate(deployment), path: rule.path, contains: rule.message)
    }

    static let edits: [DeploymentEdit] = [
        DeploymentEdit("type left out") { $0.spec.strategy = canary([CanaryStep(setWeight: 0), CanaryStep(setWeight: 100)]) },
        DeploymentEdit("type Canary, every form of pause") {
            $0.spec.strategy = canary([CanaryStep(setWeight: 20), CanaryStep(pause: CanaryPause(duration: "1m30s")), CanaryStep(pause: CanaryPause()),
                                       CanaryStep(pause: CanaryPause(duration: "250ms"))], type: "Canary")
        },
        DeploymentEdit("analysis at the edges") {
            $0.spec.strategy = canary([CanaryStep(setWeight: 50)],
                                      analysis: CanaryAnalysis(successRate: 0, p99LatencyMs: 1, interval: "1s", failureLimit: 1, minRequests: 1))
        },
        DeploymentEdit("analysis success rate 1") {
            $0.spec.strategy = canary([CanaryStep(setWeight: 50)], analysis: CanaryAnalysis(successRate: 1))
        },
    ]

    @Test(arguments: edits)
    func editInsideTheRulesStaysValid(_ edit: DeploymentEdit) {
        var deployment = validDeployment()
        edit.mutate(&deployment)
        #expect(Validation.validate(deployment) == [])
    }

    @Test("resolvedType: Canary when only canary is given")
    func resolvedType() {
        #expect(Self.canary([CanaryStep(setWeight: 1)]).resolvedType == "Canary")
        #expect(DeploymentStrategy().resolvedType == "RollingUpdate")
    }
}
