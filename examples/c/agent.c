/*
 * An agent working through its backlog with the agent-backlog C ABI: a program files
 * tasks, the agent claims the most urgent one, completes it with a result, and repeats
 * until nothing is queued; then it prints the summary.
 *
 *   make examples-c        (or see "C and C++" in README.md for the compile line)
 *   target/c/agent-c [DATABASE]     default: an in-memory store
 *
 * Every call returns a code (0 = ok) and hands back a JSON string that the caller
 * frees with backlog_string_free. A real program would parse the JSON with a JSON
 * library; this example only looks up the task id with strstr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_backlog.h"

static const char *AGENT = "marketing-lead";

/* Prints the JSON of a call, frees it, and stops the program on an error. */
static void show(const char *what, int rc, char *json) {
    printf("%-12s %s\n", what, json != NULL ? json : "(none)");
    backlog_string_free(json);
    if (rc != BACKLOG_OK) {
        fprintf(stderr, "%s failed with code %d\n", what, rc);
        exit(1);
    }
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : ":memory:";
    BacklogStore *store = NULL;
    char *json = NULL;
    int rc;

    printf("agent-backlog %s, database %s\n", backlog_version(), path);
    rc = backlog_open(path, &store, &json);
    if (rc != BACKLOG_OK) show("open", rc, json);

    rc = backlog_create_task(store, AGENT,
                             "{\"title\":\"Write 3 LinkedIn posts\","
                             "\"description\":\"Focus on ROI...\",\"priority\":3}",
                             &json);
    show("create", rc, json);
    rc = backlog_create_tasks(store, AGENT,
                              "[{\"title\":\"Audit competitor pricing pages\"},"
                              "{\"title\":\"Draft the newsletter\",\"priority\":2}]",
                              &json);
    show("create many", rc, json);

    /* The agent's loop: claim the most urgent task, do the work, complete it. */
    for (;;) {
        char id[32];
        char patch[256];
        const char *start, *end;

        rc = backlog_claim_next(store, AGENT, &json);
        if (rc != BACKLOG_OK) show("claim", rc, json);
        if (strcmp(json, "null") == 0) { /* nothing queued */
            backlog_string_free(json);
            break;
        }
        start = strstr(json, "\"id\":\"") + 6; /* the first key of a task */
        end = strchr(start, '"');
        snprintf(id, sizeof id, "%.*s", (int)(end - start), start);
        show("claimed", rc, json);

        snprintf(patch, sizeof patch,
                 "{\"status\":\"complete\",\"result\":\"Done: see the shared drive, folder %s\"}",
                 id);
        rc = backlog_update_task(store, AGENT, id, patch, &json);
        show("completed", rc, json);
    }

    rc = backlog_summary(store, AGENT, &json);
    show("summary", rc, json);

    /* Errors come back the same way: a code and an error object. */
    rc = backlog_get_task(store, AGENT, "MKT-999", &json);
    printf("%-12s code %d: %s\n", "missing", rc, json);
    backlog_string_free(json);

    backlog_close(store);
    return 0;
}
