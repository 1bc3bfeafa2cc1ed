// Bonfire's worker pool (see bfk_parallel_run in include/bonfire_kernels.h): persistent threads that spin briefly
// between parallel regions, then sleep on a futex.
//
// Why not Dispatch's concurrentPerform (what Parallel.forRanges used): on this project's 2-vCPU VMs a sleeping
// thread takes 50–170 µs to start running after it is woken (the idle vCPU is halted by the hypervisor), and a
// train step of the tiny model has ~150 parallel regions of 20–600 µs each, often a few µs apart. Measured with a
// C harness (2 parts of W µs of work, G µs of serial work between calls): Dispatch 2 × 20 µs → 54–86 µs per call,
// 2 × 200 µs → 323–372 µs, 2 × 1000 µs → 1140–1190 µs; a pool whose worker spins between regions, 21–23 / 202–204 /
// 1005–1017 µs when the regions are closer than its spin (docs/performance.md, "Both cores, fifth pass").
//
// Parts are claimed, not assigned: the caller and the workers take the next unclaimed part with one compare-and-swap
// (the caller usually gets part 0), so a worker that is slow to wake finds nothing left instead of holding the region
// up, and the caller never waits for a wake-up — only for parts a worker is already running. Spinning costs CPU
// another process could use: a worker spins at most SPIN_US after each region (pausing the core between checks), then
// sleeps. With `bonfire local` (coordinator, learner, 2 actors on 2 cores, every role at 2 threads) the default job
// took 13.3–15.4 s wall / 23–26 s CPU against 19.3–20.1 s / 26.5–27.4 s with Dispatch; a first version that assigned
// part i to worker i and spun 200 µs took 21.5 s / 36.5 s (its caller waited for sleeping workers).
// One caller at a time: a second thread that calls while the pool is busy (two roles of `bonfire train` in one
// process) runs all its parts itself, in order — the same results, since parts are independent and each is the same
// code whichever thread runs it.

#include "bonfire_kernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

enum { POOL_MAX_WORKERS = 255 };
#define SPIN_US 50.0    // how long an idle worker spins before sleeping on the futex
#define WAIT_SPIN_US 50.0   // how long the caller spins on parts running on workers before yielding the core

static struct {
    pthread_mutex_t busy;        // held by the caller of a region
    pthread_mutex_t grow;        // held while starting workers
    long workers;                // started so far
    uint64_t job;                // region number << 32 | parts: what a worker decides from, read in one load
    uint64_t claim;              // region number << 32 | next unclaimed part: workers and the caller take parts here
    uint32_t gen;                // the region number again, as the futex word sleeping workers wait on
    uint32_t pending;            // parts of the region not finished yet
    uint32_t sleepers;           // workers asleep (or about to be) on gen
    bfk_task_fn fn;              // read only after a claim: the caller cannot move on before that part finishes
    void *ctx;
} pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER };

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec * 1e-3;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void futex_wait(uint32_t *word, uint32_t value) {
#if defined(__linux__)
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
#else
    (void)word; (void)value; sched_yield();
#endif
}

static void futex_wake_all(uint32_t *word) {
#if defined(__linux__)
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
#else
    (void)word;
#endif
}

/// Takes unclaimed parts of region `gen` (of `parts`) one at a time and runs them, until none is left. A part is
/// claimed by one compare-and-swap on `claim`, which names the region, so a late worker can never take a part of a
/// region that is over; fn and ctx are read only after a claim succeeded, and the caller cannot start the next region
/// before this part's `pending` decrement.
static void run_claimed_parts(uint32_t gen, uint32_t parts) {
    for (;;) {
        uint64_t c = __atomic_load_n(&pool.claim, __ATOMIC_ACQUIRE);
        if ((uint32_t)(c >> 32) != gen || (uint32_t)c >= parts) return;
        if (!__atomic_compare_exchange_n(&pool.claim, &c, c + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) continue;
        pool.fn(pool.ctx, (long)(uint32_t)c);
        __atomic_sub_fetch(&pool.pending, 1, __ATOMIC_ACQ_REL);
    }
}

struct worker_start { uint32_t seen; };

static void *worker_main(void *arg) {
    // The region number when the worker was started (by a caller holding `busy`, before it published its region):
    // reading it here instead could already see that region and wait for the next one forever.
    uint32_t seen = ((struct worker_start *)arg)->seen;
    free(arg);
    for (;;) {
        double t0 = now_us();
        uint64_t j;
        for (long k = 1; (uint32_t)((j = __atomic_load_n(&pool.job, __ATOMIC_ACQUIRE)) >> 32) == seen; k++) {
            if (k % 64 == 0 && now_us() - t0 > SPIN_US) {
                __atomic_add_fetch(&pool.sleepers, 1, __ATOMIC_SEQ_CST);
                uint32_t g = __atomic_load_n(&pool.gen, __ATOMIC_SEQ_CST);
                if ((uint32_t)(__atomic_load_n(&pool.job, __ATOMIC_SEQ_CST) >> 32) == seen) futex_wait(&pool.gen, g);
                __atomic_sub_fetch(&pool.sleepers, 1, __ATOMIC_SEQ_CST);
                t0 = now_us();
            }
            cpu_relax();
        }
        seen = (uint32_t)(j >> 32);
        run_claimed_parts(seen, (uint32_t)(j & 0xFFFFFFFFu));
    }
    return NULL;
}

/// Starts workers until there are n − 1; returns how many exist (fewer if the system refused).
static long ensure_workers(long n) {
    if (__atomic_load_n(&pool.workers, __ATOMIC_ACQUIRE) >= n - 1) return n - 1;
    pthread_mutex_lock(&pool.grow);
    while (pool.workers < n - 1 && pool.workers < POOL_MAX_WORKERS) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        struct worker_start *start = malloc(sizeof *start);
        if (!start) { pthread_attr_destroy(&attr); break; }
        start->seen = __atomic_load_n(&pool.gen, __ATOMIC_ACQUIRE);
        int rc = pthread_create(&t, &attr, worker_main, start);
        pthread_attr_destroy(&attr);
        if (rc != 0) { free(start); break; }
        __atomic_store_n(&pool.workers, pool.workers + 1, __ATOMIC_RELEASE);
    }
    long w = pool.workers;
    pthread_mutex_unlock(&pool.grow);
    return w;
}

void bfk_parallel_run(long parts, bfk_task_fn fn, void *ctx) {
    if (parts <= 1 || parts > UINT32_MAX || pthread_mutex_trylock(&pool.busy) != 0) {
        for (long i = 0; i < parts; i++) fn(ctx, i);
        return;
    }
    ensure_workers(parts);
    pool.fn = fn;
    pool.ctx = ctx;
    __atomic_store_n(&pool.pending, (uint32_t)parts, __ATOMIC_RELEASE);
    uint32_t g = pool.gen + 1;                                       // only the caller holding `busy` writes these
    __atomic_store_n(&pool.claim, (uint64_t)g << 32, __ATOMIC_SEQ_CST);
    __atomic_store_n(&pool.job, (uint64_t)g << 32 | (uint64_t)parts, __ATOMIC_SEQ_CST);
    __atomic_store_n(&pool.gen, g, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&pool.sleepers, __ATOMIC_SEQ_CST) > 0) futex_wake_all(&pool.gen);
    // The caller claims parts like the workers (usually part 0 first, since it is already running): a worker that is
    // slow to wake finds nothing left instead of holding the region up.
    run_claimed_parts(g, (uint32_t)parts);
    double t0 = now_us();
    for (long k = 1; __atomic_load_n(&pool.pending, __ATOMIC_ACQUIRE) != 0; k++) {   // parts running on workers
        if (k % 64 == 0 && now_us() - t0 > WAIT_SPIN_US) sched_yield();
        else cpu_relax();
    }
    pthread_mutex_unlock(&pool.busy);
}
