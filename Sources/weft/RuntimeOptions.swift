import ArgumentParser
import WeftCore

/// The node's workload-driver flags, shared by `weft server` (its local agent) and `weft agent`.
struct RuntimeOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The runtime of replicas whose template names none: process (on the node's network, no privileges), netns (each replica in its own network namespace with an IP from --pod-cidr; needs root and iproute2) or oci (a runc container in such a namespace, from an image imported with weft image import; needs runc too).",
        valueName: "runtime"))
    var runtime: String = WorkloadRuntime.process.rawValue

    @Option(name: .long, help: ArgumentHelp(
        "This node's block of replica addresses for the netns runtime, e.g. 10.244.1.0/24 (one block per node, none overlapping). The node bridge weft0 gets the first address, which is also the replicas' gateway and DNS server.",
        valueName: "cidr"))
    var podCidr: String?

    func validate() throws {
        if let problem = WorkloadRuntime.problem(runtime) {
            throw ValidationError("--runtime: \(problem)")
        }
        if let podCidr, let problem = PodNetwork.problem(podCidr) {
            throw ValidationError("--pod-cidr: \(problem)")
        }
        if runtime != WorkloadRuntime.process.rawValue && podCidr == nil {
            throw ValidationError("--runtime \(runtime) needs --pod-cidr, this node's block of replica addresses (e.g. 10.244.1.0/24)")
        }
    }

    /// The node's default runtime.
    var defaultRuntime: WorkloadRuntime { WorkloadRuntime(rawValue: runtime) ?? .process }

    /// The node's pod network, when given.
    var podNetwork: PodNetwork? { podCidr.flatMap(PodNetwork.init) }
}
