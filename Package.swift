// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "weft",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "weft", targets: ["weft"]),
        .executable(name: "weft-demo", targets: ["weft-demo"]),
        .executable(name: "weft-bench", targets: ["weft-bench"]),
        .library(name: "WeftCore", targets: ["WeftCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.29.0"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.35.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.10.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.24.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.10.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        // Pure core: resource model, strict decoding, validation, reconcile decisions. No I/O.
        .target(name: "WeftCore", dependencies: [
            .product(name: "Histogram", package: "hdrhistogram-swift"),
        ]),
        // Persistent store with watch (SQLite via GRDB).
        .target(name: "WeftStore", dependencies: [
            "WeftCore",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Cluster CA, serving certificates, tokens.
        .target(name: "WeftPKI", dependencies: [
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
        ]),
        // Workload drivers (processes), logs, probes.
        .target(name: "WeftRuntime", dependencies: [
            "WeftCore",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Node proxy: VIP listeners, L4 load balancing, connection glue, outlier detection, and the
        // mTLS tunnel between node proxies (HTTP/2 CONNECT).
        .target(name: "WeftProxy", dependencies: [
            "WeftCore", "WeftPKI",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOTLS", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            .product(name: "NIOHPACK", package: "swift-nio-http2"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Histogram", package: "hdrhistogram-swift"),
        ]),
        // Node DNS server: the cluster zone over UDP and TCP, forwarding with a cache.
        .target(name: "WeftDNS", dependencies: [
            "WeftCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // HTTPS API client (CLI and agents).
        .target(name: "WeftClient", dependencies: [
            "WeftCore",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Yams", package: "Yams"),
        ]),
        // API server and controllers.
        .target(name: "WeftControlPlane", dependencies: [
            "WeftCore", "WeftStore", "WeftPKI",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // Node agent: runs the replicas assigned to its node.
        .target(name: "WeftAgent", dependencies: [
            "WeftCore", "WeftClient", "WeftRuntime", "WeftProxy", "WeftDNS", "WeftPKI",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .executableTarget(name: "weft", dependencies: [
            "WeftCore", "WeftStore", "WeftPKI", "WeftClient", "WeftControlPlane", "WeftAgent", "WeftRuntime", "WeftProxy", "WeftDNS",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Yams", package: "Yams"),
        ]),
        // Example HTTP service used by the demos, canaries and load tests.
        .executableTarget(name: "weft-demo", dependencies: [
            "WeftCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ], path: "examples/weft-demo"),
        // In-process benchmarks of the pure core (bench/scheduler/run.sh); not part of the weft CLI.
        .executableTarget(name: "weft-bench", dependencies: ["WeftCore"], path: "bench/weft-bench"),
        .testTarget(name: "WeftCoreTests", dependencies: ["WeftCore"]),
        .testTarget(name: "WeftStoreTests", dependencies: ["WeftStore"]),
        .testTarget(name: "WeftPKITests", dependencies: ["WeftPKI"]),
        .testTarget(name: "WeftRuntimeTests", dependencies: ["WeftRuntime"]),
        .testTarget(name: "WeftProxyTests", dependencies: [
            "WeftProxy", "WeftCore", "WeftPKI",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
        ]),
        .testTarget(name: "WeftDNSTests", dependencies: [
            "WeftDNS", "WeftCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "WeftControlPlaneTests", dependencies: ["WeftControlPlane", "WeftStore", "WeftCore", "WeftPKI"]),
        .testTarget(name: "WeftIntegrationTests", dependencies: [
            "WeftCore", "WeftClient", "WeftPKI", "weft", "weft-demo",
        ]),
    ]
)
