import ArgumentParser
import BonfireMath

// The one executable. Each subcommand lives in its own file; add new ones to `subcommands` (one line each).
@main
struct Bonfire: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bonfire",
        abstract: "Inference-aware (Best-of-N) fine-tuning over an actor–learner system.",
        subcommands: [
            // subcommands: one line each, keep sorted by role
            LocalCommand.self,
            CoordinatorCommand.self,
            LearnerCommand.self,
            ActorCommand.self,
            TrainCommand.self,
            TrainEnvCommand.self,
            StatusCommand.self, ReportCommand.self,
            EvalCommand.self, TrainVerifierCommand.self,
            ExportHFCommand.self,
            KeysCommand.self,
        ]
    )

    static func main() {
        // OpenBLAS's core re-selection (BLAS.prepare: setenv + re-init on CPUs it does not know) runs here, on the
        // main thread before any other thread exists, instead of at the first matrix multiply of some role thread.
        BLAS.prepare()
        Self.main(nil)
    }
}
