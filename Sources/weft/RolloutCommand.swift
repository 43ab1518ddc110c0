import ArgumentParser
import Foundation
import Synchronization
import WeftClient
import WeftCore

/// `weft rollout status|promote|abort|pause|resume|undo|history DEPLOYMENT`.
struct RolloutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract: "Follow and steer a deployment's rollout (canary steps, analysis, rollback).",
        subcommands: [Status.self, Promote.self, Abort.self, Pause.self, Resume.self, Undo.self, History.self])

    /// The deployment a rollout command acts on.
    struct Target: ParsableArguments {
        @Argument(help: "The deployment's name.")
        var deployment: String

        @OptionGroup var namespace: NamespaceOption
        @OptionGroup var client: ClientOptions
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the rollout: phase, step, weights, and each version's success rate and p99.",
            discussion: "With --watch, follow it live until it completes (exit 0) or is aborted (exit 1).")

        @OptionGroup var target: Target

        @Flag(name: [.short, .long], help: "Follow the rollout until it completes or is aborted.")
        var watch = false

        func run() async throws {
            try await target.client.withClient { api in
                let namespace = target.namespace.resolved
                guard watch else {
                    let (deployment, replicas) = try await fetch(api, namespace: namespace)
                    print(RolloutText.status(deployment, replicas: replicas), terminator: "")
                    return
                }
                try await follow(api, namespace: namespace)
            }
        }

        private func fetch(_ api: APIClient, namespace: String) async throws -> (Deployment, [Replica]) {
            guard let deployment = try await api.get(Deployment.self, namespace: namespace, name: target.deployment) else {
                throw ClientError("deployment \"\(target.deployment)\" not found in namespace \(namespace)")
            }
            let replicas = try await api.list(Replica.self, namespace: namespace).items.filter { $0.spec.deployment == target.deployment }
            return (deployment, replicas)
        }

        /// Follows the deployment and its replicas by watch and prints the status whenever it changes
        /// (and every few seconds while a timed step counts down), until the rollout ends.
        private func follow(_ api: APIClient, namespace: String) async throws {
            let (first, replicas) = try await fetch(api, namespace: namespace)
            let view = WatchedRollout(deployment: first, replicas: replicas)
            let name = target.deployment
            let outcome: Bool = try await withThrowingTaskGroup(of: Bool?.self) { group in
                group.addTask {
                    for try await event in api.watch(Deployment.self, namespace: namespace, resourceVersion: nil) {
                        switch event {
                        case .added(let d), .modified(let d):
                            if d.name == name { view.update(deployment: d) }
                        case .deleted(let d):
                            if d.name == name { throw ClientError("deployment \"\(name)\" was deleted") }
                        case .bookmark:
                            break
                        }
                    }
                    return nil
                }
                group.addTask {
                    for try await event in api.watch(Replica.self, namespace: namespace, resourceVersion: nil) {
                        switch event {
                        case .added(let r), .modified(let r): if r.spec.deployment == name { view.update(replica: r) }
                        case .deleted(let r): if r.spec.deployment == name { view.remove(replica: r.name) }
                        case .bookmark: break
                        }
                    }
                    return nil
                }
                group.addTask {
                    var printed = ""
                    var printedAt = Date.distantPast
                    while true {
                        let (deployment, replicas) = view.snapshot()
                        let now = Date()
                        let text = RolloutText.status(deployment, replicas: replicas, now: now)
                        let steady = text.split(separator: "\n").filter { !$0.contains("next step in") && !$0.contains(" ago (") }.joined(separator: "\n")
                        let printedSteady = printed.split(separator: "\n").filter { !$0.contains("next step in") && !$0.contains(" ago (") }.joined(separator: "\n")
                        if steady != printedSteady || now.timeIntervalSince(printedAt) >= 5 {
                            FileHandle.standardOutput.write(Data(("[\(Self.clock(now))]\n" + text).utf8))
                            printed = text
                            printedAt = now
                        }
                        if let done = Self.finished(deployment, replicas: replicas) { return done }
                        try await Task.sleep(for: .milliseconds(250))
                    }
                }
                defer { group.cancelAll() }
                while let result = try await group.next() {
                    if let result { return result }
                }
                throw ClientError("the API server closed the watch; run the command again")
            }
            if !outcome { throw ExitCode.failure }
        }

        /// True when the rollout completed, false when it was aborted, nil while it goes on.
        static func finished(_ deployment: Deployment, replicas: [Replica]) -> Bool? {
            if deployment.status?.rollout?.phase == .degraded { return false }
            let hash = TemplateHash.of(deployment.spec.template)
            let live = replicas.filter { !$0.isTerminating }
            guard deployment.status?.rollout?.canaryRevision == nil,
                  deployment.status?.observedGeneration == deployment.metadata.generation,
                  live.allSatisfy({ $0.spec.templateHash == hash }),
                  live.filter(\.isReady).count == deployment.spec.desiredReplicas
            else { return nil }
            return true
        }

        static func clock(_ date: Date) -> String {
            let formatter = DateFormatter()
            formatter.dateFormat = "HH:mm:ss"
            return formatter.string(from: date)
        }
    }

    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Go on to the next canary step now (--full: finish the rollout now).")
        @OptionGroup var target: Target
        @Flag(help: "Skip the remaining steps and analysis: the canary becomes the stable version.")
        var full = false

        func run() async throws {
            try await act(target, "promote", full: full) { full ? "promoted fully" : "promoted to the next step" }
        }
    }

    struct Abort: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Roll the canary back: weight 0, canary replicas removed.")
        @OptionGroup var target: Target
        func run() async throws { try await act(target, "abort") { "aborted; the stable version serves all traffic" } }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Hold the rollout at its current step (analysis keeps running).")
        @OptionGroup var target: Target
        func run() async throws { try await act(target, "pause") { "paused" } }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let a paused rollout go on.")
        @OptionGroup var target: Target
        func run() async throws { try await act(target, "resume") { "resumed" } }
    }

    struct Undo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Go back to the previous revision's template (or --to-revision N).")
        @OptionGroup var target: Target
        @Option(help: "The revision to return to (see `weft rollout history`).")
        var toRevision: Int?

        func run() async throws {
            try await act(target, "undo", toRevision: toRevision) { toRevision.map { "rolled back to revision \($0)" } ?? "rolled back to the previous revision" }
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the revisions the deployment has run.")
        @OptionGroup var target: Target

        func run() async throws {
            try await target.client.withClient { api in
                let namespace = target.namespace.resolved
                guard let deployment = try await api.get(Deployment.self, namespace: namespace, name: target.deployment) else {
                    throw ClientError("deployment \"\(target.deployment)\" not found in namespace \(namespace)")
                }
                print(RolloutText.history(deployment), terminator: "")
            }
        }
    }
}

/// Sends one rollout action and prints what it did.
private func act(_ target: RolloutCommand.Target, _ action: String, full: Bool = false, toRevision: Int? = nil,
                 done: () -> String) async throws {
    try await target.client.withClient { api in
        _ = try await api.rollout(namespace: target.namespace.resolved, deployment: target.deployment, action: action, full: full, toRevision: toRevision)
        print("deployment \"\(target.deployment)\" \(done())")
    }
}

/// The newest deployment and replicas seen by `weft rollout status --watch`.
final class WatchedRollout: Sendable {
    private struct State {
        var deployment: Deployment
        var replicas: [String: Replica]
    }

    private let state: Mutex<State>

    init(deployment: Deployment, replicas: [Replica]) {
        state = Mutex(State(deployment: deployment, replicas: Dictionary(replicas.map { ($0.name, $0) }, uniquingKeysWith: { $1 })))
    }

    func update(deployment: Deployment) { state.withLock { $0.deployment = deployment } }
    func update(replica: Replica) { state.withLock { $0.replicas[replica.name] = replica } }
    func remove(replica name: String) { state.withLock { $0.replicas[name] = nil } }

    func snapshot() -> (Deployment, [Replica]) {
        state.withLock { ($0.deployment, $0.replicas.values.sorted { $0.name < $1.name }) }
    }
}
