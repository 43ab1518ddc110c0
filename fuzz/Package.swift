// swift-tools-version:6.0
// libFuzzer targets over WeftCore's DNS wire codec and HTTP/1.1 framing. Built and run by run.sh; see README.md.
import PackageDescription

let package = Package(
    name: "weft-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        // `name:` pins the identity, so a clone checked out under any directory name resolves the same.
        .package(name: "weft", path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "DNSParserFuzzer",
            dependencies: [.product(name: "WeftCore", package: "weft")]
        ),
        .executableTarget(
            name: "HTTP1ParserFuzzer",
            dependencies: [.product(name: "WeftCore", package: "weft")]
        ),
    ]
)
