// The wire fuzzer: for each decoder (the Envelope through WireDecoder, and every message's `init(wire:)`), feeds
// random bytes, bit flips, truncations/extensions, structure-aware protobuf mutations (extreme varints, overlong
// varints, length-field edits, wrong wire types, duplicated/dropped/unknown fields, hostile float bit patterns,
// bytes fields of odd lengths and 0xFF… ids) and valid protobuf built from hostile field values, then validates what
// decodes with `ValidationContext`. Counts per decoder: decoded, rejected by the decoder (by reason), rejected by
// the validator (by reason), accepted. Used by WireFuzzTests (10⁵ per decoder in CI) and Scripts/fuzz.sh (10⁶+).
import BonfireWire

// MARK: - Generic protobuf field model

struct PBField {
    enum Value { case varint(UInt64), fixed64(UInt64), bytes([UInt8]), fixed32(UInt32) }
    var number: Int
    var value: Value
    /// For `.bytes`: added to the true length when serialising (a lying length field).
    var lengthDelta = 0
    /// For `.varint`: pad the encoding to this many bytes (overlong varint).
    var varintBytes = 0
}

enum PB {
    static func readVarint(_ b: [UInt8], _ i: inout Int) -> UInt64? {
        var v: UInt64 = 0, shift: UInt64 = 0
        while i < b.count, shift < 64 {
            let x = b[i]; i += 1
            v |= UInt64(x & 0x7F) << shift
            if x & 0x80 == 0 { return v }
            shift += 7
        }
        return nil
    }

    /// Parses one message level; nil if the bytes are not a sequence of well-formed fields.
    static func parse(_ b: [UInt8]) -> [PBField]? {
        var i = 0
        var out: [PBField] = []
        while i < b.count {
            guard let key = readVarint(b, &i), key >> 3 > 0, key >> 3 < 1 << 29 else { return nil }
            let n = Int(key >> 3)
            switch key & 7 {
            case 0: guard let v = readVarint(b, &i) else { return nil }; out.append(PBField(number: n, value: .varint(v)))
            case 1:
                guard i + 8 <= b.count else { return nil }
                var v: UInt64 = 0
                for j in 0..<8 { v |= UInt64(b[i + j]) << (8 * UInt64(j)) }
                i += 8; out.append(PBField(number: n, value: .fixed64(v)))
            case 2:
                guard let len = readVarint(b, &i), len <= UInt64(b.count - i) else { return nil }
                out.append(PBField(number: n, value: .bytes(Array(b[i..<(i + Int(len))])))); i += Int(len)
            case 5:
                guard i + 4 <= b.count else { return nil }
                var v: UInt32 = 0
                for j in 0..<4 { v |= UInt32(b[i + j]) << (8 * UInt32(j)) }
                i += 4; out.append(PBField(number: n, value: .fixed32(v)))
            default: return nil
            }
        }
        return out
    }

    static func varint(_ v: UInt64, into out: inout [UInt8], minBytes: Int = 0) {
        var v = v, n = 0
        while v >= 0x80 || n + 1 < minBytes { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7; n += 1 }
        out.append(UInt8(v)); _ = n
    }

    static func serialize(_ fields: [PBField]) -> [UInt8] {
        var out: [UInt8] = []
        for f in fields {
            switch f.value {
            case .varint(let v): varint(UInt64(f.number) << 3, into: &out); varint(v, into: &out, minBytes: f.varintBytes)
            case .fixed64(let v):
                varint(UInt64(f.number) << 3 | 1, into: &out)
                for j in 0..<8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(j)))) }
            case .bytes(let b):
                varint(UInt64(f.number) << 3 | 2, into: &out)
                varint(UInt64(bitPattern: Int64(b.count + f.lengthDelta)), into: &out)
                out += b
            case .fixed32(let v):
                varint(UInt64(f.number) << 3 | 5, into: &out)
                for j in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(j)))) }
            }
        }
        return out
    }
}

// MARK: - Mutations

enum Mutator {
    static let extremeVarints: [UInt64] = [0, 1, 2, 3, 4, 7, 8, 63, 64, 65, 127, 128, 255, 256, 1000, 65535, 65536,
                                           UInt64(Int32.max), UInt64(Int32.max) + 1, UInt64(UInt32.max),
                                           UInt64(UInt32.max) + 1, UInt64(Int64.max), UInt64(Int64.max) + 1,
                                           UInt64.max - 1, UInt64.max]
    static let hostileDoubles: [Double] = [.nan, -.nan, .infinity, -.infinity, .greatestFiniteMagnitude,
                                           -.greatestFiniteMagnitude, 1e300, -1e300, 1e9, -1e9, 2, -2, 1, 0, -0.0,
                                           .leastNonzeroMagnitude, 0.5]
    static let hostileFloats: [Float] = [.nan, .infinity, -.infinity, .greatestFiniteMagnitude, -1e30, 1e30, 1, -1,
                                         0, .leastNonzeroMagnitude, -1000, 0.5]

    static func randomBytes(_ rng: inout SplitMix64, _ n: Int) -> [UInt8] {
        (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    /// One structure-aware mutation of a message (recursing into nested messages); nil if `b` does not parse.
    static func structural(_ b: [UInt8], _ rng: inout SplitMix64, depth: Int = 0) -> [UInt8]? {
        guard var fields = PB.parse(b) else { return nil }
        if fields.isEmpty || rng.int(12) == 0 {  // add a field: unknown number, or a known one duplicated
            let n = rng.int(2) == 0 ? 1 + rng.int(20) : 1 + rng.int(1 << 20)
            let value: PBField.Value = [.varint(extremeVarints[rng.int(extremeVarints.count)]),
                                        .bytes(randomBytes(&rng, rng.int(40))),
                                        .fixed64(rng.next()), .fixed32(UInt32(truncatingIfNeeded: rng.next()))][rng.int(4)]
            fields.insert(PBField(number: n, value: value), at: rng.int(fields.count + 1))
            return PB.serialize(fields)
        }
        let k = rng.int(fields.count)
        switch rng.int(10) {
        case 0: fields.remove(at: k)
        case 1: fields.insert(fields[k], at: rng.int(fields.count + 1))  // duplicate (repeated / last one wins)
        case 2:  // wrong wire type for the same field number
            let f = fields[k]
            fields[k].value = { switch f.value {
                case .varint: return .bytes(randomBytes(&rng, rng.int(9)))
                case .bytes: return .varint(extremeVarints[rng.int(extremeVarints.count)])
                case .fixed64: return .fixed32(UInt32(truncatingIfNeeded: rng.next()))
                case .fixed32: return .fixed64(rng.next())
            } }()
        default:
            switch fields[k].value {
            case .varint:
                fields[k].value = .varint(rng.int(4) == 0 ? rng.next() : extremeVarints[rng.int(extremeVarints.count)])
                if rng.int(6) == 0 { fields[k].varintBytes = 2 + rng.int(9) }  // overlong (up to 10 bytes)
            case .fixed64:
                fields[k].value = .fixed64(rng.int(4) == 0 ? rng.next() : hostileDoubles[rng.int(hostileDoubles.count)].bitPattern)
            case .fixed32:
                fields[k].value = .fixed32(rng.int(4) == 0 ? UInt32(truncatingIfNeeded: rng.next())
                                           : hostileFloats[rng.int(hostileFloats.count)].bitPattern)
            case .bytes(let inner):
                // Nested message? Recurse most of the time.
                if depth < 6, !inner.isEmpty, rng.int(3) != 0, let m = structural(inner, &rng, depth: depth + 1) {
                    fields[k].value = .bytes(m)
                } else {
                    fields[k].value = .bytes(hostileBytes(inner, &rng))
                    if rng.int(8) == 0 { fields[k].lengthDelta = [-1, 1, -2, 3, 1 << 20, -inner.count - 1, Int(Int32.max)][rng.int(7)] }
                }
            }
        }
        return PB.serialize(fields)
    }

    /// Content of a bytes field (token ids, floats, flags, strings) with hostile values.
    static func hostileBytes(_ b: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = b
        switch rng.int(8) {
        case 0: return Array(b.prefix(rng.int(b.count + 1)))                    // shorter (odd lengths)
        case 1: return b + randomBytes(&rng, 1 + rng.int(9))                    // longer
        case 2: return [UInt8](repeating: 0xFF, count: b.count)                 // ids UInt32.max, floats NaN
        case 3: return []
        case 4:                                                                  // a hostile float at an aligned slot
            if b.count >= 4 {
                let i = 4 * rng.int(b.count / 4), v = hostileFloats[rng.int(hostileFloats.count)].bitPattern
                for j in 0..<4 { b[i + j] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(j))) }
            }
            return b
        case 5: return randomBytes(&rng, 4 * rng.int(64))
        case 6: return b + b                                                     // twice as long
        default:
            if !b.isEmpty { b[rng.int(b.count)] ^= UInt8(1 << rng.int(8)) }
            return b
        }
    }

    /// One mutated frame from `seeds` (uniform over mutation families), or hostile-valued valid protobuf.
    static func frame(_ seeds: [[UInt8]], hostile: (inout SplitMix64) -> [UInt8], _ rng: inout SplitMix64, i: Int) -> [UInt8] {
        let seed = seeds[rng.int(seeds.count)]
        switch i % 8 {
        case 0: return randomBytes(&rng, rng.int(300))
        case 1:  // bit flips
            var f = seed
            for _ in 0..<(1 + rng.int(8)) where !f.isEmpty { f[rng.int(f.count)] ^= UInt8(1 << rng.int(8)) }
            return f
        case 2:  // truncated or extended
            return rng.int(2) == 0 ? Array(seed.prefix(rng.int(seed.count + 1))) : seed + randomBytes(&rng, 1 + rng.int(20))
        case 3:  // spliced from two seeds
            let b = seeds[rng.int(seeds.count)]
            return Array(seed.prefix(rng.int(seed.count + 1))) + Array(b.suffix(rng.int(b.count + 1)))
        case 4, 5:  // structure-aware, 1–3 rounds
            var f = seed
            for _ in 0..<(1 + rng.int(3)) { f = structural(f, &rng) ?? f }
            return f
        default: return hostile(&rng)  // valid protobuf, hostile field values
        }
    }
}

// MARK: - Per-decoder statistics

enum FuzzOutcome { case decoderRejected(WireDropReason), validatorRejected(DropReason), accepted, acceptedButViolates(String) }

struct FuzzStats {
    var name: String
    var total = 0
    var decoderRejected: [WireDropReason: Int] = [:]
    var validatorRejected = DropCounter()
    var accepted = 0
    /// Accepted messages that break a guarantee the validator promises (must stay 0).
    var violations: [String: Int] = [:]
    var decoded: Int { total - decoderRejected.values.reduce(0, +) }

    mutating func add(_ o: FuzzOutcome) {
        total += 1
        switch o {
        case .decoderRejected(let r): decoderRejected[r, default: 0] += 1
        case .validatorRejected(let r): validatorRejected.count(r)
        case .accepted: accepted += 1
        case .acceptedButViolates(let v): accepted += 1; violations[v, default: 0] += 1
        }
    }

    var report: String {
        let dec = decoderRejected.sorted { $0.value > $1.value }.map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", ")
        return """
        \(name): \(total) messages: decoded \(decoded), rejected by decoder \(total - decoded) [\(dec.isEmpty ? "none" : dec)], \
        rejected by validator \(validatorRejected.total) [\(validatorRejected.summary)], accepted \(accepted)\
        \(violations.isEmpty ? "" : ", ACCEPTED BUT INVALID \(violations)")
        """
    }
}

// MARK: - Decoders under test

/// The receiver's knowledge the fuzz seeds are valid under.
enum FuzzWorld {
    static let runID = Samples.runID
    static let vocab = 64, context = 64, maxNew = 24, n = 4, current = 20, lag = 4, params = 256
    static let layoutHash: UInt64 = 0xDEAD_BEEF_CAFE_F00D
    static let obsDim = 4, actions = 3, maxGroups = 16, maxKeys = 32, maxCapabilities = 8

    static func context(_ receiver: WireRole) -> ValidationContext {
        var c = ValidationContext(receiver: receiver, runID: runID)
        c.task = "math"; c.env = "chain"
        c.vocabSize = vocab; c.contextLength = context; c.maxNewTokens = maxNew; c.groupSizes = n...n
        c.currentVersion = current; c.maxLag = lag; c.maxVersionAhead = receiver == .coordinator ? 2 : 0
        c.parameterCount = params; c.layoutHash = layoutHash
        c.observationDim = obsDim; c.actionCount = actions
        c.rewardRange = -1...1; c.scoreRange = -10...10; c.temperatureRange = 0...4
        c.limits.maxGroupsPerBatch = maxGroups; c.limits.maxMetricKeys = maxKeys; c.limits.maxCapabilities = maxCapabilities
        return c
    }

    static func bon(_ rng: inout SplitMix64, hostile: Bool) -> WireBoNGroupBatch {
        func pick<T>(_ good: T, _ bad: [T], _ rng: inout SplitMix64) -> T {
            hostile && rng.int(6) == 0 ? bad[rng.int(bad.count)] : good
        }
        let groups = pick(1 + rng.int(3), [0, maxGroups + 1], &rng)
        return WireBoNGroupBatch(task: pick("math", ["code", "", String(repeating: "m", count: 300)], &rng), groups: (0..<groups).map { _ in
            let plen = pick(1 + rng.int(20), [0, 60, 65, 1000], &rng)
            let nResp = pick(n, [0, 1, n + 1, 100], &rng)
            return WireBoNGroup(
                itemID: rng.next(),
                promptTokens: (0..<plen).map { _ in pick(rng.int(vocab), [vocab, vocab + 1, Int(UInt32.max)], &rng) },
                behaviourVersion: pick(UInt64(current - rng.int(lag + 1)),
                                       [UInt64.max, UInt64(Int64.max) + 1, UInt64(current + 1), 0, UInt64(current - lag - 1)], &rng),
                temperature: pick(Float(0.5 + Double(rng.int(10)) / 10), [.nan, .infinity, -1, 1e9], &rng),
                responses: (0..<nResp).map { _ in
                    let t = pick(1 + rng.int(maxNew), [0, maxNew + 1, context], &rng)
                    return WireBoNResponse(
                        tokens: (0..<t).map { _ in pick(rng.int(vocab), [vocab, Int(UInt32.max)], &rng) },
                        tokenLogProbs: (0..<t).map { _ in pick(-Float(rng.int(1000)) / 100, Mutator.hostileFloats, &rng) },
                        verifierScore: pick(Double(rng.int(200)) / 20 - 5, Mutator.hostileDoubles, &rng),
                        reward: pick(Double(rng.int(3)) / 2 - 0.5, Mutator.hostileDoubles, &rng))
                })
        })
    }

    static func episodes(_ rng: inout SplitMix64, hostile: Bool) -> WireEpisodeBatch {
        func pick<T>(_ good: T, _ bad: [T], _ rng: inout SplitMix64) -> T {
            hostile && rng.int(8) == 0 ? bad[rng.int(bad.count)] : good
        }
        let t = pick(1 + rng.int(12), [0, 1], &rng)
        let d = pick(obsDim, [0, 1, 5], &rng)
        let done = rng.int(3) == 0
        return WireEpisodeBatch(
            env: pick("chain", ["grid", "", String(repeating: "e", count: 300)], &rng), observationDim: d,
            observations: (0..<(t * d)).map { _ in pick(rng.float(), Mutator.hostileFloats, &rng) },
            actions: (0..<t).map { _ in pick(Int32(rng.int(actions)), [-1, Int32(actions), .max, .min], &rng) },
            rewards: (0..<t).map { _ in pick(rng.float(), Mutator.hostileFloats, &rng) },
            dones: (0..<t).map { $0 == t - 1 ? done : pick(false, [true], &rng) },
            truncations: (0..<t).map { _ in pick(false, [true], &rng) },
            behaviourLogProbs: (0..<t).map { _ in pick(-abs(rng.float()), Mutator.hostileFloats, &rng) },
            behaviourVersions: (0..<t).map { _ in pick(UInt64(current - rng.int(lag + 1)), [.max, UInt64(current + 5), 0], &rng) },
            bootstrapObservation: pick(done ? [] : (0..<d).map { _ in rng.float() },
                                       [[], [Float](repeating: .nan, count: d), [Float](repeating: 1e30, count: d)], &rng))
    }

    static func parameters(_ rng: inout SplitMix64, hostile: Bool) -> WireParameters {
        let bad = hostile ? rng.int(5) : 4
        var values = (0..<params).map { _ in rng.float() }
        if bad == 0 { values[rng.int(params)] = Mutator.hostileFloats[rng.int(3)] }
        return WireParameters(version: bad == 1 ? [UInt64.max, 0, UInt64(Int64.max) + 1][rng.int(3)] : UInt64(current + rng.int(3)),
                              layoutHash: bad == 2 ? rng.next() : layoutHash,
                              values: bad == 3 ? Array(values.prefix(rng.int(params))) : values)
    }

    static func evalRequest(_ rng: inout SplitMix64, hostile: Bool) -> WireEvalRequest {
        let bad = hostile ? rng.int(6) : 5
        return WireEvalRequest(requestID: rng.next(), version: bad == 0 ? .max : UInt64(current),
                               task: bad == 1 ? "other" : "math", split: "test",
                               nList: bad == 2 ? [0, Int(UInt32.max)] : [1, 4, 16],
                               temperatures: bad == 3 ? [.nan] : [0.7, 1.0], numPrompts: bad == 4 ? Int(UInt32.max) : 200)
    }

    static func evalReport(_ rng: inout SplitMix64, hostile: Bool) -> WireEvalReport {
        let bad = hostile ? rng.int(7) : 6
        return WireEvalReport(requestID: 5, version: bad == 0 ? [UInt64.max, UInt64(current + 100)][rng.int(2)] : UInt64(current),
                              task: bad == 1 ? "code" : "math", rows: bad == 2 ? [] : [
            WireEvalRow(n: bad == 3 ? 0 : 4, temperature: 1, passAtN: bad == 4 ? Mutator.hostileDoubles[rng.int(8)] : 0.5,
                        boN: 0.25, meanReward: bad == 5 ? .nan : 0.2, numPrompts: 200),
        ])
    }

    static func metrics(_ rng: inout SplitMix64, hostile: Bool) -> WireMetrics {
        let bad = hostile ? rng.int(5) : 4
        var values: [String: Double] = ["loss/policy": 1.25, "eval/bo8": 0.5]
        if bad == 0 { values["loss/policy"] = Mutator.hostileDoubles[rng.int(4)] }
        if bad == 1 { for i in 0...maxKeys { values["k\(i)"] = 1 } }
        if bad == 2 { values[String(repeating: "k", count: 1000)] = 1 }
        return WireMetrics(step: bad == 3 ? .max : 300, version: bad == 3 ? .max : UInt64(current), values: values)
    }

    static func hello(_ rng: inout SplitMix64, hostile: Bool) -> WireHello {
        let bad = hostile ? rng.int(4) : 3
        return WireHello(role: bad == 0 ? [.unspecified, .coordinator][rng.int(2)] : .actor, id: 3,
                         host: bad == 1 ? String(repeating: "h", count: 300) : "127.0.0.1", pid: 42,
                         capabilities: bad == 2 ? (0...maxCapabilities).map { "c\($0)" } : ["bon-groups"])
    }

    static func helloAck(_ rng: inout SplitMix64, hostile: Bool) -> WireHelloAck {
        let bad = hostile ? rng.int(3) : 2
        return WireHelloAck(accepted: true, currentVersion: bad == 0 ? .max : UInt64(current),
                            heartbeatIntervalMs: bad == 1 ? [0, .max][rng.int(2)] : 500, liveness: 3)
    }

    static func heartbeat(_ rng: inout SplitMix64, hostile: Bool) -> WireHeartbeat {
        let bad = hostile ? rng.int(3) : 2
        return WireHeartbeat(policyVersion: bad == 0 ? [.max, UInt64(current + 100)][rng.int(2)] : UInt64(current),
                             unixTimeMs: rng.next(), state: bad == 1 ? String(repeating: "s", count: 500) : "sampling")
    }

    static func shutdown(_ rng: inout SplitMix64, hostile: Bool) -> WireShutdown {
        WireShutdown(reason: hostile && rng.int(2) == 0 ? String(repeating: "r", count: 500) : "SIGTERM")
    }

    /// Which role sends each payload and which receives it.
    static func roles(_ p: WirePayload) -> (sender: WireRole, receiver: WireRole) {
        switch p {
        case .bonGroups, .episodes: (.actor, .learner)
        case .parameters, .parameterNotice: (.learner, .actor)
        case .helloAck, .evalRequest: (.coordinator, .actor)
        case .shutdown: (.coordinator, .actor)
        case .hello, .heartbeat, .evalReport, .metrics: (.actor, .coordinator)
        }
    }

    static func envelope(_ p: WirePayload, _ rng: inout SplitMix64) -> WireEnvelope {
        WireEnvelope(runID: runID, senderRole: roles(p).sender, senderID: 3, sequence: 1 + UInt64(rng.int(1000)), payload: p)
    }

    static func payload(_ rng: inout SplitMix64, hostile: Bool) -> WirePayload {
        switch rng.int(10) {
        case 0: .hello(hello(&rng, hostile: hostile))
        case 1: .helloAck(helloAck(&rng, hostile: hostile))
        case 2: .heartbeat(heartbeat(&rng, hostile: hostile))
        case 3: .parameters(parameters(&rng, hostile: hostile))
        case 4: .bonGroups(bon(&rng, hostile: hostile))
        case 5: .episodes(episodes(&rng, hostile: hostile))
        case 6: .evalRequest(evalRequest(&rng, hostile: hostile))
        case 7: .evalReport(evalReport(&rng, hostile: hostile))
        case 8: .metrics(metrics(&rng, hostile: hostile))
        default: .shutdown(shutdown(&rng, hostile: hostile))
        }
    }
}

extension FuzzWorld {
    /// What an accepted message guarantees to the code that uses it (the conversions that trapped before issue 11).
    /// Returns a violation, or nil.
    static func violation(_ p: WirePayload, receiver: WireRole) -> String? {
        switch p {
        case .bonGroups(let b):
            for g in b.groups {
                guard let v = Int(exactly: g.behaviourVersion), v <= current, current - v <= lag else { return "version \(g.behaviourVersion)" }
                guard g.responses.count == n, !g.promptTokens.isEmpty else { return "group shape" }
                for y in g.responses {
                    guard !y.tokens.isEmpty, g.promptTokens.count + y.tokens.count <= context,
                          (g.promptTokens + y.tokens).allSatisfy({ $0 >= 0 && $0 < vocab }) else { return "tokens" }
                    guard y.tokenLogProbs.allSatisfy({ $0.isFinite && $0 <= 1e-4 && $0 >= -100 }),
                          y.reward.isFinite, abs(y.reward) <= 1, y.verifierScore.isFinite else { return "values" }
                }
            }
        case .episodes(let e):
            guard e.observationDim == obsDim, !e.actions.isEmpty,
                  e.actions.allSatisfy({ $0 >= 0 && Int($0) < actions }),
                  (e.observations + e.rewards + e.behaviourLogProbs + e.bootstrapObservation).allSatisfy(\.isFinite),
                  e.behaviourVersions.allSatisfy({ Int(exactly: $0).map { $0 <= current && current - $0 <= lag } ?? false })
            else { return "episode" }
        case .parameters(let q):
            guard q.values.count == params, q.values.allSatisfy(\.isFinite), Int(exactly: q.version) != nil else { return "parameters" }
        case .metrics(let m):
            guard Int(exactly: m.version) != nil, Int(exactly: m.step) != nil, m.values.values.allSatisfy(\.isFinite) else { return "metrics" }
        case .evalReport(let r):
            guard let v = Int(exactly: r.version), v <= current + 2, !r.rows.isEmpty,
                  r.rows.allSatisfy({ $0.passAtN >= 0 && $0.passAtN <= 1 && $0.boN >= 0 && $0.boN <= 1 && $0.n >= 1 }) else { return "eval report" }
        case .heartbeat(let h):
            guard Int(exactly: h.policyVersion) != nil else { return "heartbeat" }
        default: break
        }
        return nil
    }
}

struct FuzzTarget {
    var name: String
    var seeds: [[UInt8]]
    var hostile: (inout SplitMix64) -> [UInt8]
    var run: ([UInt8]) -> FuzzOutcome

    static func message<M>(_ name: String, receiver: WireRole, make: @escaping (inout SplitMix64, Bool) -> M,
                           encode: @escaping (M) -> [UInt8], decode: @escaping ([UInt8]) throws(WireError) -> M,
                           validate: @escaping (ValidationContext, M) -> Validation,
                           payload: @escaping (M) -> WirePayload?) -> FuzzTarget {
        var rng = SplitMix64(seed: 0x5EED)
        let ctx = FuzzWorld.context(receiver)
        return FuzzTarget(
            name: name, seeds: (0..<8).map { _ in encode(make(&rng, false)) },
            hostile: { encode(make(&$0, true)) },
            run: { bytes in
                let m: M
                do throws(WireError) { m = try decode(bytes) } catch { return .decoderRejected(error.reason) }
                // Whatever decodes must re-encode without tripping a precondition.
                _ = encode(m)
                if case .invalid(let r, _) = validate(ctx, m) { return .validatorRejected(r) }
                if let p = payload(m), let v = FuzzWorld.violation(p, receiver: receiver) { return .acceptedButViolates(v) }
                return .accepted
            })
    }

    static var all: [FuzzTarget] {
        var rng = SplitMix64(seed: 0xE4E1)
        let envelope = FuzzTarget(
            name: "Envelope",
            seeds: (0..<40).map { _ in FuzzWorld.envelope(FuzzWorld.payload(&rng, hostile: false), &rng).encoded() },
            hostile: { r in FuzzWorld.envelope(FuzzWorld.payload(&r, hostile: true), &r).encoded() },
            run: { bytes in
                let decoder = WireDecoder(runID: FuzzWorld.runID, limits: WireLimits(maxMessageBytes: 1 << 20))
                let env: WireEnvelope
                do throws(WireError) { env = try decoder.decode(bytes) } catch { return .decoderRejected(error.reason) }
                _ = env.encoded()
                let ctx = FuzzWorld.context(FuzzWorld.roles(env.payload).receiver)
                if case .invalid(let r, _) = ctx.validate(env) { return .validatorRejected(r) }
                if let v = FuzzWorld.violation(env.payload, receiver: ctx.receiver) { return .acceptedButViolates(v) }
                return .accepted
            })
        return [
            envelope,
            .message("BoNGroupBatch", receiver: .learner, make: { FuzzWorld.bon(&$0, hostile: $1) },
                     encode: { $0.encoded() }, decode: { (b) throws(WireError) in try WireBoNGroupBatch(wire: b) },
                     validate: { $0.validate($1) }, payload: { .bonGroups($0) }),
            .message("EpisodeBatch", receiver: .learner, make: { FuzzWorld.episodes(&$0, hostile: $1) },
                     encode: { $0.encoded() }, decode: { (b) throws(WireError) in try WireEpisodeBatch(wire: b) },
                     validate: { $0.validate($1) }, payload: { .episodes($0) }),
            .message("ParameterAnnounce", receiver: .actor, make: { FuzzWorld.parameters(&$0, hostile: $1) },
                     encode: { $0.encoded() }, decode: { (b) throws(WireError) in try WireParameters(wire: b) },
                     validate: { $0.validate($1) }, payload: { .parameters($0) }),
            .message("EvalRequest", receiver: .actor, make: { FuzzWorld.evalRequest(&$0, hostile: $1) },
                     encode: { $0.encoded() }, decode: { (b) throws(WireError) in try WireEvalRequest(wire: b) },
                     validate: { $0.validate($1) }, payload: { .evalRequest($0) }),
            .message("EvalReport", receiver: .coordinator, make: { FuzzWorld.evalReport(&$0, hostile: $1) },
                     encode: { $0.encoded() }, decode: { (b) throws(WireError) in try WireEvalReport(wire: b) },
                     validate: { $0.validate($1) }, payload: { .evalReport($0) }),
            .message("Metrics", receiver: .coordinator, make: { FuzzWorld.metrics(&$0, hostile: $1) },
                     encode: { $0.encoded() }, decode: { (b) throws(WireError) in try WireMetrics(wire: b) },
                     validate: { $0.validate($1) }, payload: { .metrics($0) }),
            .message("Hello", receiver: .coordinator, make: { FuzzWorld.hello(&$0, hostile: $1) },
                     encode: { $0.encoded() }, decode: { (b) throws(WireError) in try WireHello(wire: b) },
                     validate: { $0.validate($1) }, payload: { .hello($0) }),
            .message("HelloAck", receiver: .actor, make: { FuzzWorld.helloAck(&$0, hostile: $1) },
                     encode: { $0.encoded() }, decode: { (b) throws(WireError) in try WireHelloAck(wire: b) },
                     validate: { $0.validate($1) }, payload: { .helloAck($0) }),
            .message("Heartbeat", receiver: .coordinator, make: { FuzzWorld.heartbeat(&$0, hostile: $1) },
                     encode: { $0.encoded() }, decode: { (b) throws(WireError) in try WireHeartbeat(wire: b) },
                     validate: { $0.validate($1) }, payload: { .heartbeat($0) }),
            .message("Shutdown", receiver: .actor, make: { FuzzWorld.shutdown(&$0, hostile: $1) },
                     encode: { $0.encoded() }, decode: { (b) throws(WireError) in try WireShutdown(wire: b) },
                     validate: { $0.validate($1) }, payload: { .shutdown($0) }),
        ]
    }

    func fuzz(count: Int, seed: UInt64) -> FuzzStats {
        var rng = SplitMix64(seed: seed)
        var stats = FuzzStats(name: name)
        for i in 0..<count {
            stats.add(run(Mutator.frame(seeds, hostile: hostile, &rng, i: i)))
        }
        return stats
    }
}
