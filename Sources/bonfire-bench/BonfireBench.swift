import ArgumentParser

// Benchmarks (not timed tests). Each benchmark lives in its own file; add it to `subcommands` (one line each).
@main
struct BonfireBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bonfire-bench",
        abstract: "Speed and memory benchmarks for Bonfire (see docs/performance.md).",
        subcommands: [
            // subcommands: one line each
            WireBench.self,
            ModelBench.self,
            RLStepBench.self,
            MemoryBench.self,
            HFBench.self, HFRoundTrip.self, HFRunBench.self,
        ]
    )
}
