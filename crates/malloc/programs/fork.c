/* fork while another thread holds blocks in its cache: `cargo xtask preload` runs
 * this with HEAPLAB_STATS=1 and checks both exit reports. The child has only the
 * forking thread, so the worker's cached blocks are stranded there (and must be
 * counted so); in the parent the worker ends normally and its cache is flushed.
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int ready = 0, done = 0;
static void *worker(void *arg) {
    (void)arg;
    /* Enough small frees to leave blocks in this thread's cache. */
    void *p[300];
    for (int i = 0; i < 300; i++) p[i] = malloc(40);
    for (int i = 0; i < 300; i++) free(p[i]);
    pthread_mutex_lock(&m); ready = 1; pthread_cond_broadcast(&c);
    while (!done) pthread_cond_wait(&c, &m);
    pthread_mutex_unlock(&m);
    return NULL;
}
int main(void) {
    pthread_t t; pthread_create(&t, NULL, worker, NULL);
    pthread_mutex_lock(&m); while (!ready) pthread_cond_wait(&c, &m); pthread_mutex_unlock(&m);
    pid_t child = fork();
    if (child < 0) return 1;
    if (child == 0) {
        /* The child allocates too, then exits through atexit (its report). */
        void *q = malloc(40);
        free(q);
        exit(0);
    }
    waitpid(child, NULL, 0);
    pthread_mutex_lock(&m); done = 1; pthread_cond_broadcast(&c); pthread_mutex_unlock(&m);
    pthread_join(t, NULL);
    return 0;
}
