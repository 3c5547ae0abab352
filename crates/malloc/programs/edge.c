/* The C allocation API's edge cases, printed so that the output is the same on any
 * correct malloc: `cargo xtask preload` compiles this file under LD_PRELOAD and runs
 * it with and without heaplab's malloc, and compares the two outputs. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures = 0;
/* volatile: the compiler may not fold the impossible requests away. */
static volatile size_t huge = SIZE_MAX / 2;

static void expect(int ok, const char *what) {
    printf("%-58s %s\n", what, ok ? "ok" : "FAILED");
    failures += !ok;
}

static int filled(const unsigned char *p, size_t n, unsigned char seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i)) return 0;
    return 1;
}

static void fill(unsigned char *p, size_t n, unsigned char seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i);
}

static int aligned(void *p, size_t a) { return p && ((uintptr_t)p % a) == 0; }

static void sizes_and_realloc(void) {
    void *zero = malloc(0);
    expect(zero != NULL, "malloc(0) gives a unique pointer");
    free(zero);
    unsigned char *p = malloc(100);
    fill(p, 100, 7);
    p = realloc(p, 10000);
    expect(p && filled(p, 100, 7), "realloc grow keeps the contents");
    p = realloc(p, 10);
    expect(p && filled(p, 10, 7), "realloc shrink keeps the first bytes");
    free(p);
    void *fresh = realloc(NULL, 50);
    expect(fresh != NULL, "realloc(NULL, n) allocates");
    expect(realloc(fresh, 0) == NULL, "realloc(p, 0) frees and returns NULL");
    errno = 0;
    expect(malloc(huge) == NULL && errno == ENOMEM, "a huge malloc is NULL with ENOMEM");
    unsigned char *keep = malloc(64);
    fill(keep, 64, 3);
    errno = 0;
    void *failed = realloc(keep, huge);
    expect(failed == NULL && errno == ENOMEM && filled(keep, 64, 3),
           "a failed realloc keeps the old block");
    free(keep);
    free(NULL);
    expect(1, "free(NULL) is a no-op");
}

static void zeroing(void) {
    errno = 0;
    expect(calloc(huge, 4) == NULL && errno == ENOMEM, "calloc overflow is NULL with ENOMEM");
    unsigned char *dirty = malloc(8000);
    memset(dirty, 0xAB, 8000);
    free(dirty);
    unsigned char *clean = calloc(1000, 8);
    int zero = clean != NULL;
    for (int i = 0; zero && i < 8000; i++) zero = clean[i] == 0;
    expect(zero, "calloc zeroes reused memory");
    free(clean);
}

static void alignment(void) {
    void *p = (void *)1;
    expect(posix_memalign(&p, 3, 10) == EINVAL && p == (void *)1, "posix_memalign(3) is EINVAL");
    expect(posix_memalign(&p, 4, 10) == EINVAL, "posix_memalign(4) is EINVAL (not a pointer multiple)");
    size_t aligns[] = {16, 64, 256, 4096};
    for (int i = 0; i < 4; i++) {
        char what[64];
        snprintf(what, sizeof what, "posix_memalign(%zu) is aligned", aligns[i]);
        expect(posix_memalign(&p, aligns[i], 100 + i) == 0 && aligned(p, aligns[i]), what);
        free(p);
    }
    p = aligned_alloc(64, 128);
    expect(aligned(p, 64), "aligned_alloc(64, 128) is aligned");
    free(p);
    p = memalign(128, 10);
    expect(aligned(p, 128), "memalign(128, 10) is aligned");
    free(p);
    p = valloc(100);
    expect(aligned(p, (size_t)sysconf(_SC_PAGESIZE)), "valloc is page-aligned");
    free(p);
    int usable = 1;
    for (size_t n = 1; n < 300; n += 7) {
        void *q = malloc(n);
        usable &= q && malloc_usable_size(q) >= n;
        free(q);
    }
    expect(usable, "malloc_usable_size is at least the request");
}

#define THREADS 4
#define ROUNDS 20000
static void *shared[THREADS][64];

static void *worker(void *arg) {
    long t = (long)arg;
    long sum = 0;
    for (int i = 0; i < ROUNDS; i++) {
        size_t n = 1 + (size_t)(i * 31 + t * 17) % 700;
        unsigned char *p = malloc(n);
        fill(p, n, (unsigned char)(i + t));
        sum += filled(p, n, (unsigned char)(i + t));
        /* Park every 8th block in a slot another thread frees later. */
        if (i % 8 == 0) {
            void **slot = &shared[(t + 1) % THREADS][i / 8 % 64];
            void *old = __atomic_exchange_n(slot, p, __ATOMIC_ACQ_REL);
            free(old);
        } else {
            p = realloc(p, n * 2);
            free(p);
        }
    }
    return (void *)sum;
}

static void threads(void) {
    pthread_t ids[THREADS];
    for (long t = 0; t < THREADS; t++) pthread_create(&ids[t], NULL, worker, (void *)t);
    long total = 0;
    for (int t = 0; t < THREADS; t++) {
        void *sum;
        pthread_join(ids[t], &sum);
        total += (long)sum;
    }
    for (int t = 0; t < THREADS; t++)
        for (int k = 0; k < 64; k++) free(shared[t][k]);
    expect(total == (long)THREADS * ROUNDS, "4 threads: every block held its contents");
}

static void forking(void) {
    void *before = malloc(1000);
    pid_t child = fork();
    if (child == 0) {
        void *p = malloc(5000);
        free(before);
        free(p);
        _exit(p ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a forked child allocates and frees");
    free(before);
}

static int by_text(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strings(void) {
    enum { N = 2000 };
    char **words = malloc(N * sizeof *words);
    for (int i = 0; i < N; i++) {
        char buffer[32];
        snprintf(buffer, sizeof buffer, "w%d", (i * 7919) % N);
        words[i] = strdup(buffer);
    }
    qsort(words, N, sizeof *words, by_text);
    int sorted = 1;
    for (int i = 1; i < N; i++) sorted &= strcmp(words[i - 1], words[i]) < 0;
    expect(sorted, "strdup'ed words sort");
    for (int i = 0; i < N; i++) free(words[i]);
    free(words);
}

int main(void) {
    sizes_and_realloc();
    zeroing();
    alignment();
    threads();
    forking();
    strings();
    printf("%d failures\n", failures);
    return failures != 0;
}
