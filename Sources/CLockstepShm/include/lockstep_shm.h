#ifndef LOCKSTEP_SHM_H
#define LOCKSTEP_SHM_H

// Atomics and futexes on memory shared between processes (a mapped file in
// /dev/shm), for the shared-memory data plane (ShmPeerTransport). Swift has
// no process-shared atomics of its own; these are thin, inlined wrappers.

#include <stdint.h>

static inline uint64_t lockstep_load_acquire_u64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void lockstep_store_release_u64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint32_t lockstep_load_acquire_u32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void lockstep_store_release_u32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
// Sequentially consistent: a waker's doorbell bump and a sleeper's count are
// ordered against each other (Dekker), so no wake-up is lost.
static inline uint32_t lockstep_fetch_add_u32(uint32_t *p, uint32_t v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
static inline uint32_t lockstep_fetch_sub_u32(uint32_t *p, uint32_t v) { return __atomic_fetch_sub(p, v, __ATOMIC_SEQ_CST); }
static inline uint32_t lockstep_load_seq_cst_u32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline void lockstep_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/// Sleeps while `*word == expected`, at most `seconds` (FUTEX_WAIT, shared
/// between processes). Returns 0 when woken or when the word had changed,
/// 1 on timeout, -1 on another error.
int lockstep_futex_wait(uint32_t *word, uint32_t expected, double seconds);

/// Wakes up to `count` waiters on `word` (FUTEX_WAKE); returns how many woke.
int lockstep_futex_wake(uint32_t *word, int count);

#endif
