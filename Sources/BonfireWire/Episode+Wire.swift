// Episode batches: a chunk of T environment steps with observation size D, in step order. Float arrays travel as
// float32 LE bytes, actions as int32 LE bytes, flags as one byte per step; the decoder checks every per-step array holds exactly T entries and
// the observations exactly T·D floats.
import CBonfireProto

package struct WireEpisodeBatch: Equatable, Sendable {
    package var env: String
    /// D
    package var observationDim: Int
    /// (T, D) row-major.
    package var observations: [Float]
    /// (T)
    package var actions: [Int32]
    /// (T)
    package var rewards: [Float]
    /// (T) episode terminated after this step.
    package var dones: [Bool]
    /// (T) episode cut by a time limit after this step.
    package var truncations: [Bool]
    /// (T) log μ(a_t | s_t) under the behaviour policy.
    package var behaviourLogProbs: [Float]
    /// (T) policy version that chose a_t.
    package var behaviourVersions: [UInt64]
    /// (D) observation after the last step, or empty.
    package var bootstrapObservation: [Float]

    /// T
    package var numSteps: Int { actions.count }

    package init(env: String, observationDim: Int, observations: [Float], actions: [Int32], rewards: [Float],
                 dones: [Bool], truncations: [Bool], behaviourLogProbs: [Float], behaviourVersions: [UInt64],
                 bootstrapObservation: [Float] = []) {
        self.env = env; self.observationDim = observationDim; self.observations = observations
        self.actions = actions; self.rewards = rewards; self.dones = dones; self.truncations = truncations
        self.behaviourLogProbs = behaviourLogProbs; self.behaviourVersions = behaviourVersions
        self.bootstrapObservation = bootstrapObservation
        checkShapes()
    }

    private func checkShapes() {
        let t = actions.count
        precondition(observationDim >= 0 && observations.count == t * observationDim,
                     "EpisodeBatch: observations \(observations.count) != T \(t) × D \(observationDim)")
        precondition(rewards.count == t && dones.count == t && truncations.count == t
                     && behaviourLogProbs.count == t && behaviourVersions.count == t,
                     "EpisodeBatch: per-step arrays must all have T = \(t) entries (rewards \(rewards.count), dones \(dones.count), truncations \(truncations.count), logprobs \(behaviourLogProbs.count), versions \(behaviourVersions.count))")
        precondition(bootstrapObservation.isEmpty || bootstrapObservation.count == observationDim,
                     "EpisodeBatch: bootstrap observation has \(bootstrapObservation.count) floats, D = \(observationDim)")
    }

    package init(wire: [UInt8]) throws(WireError) {
        self = try unpackMessage(wire, what: "EpisodeBatch", unpack: bonfire__v1__episode_batch__unpack,
                                 convert: Self.init(c:))
    }

    package func encoded() -> [UInt8] {
        let arena = PackArena()
        return withExtendedLifetime(arena) { packMessage(build(in: arena)) }
    }

    init(c: UnsafePointer<Bonfire__V1__EpisodeBatch>) throws(WireError) {
        let m = c.pointee
        let t = Int(m.num_steps), d = Int(m.observation_dim)
        let (td, overflow) = t.multipliedReportingOverflow(by: d)
        guard !overflow, td <= Int(Int32.max) else {
            throw WireError(.invalidField, "EpisodeBatch: T \(t) × D \(d) is too large")
        }
        guard m.n_behaviour_versions == t else {
            throw WireError(.invalidField, "EpisodeBatch: num_steps \(t) but \(m.n_behaviour_versions) versions")
        }
        let boot = try swiftFloats(m.bootstrap_observation, field: "EpisodeBatch.bootstrap_observation")
        guard boot.isEmpty || boot.count == d else {
            throw WireError(.invalidField, "EpisodeBatch.bootstrap_observation: \(boot.count) floats, D = \(d)")
        }
        self.env = swiftString(m.env)
        self.observationDim = d
        self.observations = try swiftFloats(m.observations, field: "EpisodeBatch.observations", count: td)
        self.actions = try swiftInt32s(m.actions, field: "EpisodeBatch.actions", count: t)
        self.rewards = try swiftFloats(m.rewards, field: "EpisodeBatch.rewards", count: t)
        self.dones = try swiftFlags(m.dones, field: "EpisodeBatch.dones", count: t)
        self.truncations = try swiftFlags(m.truncations, field: "EpisodeBatch.truncations", count: t)
        self.behaviourLogProbs = try swiftFloats(m.behaviour_logprobs, field: "EpisodeBatch.behaviour_logprobs", count: t)
        self.behaviourVersions = swiftArray(m.n_behaviour_versions, m.behaviour_versions)
        self.bootstrapObservation = boot
    }

    func build(in a: PackArena) -> UnsafeMutablePointer<Bonfire__V1__EpisodeBatch> {
        checkShapes()
        let p = a.make(Bonfire__V1__EpisodeBatch.self, bonfire__v1__episode_batch__init)
        p.pointee.env = a.string(env)
        p.pointee.num_steps = UInt32(numSteps)
        p.pointee.observation_dim = UInt32(observationDim)
        p.pointee.observations = a.bytes(observations)
        p.pointee.actions = a.bytes(actions)
        p.pointee.rewards = a.bytes(rewards)
        p.pointee.dones = a.flags(dones)
        p.pointee.truncations = a.flags(truncations)
        p.pointee.behaviour_logprobs = a.bytes(behaviourLogProbs)
        (p.pointee.n_behaviour_versions, p.pointee.behaviour_versions) = a.copy(behaviourVersions)
        p.pointee.bootstrap_observation = a.bytes(bootstrapObservation)
        return p
    }
}
