// swift-tools-version:6.0
// Bonfire: inference-aware (Best-of-N) fine-tuning over an actor–learner system.
// Layering (imports go one way): C shims → BonfireMath → BonfireModel → BonfireTasks → BonfireAlgorithms
//   → BonfireCluster (with BonfireWire) → bonfire / bonfire-bench. Each C library is imported by one Swift target.
import PackageDescription

let package = Package(
    name: "Bonfire",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "bonfire", targets: ["bonfire"]),
        .executable(name: "bonfire-bench", targets: ["bonfire-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C shims
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZeroMQ", pkgConfig: "libzmq",
                       providers: [.apt(["libzmq3-dev"])]),
        .target(name: "CBonfireProto",
                linkerSettings: [.linkedLibrary("protobuf-c")]),
        // Hot loops in C, compiled per instruction set and dispatched at run time (no -march; see docs/performance.md).
        .target(name: "CBonfireKernels"),

        // Swift layers
        .target(name: "BonfireMath", dependencies: ["COpenBLAS", "CBonfireKernels"]),
        .target(name: "BonfireModel", dependencies: ["BonfireMath"]),
        .target(name: "BonfireTasks", dependencies: ["BonfireMath", "BonfireModel"]),
        .target(name: "BonfireAlgorithms", dependencies: ["BonfireMath", "BonfireModel", "BonfireTasks"]),
        .target(name: "BonfireWire", dependencies: ["CZeroMQ", "CBonfireProto", "CBonfireKernels"]),
        .target(name: "BonfireCluster", dependencies: [
            "BonfireMath", "BonfireModel", "BonfireTasks", "BonfireAlgorithms", "BonfireWire",
        ]),
        .executableTarget(name: "bonfire", dependencies: [
            "BonfireMath", "BonfireModel", "BonfireTasks", "BonfireAlgorithms", "BonfireWire", "BonfireCluster",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "bonfire-bench", dependencies: [
            "BonfireMath", "BonfireModel", "BonfireTasks", "BonfireAlgorithms", "BonfireWire", "BonfireCluster",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Tests
        .target(name: "BonfireTestSupport", dependencies: ["BonfireMath"], path: "Sources/BonfireTestSupport"),
        .testTarget(name: "BonfireMathTests", dependencies: ["BonfireMath", "BonfireTestSupport"]),
        .testTarget(name: "BonfireModelTests", dependencies: ["BonfireMath", "BonfireModel", "BonfireTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "BonfireTasksTests", dependencies: ["BonfireTasks", "BonfireModel", "BonfireTestSupport"]),
        .testTarget(name: "BonfireAlgorithmsTests", dependencies: [
            "BonfireAlgorithms", "BonfireModel", "BonfireTasks", "BonfireTestSupport",
        ], resources: [.copy("Fixtures")]),
        .testTarget(name: "BonfireWireTests", dependencies: ["BonfireWire", "BonfireTestSupport", "CBonfireKernels"]),
        .testTarget(name: "BonfireClusterTests", dependencies: [
            "BonfireCluster", "BonfireWire", "BonfireAlgorithms", "BonfireTasks", "BonfireModel", "BonfireTestSupport",
        ]),
    ]
)
