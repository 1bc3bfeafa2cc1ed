// The training algorithms a run can choose (`algorithm.name`), and the one place that turns an algorithm's options
// into its learner object. Each algorithm's estimator lives in its own file (SFT.swift, BoNSFT.swift, RL.swift,
// BoNRL.swift, BoNRLB.swift); environment jobs use the actor-critic of ActorCritic.swift / TextActorCritic.swift.
// Adding an algorithm: its file, one case here, one branch in `groupLearner` (or a demonstration step like SFT).

import BonfireModel

package enum AlgorithmKind: String, Codable, Sendable, CaseIterable {
    case sft, bonSFT = "bon-sft", rlV = "rl-v", rlS = "rl-s", bonRLV = "bon-rl-v", bonRLS = "bon-rl-s"
    case bonRLB = "bon-rlb", bonRLBP = "bon-rlb-p"

    /// Algorithms that train on reference demonstrations (the verifier only scores, for BoN-SFT).
    package var usesDemonstrations: Bool { self == .sft || self == .bonSFT }
    /// Algorithms whose objective assumes N′ > 1 samples per prompt (groups are cut into N′-sized sub-groups).
    package var isBoNAware: Bool { [.bonRLV, .bonRLS, .bonRLB, .bonRLBP].contains(self) }
}

/// Every algorithm's own knobs, settable from the run config (`algorithm.*`) and `bonfire train` flags.
package struct AlgorithmOptions: Codable, Sendable, Equatable {
    /// N′: the N the BoN objective assumes (1 = ordinary training). Default 4.
    package var trainN = 4
    /// λ_N rule of BoN-SFT and the variational BoN-RL ablation. Default klMatched.
    package var lambdaRule: BoNWeights.LambdaRule = .klMatched
    /// BoN-RL estimator. Default leaveOneOut (unbiased).
    package var bonRLEstimator: BoNRL.Config.Estimator = .leaveOneOut
    /// PPO ratio clip ε for rl-* (0 = off). Default 0.
    package var ppoClip: Double = 0
    /// k3 KL(π‖π_start) coefficient for rl-* (0 = off). Default 0.
    package var klCoefficient: Double = 0
    /// Entropy bonus on response tokens (0 = off). Default 0.
    package var entropyCoefficient: Double = 0
    /// Global gradient-norm clip (0 = off). Default 1.
    package var clipGradNorm: Double = 1
    /// Sampling temperature of the log-probs trained on (= the actors' sampling temperature). Default 1.
    package var temperature: Double = 1
    /// ρ̄ of the truncated importance weight on stale samples. Default 1.
    package var importanceClip: Double = 1
    /// M, policy samples per prompt of BoN-SFT's correction; 0 (default) → BoNSFT.recommendedSamples(trainN).
    package var bonSFTSamples = 0
    /// The policy's BOS, first token of every trained sequence (UpdateConfig.bos). Default the character tokenizer's.
    package var bos: Int = Tokenizer.bos
    package init() {}

    /// The M BoN-SFT samples per prompt: `bonSFTSamples`, or 4N′ in [8, 32] when it is 0.
    package var resolvedBonSFTSamples: Int {
        bonSFTSamples > 0 ? bonSFTSamples : BoNSFT.recommendedSamples(n: trainN)
    }

    /// The update-step options all group learners share.
    package var update: UpdateConfig {
        var u = UpdateConfig()
        u.temperature = Float(temperature)
        u.entropyCoefficient = Float(entropyCoefficient)
        u.maxGradNorm = Float(clipGradNorm)
        u.importance = ImportanceConfig(mode: .perSequence, rhoBar: importanceClip)
        u.bos = bos
        return u
    }

    /// The group learner of `kind` (nil for the demonstration algorithms sft and bon-sft).
    package func groupLearner(_ kind: AlgorithmKind) -> (any GroupLearner)? {
        var u = update
        switch kind {
        case .sft, .bonSFT: return nil
        case .rlV, .rlS:
            var c = RL.Config()
            c.reward = kind == .rlV ? .verifier : .system
            u.ppoClip = ppoClip; u.klCoefficient = klCoefficient
            c.update = u
            return RL(config: c)
        case .bonRLV, .bonRLS:
            var c = BoNRL.Config()
            c.variant = kind == .bonRLV ? .verifier : .system
            c.estimator = bonRLEstimator; c.lambdaRule = lambdaRule; c.update = u
            return BoNRL(config: c)
        case .bonRLB, .bonRLBP:
            var c = kind == .bonRLBP ? BoNRLB.Config.positiveOnlyDefaults : BoNRLB.Config()
            c.update = u
            return BoNRLB(config: c)
        }
    }

    /// BoN-SFT with these options and M = `resolvedBonSFTSamples` policy samples per prompt (the learner's groups
    /// have exactly M responses: the actors of a bon-sft run sample M per prompt).
    package func bonSFT() -> BoNSFT {
        var c = BoNSFT.Config()
        c.n = trainN; c.samplesPerPrompt = resolvedBonSFTSamples; c.lambdaRule = lambdaRule; c.update = update
        return BoNSFT(config: c)
    }

    /// SFT with these options' clip.
    package var sft: SFT {
        var c = SFT.Config()
        c.update.maxGradNorm = Float(clipGradNorm)
        c.update.bos = bos
        return SFT(config: c)
    }
}
