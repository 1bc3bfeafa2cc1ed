// Metrics: a step/version stamp and a map of namespaced keys ("loss/policy", "eval/bo8") to doubles
// (proto `map<string, double>`; encoded in sorted key order so equal values give equal bytes).
import CBonfireProto

package struct WireMetrics: Equatable, Sendable {
    package var step: UInt64
    package var version: UInt64
    package var values: [String: Double]

    package init(step: UInt64, version: UInt64, values: [String: Double]) {
        self.step = step; self.version = version; self.values = values
    }

    package init(wire: [UInt8]) throws(WireError) {
        self = try unpackMessage(wire, what: "Metrics", unpack: bonfire__v1__metrics__unpack, convert: Self.init(c:))
    }

    package func encoded() -> [UInt8] {
        let arena = PackArena()
        return withExtendedLifetime(arena) { packMessage(build(in: arena)) }
    }

    init(c: UnsafePointer<Bonfire__V1__Metrics>) throws(WireError) {
        let m = c.pointee
        var values: [String: Double] = [:]
        for i in 0..<m.n_values {
            // Protobuf map semantics: the last entry for a key wins.
            guard let e = m.values[i]?.pointee else { throw WireError(.malformed, "Metrics.values[\(i)] is null") }
            values[swiftString(e.key)] = e.value
        }
        self.init(step: m.step, version: m.version, values: values)
    }

    func build(in a: PackArena) -> UnsafeMutablePointer<Bonfire__V1__Metrics> {
        let p = a.make(Bonfire__V1__Metrics.self, bonfire__v1__metrics__init)
        p.pointee.step = step
        p.pointee.version = version
        p.pointee.n_values = values.count
        if !values.isEmpty {
            let arr = a.array(UnsafeMutablePointer<Bonfire__V1__Metrics__ValuesEntry>?.self, count: values.count)
            for (i, (k, v)) in values.sorted(by: { $0.key < $1.key }).enumerated() {
                let e = a.make(Bonfire__V1__Metrics__ValuesEntry.self, bonfire__v1__metrics__values_entry__init)
                e.pointee.key = a.string(k)
                e.pointee.value = v
                arr[i] = e
            }
            p.pointee.values = arr
        }
        return p
    }
}
