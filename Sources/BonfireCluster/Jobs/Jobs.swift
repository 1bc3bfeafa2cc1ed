// The job kinds: which rollout source an actor runs and which learner the learner runs. Adding an environment is
// its file (Sources/BonfireTasks/Environments/) plus one case of `EnvironmentKind` and `EnvName`; adding an algorithm
// is its file (Sources/BonfireAlgorithms/) plus one case of `AlgorithmKind`.
import BonfireWire
import Foundation

package enum Job {
    /// The rollout source of actor `id` for this run.
    package static func source(config: RunConfig, actorID: Int, incarnation: Int = 0) throws -> any RolloutSource {
        switch config.jobKind {
        case .bon: try BoNGroupSource(config: config, actorID: actorID, incarnation: incarnation)
        case .envEpisodes: EpisodeSource(config: config, actorID: actorID, incarnation: incarnation)
        case .textEpisodes: TextEpisodeSource(config: config, actorID: actorID, incarnation: incarnation)
        }
    }

    /// The learner runtime of this run, run to the end.
    package static func runLearner(config: RunConfig, runDir: RunDirectory, resume: Bool, context: ZMQContext) throws -> Int32 {
        switch config.jobKind {
        case .bon: try run(BoNPolicyLearner(config: config), config, runDir, resume, context)
        case .envEpisodes: try run(ActorCriticPolicyLearner(config: config), config, runDir, resume, context)
        case .textEpisodes: try run(TextActorCriticPolicyLearner(config: config), config, runDir, resume, context)
        }
    }

    package static func run<L: PolicyLearner>(_ learner: L, _ config: RunConfig, _ runDir: RunDirectory, _ resume: Bool,
                                              _ context: ZMQContext) throws -> Int32 {
        try LearnerRuntime(config: config, runDir: runDir, learner: learner, resume: resume).run(context: context)
    }
}

/// A whole job in one process: coordinator, learner and actors as threads sharing one ZeroMQ context over
/// `inproc://` endpoints — the same role code `bonfire local` runs as processes (`bonfire train`, tests).
package enum InProcessJob {
    /// Runs the job to the end; returns the coordinator's exit code. A role that fails stops the others.
    /// `makeSource` / `runLearner` default to the run's job (tests plug toy ones in).
    package static func run(config input: RunConfig, runDir: RunDirectory, resume: Bool = false,
                            makeSource: (@Sendable (Int) throws -> any RolloutSource)? = nil,
                            runLearner: (@Sendable (RunConfig, ZMQContext) throws -> Int32)? = nil) throws -> Int32 {
        var config = input
        config.endpoints.transport = .inproc
        config.security.mode = .none   // one process: nothing crosses a network (CURVE is for tcp across hosts)
        if config.run.id.isEmpty { config.run.id = RunConfig.makeRunID() }
        // Checked before any thread starts: a role failing while others connect to its in-process endpoints is
        // best avoided (libzmq asserts on some such teardowns).
        if resume, runDir.checkpoints().isEmpty {
            throw ClusterError("learner: --resume given but there is no checkpoint in \(runDir.checkpointsURL.path); " +
                               "start without --resume, or point run.dir at the run to continue")
        }
        let context = try ZMQContext()
        defer { context.shutdown() }
        let failures = FailureBox()
        var threads: [Thread] = []
        func start(_ name: String, _ body: @escaping @Sendable () throws -> Int32) {
            let t = Thread {
                do {
                    let code = try body()
                    if code != 0 { failures.add("\(name) exited with status \(code)") }
                } catch {
                    failures.add("\(name): \(error)")
                    StopFlag.request()
                }
            }
            t.stackSize = 16 << 20
            threads.append(t)
        }
        let cfg = config
        let coordinatorDone = DispatchSemaphore(value: 0)
        let coordinatorCode = CodeBox()
        start("coordinator") {
            defer { coordinatorDone.signal() }
            let code = try Coordinator(config: cfg, runDir: runDir).run(context: context)
            coordinatorCode.set(code)
            return code
        }
        start("learner") {
            if let runLearner { return try runLearner(cfg, context) }
            return try Job.runLearner(config: cfg, runDir: runDir, resume: resume, context: context)
        }
        for k in 0..<config.actors.count {
            start("actor-\(k)") {
                let source = try makeSource?(k) ?? Job.source(config: cfg, actorID: k)
                return try ActorRuntime(config: cfg, id: k, source: source).run(context: context)
            }
        }
        for t in threads { t.start() }
        coordinatorDone.wait()
        // Every role ends on the coordinator's shutdown; wait for them (bounded) before tearing the context down.
        let deadline = Date().addingTimeInterval(Double(config.liveness.peerGiveUpMs) / 1000 + 10)
        while threads.contains(where: { !$0.isFinished }), Date() < deadline { usleep(10_000) }
        if StopFlag.isSet { StopFlag.reset() }
        if let f = failures.first { throw ClusterError("in-process job: \(f)") }
        return coordinatorCode.value
    }
}

/// Thread-safe collectors for the in-process job.
final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ s: String) { lock.lock(); items.append(s); lock.unlock() }
    var first: String? { lock.lock(); defer { lock.unlock() }; return items.first }
}

final class CodeBox: @unchecked Sendable {
    private let lock = NSLock()
    private var code: Int32 = 0
    func set(_ c: Int32) { lock.lock(); code = c; lock.unlock() }
    var value: Int32 { lock.lock(); defer { lock.unlock() }; return code }
}

/// A parameter value every receiver accepts: finite and within `ValidationContext.defaultParameterBound`. Learners
/// roll back an update that leaves any parameter otherwise (and the BoN SFT warm-up stops): published, finite values
/// beyond the bound were rejected by every actor, and the job stalled waiting for rollouts.
func isPublishable(_ x: Float) -> Bool { abs(x) <= ValidationContext.defaultParameterBound }

/// The end of a learner's "update N diverged; …" line: the update was rolled back, how many so far, and the key to
/// lower when they keep coming.
func divergedUpdateAdvice(skipped: Int, learningRateKey: String, value: Double) -> String {
    "rolled back: a loss, gradient or parameter was non-finite or a parameter beyond ±"
        + "\(ValidationContext.defaultParameterBound) (\(skipped) so far; if they keep coming, lower \(learningRateKey) = \(value))"
}
