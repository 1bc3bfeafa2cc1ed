import COpenBLAS
import CBonfireKernels

// The one place heavy loops live: single-precision GEMM (row-major), split over Bonfire's threads.
//   C (m×n) = alpha · op(A) · op(B) + beta · C,   op(A) is m×k, op(B) is k×n.
// `transA`/`transB` say whether A/B are stored transposed (A stored k×m, B stored n×k).
// Two kernels: Bonfire's own AVX-512 SGEMM (CBonfireKernels/gemm.c, `bfk_sgemm`) for the shapes where it measured
// faster than OpenBLAS (the linear layers of the train step; see `kernel(m:n:k:)` and docs/performance.md "Own
// SGEMM"), OpenBLAS for everything else and on CPUs without AVX-512 (or aarch64).

package enum BLAS {
    /// Raw-pointer SGEMM. `lda/ldb/ldc` default to the packed row-major leading dimensions.
    /// Fast path for threads: with `Parallel.threads` > 1 and enough work in every part, C is split into contiguous
    /// blocks of rows (or of columns, when C is wider than tall) and each block is one single-threaded call on its
    /// own thread (`sgemmParts`). The kernel is chosen once from the whole product's shape (`kernel(m:n:k:)`), so all
    /// parts run the same one; the own kernel sums each element in an order independent of its position, and every
    /// OpenBLAS part stays above its small-matrix cut-off (M·N·K ≤ 10⁶ takes a different kernel): each element is
    /// summed by the same kernel in the same order as in one call.
    @inline(__always)
    package static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int? = nil,
        b: UnsafePointer<Float>, ldb: Int? = nil,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil, epilogue: Epilogue? = nil
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "sgemm: negative dims m=\(m) n=\(n) k=\(k)")
        if m == 0 || n == 0 { return }
        prepare()
        let la = lda ?? (transA ? m : k)
        let lb = ldb ?? (transB ? k : n)
        let lc = ldc ?? n
        let parts = sgemmParts(m: m, n: n, k: k)
        let kern = kernel(m: m, n: n, k: k)
        if parts <= 1 {
            sgemmOne(kern, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: la, b: b,
                     ldb: lb, beta: beta, c: c, ldc: lc, epilogue: epilogue)
        } else if m >= n {   // blocks of rows of C: rows of op(A)
            Parallel.forRanges(m, minItems: parts) { r, _ in
                let a0 = transA ? a + r.lowerBound : a + r.lowerBound * la
                sgemmOne(kern, transA: transA, transB: transB, m: r.count, n: n, k: k, alpha: alpha, a: a0, lda: la,
                         b: b, ldb: lb, beta: beta, c: c + r.lowerBound * lc, ldc: lc,
                         epilogue: epilogue?.offset(row: r.lowerBound, column: 0))
            }
        } else {             // blocks of columns of C: columns of op(B)
            Parallel.forRanges(n, minItems: parts) { r, _ in
                let b0 = transB ? b + r.lowerBound * lb : b + r.lowerBound
                sgemmOne(kern, transA: transA, transB: transB, m: m, n: r.count, k: k, alpha: alpha, a: a, lda: la,
                         b: b0, ldb: lb, beta: beta, c: c + r.lowerBound, ldc: lc,
                         epilogue: epilogue?.offset(row: 0, column: r.lowerBound))
            }
        }
    }

    /// What a product does to C besides alpha·op(A)·op(B), while each tile of C is in cache (`bfk_gemm_epilogue`,
    /// gemm.c): the elementwise passes of a linear layer that used to read and write all of C once more. Matrices are
    /// addressed like C (row-major, element [i][j] of the whole product, their own leading dimension).
    /// On the own kernel they run tile by tile inside the product ("fused"); on OpenBLAS (or when the own kernel
    /// cannot allocate) as separate passes (`sgemmSeparate`), with the same bits either way.
    package struct Epilogue {
        /// First: C starts as addend[i][j] + bias[j] (either alone when the other is nil) instead of beta·C; beta is
        /// then ignored and C's old content not read.
        package var bias: UnsafePointer<Float>?
        package var addend: UnsafePointer<Float>?
        package var ldAddend: Int
        /// Last, on the finished product: geluOut[i][j] = GELU(C[i][j]) (`bfk_gelu_forward`); geluOut may not
        /// overlap C …
        package var geluOut: UnsafeMutablePointer<Float>?
        package var ldGeluOut: Int
        /// … and with `geluLocalInC` (only with geluOut), C[i][j] = GELU'(C[i][j]) (`bfk_gelu_forward_local`).
        package var geluLocalInC: Bool
        /// aSums (m) += Σ_k op(A)[i][k], added one k at a time in k order (op(A) = Aᵀ only: linearBackward's dbias,
        /// summed while the dW product packs dout). Alpha and beta do not apply.
        package var aSums: UnsafeMutablePointer<Float>?

        package init(bias: UnsafePointer<Float>? = nil, addend: UnsafePointer<Float>? = nil, ldAddend: Int = 0,
                     geluOut: UnsafeMutablePointer<Float>? = nil, ldGeluOut: Int = 0, geluLocalInC: Bool = false,
                     aSums: UnsafeMutablePointer<Float>? = nil) {
            precondition(!geluLocalInC || geluOut != nil, "BLAS.Epilogue: geluLocalInC needs geluOut")
            self.bias = bias; self.addend = addend; self.ldAddend = ldAddend
            self.geluOut = geluOut; self.ldGeluOut = ldGeluOut; self.geluLocalInC = geluLocalInC; self.aSums = aSums
        }

        /// Whether C starts from addend + bias (not beta·C).
        var replacesBeta: Bool { bias != nil || addend != nil }

        /// The epilogue of the sub-product whose C starts at element [row][column] of this one (aSums: only the part
        /// at column 0 sums, so a split by columns adds each sum once).
        func offset(row: Int, column: Int) -> Epilogue {
            Epilogue(bias: bias.map { $0 + column }, addend: addend.map { $0 + row * ldAddend + column },
                     ldAddend: ldAddend,
                     geluOut: geluOut.map { $0 + row * ldGeluOut + column }, ldGeluOut: ldGeluOut,
                     geluLocalInC: geluLocalInC, aSums: column == 0 ? aSums.map { $0 + row } : nil)
        }

        var c: bfk_gemm_epilogue {
            bfk_gemm_epilogue(bias: bias, addend: addend, ld_addend: ldAddend, gelu_out: geluOut,
                              ld_gelu_out: ldGeluOut, gelu_local_in_c: geluLocalInC ? 1 : 0, a_sums: aSums)
        }
    }

    /// Whether `Ops` fuses its elementwise passes into the own kernel's products (`Epilogue`; default true). Off, Ops
    /// runs the separate passes it ran before (the same bits): the A/B switch of `bonfire-bench model --fuse`. Set it
    /// before starting work on other threads.
    package nonisolated(unsafe) static var fusesEpilogues = true

    /// Whether `Ops` runs a product of this shape with a fused epilogue: on the own kernel (`kernel(m:n:k:)`) with
    /// `fusesEpilogues` on. Elsewhere Ops keeps its separate passes (OpenBLAS cannot fuse them).
    package static func fuses(m: Int, n: Int, k: Int) -> Bool {
        fusesEpilogues && kernel(m: m, n: n, k: k) == .own
    }

    /// Which SGEMM computes a product.
    package enum Kernel: Sendable, CustomStringConvertible {
        /// OpenBLAS's `cblas_sgemm` (single-threaded per call).
        case openBLAS
        /// Bonfire's own AVX-512 kernel (`bfk_sgemm`, CBonfireKernels/gemm.c).
        case own
        package var description: String { self == .own ? "own" : "OpenBLAS" }
    }

    /// Whether products may run on the own kernel (default true). Off, every product runs on OpenBLAS: the A/B switch
    /// of `bonfire-bench model --gemm` and the way back if the own kernel is ever suspected. Set it before starting
    /// work on other threads.
    package static var ownKernelEnabled: Bool {
        get { bfk_sgemm_enabled() != 0 }
        set { bfk_sgemm_set_enabled(newValue ? 1 : 0) }
    }

    /// The own kernel is used when every dimension is at least this: every linear-layer product of the train steps
    /// of tiny and small (m, n, k ≥ 128) and, since the eighth pass, of the default job's model (dim 64: its SFT
    /// warm-up's products at 100–640 rows took 0.80–0.96× OpenBLAS SkylakeX's time, 15% less in all; the threshold
    /// was 128 until then). Smaller products — attention's T × T × hd, decode rows — stay on OpenBLAS, where the own
    /// kernel's 64-column tiles and packing are not measured to win.
    package static let ownKernelMinDim = 64

    /// The kernel a product of this shape runs on: the own one when it is enabled, the CPU has AVX-512 (at the level
    /// `Kernels.setISA` leaves) and m, n, k ≥ `ownKernelMinDim`; OpenBLAS otherwise.
    package static func kernel(m: Int, n: Int, k: Int) -> Kernel {
        ownKernelEnabled && bfk_sgemm_available() != 0
            && min(m, n, k) >= ownKernelMinDim ? .own : .openBLAS
    }

    /// One single-threaded call on `kern` (the own kernel falls back to OpenBLAS if it cannot allocate its packing
    /// buffer).
    /// With an epilogue: fused on the own kernel, else the separate passes (`sgemmSeparate`).
    @inline(__always)
    static func sgemmOne(_ kern: Kernel, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                         a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
                         c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: Epilogue? = nil) {
        if let epilogue {
            var ep = epilogue.c
            if kern == .own,
               bfk_sgemm_ex(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, &ep) != 0 {
                return
            }
            sgemmSeparate(kern, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b,
                          ldb: ldb, beta: beta, c: c, ldc: ldc, epilogue: epilogue)
            return
        }
        if kern == .own,
           bfk_sgemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) != 0 { return }
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Plain twin of a fused epilogue: the unfused sequence on one thread, over the whole product. C rows are set to
    /// addend + bias (`startRows`), the product is added with beta = 1 on `kern` (without an
    /// addend or bias: with `beta`), then `bfk_gelu_forward` (or, with `geluLocalInC`, `bfk_gelu_forward_local`)
    /// runs row by row.
    package static func sgemmSeparate(_ kern: Kernel, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                                      alpha: Float, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>,
                                      ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int,
                                      epilogue ep: Epilogue) {
        precondition(ep.aSums == nil || transA, "sgemm: aSums needs op(A) = Aᵀ")
        if let s = ep.aSums {   // Ops.linearBackward's dbias loop: rows of A (k × m) in order
            for q in 0..<k { let row = a + q * lda; for i in 0..<m { s[i] += row[i] } }
        }
        if ep.replacesBeta {
            startRows(c, ldc: ldc, rows: 0..<m, n: n, addend: ep.addend, ldAddend: ep.ldAddend, bias: ep.bias)
        }
        sgemmOne(kern, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                 beta: ep.replacesBeta ? 1 : beta, c: c, ldc: ldc)
        if let g = ep.geluOut {
            for i in 0..<m {
                if ep.geluLocalInC { bfk_gelu_forward_local(g + i * ep.ldGeluOut, c + i * ldc, n) }
                else { bfk_gelu_forward(g + i * ep.ldGeluOut, c + i * ldc, n) }
            }
        }
    }

    /// The own kernel alone, whatever the shape (tests and benchmarks): false, with C untouched, when it does not
    /// handle products at the current instruction-set level (below AVX-512, or aarch64).
    package static func sgemmOwn(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                                 a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
                                 c: UnsafeMutablePointer<Float>, ldc: Int) -> Bool {
        precondition(m >= 0 && n >= 0 && k >= 0, "sgemmOwn: negative dims m=\(m) n=\(n) k=\(k)")
        return bfk_sgemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) != 0
    }

    /// Rows `rows` of C (n columns, leading dimension ldc) set to addend row + bias (either alone): how a product
    /// that starts from addend + bias instead of beta·C begins when it is not fused (`sgemmSeparate`,
    /// `Ops.linearForwardSeparate`); the fused first k-block computes the same sum.
    package static func startRows(_ c: UnsafeMutablePointer<Float>, ldc: Int, rows: Range<Int>, n: Int,
                                  addend: UnsafePointer<Float>?, ldAddend: Int, bias: UnsafePointer<Float>?) {
        for i in rows {
            let o = c + i * ldc
            if let x = addend.map({ $0 + i * ldAddend }) {
                if let bias { for j in 0..<n { o[j] = x[j] + bias[j] } } else { o.update(from: x, count: n) }
            } else if let bias {
                o.update(from: bias, count: n)
            }
        }
    }

    /// `sgemmOwn` with a fused epilogue (`bfk_sgemm_ex`); false, with C and the epilogue's outputs untouched, below
    /// AVX-512.
    package static func sgemmOwn(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                                 a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
                                 c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: Epilogue) -> Bool {
        precondition(m >= 0 && n >= 0 && k >= 0, "sgemmOwn: negative dims m=\(m) n=\(n) k=\(k)")
        var ep = epilogue.c
        return bfk_sgemm_ex(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, &ep) != 0
    }

    /// How many threads a product of this shape is split over (1 = one call): only when each part keeps
    /// M·N·K > `splitMinWork` and at least 16 rows (columns).
    package static func sgemmParts(m: Int, n: Int, k: Int) -> Int {
        let t = Parallel.ranges(max(m, n))
        if t <= 1 { return 1 }
        let work = Double(m) * Double(n) * Double(k)
        return work / Double(t) > splitMinWork && max(m, n) / t >= 16 ? t : 1
    }

    /// Work per part below which a product is not split (above OpenBLAS 0.3.21's SkylakeX small-matrix limit, 10⁶).
    package static let splitMinWork = 2.0e6

    /// Plain twin: one single-threaded call, on the kernel `kernel(m:n:k:)` picks for this shape (OpenBLAS's own
    /// threads are set to 1, see `prepare`).
    @inline(__always)
    package static func sgemmPlain(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                                   a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
                                   c: UnsafeMutablePointer<Float>, ldc: Int) {
        sgemmOne(kernel(m: m, n: n, k: k), transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a,
                 lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
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
    /// The same one-time step hands threading to Bonfire: `Parallel.threads` starts at OpenBLAS's thread count
    /// (OPENBLAS_NUM_THREADS, else the CPU count) and OpenBLAS runs single-threaded inside `sgemm`'s split.
    @inline(__always)
    package static func prepare() { _ = bfk_openblas_select_core() }

    /// The core name OpenBLAS had picked before `prepare()` replaced it (nil if it kept the library's choice).
    package static var replacedCore: String? { bfk_openblas_select_core().map { String(cString: $0) } }

    /// The OpenBLAS kernel in use (benchmarks print it; see NOTES-build.md on OPENBLAS_CORETYPE).
    package static var coreName: String { prepare(); return String(cString: openblas_get_corename()) }
    /// Threads of Bonfire's math (`Parallel.threads`; OpenBLAS itself runs one thread per call).
    package static var numThreads: Int { prepare(); return Parallel.threads }
    /// Sets the threads of Bonfire's math, products included (OpenBLAS stays single-threaded per call).
    package static func setNumThreads(_ n: Int) { prepare(); Parallel.setThreads(max(1, n)) }
    /// OpenBLAS's own thread count (1 after `prepare`; for tests and benchmarks).
    package static var openBLASThreads: Int { prepare(); return Int(openblas_get_num_threads()) }
}
