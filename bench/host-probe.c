/*
 * bench/host-probe.c: the latency probe bench/host runs in the VM guest, built on the host with
 * `gcc -static -O2` (the guest has only busybox and livegraft).
 *
 *   host-probe sleep SECONDS [PERIOD_US]
 *       Sleeps PERIOD_US (default 1000) with clock_nanosleep(CLOCK_MONOTONIC) in a tight loop for
 *       SECONDS and records each sleep's overshoot (time asleep minus time asked: wake-up latency
 *       plus any pause of the task). Prints one line:
 *       samples=N median_us=.. p99_us=.. p999_us=.. max_us=..
 *   host-probe now
 *       Prints CLOCK_MONOTONIC in seconds with nanoseconds (busybox date has no %N).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int compare(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static int64_t percentile(const int64_t *v, size_t n, double p)
{
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

static int probe(double seconds, long period_us)
{
    /* Each sleep lasts at least the period, so this bounds the sample count. */
    size_t cap = (size_t)(seconds * 1e6 / (double)period_us) + 16;
    int64_t *over = malloc(cap * sizeof *over);
    if (over == NULL) {
        perror("host-probe: malloc");
        return 3;
    }
    struct timespec period = { .tv_sec = period_us / 1000000, .tv_nsec = (period_us % 1000000) * 1000 };
    int64_t asked = (int64_t)period_us * 1000;
    int64_t end = now_ns() + (int64_t)(seconds * 1e9);
    size_t n = 0;
    while (n < cap) {
        int64_t t0 = now_ns();
        if (t0 >= end)
            break;
        int rc;
        while ((rc = clock_nanosleep(CLOCK_MONOTONIC, 0, &period, NULL)) == EINTR)
            ;
        if (rc != 0) {
            fprintf(stderr, "host-probe: clock_nanosleep: %s\n", strerror(rc));
            return 3;
        }
        over[n++] = now_ns() - t0 - asked;
    }
    if (n == 0) {
        fprintf(stderr, "host-probe: no samples\n");
        return 3;
    }
    qsort(over, n, sizeof *over, compare);
    printf("samples=%zu median_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f\n", n,
           percentile(over, n, 50) / 1e3, percentile(over, n, 99) / 1e3,
           percentile(over, n, 99.9) / 1e3, over[n - 1] / 1e3);
    free(over);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "now") == 0) {
        int64_t t = now_ns();
        printf("%lld.%09lld\n", (long long)(t / 1000000000), (long long)(t % 1000000000));
        return 0;
    }
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "sleep") == 0) {
        double seconds = atof(argv[2]);
        long period_us = argc == 4 ? atol(argv[3]) : 1000;
        if (seconds > 0 && period_us > 0)
            return probe(seconds, period_us);
    }
    fprintf(stderr, "usage: host-probe sleep SECONDS [PERIOD_US] | host-probe now\n");
    return 1;
}
