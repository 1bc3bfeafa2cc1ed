// Seeded random numbers: xoshiro256** with SplitMix64 seeding. Independent streams are derived from
// (seed, stream ids…) by hashing, so each role/actor/prompt gets its own reproducible stream.

package struct RNG: RandomNumberGenerator, Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    package init(seed: UInt64) {
        var sm = seed
        func splitmix(_ x: inout UInt64) -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitmix(&sm); s1 = splitmix(&sm); s2 = splitmix(&sm); s3 = splitmix(&sm)
        if s0 | s1 | s2 | s3 == 0 { s0 = 1 }
    }

    /// An independent stream for (seed, ids...): e.g. RNG(seed: run, stream: role, actorId, step).
    package init(seed: UInt64, stream ids: UInt64...) {
        var h = seed ^ 0x6A09_E667_F3BC_C908
        for id in ids {
            h = RNG.mix(h ^ RNG.mix(id &+ 0x9E37_79B9_7F4A_7C15))
        }
        self.init(seed: h)
    }

    package static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 33)) &* 0xFF51_AFD7_ED55_8CCD
        z = (z ^ (z >> 33)) &* 0xC4CE_B9FE_1A85_EC53
        return z ^ (z >> 33)
    }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    package mutating func next() -> UInt64 {
        let result = RNG.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = RNG.rotl(s3, 45)
        return result
    }

    /// Uniform in [0, 1).
    package mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }
    package mutating func uniformFloat() -> Float { Float(next() >> 40) * 0x1.0p-24 }

    /// Standard normal (Box–Muller).
    package mutating func normal() -> Double {
        var u1 = uniform()
        while u1 <= 0 { u1 = uniform() }
        let u2 = uniform()
        return (-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2)
    }

    /// Uniform integer in 0..<n.
    package mutating func int(_ n: Int) -> Int {
        precondition(n > 0, "RNG.int: n must be positive, got \(n)")
        return Int(next(upperBound: UInt64(n)))
    }

    /// Sample an index from unnormalised non-negative weights.
    package mutating func categorical(_ weights: [Double]) -> Int {
        let total = weights.reduce(0, +)
        precondition(total > 0, "RNG.categorical: weights sum to \(total)")
        var u = uniform() * total
        for (i, w) in weights.enumerated() {
            u -= w
            if u < 0 { return i }
        }
        return weights.lastIndex(where: { $0 > 0 }) ?? weights.count - 1
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) private func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#else
import Foundation
@inline(__always) private func _log(_ x: Double) -> Double { Foundation.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Foundation.cos(x) }
#endif
