// weft-bench: in-process benchmarks of WeftCore. Not part of the `weft` CLI.
//
//   weft-bench scheduler [--nodes 5000] [--deployments 1000] [--replicas 100] [--runs 3]
//                        [--policy leastAllocated|mostAllocated|both] [--seed 1]

import Foundation
import WeftCore

let arguments = Array(CommandLine.arguments.dropFirst())
guard let command = arguments.first else {
    FileHandle.standardError.write(Data("usage: weft-bench scheduler [--nodes N] [--deployments N] [--replicas N] [--runs N] [--policy leastAllocated|mostAllocated|both] [--seed N]\n".utf8))
    exit(2)
}
switch command {
case "scheduler":
    do {
        try SchedulerBench(arguments: Array(arguments.dropFirst())).run()
    } catch {
        FileHandle.standardError.write(Data("weft-bench scheduler: \(error)\n".utf8))
        exit(2)
    }
default:
    FileHandle.standardError.write(Data("weft-bench: unknown benchmark \"\(command)\"; try scheduler\n".utf8))
    exit(2)
}
