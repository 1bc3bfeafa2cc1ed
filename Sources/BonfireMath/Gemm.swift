import COpenBLAS
import CBonfireKernels

// The one place heavy loops live: single-precision GEMM through OpenBLAS (row-major).
//   C (m×n) = alpha · op(A) · op(B) + beta · C,   op(A) is m×k, op(B) is k×n.
// `transA`/`transB` say whether A/B are stored transposed (A stored k×m, B stored n×k).

package enum BLAS {
    /// Raw-pointer SGEMM. `lda/ldb/ldc` default to the packed row-major leading dimensions.
    @inline(__always)
    package static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int? = nil,
        b: UnsafePointer<Float>, ldb: Int? = nil,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "sgemm: negative dims m=\(m) n=\(n) k=\(k)")
        if m == 0 || n == 0 { return }
        prepare()
        let la = lda ?? (transA ? m : k)
        let lb = ldb ?? (transB ? k : n)
        let lc = ldc ?? n
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(la), b, Int32(lb), beta, c, Int32(lc))
    }

    /// Array convenience: C = alpha·op(A)·op(B) + beta·C with size checks.
    package static func sgemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, _ a: [Float], _ b: [Float], beta: Float = 0, _ c: inout [Float]
    ) {
        precondition(a.count >= m * k, "sgemm: A has \(a.count) elements, need m·k = \(m)·\(k)")
        precondition(b.count >= k * n, "sgemm: B has \(b.count) elements, need k·n = \(k)·\(n)")
        precondition(c.count >= m * n, "sgemm: C has \(c.count) elements, need m·n = \(m)·\(n)")
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                          a: pa.baseAddress!, b: pb.baseAddress!, beta: beta, c: pc.baseAddress!)
                }
            }
        }
    }

    /// Tensor convenience for 2-D tensors: returns op(A)·op(B).
    package static func matmul(_ a: Tensor, _ b: Tensor, transA: Bool = false, transB: Bool = false) -> Tensor {
        precondition(a.rank == 2 && b.rank == 2, "matmul: need rank-2 tensors, got \(a.shape) and \(b.shape)")
        let m = transA ? a.shape[1] : a.shape[0]
        let k = transA ? a.shape[0] : a.shape[1]
        let kb = transB ? b.shape[1] : b.shape[0]
        let n = transB ? b.shape[0] : b.shape[1]
        precondition(k == kb, "matmul: inner dims differ: op(A) is \(m)×\(k), op(B) is \(kb)×\(n)")
        var c = [Float](repeating: 0, count: m * n)
        sgemm(transA: transA, transB: transB, m: m, n: n, k: k, a.data, b.data, &c)
        return Tensor(shape: [m, n], data: c)
    }

    /// y += alpha·x
    package static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        prepare()
        cblas_saxpy(Int32(count), alpha, x, 1, y, 1)
    }

    /// Fast path around OpenBLAS's own CPU detection, run once before the first BLAS call: OpenBLAS 0.3.21 does not
    /// know newer CPUs by model number (Sapphire/Emerald Rapids report family 6 model 143/207) and falls back to its
    /// SSE3 "Prescott" kernel, 2–4× slower. When OPENBLAS_CORETYPE is unset and the CPU has AVX-512 (AVX2 + FMA),
    /// this re-selects SkylakeX (Haswell) exactly as setting the variable would. The plain path is the library's
    /// choice: set OPENBLAS_CORETYPE (to any core) to keep it. See bfk_openblas_select_core.
    @inline(__always)
    package static func prepare() { _ = bfk_openblas_select_core() }

    /// The core name OpenBLAS had picked before `prepare()` replaced it (nil if it kept the library's choice).
    package static var replacedCore: String? { bfk_openblas_select_core().map { String(cString: $0) } }

    /// The OpenBLAS kernel in use (benchmarks print it; see NOTES-build.md on OPENBLAS_CORETYPE).
    package static var coreName: String { prepare(); return String(cString: openblas_get_corename()) }
    package static var numThreads: Int { prepare(); return Int(openblas_get_num_threads()) }
    /// Sets OpenBLAS's thread count and Bonfire's own (`Parallel.threads`) to `n`.
    package static func setNumThreads(_ n: Int) {
        prepare(); openblas_set_num_threads(Int32(n)); Parallel.setThreads(max(1, n))
    }
}
