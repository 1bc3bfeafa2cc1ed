// BoN group batches: for each prompt x, the N responses y sampled by ONE behaviour policy version (recorded once per
// group), with token ids (uint32 LE bytes), per-token behaviour log-probs (float32 LE bytes), verifier scores r(x, y) and rewards R(x, y).
import CBonfireProto

/// One response y of a BoN group.
package struct WireBoNResponse: Equatable, Sendable {
    /// (T) token ids of the response.
    package var tokens: [Int] { didSet { decodedSummary = nil } }
    /// (T) log π_behaviour(y_t | x, y_<t); same length as `tokens`.
    package var tokenLogProbs: [Float] { didSet { decodedSummary = nil } }
    /// What FastCodec found about `tokens` and `tokenLogProbs` while copying them out of the frame (the validator
    /// then needs no second pass over them); nil otherwise. Not part of the value (`==` ignores it) and cleared by
    /// any change to either array.
    package private(set) var decodedSummary: WireResponseSummary?
    /// r(x, y): what Best-of-N selects by.
    package var verifierScore: Double
    /// R(x, y): the task's ground truth.
    package var reward: Double

    package init(tokens: [Int], tokenLogProbs: [Float], verifierScore: Double, reward: Double) {
        precondition(tokens.count == tokenLogProbs.count,
                     "BoN response: \(tokens.count) tokens but \(tokenLogProbs.count) log-probs")
        self.tokens = tokens; self.tokenLogProbs = tokenLogProbs; self.verifierScore = verifierScore; self.reward = reward
    }

    init(tokens: [Int], tokenLogProbs: [Float], verifierScore: Double, reward: Double, decodedSummary: WireResponseSummary) {
        self.init(tokens: tokens, tokenLogProbs: tokenLogProbs, verifierScore: verifierScore, reward: reward)
        self.decodedSummary = decodedSummary
    }

    package static func == (a: WireBoNResponse, b: WireBoNResponse) -> Bool {
        a.tokens == b.tokens && a.tokenLogProbs == b.tokenLogProbs && a.verifierScore == b.verifierScore
            && a.reward == b.reward
    }

    init(c: UnsafePointer<Bonfire__V1__BoNResponse>) throws(WireError) {
        let m = c.pointee
        let tokens = try swiftTokens(m.tokens, field: "BoNResponse.tokens")
        let lp = try swiftFloats(m.token_logprobs, field: "BoNResponse.token_logprobs", count: tokens.count)
        self.init(tokens: tokens, tokenLogProbs: lp, verifierScore: m.verifier_score, reward: m.reward)
    }

    func build(in a: PackArena) -> UnsafeMutablePointer<Bonfire__V1__BoNResponse> {
        precondition(tokens.count == tokenLogProbs.count,
                     "BoN response: \(tokens.count) tokens but \(tokenLogProbs.count) log-probs")
        let p = a.make(Bonfire__V1__BoNResponse.self, bonfire__v1__bo_nresponse__init)
        p.pointee.tokens = a.tokenBytes(tokens)
        p.pointee.token_logprobs = a.bytes(tokenLogProbs)
        p.pointee.verifier_score = verifierScore
        p.pointee.reward = reward
        return p
    }
}

/// What FastCodec computed about one response's arrays in the pass that copied them out of the frame: the checks of
/// `ValidationContext.validate(_: WireBoNGroup)` in their common case, so a valid response is not read a second time.
package struct WireResponseSummary: Equatable, Sendable {
    /// The bitwise OR of the token ids: every id is ≤ it (the ids came off the wire as uint32, so none is negative).
    /// Below the vocabulary size, it proves every id is; otherwise the validator finds the largest id itself.
    package var tokenIDBits: UInt32
    /// Every log-prob is finite and in `ValidationContext.defaultLogProbRange` (false says nothing: the validator
    /// then checks value by value against its own bounds).
    package var logProbsWithinDefaultRange: Bool

    package init(tokenIDBits: UInt32, logProbsWithinDefaultRange: Bool) {
        self.tokenIDBits = tokenIDBits; self.logProbsWithinDefaultRange = logProbsWithinDefaultRange
    }
}

/// The N responses sampled for one prompt by one policy version.
package struct WireBoNGroup: Equatable, Sendable {
    package var itemID: UInt64
    package var promptTokens: [Int] { didSet { decodedPromptIDBits = nil } }
    /// The bitwise OR of `promptTokens` when FastCodec computed it while copying them out of the frame (see
    /// `WireResponseSummary.tokenIDBits`); nil otherwise. Not part of the value (`==` ignores it) and cleared by any
    /// change to `promptTokens`.
    package private(set) var decodedPromptIDBits: UInt32?
    /// The single policy version that sampled every response of this group.
    package var behaviourVersion: UInt64
    package var temperature: Float
    /// (N) responses.
    package var responses: [WireBoNResponse]

    package init(itemID: UInt64, promptTokens: [Int], behaviourVersion: UInt64, temperature: Float = 1,
                 responses: [WireBoNResponse]) {
        self.itemID = itemID; self.promptTokens = promptTokens; self.behaviourVersion = behaviourVersion
        self.temperature = temperature; self.responses = responses
    }

    init(itemID: UInt64, promptTokens: [Int], decodedPromptIDBits: UInt32, behaviourVersion: UInt64, temperature: Float,
         responses: [WireBoNResponse]) {
        self.init(itemID: itemID, promptTokens: promptTokens, behaviourVersion: behaviourVersion, temperature: temperature,
                  responses: responses)
        self.decodedPromptIDBits = decodedPromptIDBits
    }

    package static func == (a: WireBoNGroup, b: WireBoNGroup) -> Bool {
        a.itemID == b.itemID && a.promptTokens == b.promptTokens && a.behaviourVersion == b.behaviourVersion
            && a.temperature == b.temperature && a.responses == b.responses
    }

    init(c: UnsafePointer<Bonfire__V1__BoNGroup>) throws(WireError) {
        let m = c.pointee
        var responses: [WireBoNResponse] = []
        responses.reserveCapacity(m.n_responses)
        for i in 0..<m.n_responses {
            guard let r = m.responses[i] else { throw WireError(.malformed, "BoNGroup.responses[\(i)] is null") }
            responses.append(try WireBoNResponse(c: r))
        }
        self.init(itemID: m.item_id, promptTokens: try swiftTokens(m.prompt_tokens, field: "BoNGroup.prompt_tokens"),
                  behaviourVersion: m.behaviour_version, temperature: m.temperature, responses: responses)
    }

    func build(in a: PackArena) -> UnsafeMutablePointer<Bonfire__V1__BoNGroup> {
        let p = a.make(Bonfire__V1__BoNGroup.self, bonfire__v1__bo_ngroup__init)
        p.pointee.item_id = itemID
        p.pointee.prompt_tokens = a.tokenBytes(promptTokens)
        p.pointee.behaviour_version = behaviourVersion
        p.pointee.temperature = temperature
        p.pointee.n_responses = responses.count
        if !responses.isEmpty {
            let arr = a.array(UnsafeMutablePointer<Bonfire__V1__BoNResponse>?.self, count: responses.count)
            for (i, r) in responses.enumerated() { arr[i] = r.build(in: a) }
            p.pointee.responses = arr
        }
        return p
    }
}

/// A batch of BoN groups from one actor (the rollout message of BoN training).
package struct WireBoNGroupBatch: Equatable, Sendable {
    package var task: String
    package var groups: [WireBoNGroup]

    package init(task: String, groups: [WireBoNGroup]) { self.task = task; self.groups = groups }

    package init(wire: [UInt8]) throws(WireError) {
        self = try unpackMessage(wire, what: "BoNGroupBatch", unpack: bonfire__v1__bo_ngroup_batch__unpack,
                                 convert: Self.init(c:))
    }

    package func encoded() -> [UInt8] {
        let arena = PackArena()
        return withExtendedLifetime(arena) { packMessage(build(in: arena)) }
    }

    init(c: UnsafePointer<Bonfire__V1__BoNGroupBatch>) throws(WireError) {
        let m = c.pointee
        var groups: [WireBoNGroup] = []
        groups.reserveCapacity(m.n_groups)
        for i in 0..<m.n_groups {
            guard let g = m.groups[i] else { throw WireError(.malformed, "BoNGroupBatch.groups[\(i)] is null") }
            groups.append(try WireBoNGroup(c: g))
        }
        self.init(task: swiftString(m.task), groups: groups)
    }

    func build(in a: PackArena) -> UnsafeMutablePointer<Bonfire__V1__BoNGroupBatch> {
        let p = a.make(Bonfire__V1__BoNGroupBatch.self, bonfire__v1__bo_ngroup_batch__init)
        p.pointee.task = a.string(task)
        p.pointee.n_groups = groups.count
        if !groups.isEmpty {
            let arr = a.array(UnsafeMutablePointer<Bonfire__V1__BoNGroup>?.self, count: groups.count)
            for (i, g) in groups.enumerated() { arr[i] = g.build(in: a) }
            p.pointee.groups = arr
        }
        return p
    }
}
