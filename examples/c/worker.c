/*
 * A leased worker loop through backlog_call, the one C entry point of every
 * operation (SPEC §10-§11, §17): wait for a task with a lease, work on it while
 * renewing the lease, then finish it and take the next one in the same transaction.
 * If this process died mid-task, its lease would expire and another worker would get
 * the task; a worker that stalled past its lease is told so with code 7 (lease_lost).
 *
 *   make examples-c
 *   target/c/worker-c [DATABASE]     default: an in-memory store
 *
 * A real program would parse the JSON with a JSON library; this example only copies
 * the token out with strstr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_backlog.h"

static const char *AGENT = "support-bot";

/* Runs one operation; prints and frees its JSON unless `keep` takes it. */
static int call(const BacklogStore *store, const char *op, const char *request, char **keep) {
    char *json = NULL;
    int rc = backlog_call(store, op, request, &json);
    printf("%-16s %d %s\n", op, rc, json != NULL ? json : "(none)");
    if (keep != NULL && rc == BACKLOG_OK) {
        *keep = json;
    } else {
        backlog_string_free(json);
    }
    return rc;
}

/* Copies the value of the first "token" in `json` into `token` (0 when none). */
static int token_of(const char *json, char *token, size_t size) {
    const char *at = json != NULL ? strstr(json, "\"token\":\"") : NULL;
    if (at == NULL) return 0;
    at += strlen("\"token\":\"");
    const char *end = strchr(at, '"');
    if (end == NULL || (size_t)(end - at) >= size) return 0;
    memcpy(token, at, (size_t)(end - at));
    token[end - at] = '\0';
    return 1;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : ":memory:";
    BacklogStore *store = NULL;
    char *json = NULL;
    char token[128];
    char request[512];
    int done = 0;

    if (backlog_open(path, &store, &json) != BACKLOG_OK) {
        fprintf(stderr, "open failed: %s\n", json);
        backlog_string_free(json);
        return 1;
    }
    if (call(store, "create_tasks",
             "{\"agent_id\":\"support-bot\",\"tasks\":[{\"title\":\"Draft FAQ\"},"
             "{\"title\":\"Answer ticket 42\",\"priority\":1},{\"title\":\"Tag the backlog\"}]}",
             NULL) != BACKLOG_OK) return 1;

    /* Wait up to 2 s for a task, with a 30-second lease. */
    snprintf(request, sizeof request,
             "{\"agent_id\":\"%s\",\"worker\":\"worker-c\",\"timeout_seconds\":2,\"lease_seconds\":30}",
             AGENT);
    if (call(store, "wait_for_task", request, &json) != BACKLOG_OK) return 1;
    while (token_of(json, token, sizeof token)) {
        backlog_string_free(json);
        json = NULL;
        /* ... the work; a long one renews its lease now and then: */
        snprintf(request, sizeof request, "{\"token\":\"%s\"}", token);
        int rc = call(store, "renew_lease", request, NULL);
        if (rc == BACKLOG_LEASE_LOST) {
            /* Another worker has the task now: drop the work (and, in a real worker,
               wait for the next task). */
            break;
        }
        if (rc != BACKLOG_OK) return 1;
        /* Complete it and take the next task, in one commit. */
        snprintf(request, sizeof request,
                 "{\"token\":\"%s\",\"status\":\"complete\",\"result\":\"done\",\"lease_seconds\":30}",
                 token);
        if (call(store, "finish_and_claim", request, &json) != BACKLOG_OK) return 1;
        done++;
        /* The next lease is under "next"; null there ends the loop. */
        char *next = strstr(json, "\"next\":");
        if (next == NULL || strncmp(next, "\"next\":null", 11) == 0) break;
        memmove(json, next, strlen(next) + 1);
    }
    backlog_string_free(json);

    snprintf(request, sizeof request, "{\"agent_id\":\"%s\"}", AGENT);
    call(store, "summary", request, NULL);
    printf("worker-c completed %d tasks\n", done);
    backlog_close(store);
    return done == 3 ? 0 : 1;
}
