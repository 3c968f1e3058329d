// swift-tools-version:6.1
import PackageDescription

// yunzhen: five services and a routing edge, each a library target (the code) plus a thin executable.
// Shared modules are split by reason to change; services never import each other.

let hummingbird: Target.Dependency = .product(name: "Hummingbird", package: "hummingbird")
let hummingbirdTesting: Target.Dependency = .product(name: "HummingbirdTesting", package: "hummingbird")
let grdb: Target.Dependency = .product(name: "GRDB", package: "GRDB.swift")
let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let lifecycle: Target.Dependency = .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")

/// The five domain services: (folder, library module, executable).
let services: [(folder: String, module: String, executable: String)] = [
    ("registration", "RegistrationService", "registration"),
    ("reports", "ReportsService", "reports"),
    ("consult", "ConsultService", "consult"),
    ("followup", "FollowupService", "followup"),
    ("screening", "ScreeningService", "screening"),
]

var targets: [Target] = [
    // MARK: Shared
    .target(name: "YunzhenContracts", path: "Shared/Contracts"),
    .target(name: "YunzhenStorage", dependencies: [grdb, logging], path: "Shared/Storage"),
    .target(
        name: "YunzhenQueue",
        dependencies: [logging, .product(name: "Metrics", package: "swift-metrics")],
        path: "Shared/Queue"
    ),
    .target(
        name: "YunzhenMessaging",
        dependencies: [
            "YunzhenQueue", "YunzhenContracts", grdb, logging, lifecycle,
            .product(name: "Metrics", package: "swift-metrics"),
        ],
        path: "Shared/Messaging"
    ),
    .systemLibrary(
        name: "CCurl",
        path: "Shared/CCurl",
        pkgConfig: "libcurl",
        providers: [.apt(["libcurl4-openssl-dev"])]
    ),
    .target(
        name: "YunzhenCallout",
        dependencies: ["CCurl", logging],
        path: "Shared/Callout"
    ),
    .target(
        name: "YunzhenIdentity",
        dependencies: [
            .product(name: "JWTKit", package: "jwt-kit"), .product(name: "Crypto", package: "swift-crypto"),
        ],
        path: "Shared/Identity"
    ),
    .target(
        name: "YunzhenAudit",
        dependencies: [grdb, .product(name: "Crypto", package: "swift-crypto")],
        path: "Shared/Audit"
    ),
    .target(
        name: "YunzhenServiceKit",
        dependencies: [
            "YunzhenContracts", "YunzhenStorage", "YunzhenCallout", "YunzhenIdentity", "YunzhenAudit", "YunzhenQueue",
            hummingbird, logging, lifecycle, grdb,
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ],
        path: "Shared/ServiceKit"
    ),
    .target(
        name: "YunzhenTesting",
        dependencies: [
            "YunzhenServiceKit", "YunzhenStorage", hummingbird, hummingbirdTesting, grdb, logging,
            .product(name: "Yams", package: "Yams"),
        ],
        path: "Shared/Testing"
    ),

    // MARK: Edge
    .target(
        name: "EdgeService",
        dependencies: [
            "YunzhenContracts", "YunzhenServiceKit", "YunzhenCallout", "YunzhenIdentity", hummingbird, logging,
            .product(name: "HTTPTypes", package: "swift-http-types"),
        ],
        path: "Services/edge/Sources",
        resources: [.embedInCode("openapi.yaml")]
    ),
    .executableTarget(name: "edge", dependencies: ["EdgeService", "YunzhenServiceKit"], path: "Services/edge/main"),

    // MARK: Operator CLI
    .executableTarget(
        name: "yunzhen",
        dependencies: [
            "YunzhenContracts", "YunzhenCallout", "YunzhenQueue", "YunzhenMessaging", "YunzhenIdentity", logging,
            grdb,
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ],
        path: "Tools/yunzhen",
        exclude: ["README.md"]
    ),

    // MARK: Tests
    .executableTarget(
        name: "queue-bench",
        dependencies: [
            "YunzhenQueue", "YunzhenMessaging", "YunzhenContracts", "YunzhenStorage", grdb, logging, lifecycle,
        ],
        path: "Tests/Benchmarks/QueueBench"
    ),
    .executableTarget(
        name: "queue-soak",
        dependencies: [
            "YunzhenQueue", "YunzhenMessaging", "YunzhenContracts", "YunzhenStorage", grdb, logging, lifecycle,
        ],
        path: "Tests/QueueSoak"
    ),
    .testTarget(
        name: "SharedTests",
        dependencies: [
            "YunzhenServiceKit", "YunzhenIdentity", "YunzhenAudit", "YunzhenStorage", "YunzhenCallout",
            "YunzhenTesting", hummingbird, hummingbirdTesting,
            grdb,
            logging,
        ],
        path: "Tests/SharedTests"
    ),
    .testTarget(
        name: "QueueTests",
        dependencies: [
            "YunzhenQueue", "YunzhenMessaging", "YunzhenContracts", "YunzhenStorage", "YunzhenTesting", logging, grdb,
            lifecycle,
        ],
        path: "Tests/QueueTests"
    ),
    .testTarget(
        name: "EdgeTests",
        dependencies: [
            "EdgeService", "YunzhenServiceKit", "YunzhenTesting", "YunzhenContracts", "YunzhenCallout",
            "YunzhenIdentity", hummingbird, hummingbirdTesting,
        ],
        path: "Tests/EdgeTests"
    ),
    .testTarget(
        name: "ServicesTests",
        dependencies: services.map { .target(name: $0.module) } + [
            "YunzhenServiceKit", "YunzhenTesting", "YunzhenContracts", "YunzhenStorage", "YunzhenIdentity",
            "YunzhenAudit", "YunzhenCallout", "YunzhenMessaging", hummingbird, hummingbirdTesting, grdb,
            .product(name: "HTTPTypes", package: "swift-http-types"), .product(name: "Crypto", package: "swift-crypto"),
        ],
        path: "Tests/ServicesTests"
    ),
]

for service in services {
    targets.append(
        .target(
            name: service.module,
            dependencies: [
                "YunzhenContracts", "YunzhenStorage", "YunzhenServiceKit", "YunzhenQueue", "YunzhenMessaging",
                "YunzhenIdentity", "YunzhenAudit", "YunzhenCallout", hummingbird, grdb, logging, lifecycle,
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
            ],
            path: "Services/\(service.folder)/Sources",
            resources: [.embedInCode("openapi.yaml")]
        )
    )
    targets.append(
        .executableTarget(
            name: service.executable,
            dependencies: [.target(name: service.module), "YunzhenServiceKit"],
            path: "Services/\(service.folder)/main"
        )
    )
}

let package = Package(
    name: "yunzhen",
    platforms: [.macOS(.v15)],
    products: services.map { .executable(name: $0.executable, targets: [$0.executable]) } + [
        .executable(name: "edge", targets: ["edge"]),
        .executable(name: "yunzhen", targets: ["yunzhen"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: targets,
    swiftLanguageModes: [.v6]
)
