// EpisodeChunk (the algorithms' view, Sources/BonfireAlgorithms/ActorCritic.swift) ⇄ WireEpisodeBatch (the
// `.episodes` payload, Sources/BonfireWire/Episode+Wire.swift). One chunk = one message: T steps of one environment,
// observations (T, D) row-major, per-step actions/rewards/dones/truncations/behaviour log-probs/behaviour versions,
// and the bootstrap observation x_T (D floats, empty when the last step terminated).
// Actions are Int on the Swift side and int32 on the wire; an action outside Int32 is a programmer error on the
// sending side. Chunks arriving from other processes are NOT trusted: `EpisodeChunk(wire:actionCount:)` runs the chunk
// rules (`EpisodeChunk.validate`) and throws a message naming what is wrong, so the learner can drop and count it.
import BonfireAlgorithms
import BonfireWire

extension EpisodeChunk {
    /// The wire message of this chunk (shapes are preconditions: a malformed local chunk is a programmer error).
    package var wire: WireEpisodeBatch {
        precondition(actions.allSatisfy { $0 >= Int(Int32.min) && $0 <= Int(Int32.max) },
                     "EpisodeChunk.wire: an action does not fit in int32")
        return WireEpisodeBatch(env: env, observationDim: observationSize, observations: observations,
                                actions: actions.map { Int32($0) }, rewards: rewards, dones: dones,
                                truncations: truncations, behaviourLogProbs: behaviourLogProbs,
                                behaviourVersions: behaviourVersions, bootstrapObservation: bootstrapObservation)
    }

    /// A chunk from a decoded wire message, checked against the chunk rules (and `actionCount` when given).
    package init(wire w: WireEpisodeBatch, actionCount: Int? = nil) throws(ActorCriticError) {
        self.init(env: w.env, observationSize: w.observationDim, observations: w.observations,
                  actions: w.actions.map(Int.init), rewards: w.rewards, dones: w.dones, truncations: w.truncations,
                  behaviourLogProbs: w.behaviourLogProbs, behaviourVersions: w.behaviourVersions,
                  bootstrapObservation: w.bootstrapObservation)
        try validate(actionCount: actionCount)
    }

    /// The oldest policy version that chose a step of this chunk (what the staleness gate judges).
    package var oldestBehaviourVersion: UInt64 { behaviourVersions.min() ?? 0 }
}
