// Process-shared futex wait and wake (Linux). Without FUTEX_PRIVATE_FLAG the
// kernel keys the futex by the physical page, so waiters and wakers in
// different processes that map the same file meet.
#include "lockstep_shm.h"

#include <errno.h>
#include <time.h>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

int lockstep_futex_wait(uint32_t *word, uint32_t expected, double seconds) {
    if (seconds < 0) seconds = 0;
    struct timespec timeout;
    timeout.tv_sec = (time_t)seconds;
    timeout.tv_nsec = (long)((seconds - (double)timeout.tv_sec) * 1e9);
    long rc = syscall(SYS_futex, word, FUTEX_WAIT, expected, &timeout, NULL, 0);
    if (rc == 0) return 0;
    if (errno == EAGAIN || errno == EINTR) return 0;
    if (errno == ETIMEDOUT) return 1;
    return -1;
}

int lockstep_futex_wake(uint32_t *word, int count) {
    return (int)syscall(SYS_futex, word, FUTEX_WAKE, count, NULL, NULL, 0);
}
#else
// Elsewhere: a short sleep stands in for the wait; wakers do nothing.
int lockstep_futex_wait(uint32_t *word, uint32_t expected, double seconds) {
    if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != expected) return 0;
    struct timespec pause = {0, 50000};
    nanosleep(&pause, NULL);
    return 0;
}

int lockstep_futex_wake(uint32_t *word, int count) { (void)word; (void)count; return 0; }
#endif
