// Allocator tuning for processes that move multi-megabyte messages (learner, actors, bonfire-bench wire).
//
// Why: glibc serves allocations above M_MMAP_THRESHOLD with fresh mmap'd pages and trims freed memory at the top
// of the heap back to the OS, so every large rollout or parameter message page-faults its buffers in again
// (ZeroMQ's receive buffer, protobuf-c's unpacked fields, our arrays). Measured on this machine kind
// (bonfire-bench wire, 1.6 MB rollouts): encode 6.0 ms → 0.28 ms and decode 7.2 ms → 0.11 ms once large blocks
// are kept in the heap. This is process-wide, so it is an explicit call made once at process start by a role's
// entry point, never a side effect of using BonfireWire.
#if canImport(Glibc)
import Glibc
#endif

package enum WireMemory {
    /// Keeps blocks up to `mmapThreshold` bytes in the malloc heap and retains up to `trimThreshold` bytes of free
    /// heap instead of returning it to the OS. Returns false where this is not supported (non-glibc platforms).
    @discardableResult
    package static func configureForLargeMessages(mmapThreshold: Int32 = 64 << 20,
                                                  trimThreshold: Int32 = 256 << 20) -> Bool {
        #if canImport(Glibc)
        // Swift's Glibc module does not export <malloc.h>; look mallopt up (RTLD_DEFAULT = nil handle).
        // Parameter numbers are glibc ABI: M_TRIM_THRESHOLD -1, M_TOP_PAD -2, M_MMAP_THRESHOLD -3.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let sym = dlsym(nil, "mallopt") else { return false }
        let mallopt = unsafeBitCast(sym, to: Mallopt.self)
        let a = mallopt(-3, mmapThreshold)
        let b = mallopt(-1, trimThreshold)
        let c = mallopt(-2, 16 << 20)
        return a == 1 && b == 1 && c == 1
        #else
        return false
        #endif
    }
}
