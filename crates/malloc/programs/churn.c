/* Small-object churn, as a C program does it: `cargo xtask bench --c` runs this under
 * each malloc (glibc's, jemalloc, mimalloc, heaplab's through LD_PRELOAD).
 *
 *   churn THREADS   each thread keeps LIVE blocks of MIN..MAX bytes and, STEPS times,
 *                   frees a random one and allocates another of a random size;
 *   handoff         one producer thread allocates STEPS blocks and passes them in
 *                   batches to a consumer thread, which frees them: every block is
 *                   freed by another thread than the one that allocated it.
 *
 * Prints the milliseconds the threads took (from before they start to after they
 * are joined: no process start-up, no loader, no set-up of the allocator) and a
 * checksum of the bytes read, so that no allocator can pass by handing out memory
 * that does not hold what was written.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { LIVE = 1024, MIN = 16, MAX = 255 };
/* Steps per thread; a smaller count (-DSTEPS=...) suits a run under callgrind. */
#ifndef STEPS
#define STEPS 2000000
#endif

/* xorshift64*: a fast generator, one per thread, seeded by the thread's index. */
static uint64_t next(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static size_t random_size(uint64_t *rng) {
    return MIN + (size_t)(next(rng) % (MAX - MIN + 1));
}

/* Writes the block's first and last bytes, as a program filling it would. */
static void *take(size_t size, unsigned char mark) {
    unsigned char *block = malloc(size);
    if (block == NULL) {
        fprintf(stderr, "churn: malloc(%zu) failed\n", size);
        exit(1);
    }
    block[0] = mark;
    block[size - 1] = mark;
    return block;
}

struct churner {
    pthread_t thread;
    uint64_t seed;
    uint64_t checksum;
};

static void *churn(void *arg) {
    struct churner *self = arg;
    uint64_t rng = self->seed;
    unsigned char *blocks[LIVE];
    size_t sizes[LIVE];
    uint64_t sum = 0;
    for (int i = 0; i < LIVE; i++) {
        sizes[i] = random_size(&rng);
        blocks[i] = take(sizes[i], (unsigned char)i);
    }
    for (int step = 0; step < STEPS; step++) {
        size_t victim = next(&rng) % LIVE;
        sum += blocks[victim][0] + blocks[victim][sizes[victim] - 1];
        free(blocks[victim]);
        sizes[victim] = random_size(&rng);
        blocks[victim] = take(sizes[victim], (unsigned char)step);
    }
    for (int i = 0; i < LIVE; i++) {
        free(blocks[i]);
    }
    self->checksum = sum;
    return NULL;
}

/* The handoff: the producer fills batches of BATCH pointers and queues them, at most
 * QUEUED at a time; the consumer frees whole batches. Waiting threads sleep on a
 * condition variable (spinning would measure the scheduler on a busy machine). */
enum { BATCH = 1024, QUEUED = 4 };

static unsigned char *queue[QUEUED][BATCH];
static size_t queued_from, queued_to; /* batches handed over, taken; under `mutex` */
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;

static void *produce(void *arg) {
    uint64_t rng = *(uint64_t *)arg;
    for (size_t batch = 0; batch < STEPS / BATCH; batch++) {
        pthread_mutex_lock(&mutex);
        while (queued_to - queued_from == QUEUED) {
            pthread_cond_wait(&changed, &mutex);
        }
        pthread_mutex_unlock(&mutex);
        /* The slot is free: the consumer is done with it until it is queued again. */
        unsigned char **slot = queue[batch % QUEUED];
        for (size_t i = 0; i < BATCH; i++) {
            size_t size = random_size(&rng);
            slot[i] = take(size, (unsigned char)size);
        }
        pthread_mutex_lock(&mutex);
        queued_to++;
        pthread_cond_broadcast(&changed);
        pthread_mutex_unlock(&mutex);
    }
    return NULL;
}

static void *consume(void *arg) {
    uint64_t *checksum = arg;
    uint64_t sum = 0;
    for (size_t batch = 0; batch < STEPS / BATCH; batch++) {
        pthread_mutex_lock(&mutex);
        while (queued_to == queued_from) {
            pthread_cond_wait(&changed, &mutex);
        }
        pthread_mutex_unlock(&mutex);
        unsigned char **slot = queue[batch % QUEUED];
        for (size_t i = 0; i < BATCH; i++) {
            /* The producer marked the first byte with the size's low byte. */
            sum += slot[i][0];
            free(slot[i]);
        }
        pthread_mutex_lock(&mutex);
        queued_from++;
        pthread_cond_broadcast(&changed);
        pthread_mutex_unlock(&mutex);
    }
    *checksum = sum;
    return NULL;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void start(pthread_t *thread, void *(*body)(void *), void *arg) {
    if (pthread_create(thread, NULL, body, arg) != 0) {
        fprintf(stderr, "churn: pthread_create failed\n");
        exit(1);
    }
}

int main(int argc, char **argv) {
    /* Every malloc sets itself up on its first call (glibc its arena, heaplab's library
     * its mapping and heap): that happens here, before the clock starts. */
    free(malloc(1));
    if (argc == 3 && strcmp(argv[1], "churn") == 0) {
        int threads = atoi(argv[2]);
        if (threads < 1 || threads > 64) {
            fprintf(stderr, "churn: 1 to 64 threads\n");
            return 2;
        }
        struct churner churners[64];
        double began = now_ms();
        for (int t = 0; t < threads; t++) {
            churners[t].seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(t + 1);
            start(&churners[t].thread, churn, &churners[t]);
        }
        uint64_t sum = 0;
        for (int t = 0; t < threads; t++) {
            pthread_join(churners[t].thread, NULL);
            sum += churners[t].checksum;
        }
        printf("%.3f ms checksum %llu\n", now_ms() - began, (unsigned long long)sum);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "handoff") == 0) {
        uint64_t seed = 0x9E3779B97F4A7C15ULL, sum = 0;
        pthread_t producer, consumer;
        double began = now_ms();
        start(&producer, produce, &seed);
        start(&consumer, consume, &sum);
        pthread_join(producer, NULL);
        pthread_join(consumer, NULL);
        printf("%.3f ms checksum %llu\n", now_ms() - began, (unsigned long long)sum);
        return 0;
    }
    fprintf(stderr, "usage: churn churn THREADS | churn handoff\n");
    return 2;
}
