/*
 * Threads sharing one handle: THREADS workers claim and complete tasks until none is
 * queued; every task must be claimed exactly once. A second round mixes creating,
 * claiming and reading on the same handle. Run under valgrind by `make test-c`.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>

#include "check.h"

#define THREADS 4
#define TASKS_PER_THREAD 25
#define TASKS (THREADS * TASKS_PER_THREAD)
#define ID_SIZE 16

static char *out;
static BacklogStore *store;

struct worker {
    int claimed;
    int errors;
    char ids[TASKS][ID_SIZE];
};

static struct worker workers[THREADS];

static void *claim_until_empty(void *arg) {
    struct worker *w = arg;
    char patch[128];
    for (;;) {
        char *json = NULL;
        int rc = backlog_claim_next(store, "worker", &json);
        if (rc != BACKLOG_OK || json == NULL) {
            w->errors++;
            backlog_string_free(json);
            break;
        }
        if (strcmp(json, "null") == 0) {
            backlog_string_free(json);
            break;
        }
        if (w->claimed >= TASKS || !json_string(json, "id", w->ids[w->claimed], ID_SIZE)) {
            w->errors++;
            backlog_string_free(json);
            break;
        }
        backlog_string_free(json);
        snprintf(patch, sizeof patch, "{\"status\":\"complete\",\"result\":\"done by a thread\"}");
        json = NULL;
        rc = backlog_update_task(store, "worker", w->ids[w->claimed], patch, &json);
        if (rc != BACKLOG_OK) w->errors++;
        backlog_string_free(json);
        w->claimed++;
    }
    return NULL;
}

static void *mixed(void *arg) {
    struct worker *w = arg;
    for (int i = 0; i < TASKS_PER_THREAD; i++) {
        char *json = NULL;
        if (backlog_create_task(store, "mixed", "{\"title\":\"made in a thread\"}", &json) != 0)
            w->errors++;
        backlog_string_free(json);
        json = NULL;
        if (backlog_summary(store, "mixed", &json) != 0) w->errors++;
        backlog_string_free(json);
        json = NULL;
        if (backlog_query_tasks(store, "{\"agent_id\":\"mixed\",\"limit\":3}", &json) != 0)
            w->errors++;
        backlog_string_free(json);
        json = NULL;
        if (backlog_claim_next(store, "mixed", &json) != 0) w->errors++;
        backlog_string_free(json);
    }
    return NULL;
}

static int compare_ids(const void *a, const void *b) {
    return strcmp((const char *)a, (const char *)b);
}

static void run(void *(*fn)(void *)) {
    pthread_t threads[THREADS];
    memset(workers, 0, sizeof workers);
    for (int i = 0; i < THREADS; i++) CHECK(pthread_create(&threads[i], NULL, fn, &workers[i]) == 0);
    for (int i = 0; i < THREADS; i++) CHECK(pthread_join(threads[i], NULL) == 0);
    for (int i = 0; i < THREADS; i++) CHECK(workers[i].errors == 0);
}

int main(void) {
    static char all[TASKS][ID_SIZE];
    char batch[TASKS * 32 + 8];
    char expected[128];
    char *error = NULL;
    size_t used = 0;
    int total = 0;

    CHECK(backlog_open(":memory:", &store, &error) == BACKLOG_OK);
    if (store == NULL) return 1;

    used += (size_t)snprintf(batch + used, sizeof batch - used, "[");
    for (int i = 0; i < TASKS; i++)
        used += (size_t)snprintf(batch + used, sizeof batch - used, "%s{\"title\":\"task %d\"}",
                                 i ? "," : "", i);
    snprintf(batch + used, sizeof batch - used, "]");
    EXPECT(0, "\"total\":100}", backlog_create_tasks(store, "worker", batch, &out));

    run(claim_until_empty);
    for (int i = 0; i < THREADS; i++) {
        for (int j = 0; j < workers[i].claimed; j++) memcpy(all[total++], workers[i].ids[j], ID_SIZE);
    }
    CHECK(total == TASKS);
    qsort(all, (size_t)total, ID_SIZE, compare_ids);
    for (int i = 1; i < total; i++) {
        if (strcmp(all[i - 1], all[i]) == 0) {
            fprintf(stderr, "%s was claimed twice\n", all[i]);
            check_failures++;
        }
    }
    snprintf(expected, sizeof expected,
             "{\"queued\":0,\"in_progress\":0,\"complete\":%d,\"blocked\":0,\"total\":%d}", TASKS,
             TASKS);
    EXPECT(0, expected, backlog_summary(store, "worker", &out));

    run(mixed);
    EXPECT(0, "\"total\":100}", backlog_summary(store, "mixed", &out));
    EXPECT(0, "\"queued\":0,\"in_progress\":100,", backlog_summary(store, "mixed", &out));

    backlog_close(store);
    if (check_failures != 0) {
        fprintf(stderr, "test_threads: %d check(s) failed\n", check_failures);
        return 1;
    }
    printf("test_threads: ok (%d threads, %d claims, no duplicates)\n", THREADS, total);
    return 0;
}
