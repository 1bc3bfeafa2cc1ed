// Small helpers shared by the BonfireTasks tests.
import BonfireMath

/// A seeded RNG wrapper for test fixtures.
struct RNGBox {
    var rng: RNG
    init(seed: UInt64) { rng = RNG(seed: seed) }
    mutating func int(_ n: Int) -> Int { rng.int(n) }
    mutating func uniform() -> Double { rng.uniform() }
}
