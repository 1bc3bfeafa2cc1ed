// IEEE binary16 (f16) and bfloat16 (bf16) ↔ Float conversions for checkpoints stored in half precision.
// Narrowing rounds to nearest, ties to even (what torch's .to(float16/bfloat16) does); NaN stays NaN, overflow
// becomes ±Inf. Widening is exact.

package enum HalfPrecision {
    /// bf16 bits → Float (exact).
    @inline(__always)
    package static func bf16ToFloat(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

    /// Float → bf16 bits, round to nearest even.
    @inline(__always)
    package static func floatToBF16(_ f: Float) -> UInt16 {
        let u = f.bitPattern
        if f.isNaN { return UInt16(truncatingIfNeeded: (u >> 16) | 0x40) }   // quiet NaN, keeps the sign
        let rounding = UInt32(0x7FFF) + ((u >> 16) & 1)
        return UInt16(truncatingIfNeeded: (u &+ rounding) >> 16)
    }

    /// f16 bits → Float (exact, subnormals included).
    @inline(__always)
    package static func f16ToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exp = Int((h >> 10) & 0x1F), frac = UInt32(h & 0x3FF)
        if exp == 0 {
            let v = Float(frac) * 0x1p-24
            return sign == 0 ? v : -v
        }
        if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (frac << 13)) }
        return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (frac << 13))
    }

    /// Float → f16 bits, round to nearest even (subnormal results included; |f| ≥ 65520 → ±Inf).
    package static func floatToF16(_ f: Float) -> UInt16 {
        let u = f.bitPattern
        let sign = UInt16((u >> 16) & 0x8000)
        if f.isNaN { return sign | 0x7E00 }
        let a = abs(f)
        if a >= 65520 { return sign | 0x7C00 }
        if a < 0x1p-14 {
            // Subnormal (or zero): value = m · 2⁻²⁴, m = round_half_even(a · 2²⁴) (exact in Float for this range).
            let m = (a * 0x1p24).rounded(.toNearestOrEven)
            return sign | UInt16(m)   // m ≤ 1024: 1024 becomes the smallest normal, which is the right bit pattern
        }
        let e = Int((u >> 23) & 0xFF) - 127 + 15           // 1...30
        var mant = u & 0x7F_FFFF
        let rest = mant & 0x1FFF                           // 13 dropped bits
        mant >>= 13
        var h = UInt32(e) << 10 | mant
        if rest > 0x1000 || (rest == 0x1000 && (mant & 1) == 1) { h += 1 }   // carry may bump the exponent: still right
        return sign | UInt16(h)
    }
}
