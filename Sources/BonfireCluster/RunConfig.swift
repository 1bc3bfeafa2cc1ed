// The run's one configuration tree: every knob of a Bonfire run with its documented default, in code.
//
// Files in `Cluster/` and `--set key.path=value` options only override these defaults (nanoGPT
// `configurator.py`). Loading works on JSON dictionaries: the default config is encoded, each override is checked
// key by key against a schema read from the default value (unknown keys and wrong types are errors that name the
// full key path and say what is allowed), merged in order, decoded, and finally `validate()` checks the values'
// meaning (positive counts, port ranges, known names, trainN ≤ groupSize, …).
//
//   let config = try RunConfig.load(overrides: [URL(fileURLWithPath: "Cluster/local.json")],
//                                   sets: ["learner.maxSteps=50", "eval.n=1,2,4"])
//   print(config.resolvedJSON())

import BonfireAlgorithms
import BonfireModel
import BonfireTasks
import Foundation

/// A config value that is one of a fixed set of names (an enum): the schema lists the names in errors.
package protocol ConfigChoice: CaseIterable, Codable, RawRepresentable where RawValue == String {}
/// The non-generic face of `ConfigChoice` the schema reflects on.
protocol ConfigChoiceValue { static var allowedNames: [String] { get } }
extension ConfigChoice { static var allowedNames: [String] { allCases.map(\.rawValue) } }

extension TaskKind: ConfigChoice, ConfigChoiceValue {}
extension VerifierKind: ConfigChoice, ConfigChoiceValue {}
extension AlgorithmKind: ConfigChoice, ConfigChoiceValue {}
extension BoNWeights.LambdaRule: ConfigChoice, ConfigChoiceValue {}
extension BoNRL.Config.Estimator: ConfigChoice, ConfigChoiceValue {}

/// What actors roll out: BoN groups over the task (`none`) or episodes of an environment.
package enum EnvName: String, Sendable, ConfigChoice, ConfigChoiceValue {
    case none, gridworld, keydoor, guess
    /// The environment, nil for a BoN job.
    package var environment: EnvironmentKind? { EnvironmentKind(rawValue: rawValue) }
}

/// The kind of job: decides the rollout source of the actors and the learner's algorithm family. Announced in every
/// role's hello (capability "job=<kind>") so a role of another job is refused at registration.
package enum JobKind: String, Sendable, CaseIterable {
    /// BoN groups over a task (math, code), trained by `algorithm.name`.
    case bon
    /// Episodes of a vector-observation environment (gridworld, keydoor) with the MLP actor-critic (V-trace).
    case envEpisodes = "env-episodes"
    /// Multi-turn text episodes (guess) with the transformer policy and its scalar value head (V-trace).
    case textEpisodes = "text-episodes"

    package var capability: String { "job=" + rawValue }
}

/// How the learner and actors share policy versions.
package enum Schedule: String, Sendable, ConfigChoice, ConfigChoiceValue {
    /// Actors sample ahead with bounded lag; stale rollouts are importance-corrected (default).
    case async
    /// The learner trains on exactly the rollouts of the current version; actors wait for the next one. A fixed
    /// seed gives a bit-reproducible run.
    case sync
}

/// What the learner and the actors do while the coordinator is lost (silent for a liveness window).
package enum CoordinatorLossPolicy: String, Sendable, ConfigChoice, ConfigChoiceValue {
    /// Keep training (nothing the learner and actors do needs the coordinator; metrics are not logged meanwhile).
    case `continue`
    /// Stop updating (learner) and rolling out (actors) until the coordinator answers again; keep heartbeating.
    case pause

    /// Whether a role may train / roll out now.
    package func mayWork(coordinatorLost: Bool) -> Bool { self == .continue || !coordinatorLost }
}

/// How roles reach each other: TCP (one or many hosts), IPC sockets (one host), or in-process (threads of one
/// process sharing one ZeroMQ context: `bonfire train`, tests).
package enum Transport: String, Sendable, ConfigChoice, ConfigChoiceValue {
    case tcp, ipc, inproc
}

/// A configuration problem: an unknown key, a value of the wrong type, or a value out of range.
/// `message` names the full key path and says what is allowed.
package struct ConfigError: Error, CustomStringConvertible, LocalizedError, Equatable {
    package var message: String
    package init(_ message: String) { self.message = message }
    package var description: String { message }
    package var errorDescription: String? { message }
}

package struct RunConfig: Codable, Equatable, Sendable {
    /// Identity and location of the run.
    package var run = RunSection()
    /// Which task (prompts, references, verifiers) the run trains on.
    package var task = TaskSection()
    /// Policy network: a Hugging Face directory (`model.path`) or the shape of a fresh GPT (mirrors `GPTConfig`).
    package var model = ModelSection()
    /// Training objective and optimiser.
    package var algorithm = AlgorithmSection()
    /// How actors sample BoN groups.
    package var sampling = SamplingSection()
    /// Learner batch, step budget, staleness and checkpointing.
    package var learner = LearnerSection()
    /// Actor processes.
    package var actors = ActorsSection()
    /// Network addresses of the roles.
    package var endpoints = EndpointsSection()
    /// Heartbeats, reconnect backoff and deadlines.
    package var liveness = LivenessSection()
    /// Periodic evaluation on the test split.
    package var eval = EvalSection()
    /// Periodic log lines and metrics.
    package var logging = LoggingSection()
    /// Environment jobs: `env.name` other than none makes actors roll out environments instead of sampling BoN groups.
    package var env = EnvSection()
    /// Transport security: ZeroMQ CURVE keys and the rule against unauthenticated non-loopback sockets.
    package var security = SecuritySection()
    /// TensorBoard event files, the Prometheus endpoint and the reward-hacking alarm (docs/monitoring.md).
    package var monitoring = MonitoringSection()

    package init() {}

    // MARK: Sections

    package struct RunSection: Codable, Equatable, Sendable {
        /// Run id carried in every envelope; "" (default) → generated when the run starts (`RunConfig.makeRunID`).
        package var id: String = ""
        /// Run directory (config.json, metrics.jsonl, checkpoints/, eval/, logs/). Default "runs/latest".
        package var dir: String = "runs/latest"
        /// Run seed; every role derives its RNG stream from (seed, role, id). Default 1.
        package var seed: UInt64 = 1
        package init() {}
    }

    package struct TaskSection: Codable, Equatable, Sendable {
        /// Task: math (default), code, or jsonl (problems read from `path`).
        package var name: TaskKind = .math
        /// Seed of the task's prompt generator / train–test split. Default 1234.
        package var seed: UInt64 = 1234
        /// The JSON Lines problem file of `name = jsonl` (docs/data.md); made absolute when the config loads.
        /// Default "".
        package var path: String = ""
        package init() {}
    }

    package struct ModelSection: Codable, Equatable, Sendable {
        /// A Hugging Face model directory (config.json, model.safetensors or shards, tokenizer.json; docs/models.md)
        /// the policy is loaded from; its tokenizer turns text into tokens. When set, the keys below are read from its
        /// config.json as the config loads (values given for them are replaced), and the path is made absolute.
        /// Default "" = a fresh character-level GPT of the shape below.
        package var path: String = ""
        /// Transformer blocks. Default 2.
        package var layers: Int = 2
        /// Embedding width C; must be divisible by `heads`. Default 64.
        package var dim: Int = 64
        /// Attention heads. Default 4.
        package var heads: Int = 4
        /// Maximum sequence length T (prompt + response). Default 64.
        package var contextLength: Int = 64
        /// Vocabulary size (character tokenizer v1 has 64 ids). Default 64.
        package var vocabSize: Int = 64
        package init() {}
    }

    package struct AlgorithmSection: Codable, Equatable, Sendable {
        /// Objective: sft, bon-sft, rl-v, rl-s, bon-rl-v, bon-rl-s (default), bon-rlb, bon-rlb-p.
        package var name: AlgorithmKind = .bonRLS
        /// N′: the N the training objective assumes (1 = ordinary training); must be ≤ `sampling.groupSize`. Default 4.
        package var trainN: Int = 4
        /// Adam learning rate. Default 3e-4.
        package var learningRate: Double = 3e-4
        /// Entropy bonus coefficient (0 = off). Default 0.
        package var entropyCoefficient: Double = 0
        /// Global gradient-norm clip (0 = off). Default 1.0.
        package var clipGradNorm: Double = 1.0
        /// Checkpoint to start from; "" (default) → random init + `sftWarmupSteps` steps of SFT on references.
        package var initCheckpoint: String = ""
        /// SFT warm-up steps (16 references each) when `initCheckpoint` and `model.path` are empty (0 = none). Default 1500
        /// (≈ 15 s for the default model; it takes the policy from 0 to a few % pass@1 so RL has signal).
        package var sftWarmupSteps: Int = 1500
        /// Learning rate of the SFT warm-up (a fresh model tolerates a larger one than RL). Default 2e-3.
        package var sftWarmupLearningRate: Double = 2e-3
        /// λ_N rule of bon-sft and of the variational BoN-RL estimator: klMatched (default) or linearised.
        package var lambdaRule: BoNWeights.LambdaRule = .klMatched
        /// BoN-RL estimator: leaveOneOut (default, unbiased), nSample, selectedOnly (biased), variational (biased).
        package var bonRLEstimator: BoNRL.Config.Estimator = .leaveOneOut
        /// PPO ratio clip ε of rl-v / rl-s (0 = off). Default 0.
        package var ppoClip: Double = 0
        /// k3 KL(π‖π_start) coefficient of rl-v / rl-s, π_start = the policy at the first update (0 = off). Default 0.
        package var klCoefficient: Double = 0
        /// M, the policy samples per prompt of bon-sft's BoN correction (for bon-sft the actors sample M responses per
        /// prompt instead of `sampling.groupSize`); 0 (default) → `BoNSFT.recommendedSamples(N′)` = 4N′ in [8, 32],
        /// the count at which the estimator is tested accurate (BoNSFT.swift header).
        package var bonSFTSamples: Int = 0
        package init() {}
    }

    package struct SamplingSection: Codable, Equatable, Sendable {
        /// N: responses sampled per prompt (one BoN group, one policy version). Default 8.
        package var groupSize: Int = 8
        /// Sampling temperature T (> 0); also the temperature of the log-probs the learner trains. Default 1.0.
        package var temperature: Double = 1.0
        /// Maximum response tokens; must be < `model.contextLength`. Default 24.
        package var maxNewTokens: Int = 24
        /// Top-k filter (0 = off). Default 0.
        package var topK: Int = 0
        /// Nucleus filter, in (0, 1] (1 = off). Default 1.0.
        package var topP: Double = 1.0
        package init() {}
    }

    package struct LearnerSection: Codable, Equatable, Sendable {
        /// BoN groups per learner step (batch = groupsPerStep × groupSize responses). Default 8.
        package var groupsPerStep: Int = 8
        /// Learner steps before the run finishes. Default 2000 (the default job: well under a minute on 2 cores).
        package var maxSteps: Int = 2000
        /// Rollouts with lag = current − behaviour version above this are dropped and counted. Default 4.
        package var maxPolicyLag: Int = 4
        /// ρ̄: truncation of the importance weight min(ρ̄, π/μ) on accepted stale rollouts (> 0). Default 1.0.
        package var importanceClip: Double = 1.0
        /// Checkpoint every K learner steps (0 = only the final checkpoint). Default 250.
        package var checkpointEvery: Int = 250
        /// Publish parameters (new policy version) every this many steps. Default 1.
        package var publishEvery: Int = 1
        /// Checkpoints kept in <run.dir>/checkpoints (older ones are deleted after each new one). Default 5.
        package var keepCheckpoints: Int = 5
        /// async (default): actors sample ahead with bounded lag; sync: the learner trains on exactly the current
        /// version's rollouts and actors wait for the next version (bit-reproducible with a fixed seed).
        package var schedule: Schedule = .async
        package init() {}
    }

    package struct ActorsSection: Codable, Equatable, Sendable {
        /// Actor processes (`bonfire local` starts ids 0..<count). Default 2.
        package var count: Int = 2
        /// Verifier that scores responses for Best-of-N selection: oracle (default), noisy or learned.
        package var verifier: VerifierKind = .oracle
        /// Learned verifier checkpoint (verifier = learned). Default "".
        package var verifierPath: String = ""
        /// Noisy verifier false-positive and false-negative rates in [0, 1]. Default 0.1 / 0.1.
        package var verifierFalsePositive: Double = 0.1
        package var verifierFalseNegative: Double = 0.1
        /// Asynchronous schedule: after its share of one version an actor waits this long for a newer version, then
        /// samples anyway (so a dead peer never stalls it). Default 2000 ms.
        package var versionWaitMs: Int = 2000
        /// `bonfire local` restarts a failed role (actor, learner with --resume, coordinator) after this delay,
        /// doubling per consecutive failure up to `restartMaxMs`. Default 500 ms / 10000 ms.
        package var restartInitialMs: Int = 500
        package var restartMaxMs: Int = 10_000
        package init() {}
    }

    package struct EndpointsSection: Codable, Equatable, Sendable {
        /// tcp (default), ipc (unix sockets under the run directory, one host) or inproc (threads of one process).
        package var transport: Transport = .tcp
        /// Address other roles connect to (the coordinator/learner host). Default "127.0.0.1".
        package var host: String = "127.0.0.1"
        /// Address the coordinator and learner bind on ("0.0.0.0" or the host's own address across hosts).
        /// Default "127.0.0.1".
        package var bindHost: String = "127.0.0.1"
        /// Coordinator ROUTER (control: hello, heartbeat, eval, shutdown). Default 5555.
        package var coordinatorPort: Int = 5555
        /// Learner PULL for rollouts from actors' PUSH. Default 5556.
        package var rolloutPort: Int = 5556
        /// Learner PUB for parameter broadcast to actors' SUB. Default 5557.
        package var paramsPort: Int = 5557
        /// Learner ROUTER answering "send me the current parameters" (late joiners). Default 5558.
        package var paramsRequestPort: Int = 5558
        /// Same-host parameter broadcast through shared memory: the learner writes each published version into a
        /// ring file under /dev/shm (the run directory without it) and broadcasts only a small notice; actors on its
        /// host copy the parameters out (checksum, size and finite values verified), any other actor gets the full
        /// message. Ignored with transport inproc (threads share the parameters already). Default true.
        package var sharedMemoryParameters: Bool = true
        package init() {}

        /// The endpoint the side that binds uses: "tcp://<bindHost>:<port>", "ipc://<ipcDir>/bonfire-<port>",
        /// "inproc://bonfire-<port>".
        package func bind(_ port: Int) -> String { endpoint(bindHost, port) }
        /// The endpoint the side that connects uses (tcp: `host`).
        package func connect(_ port: Int) -> String { endpoint(host, port) }
        /// Directory of the ipc sockets. Default "/tmp".
        package var ipcDir: String = "/tmp"

        private func endpoint(_ address: String, _ port: Int) -> String {
            switch transport {
            case .tcp: "tcp://\(address):\(port)"
            case .ipc: "ipc://\(ipcDir)/bonfire-\(port)"
            case .inproc: "inproc://bonfire-\(port)"
            }
        }
    }

    package struct LivenessSection: Codable, Equatable, Sendable {
        /// Heartbeat period of every role. Default 500 ms.
        package var heartbeatIntervalMs: Int = 500
        /// Missed heartbeat intervals before a peer is declared dead (window = interval × count). Default 6.
        package var livenessCount: Int = 6
        /// First reconnect delay; doubles on each failure. Default 100 ms.
        package var reconnectInitialMs: Int = 100
        /// Reconnect delay cap. Default 5000 ms.
        package var reconnectMaxMs: Int = 5000
        /// Deadline of every blocking receive (then the role checks liveness and retries). Default 2000 ms.
        package var receiveTimeoutMs: Int = 2000
        /// A role gives up (exits non-zero, naming the peer) after this long without its peer. Default 60000 ms.
        package var peerGiveUpMs: Int = 60000
        /// An actor that received no parameters for this long asks the learner directly (a missed broadcast).
        /// Default 5000 ms.
        package var parameterRefreshMs: Int = 5000
        /// After its last update the learner stays reachable this long for the final evaluation. Default 2000 ms.
        package var finishLingerMs: Int = 2000
        /// While the coordinator is lost: `continue` training (default) or `pause` until it answers.
        package var onCoordinatorLoss: CoordinatorLossPolicy = .continue
        package init() {}
    }

    package struct EvalSection: Codable, Equatable, Sendable {
        /// Evaluate every E policy versions (0 = never); the starting version is always evaluated. Default 250.
        package var everyVersions: Int = 250
        /// Test-split prompts per evaluation. Default 64.
        package var prompts: Int = 64
        /// Samples per prompt; every entry of `n` must be ≤ this. Default 8.
        package var samples: Int = 8
        /// N values of the table (pass@N and Bo-N accuracy). Default [1, 2, 4, 8].
        package var n: [Int] = [1, 2, 4, 8]
        /// Sampling temperatures of the table (≥ 0). Default [1.0].
        package var temperatures: [Double] = [1.0]
        /// An evaluation not reported within this deadline is logged as timed out. Default 120000 ms.
        package var timeoutMs: Int = 120_000
        package init() {}
    }

    package struct LoggingSection: Codable, Equatable, Sendable {
        /// Period of the coordinator's progress line and of every role's throughput line. Default 2.0 s.
        package var periodSeconds: Double = 2.0
        /// A repeated warning (no rollouts, blocked pushes, waiting for parameters) is logged at most this often.
        /// Default 5000 ms.
        package var warnEveryMs: Int = 5000
        package init() {}
    }

    /// Environment rollouts through the runtime (EnvActor/EnvLearner; MLP actor-critic with V-trace). Defaults match
    /// `EnvTrainingConfig.defaults(for:)` and `ActorCriticConfig`.
    package struct EnvSection: Codable, Equatable, Sendable {
        /// none (default) = a BoN job over `task.name`; gridworld or keydoor = MLP actor-critic episodes; guess =
        /// multi-turn text episodes with the transformer policy (`model.*`, scalar value head).
        package var name: EnvName = .none
        /// Environments each actor steps in parallel (one batched MLP forward per step). Default 8.
        package var envsPerActor: Int = 8
        /// Steps per chunk (T of one EpisodeBatch message); chunks also end at a truncation. Default 32.
        package var chunkLength: Int = 32
        /// Rollout units per learner update: chunks (gridworld, keydoor; batch ≈ chunksPerUpdate × chunkLength
        /// steps) or whole episodes (guess). Default 16.
        package var chunksPerUpdate: Int = 16
        /// Rounds (envsPerActor chunks each) an actor rolls out with one policy version before it waits (up to
        /// liveness.receiveTimeoutMs) for a newer one: bounds lag and wasted work when actors outpace the learner.
        /// 0 = never wait. At least enough rounds for the actors together to fill `learner.publishEvery` updates.
        /// Default 1 (with the defaults, 2 actors × 8 chunks = exactly one update per version).
        package var roundsPerVersion: Int = 1
        /// γ of the V-trace targets; 0 (default) = the environment's default (gridworld 0.9, keydoor 0.97).
        package var gamma: Double = 0
        /// Entropy bonus c_H. Default 0.03.
        package var entropyCoefficient: Double = 0.03
        /// Value-loss weight c_v. Default 0.5.
        package var valueCoefficient: Double = 0.5
        /// AdamW learning rate (no weight decay). Default 1e-3.
        package var learningRate: Double = 1e-3
        /// Global grad-norm clip (0 = off). Default 1.
        package var maxGradNorm: Double = 1
        /// MLP hidden widths. Default [64, 64].
        package var hiddenSizes: [Int] = [64, 64]
        package init() {}
    }

    /// Whether a BoN learner trains on the task's reference solutions: algorithms sft / bon-sft, or the SFT warm-up
    /// (algorithm.sftWarmupSteps > 0 for a built-in model without algorithm.initCheckpoint).
    package var learnerUsesDemonstrations: Bool {
        algorithm.name.usesDemonstrations
            || (algorithm.sftWarmupSteps > 0 && algorithm.initCheckpoint.isEmpty && model.path.isEmpty)
    }

    /// The kind of job this config describes.
    package var jobKind: JobKind {
        switch env.name {
        case .none: .bon
        case .gridworld, .keydoor: .envEpisodes
        case .guess: .textEpisodes
        }
    }
}

extension RunConfig {
    /// `security.mode`: how the roles' sockets are secured.
    package enum SecurityMode: String, Codable, Sendable, CaseIterable, ConfigChoice, ConfigChoiceValue {
        /// Plain ZeroMQ: anyone who reaches a port can talk to it. Loopback only, unless `allowInsecureRemote`.
        case none
        /// ZeroMQ CURVE on every socket: encrypted, and only allow-listed client keys get in, each bound to a role.
        case curve
    }

    package struct SecuritySection: Codable, Equatable, Sendable {
        /// "none" (default) or "curve" (ZeroMQ CURVE on every socket; needs `keysDir`).
        package var mode: SecurityMode = .none
        /// Key directory written by `bonfire keys --dir D` (server.key, server.pub, <role>.key, allowed-clients).
        /// Required when mode = curve; an actor host needs only server.pub and actor.key. Default "".
        package var keysDir: String = ""
        /// Let `endpoints.bindHost`/`endpoints.host` be a non-loopback address without CURVE (anyone on that network
        /// can then read parameters and push forged rollouts). Default false.
        package var allowInsecureRemote: Bool = false
        package init() {}
    }

    /// True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost.
    package static func isLoopback(_ host: String) -> Bool {
        let h = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if h == "localhost" || h == "::1" { return true }
        let parts = h.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }


    /// The algorithm options of this config (`algorithm.*`, `sampling.temperature`, `learner.importanceClip`).
    package var algorithmOptions: AlgorithmOptions {
        var o = AlgorithmOptions()
        o.trainN = algorithm.trainN
        o.lambdaRule = algorithm.lambdaRule
        o.bonRLEstimator = algorithm.bonRLEstimator
        o.ppoClip = algorithm.ppoClip
        o.klCoefficient = algorithm.klCoefficient
        o.entropyCoefficient = algorithm.entropyCoefficient
        o.clipGradNorm = algorithm.clipGradNorm
        o.temperature = sampling.temperature
        o.importanceClip = learner.importanceClip
        o.bonSFTSamples = algorithm.bonSFTSamples
        return o
    }

    /// Responses an actor samples per prompt (one BoN group): `sampling.groupSize`, except bon-sft, whose BoN
    /// correction needs M = `algorithm.bonSFTSamples` (0 → BoNSFT.recommendedSamples(N′)) samples.
    package var responsesPerGroup: Int {
        algorithm.name == .bonSFT ? algorithmOptions.resolvedBonSFTSamples : sampling.groupSize
    }

    /// The verifier options of this config (`actors.verifier*`).
    package var verifierOptions: VerifierOptions {
        var v = VerifierOptions(kind: actors.verifier)
        v.path = actors.verifierPath
        v.falsePositive = actors.verifierFalsePositive
        v.falseNegative = actors.verifierFalseNegative
        return v
    }
}

// MARK: - Loading

extension RunConfig {
    /// Defaults, then each JSON file of `files` in order, then each `key.path=value` of `sets` in order; validated.
    /// Arrays in `sets` are comma separated (`eval.n=1,2,4`; `[1,2,4]` also works).
    package static func load(overrides files: [URL] = [], sets: [String] = []) throws -> RunConfig {
        var root = try defaultDictionary()
        let schema = Schema.of(RunConfig())
        for file in files {
            let data: Data
            do { data = try Data(contentsOf: file) } catch {
                throw ConfigError("config file \(file.path): cannot be read (\(error.localizedDescription)); check the path")
            }
            let object: Any
            do { object = try JSONSerialization.jsonObject(with: data) } catch {
                throw ConfigError("config file \(file.path): not valid JSON (\(error.localizedDescription))")
            }
            guard let dict = object as? [String: Any] else {
                throw ConfigError("config file \(file.path): the top level must be a JSON object of sections")
            }
            do { try merge(dict, into: &root, schema: schema, path: []) } catch let e as ConfigError {
                throw ConfigError("config file \(file.path): \(e.message)")
            }
        }
        for set in sets { try apply(set: set, to: &root, schema: schema) }
        var config = try decode(root)
        try config.resolvePaths()
        try config.validate()
        return config
    }

    /// Reads what `model.path` and `task.path` point at, so a bad file fails when the config loads (naming the key,
    /// the file and what to do) and every role sees the same resolved config: both paths become absolute, the
    /// model.* shape keys are taken from the model's config.json, and a jsonl task file is parsed once.
    /// Idempotent; `load` calls it.
    package mutating func resolvePaths() throws {
        let fm = FileManager.default
        if !model.path.isEmpty {
            let url = URL(fileURLWithPath: model.path).standardizedFileURL
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue else {
                throw ConfigError("config key model.path: \(url.path) is not a directory; point it at a Hugging Face "
                                  + "model directory (config.json, model.safetensors, tokenizer.json), e.g. one written "
                                  + "by save_pretrained")
            }
            model.path = url.path
            let cfgURL = url.appendingPathComponent("config.json")
            do {
                let data: Data
                do { data = try Data(contentsOf: cfgURL) } catch {
                    throw HFError("cannot read \(cfgURL.path) (\(error.localizedDescription)); a Hugging Face model "
                                  + "directory has config.json beside its weights")
                }
                switch try HFConfigReader(data: data, source: cfgURL.path).modelConfig() {
                case .gpt2(let c):
                    (model.layers, model.dim, model.heads, model.vocabSize, model.contextLength) =
                        (c.layers, c.dim, c.heads, c.vocabSize, c.contextLength)
                case .llama(let c, _):
                    (model.layers, model.dim, model.heads, model.vocabSize, model.contextLength) =
                        (c.layers, c.dim, c.heads, c.vocabSize, c.contextLength)
                }
            } catch let e as HFError {
                throw ConfigError("config key model.path: \(e.message)")
            }
        }
        if !task.path.isEmpty {
            task.path = URL(fileURLWithPath: task.path).standardizedFileURL.path
        }
        if task.name == .jsonl {
            guard !task.path.isEmpty else {
                throw ConfigError("config key task.path must name a JSON Lines file when task.name is jsonl (one "
                                  + "problem per line; see docs/data.md), e.g. --set task.path=problems.jsonl")
            }
            do { _ = try JSONLTask(path: task.path, seed: task.seed) } catch {
                throw ConfigError("config key task.path: \(error)")
            }
        }
    }

    /// Reads a complete or partial config JSON (e.g. a run directory's config.json) over the defaults, validated.
    package static func load(file: URL) throws -> RunConfig { try load(overrides: [file], sets: []) }

    /// Pretty-printed JSON with sorted keys: what every role prints at start and the run directory stores.
    package func resolvedJSON() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Encoding plain Codable structs of numbers, strings and arrays cannot fail (non-finite doubles are
        // rejected by validate()); a failure here is a programmer error.
        guard let data = try? encoder.encode(self), let s = String(data: data, encoding: .utf8) else {
            preconditionFailure("RunConfig.resolvedJSON: encoding failed (non-finite double in the config?)")
        }
        return s
    }

    /// A run id: UTC time plus 4 random hex digits, e.g. "20250301-142233-9f1c" (`random`), then, when `extra` is
    /// given, 12 more hex digits (`RunDirectory.sharedRunID` passes 48 random bits from the system's CSPRNG).
    package static func makeRunID(date: Date = Date(), random: UInt16 = UInt16.random(in: 0...UInt16.max),
                                  extra: UInt64? = nil) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd-HHmmss"
        let hex = String(random, radix: 16)
        let tail = extra.map { x -> String in let h = String(x & 0xFFFF_FFFF_FFFF, radix: 16); return String(repeating: "0", count: 12 - h.count) + h } ?? ""
        return f.string(from: date) + "-" + String(repeating: "0", count: 4 - hex.count) + hex + tail
    }

    // MARK: Schema

    /// The type of each key, read from the default config by reflection (labels = Codable keys).
    indirect enum Schema: Equatable {
        case int, uint64, double, string, intArray, doubleArray, bool
        /// An enum of `ConfigChoice`: one of these names.
        case choice([String])
        case section([String: Schema])

        static func of(_ value: Any) -> Schema {
            if let c = value as? any ConfigChoiceValue { return .choice(type(of: c).allowedNames) }
            switch value {
            case is Bool: return .bool
            case is Int: return .int
            case is UInt64: return .uint64
            case is Double: return .double
            case is String: return .string
            case is [Int]: return .intArray
            case is [Double]: return .doubleArray
            default:
                var fields: [String: Schema] = [:]
                for child in Mirror(reflecting: value).children {
                    guard let label = child.label else { continue }
                    fields[label] = of(child.value)
                }
                precondition(!fields.isEmpty, "RunConfig.Schema: unsupported field type \(type(of: value))")
                return .section(fields)
            }
        }

        var allowed: String {
            switch self {
            case .int: return "an integer"
            case .uint64: return "a non-negative integer"
            case .double: return "a number"
            case .string: return "a string"
            case .choice(let names): return "one of " + names.joined(separator: ", ")
            case .intArray: return "an array of integers (in --set: comma separated, e.g. 1,2,4)"
            case .doubleArray: return "an array of numbers (in --set: comma separated, e.g. 0.5,1.0)"
            case .bool: return "a boolean (true or false)"
            case .choice(let names): return "one of " + names.joined(separator: ", ")
            case .section(let f): return "a section with keys " + f.keys.sorted().joined(separator: ", ")
            }
        }
    }

    private static func defaultDictionary() throws -> [String: Any] {
        let data = try JSONEncoder().encode(RunConfig())
        guard let dict = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            preconditionFailure("RunConfig: default config did not encode to a JSON object")
        }
        return dict
    }

    private static func keyPath(_ path: [String]) -> String { path.isEmpty ? "(top level)" : path.joined(separator: ".") }

    private static func unknownKey(_ key: String, at path: [String], fields: [String: Schema]) -> ConfigError {
        let full = keyPath(path + [key])
        let where_ = path.isEmpty ? "sections" : "keys of \(keyPath(path))"
        return ConfigError("unknown config key \(full); allowed \(where_): \(fields.keys.sorted().joined(separator: ", "))")
    }

    private static func merge(_ override: [String: Any], into target: inout [String: Any], schema: Schema,
                              path: [String]) throws {
        guard case .section(let fields) = schema else { preconditionFailure("merge into a leaf") }
        for key in override.keys.sorted() {
            let value = override[key]!
            guard let sub = fields[key] else { throw unknownKey(key, at: path, fields: fields) }
            let subPath = path + [key]
            if case .section = sub {
                guard let dict = value as? [String: Any] else {
                    throw ConfigError("config key \(keyPath(subPath)) must be \(sub.allowed), got \(describe(value))")
                }
                var inner = target[key] as? [String: Any] ?? [:]
                try merge(dict, into: &inner, schema: sub, path: subPath)
                target[key] = inner
            } else {
                target[key] = try coerce(json: value, to: sub, path: subPath)
            }
        }
    }

    private static func isBool(_ v: Any) -> Bool {
        if let n = v as? NSNumber { return String(cString: n.objCType) == "c" }
        return false
    }

    private static func describe(_ v: Any) -> String {
        if isBool(v) { return "a boolean" }
        if v is String { return "the string \"\(v)\"" }
        if v is NSNumber { return "the number \(v)" }
        if v is [Any] { return "an array" }
        if v is [String: Any] { return "an object" }
        if v is NSNull { return "null" }
        return "\(v)"
    }

    /// A JSON value checked against a leaf type; returns the value to store in the merged dictionary.
    private static func coerce(json v: Any, to leaf: Schema, path: [String]) throws -> Any {
        func bad() -> ConfigError {
            ConfigError("config key \(keyPath(path)) must be \(leaf.allowed), got \(describe(v))")
        }
        func number(_ x: Any, integral: Bool, nonNegative: Bool) throws -> Any {
            guard let n = x as? NSNumber, !isBool(x) else { throw bad() }
            let d = n.doubleValue
            guard d.isFinite else { throw bad() }
            if integral {
                guard d == d.rounded(), abs(d) < 9.0e18 else { throw bad() }
                if nonNegative {
                    guard d >= 0 else { throw bad() }
                    return n.uint64Value
                }
                return n.intValue
            }
            return d
        }
        switch leaf {
        case .int: return try number(v, integral: true, nonNegative: false)
        case .uint64: return try number(v, integral: true, nonNegative: true)
        case .double: return try number(v, integral: false, nonNegative: false)
        case .string:
            guard let s = v as? String else { throw bad() }
            return s
        case .bool:
            guard isBool(v), let n = v as? NSNumber else { throw bad() }
            return n.boolValue
        case .choice(let names):
            guard let s = v as? String, names.contains(s) else { throw bad() }
            return s
        case .intArray, .doubleArray:
            guard let a = v as? [Any] else { throw bad() }
            return try a.map { try number($0, integral: leaf == .intArray, nonNegative: false) }
        case .section: preconditionFailure("coerce to a section")
        }
    }

    /// Applies one `key.path=value` override.
    private static func apply(set: String, to root: inout [String: Any], schema: Schema) throws {
        guard let eq = set.firstIndex(of: "=") else {
            throw ConfigError("--set \(set): expected key.path=value, e.g. learner.maxSteps=50")
        }
        let key = String(set[..<eq]).trimmingCharacters(in: .whitespaces)
        let raw = String(set[set.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
        let parts = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !key.isEmpty, !parts.contains("") else {
            throw ConfigError("--set \(set): expected key.path=value, e.g. learner.maxSteps=50")
        }
        // Walk the schema, then rebuild the nested dictionaries on the way back.
        var leaf = schema
        for (i, p) in parts.enumerated() {
            guard case .section(let fields) = leaf else {
                throw ConfigError("--set \(set): \(keyPath(Array(parts[..<i]))) is not a section")
            }
            guard let sub = fields[p] else {
                throw ConfigError("--set \(set): " + unknownKey(p, at: Array(parts[..<i]), fields: fields).message)
            }
            leaf = sub
        }
        if case .section = leaf {
            throw ConfigError("--set \(set): \(key) is a section; set one of its keys: \(leaf.allowed)")
        }
        let value: Any
        do { value = try parse(raw, as: leaf, path: parts) } catch let e as ConfigError {
            throw ConfigError("--set \(set): \(e.message)")
        }
        func put(_ dict: inout [String: Any], _ i: Int) {
            if i == parts.count - 1 { dict[parts[i]] = value; return }
            var inner = dict[parts[i]] as? [String: Any] ?? [:]
            put(&inner, i + 1)
            dict[parts[i]] = inner
        }
        put(&root, 0)
    }

    private static func parse(_ raw: String, as leaf: Schema, path: [String]) throws -> Any {
        func bad() -> ConfigError {
            ConfigError("config key \(keyPath(path)) must be \(leaf.allowed), got \"\(raw)\"")
        }
        func int(_ s: String) throws -> Int {
            guard let x = Int(s.trimmingCharacters(in: .whitespaces)) else { throw bad() }
            return x
        }
        func double(_ s: String) throws -> Double {
            guard let x = Double(s.trimmingCharacters(in: .whitespaces)), x.isFinite else { throw bad() }
            return x
        }
        func items(_ s: String) -> [String] {
            var t = s
            if t.hasPrefix("[") && t.hasSuffix("]") { t = String(t.dropFirst().dropLast()) }
            if t.trimmingCharacters(in: .whitespaces).isEmpty { return [] }
            return t.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        }
        switch leaf {
        case .int: return try int(raw)
        case .uint64:
            guard let x = UInt64(raw) else { throw bad() }
            return x
        case .double: return try double(raw)
        case .string: return raw
        case .choice(let names):
            guard names.contains(raw) else { throw bad() }
            return raw
        case .intArray: return try items(raw).map(int)
        case .doubleArray: return try items(raw).map(double)
        case .bool:
            switch raw { case "true": return true; case "false": return false; default: throw bad() }
        case .choice(let names):
            guard names.contains(raw) else { throw bad() }
            return raw
        case .section: preconditionFailure("parse a section")
        }
    }

    private static func decode(_ root: [String: Any]) throws -> RunConfig {
        let data = try JSONSerialization.data(withJSONObject: root)
        do {
            return try JSONDecoder().decode(RunConfig.self, from: data)
        } catch let error as DecodingError {
            // The merge already checked keys and types; this translates anything left into a key path.
            func path(_ c: [CodingKey]) -> String {
                c.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            }
            switch error {
            case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
                throw ConfigError("config key \(path(c.codingPath)): \(c.debugDescription)")
            case .keyNotFound(let k, let c):
                throw ConfigError("config key \(path(c.codingPath + [k])) is missing")
            @unknown default:
                throw ConfigError("config: \(error)")
            }
        }
    }
}

// MARK: - Semantic validation

extension RunConfig {
    /// Checks values' meaning; throws one `ConfigError` listing every problem, one per line, each naming its key.
    package func validate() throws {
        var problems: [String] = []
        func check(_ ok: Bool, _ key: String, _ rule: String, _ value: Any) {
            if !ok { problems.append("config key \(key) \(rule) (got \(value))") }
        }
        func finite(_ x: Double) -> Bool { x.isFinite }

        check(!run.dir.isEmpty, "run.dir", "must not be empty", "\"\"")
        check(!run.id.contains(where: { $0.isWhitespace || $0 == "/" }), "run.id",
              "must not contain spaces or '/'", "\"\(run.id)\"")


        check(model.layers >= 1, "model.layers", "must be ≥ 1", model.layers)
        check(model.dim >= 1, "model.dim", "must be ≥ 1", model.dim)
        check(model.heads >= 1, "model.heads", "must be ≥ 1", model.heads)
        // A Hugging Face model's shape comes from its config.json (head_dim may differ from dim / heads).
        if model.path.isEmpty && model.heads >= 1 && model.dim >= 1 {
            check(model.dim % model.heads == 0, "model.dim", "must be divisible by model.heads (\(model.heads))",
                  model.dim)
        }
        check(model.contextLength >= 2, "model.contextLength", "must be ≥ 2", model.contextLength)
        check(model.vocabSize >= 1, "model.vocabSize", "must be ≥ 1", model.vocabSize)
        // The built-in model of a BoN job and the text environments read the character tokenizer's ids: a smaller
        // vocabulary trapped the first forward (learner or actor) on an id past the embedding table.
        let readsCharacterIDs = (jobKind == .bon && model.path.isEmpty) || jobKind == .textEpisodes
        check(!readsCharacterIDs || model.vocabSize >= Tokenizer.vocabSize, "model.vocabSize",
              "must be ≥ \(Tokenizer.vocabSize), the character tokenizer's ids (BoN jobs on the built-in model, text "
              + "environments)", model.vocabSize)
        check(task.path.isEmpty || task.name == .jsonl, "task.path",
              "is only read by task.name = jsonl (task.name is \(task.name.rawValue)); remove it or set task.name=jsonl",
              "\"\(task.path)\"")
        check(model.path.isEmpty || env.name == .none, "model.path",
              "is only used by BoN jobs (env.name = none); environment jobs train their own small models",
              "\"\(model.path)\"")

        check(algorithm.trainN >= 1, "algorithm.trainN", "must be ≥ 1", algorithm.trainN)
        check(algorithm.trainN <= sampling.groupSize, "algorithm.trainN",
              "must be ≤ sampling.groupSize (\(sampling.groupSize))", algorithm.trainN)
        check(finite(algorithm.learningRate) && algorithm.learningRate > 0, "algorithm.learningRate",
              "must be a finite number > 0", algorithm.learningRate)
        check(finite(algorithm.entropyCoefficient) && algorithm.entropyCoefficient >= 0,
              "algorithm.entropyCoefficient", "must be ≥ 0", algorithm.entropyCoefficient)
        check(finite(algorithm.clipGradNorm) && algorithm.clipGradNorm >= 0, "algorithm.clipGradNorm",
              "must be ≥ 0 (0 = off)", algorithm.clipGradNorm)
        check(algorithm.sftWarmupSteps >= 0, "algorithm.sftWarmupSteps", "must be ≥ 0", algorithm.sftWarmupSteps)
        check(finite(algorithm.ppoClip) && algorithm.ppoClip >= 0 && algorithm.ppoClip < 1, "algorithm.ppoClip",
              "must be in [0, 1) (0 = off)", algorithm.ppoClip)
        check(finite(algorithm.klCoefficient) && algorithm.klCoefficient >= 0, "algorithm.klCoefficient",
              "must be ≥ 0 (0 = off)", algorithm.klCoefficient)
        check(algorithm.bonSFTSamples == 0 || (algorithm.bonSFTSamples >= 2 && algorithm.bonSFTSamples <= 256),
              "algorithm.bonSFTSamples", "must be 0 (= 4N′ in [8, 32]) or in 2…256", algorithm.bonSFTSamples)
        check(algorithm.sftWarmupLearningRate > 0, "algorithm.sftWarmupLearningRate", "must be > 0", algorithm.sftWarmupLearningRate)

        check(sampling.groupSize >= 1, "sampling.groupSize", "must be ≥ 1", sampling.groupSize)
        check(finite(sampling.temperature) && sampling.temperature > 0, "sampling.temperature", "must be > 0",
              sampling.temperature)
        check(sampling.maxNewTokens >= 1, "sampling.maxNewTokens", "must be ≥ 1", sampling.maxNewTokens)
        check(sampling.maxNewTokens < model.contextLength, "sampling.maxNewTokens",
              "must be < model.contextLength (\(model.contextLength))", sampling.maxNewTokens)
        // A generated task's longest prompt and reference (in characters = tokens of the built-in char tokenizer)
        // must fit the model: a longer prompt trapped the actors' sampler and a longer demonstration the learner's
        // SFT warm-up, and the supervisor restarted them forever. JSONL tasks and Hugging Face models are checked by
        // the roles against their real token counts (RunPolicy.checkFits).
        if jobKind == .bon, model.path.isEmpty, task.name != .jsonl,
           let t = try? TaskRegistry.make(task.name, seed: task.seed) {
            let sampled = 1 + t.maxPromptLength + sampling.maxNewTokens
            check(sampled <= model.contextLength, "model.contextLength",
                  "must hold BOS + task \(task.name.rawValue)'s longest prompt (\(t.maxPromptLength) tokens) + "
                  + "sampling.maxNewTokens (\(sampling.maxNewTokens)) = \(sampled) tokens; raise it or lower sampling.maxNewTokens",
                  model.contextLength)
            let demo = 2 + t.maxPromptLength + t.maxResponseLength
            let why = algorithm.name.usesDemonstrations
                ? "algorithm \(algorithm.name.rawValue) trains on reference solutions"
                : "the learner's SFT warm-up (algorithm.sftWarmupSteps = \(algorithm.sftWarmupSteps)) trains on reference solutions"
            let fix = algorithm.name.usesDemonstrations
                ? "raise it, or choose an algorithm without demonstrations (rl-*, bon-rl-*)"
                : "raise it, or set algorithm.sftWarmupSteps=0 (or algorithm.initCheckpoint)"
            check(!learnerUsesDemonstrations || demo <= model.contextLength, "model.contextLength",
                  "must hold BOS + task \(task.name.rawValue)'s longest prompt (\(t.maxPromptLength) tokens) + reference "
                  + "(\(t.maxResponseLength)) + EOS = \(demo) tokens: \(why); \(fix)", model.contextLength)
        }
        check(sampling.topK >= 0, "sampling.topK", "must be ≥ 0 (0 = off)", sampling.topK)
        check(finite(sampling.topP) && sampling.topP > 0 && sampling.topP <= 1, "sampling.topP",
              "must be in (0, 1]", sampling.topP)

        check(learner.groupsPerStep >= 1, "learner.groupsPerStep", "must be ≥ 1", learner.groupsPerStep)
        check(learner.maxSteps >= 1, "learner.maxSteps", "must be ≥ 1", learner.maxSteps)
        check(learner.maxPolicyLag >= 0, "learner.maxPolicyLag", "must be ≥ 0", learner.maxPolicyLag)
        check(finite(learner.importanceClip) && learner.importanceClip > 0, "learner.importanceClip",
              "must be > 0", learner.importanceClip)
        check(learner.checkpointEvery >= 0, "learner.checkpointEvery", "must be ≥ 0 (0 = only the final one)",
              learner.checkpointEvery)
        check(learner.publishEvery >= 1, "learner.publishEvery", "must be ≥ 1", learner.publishEvery)
        check(learner.keepCheckpoints >= 1, "learner.keepCheckpoints", "must be ≥ 1", learner.keepCheckpoints)
        problems += monitoring.problems()

        check(actors.count >= 1, "actors.count", "must be ≥ 1", actors.count)
        check(actors.verifier != .learned || !actors.verifierPath.isEmpty, "actors.verifierPath",
              "must name a learned verifier checkpoint when actors.verifier is learned (train one with `bonfire train-verifier`)", "\"\"")
        for (key, rate) in [("actors.verifierFalsePositive", actors.verifierFalsePositive),
                            ("actors.verifierFalseNegative", actors.verifierFalseNegative)] {
            check(finite(rate) && rate >= 0 && rate <= 1, key, "must be in [0, 1]", rate)
        }
        check(actors.versionWaitMs >= 1, "actors.versionWaitMs", "must be ≥ 1", actors.versionWaitMs)
        check(actors.restartInitialMs >= 1, "actors.restartInitialMs", "must be ≥ 1", actors.restartInitialMs)
        check(actors.restartMaxMs >= actors.restartInitialMs, "actors.restartMaxMs",
              "must be ≥ actors.restartInitialMs (\(actors.restartInitialMs))", actors.restartMaxMs)

        check(!endpoints.host.isEmpty, "endpoints.host", "must not be empty", "\"\"")
        check(!endpoints.bindHost.isEmpty, "endpoints.bindHost", "must not be empty", "\"\"")
        let ports = [("endpoints.coordinatorPort", endpoints.coordinatorPort),
                     ("endpoints.rolloutPort", endpoints.rolloutPort),
                     ("endpoints.paramsPort", endpoints.paramsPort),
                     ("endpoints.paramsRequestPort", endpoints.paramsRequestPort)]
        for (key, port) in ports { check((1...65535).contains(port), key, "must be a port in 1–65535", port) }
        for i in ports.indices {
            for j in ports.indices where j > i && ports[i].1 == ports[j].1 {
                problems.append("config key \(ports[j].0) must differ from \(ports[i].0) (both \(ports[i].1))")
            }
        }

        check(liveness.heartbeatIntervalMs >= 1, "liveness.heartbeatIntervalMs", "must be ≥ 1",
              liveness.heartbeatIntervalMs)
        check(liveness.livenessCount >= 1, "liveness.livenessCount", "must be ≥ 1", liveness.livenessCount)
        check(liveness.reconnectInitialMs >= 1, "liveness.reconnectInitialMs", "must be ≥ 1",
              liveness.reconnectInitialMs)
        check(liveness.reconnectMaxMs >= liveness.reconnectInitialMs, "liveness.reconnectMaxMs",
              "must be ≥ liveness.reconnectInitialMs (\(liveness.reconnectInitialMs))", liveness.reconnectMaxMs)
        check(liveness.receiveTimeoutMs >= 1, "liveness.receiveTimeoutMs", "must be ≥ 1", liveness.receiveTimeoutMs)
        check(liveness.peerGiveUpMs >= 1, "liveness.peerGiveUpMs", "must be ≥ 1", liveness.peerGiveUpMs)
        check(liveness.parameterRefreshMs >= 1, "liveness.parameterRefreshMs", "must be ≥ 1", liveness.parameterRefreshMs)
        check(liveness.finishLingerMs >= 0, "liveness.finishLingerMs", "must be ≥ 0", liveness.finishLingerMs)

        check(eval.everyVersions >= 0, "eval.everyVersions", "must be ≥ 0 (0 = never)", eval.everyVersions)
        check(eval.prompts >= 1, "eval.prompts", "must be ≥ 1", eval.prompts)
        check(eval.samples >= 1, "eval.samples", "must be ≥ 1", eval.samples)
        check(!eval.n.isEmpty, "eval.n", "must not be empty", "[]")
        for (i, n) in eval.n.enumerated() {
            check(n >= 1 && n <= eval.samples, "eval.n[\(i)]", "must be in 1…eval.samples (\(eval.samples))", n)
        }
        check(!eval.temperatures.isEmpty, "eval.temperatures", "must not be empty", "[]")
        for (i, t) in eval.temperatures.enumerated() {
            check(finite(t) && t >= 0, "eval.temperatures[\(i)]", "must be ≥ 0", t)
        }
        check(eval.timeoutMs >= 1, "eval.timeoutMs", "must be ≥ 1", eval.timeoutMs)

        check(finite(logging.periodSeconds) && logging.periodSeconds > 0, "logging.periodSeconds", "must be > 0",
              logging.periodSeconds)

        check(logging.warnEveryMs >= 1, "logging.warnEveryMs", "must be ≥ 1", logging.warnEveryMs)
        check(!endpoints.ipcDir.isEmpty, "endpoints.ipcDir", "must not be empty", "\"\"")
        check(env.envsPerActor >= 1, "env.envsPerActor", "must be ≥ 1", env.envsPerActor)
        check(env.chunkLength >= 1, "env.chunkLength", "must be ≥ 1", env.chunkLength)
        check(env.chunksPerUpdate >= 1, "env.chunksPerUpdate", "must be ≥ 1", env.chunksPerUpdate)
        check(env.roundsPerVersion >= 0, "env.roundsPerVersion", "must be ≥ 0 (0 = never wait)", env.roundsPerVersion)
        check(finite(env.gamma) && env.gamma >= 0 && env.gamma <= 1, "env.gamma",
              "must be in (0, 1], or 0 for the environment's default", env.gamma)
        check(finite(env.entropyCoefficient) && env.entropyCoefficient >= 0, "env.entropyCoefficient", "must be ≥ 0",
              env.entropyCoefficient)
        check(finite(env.valueCoefficient) && env.valueCoefficient >= 0, "env.valueCoefficient", "must be ≥ 0",
              env.valueCoefficient)
        check(finite(env.learningRate) && env.learningRate > 0, "env.learningRate", "must be a finite number > 0",
              env.learningRate)
        check(finite(env.maxGradNorm) && env.maxGradNorm >= 0, "env.maxGradNorm", "must be ≥ 0 (0 = off)",
              env.maxGradNorm)
        check(!env.hiddenSizes.isEmpty && env.hiddenSizes.allSatisfy { $0 >= 1 }, "env.hiddenSizes",
              "must be a non-empty list of widths ≥ 1", env.hiddenSizes)

        if security.mode == .curve {
            check(!security.keysDir.isEmpty, "security.keysDir",
                  "must name the key directory when security.mode = curve (create one: bonfire keys --dir D)", "\"\"")
        } else if !security.allowInsecureRemote {
            for (key, host) in [("endpoints.bindHost", endpoints.bindHost), ("endpoints.host", endpoints.host)]
            where !host.isEmpty && !Self.isLoopback(host) {
                problems.append("config key \(key) is \(host), reachable from other machines, but security.mode is none: " +
                    "anyone there could read parameters and push forged rollouts. Turn CURVE on: bonfire keys --dir D, " +
                    "then --set security.mode=curve --set security.keysDir=D (copy D/server.pub and D/actor.key to actor " +
                    "hosts); or, on a network you trust, --set security.allowInsecureRemote=true")
            }
        }

        if !problems.isEmpty { throw ConfigError(problems.joined(separator: "\n")) }
    }
}

