/*
 * The agent-backlog C ABI from C: every function, every error code (0-5; 6, a caught
 * panic, is tested from Rust in tests/ffi.rs), NULL and invalid UTF-8 arguments,
 * malformed JSON, closed handles, file stores. Run under valgrind by `make test-c`.
 *
 * Usage: test_api SCRATCH_DIR   (an existing, writable folder for database files)
 */
#include "check.h"

#ifndef EXPECTED_VERSION
#error "compile with -DEXPECTED_VERSION=\"x.y.z\""
#endif

static char *out;

static BacklogStore *open_memory(void) {
    BacklogStore *store = (BacklogStore *)SENTINEL;
    char *error = SENTINEL;
    int rc = backlog_open(":memory:", &store, &error);
    CHECK(rc == BACKLOG_OK);
    CHECK(error == NULL);
    CHECK(store != NULL && store != (BacklogStore *)SENTINEL);
    return store;
}

static void test_version(void) {
    const char *v = backlog_version();
    CHECK(v != NULL);
    CHECK(strcmp(v, EXPECTED_VERSION) == 0);
    CHECK(v == backlog_version()); /* static */
}

static void test_every_function(void) {
    BacklogStore *s = open_memory();
    char *task = NULL, *claimed = NULL;
    char created[32], id[16];

    EXPECT(0, "{\"agent_id\":\"marketing-lead\",\"prefix\":\"MKT\"}",
           backlog_set_prefix(s, "marketing-lead", "MKT", &out));
    EXPECT_KEEP(task, 0, "{\"id\":\"MKT-001\",\"title\":\"Write 3 LinkedIn posts\","
                         "\"description\":\"Focus on ROI...\",\"priority\":3,\"status\":\"queued\","
                         "\"created\":\"",
                backlog_create_task(s, "marketing-lead",
                                    "{\"title\":\"Write 3 LinkedIn posts\","
                                    "\"description\":\"Focus on ROI...\",\"priority\":3}",
                                    &out));
    CHECK(task != NULL && json_string(task, "created", created, sizeof created));
    CHECK(strlen(created) == 20 && created[10] == 'T' && created[19] == 'Z');
    CHECK(task != NULL && strstr(task, "Z\",\"started\":null,\"completed\":null,\"result\":null,"
                                       "\"blocker\":null}") != NULL);

    EXPECT(0, "\"tasks\":[{\"id\":\"MKT-002\"",
           backlog_create_tasks(s, "marketing-lead",
                                "[{\"title\":\"Audit pricing pages\"},"
                                "{\"title\":\"Plan webinar\",\"priority\":9}]",
                                &out));
    EXPECT(0, "\"total\":2}", backlog_create_tasks(s, "support-bot",
                                                   "[{\"title\":\"Draft FAQ\",\"priority\":2},"
                                                   "{\"title\":\"Tag tickets\"}]",
                                                   &out));
    EXPECT(0, "\"agent_id\":\"x\",\"tasks\":[],\"total\":0", backlog_create_tasks(s, "x", "[]", &out));

    /* get returns exactly what create returned */
    EXPECT_KEEP(claimed, 0, NULL, backlog_get_task(s, "marketing-lead", "MKT-001", &out));
    CHECK(task != NULL && claimed != NULL && strcmp(task, claimed) == 0);
    backlog_string_free(claimed);
    backlog_string_free(task);

    EXPECT(0, "{\"agent_id\":\"marketing-lead\",\"tasks\":[{\"id\":\"MKT-001\"",
           backlog_list_tasks(s, "marketing-lead", NULL, &out));
    EXPECT(0, "\"total\":3}", backlog_list_tasks(s, "marketing-lead", NULL, &out));
    EXPECT(0, "\"tasks\":[{\"id\":\"MKT-002\"", backlog_list_tasks(s, "marketing-lead",
                                                                  "{\"limit\":1,\"offset\":1}", &out));
    EXPECT(0, "{\"agent_id\":\"marketing-lead\",\"tasks\":[{\"id\":\"MKT-003\"",
           backlog_list_tasks(s, "marketing-lead", "{\"status\":\"queued\",\"offset\":2}", &out));
    EXPECT(0, "\"tasks\":[],\"total\":0}",
           backlog_list_tasks(s, "marketing-lead", "{\"status\":\"blocked\"}", &out));

    /* claim the most urgent: MKT-001 (priority 3) before MKT-002 (5) */
    EXPECT_KEEP(claimed, 0, "\"status\":\"in_progress\"", backlog_claim_next(s, "marketing-lead", &out));
    CHECK(claimed != NULL && json_string(claimed, "id", id, sizeof id) && strcmp(id, "MKT-001") == 0);
    CHECK(claimed != NULL && strstr(claimed, "\"started\":\"") != NULL);
    backlog_string_free(claimed);

    EXPECT(0, "\"result\":\"Generated 3 posts\",\"blocker\":null}",
           backlog_update_task(s, "marketing-lead", "MKT-001",
                               "{\"status\":\"complete\",\"result\":\"Generated 3 posts\"}", &out));
    EXPECT(0, "\"status\":\"blocked\"",
           backlog_update_task(s, "marketing-lead", "MKT-002",
                               "{\"status\":\"blocked\",\"blocker\":\"Waiting for access\"}", &out));
    EXPECT(0, "\"priority\":5,\"status\":\"blocked\"", backlog_update_task(s, "marketing-lead", "MKT-002", "{}", &out));
    EXPECT(0, "\"title\":\"Plan the webinar\",\"description\":null,\"priority\":1",
           backlog_update_task(s, "marketing-lead", "MKT-003",
                               "{\"title\":\"Plan the webinar\",\"priority\":1,\"description\":null}",
                               &out));

    EXPECT(0, "{\"tasks\":[{\"agent_id\":\"marketing-lead\",\"id\":\"MKT-003\"",
           backlog_query_tasks(s, NULL, &out));
    EXPECT(0, "\"total\":5}", backlog_query_tasks(s, NULL, &out));
    EXPECT(0, "{\"tasks\":[{\"agent_id\":\"support-bot\",\"id\":\"SUP-001\"",
           backlog_query_tasks(s, "{\"priority\":2}", &out));
    EXPECT(0, "\"total\":1}", backlog_query_tasks(s, "{\"status\":\"complete\",\"agent_id\":\"marketing-lead\"}", &out));

    EXPECT(0, "{\"deleted\":\"MKT-003\"}", backlog_delete_task(s, "marketing-lead", "MKT-003", &out));
    EXPECT(0, "{\"queued\":0,\"in_progress\":0,\"complete\":1,\"blocked\":1,\"total\":2}",
           backlog_summary(s, "marketing-lead", &out));
    EXPECT(0, "{\"queued\":0,\"in_progress\":0,\"complete\":0,\"blocked\":0,\"total\":0}",
           backlog_summary(s, "nobody", &out));

    /* nothing queued: the JSON text null */
    EXPECT_KEEP(claimed, 0, NULL, backlog_claim_next(s, "marketing-lead", &out));
    CHECK(claimed != NULL && strcmp(claimed, "null") == 0);
    backlog_string_free(claimed);

    backlog_close(s);
}

/* The history (SPEC §14): the actor of the options, the feed through backlog_call. */
static void test_history(void) {
    BacklogStore *s = NULL;
    char *error = NULL;
    CHECK(backlog_open_with_options(":memory:", "{\"actor\":\"c-agent\"}", &s, &error) == 0);
    CHECK(error == NULL);
    EXPECT(0, "\"id\":\"OPS-001\"", backlog_create_task(s, "ops", "{\"title\":\"t\"}", &out));
    EXPECT(0, "\"type\":\"created\",\"actor\":\"c-agent\",\"data\":{\"title\":\"t\",\"priority\":5}",
           backlog_call(s, "task_history", "{\"agent_id\":\"ops\",\"task_id\":\"OPS-001\"}", &out));
    EXPECT(0, "\"next\":1}", backlog_call(s, "events", "{\"after\":0}", &out));
    EXPECT(0, "{\"events\":[],\"next\":1}", backlog_call(s, "events", "{\"after\":1,\"wait_seconds\":0.05}", &out));
    EXPECT(1, "limit", backlog_call(s, "events", "{\"limit\":0}", &out));
    EXPECT(0, "\"total\":1}", backlog_call(s, "list_agents", "{}", &out));
    backlog_close(s);
    CHECK(backlog_open_with_options(":memory:", "{\"actor\":\"\"}", &s, &error) == 1);
    CHECK(s == NULL && error != NULL && strstr(error, "actor") != NULL);
    backlog_string_free(error);
}

/* Idempotent creates (SPEC §12) and a plan with dependencies (§13). */
static void test_plans(void) {
    BacklogStore *s = open_memory();
    char *first = NULL;
    EXPECT_KEEP(first, 0, "\"id\":\"OPS-001\"",
                backlog_create_task_idempotent(s, "ops", "req-1", "{\"title\":\"Rotate keys\"}", &out));
    char *again = NULL;
    EXPECT_KEEP(again, 0, "\"id\":\"OPS-001\"",
                backlog_create_task_idempotent(s, "ops", "req-1", "{\"title\":\" Rotate keys \"}", &out));
    CHECK(first != NULL && again != NULL && strcmp(first, again) == 0);
    backlog_string_free(first);
    backlog_string_free(again);
    EXPECT(4, "req-1", backlog_create_task_idempotent(s, "ops", "req-1", "{\"title\":\"Other\"}", &out));
    EXPECT(1, "idempotency_key", backlog_create_task_idempotent(s, "ops", "", "{\"title\":\"x\"}", &out));

    const char *plan = "[{\"title\":\"a\"},{\"title\":\"b\",\"depends_on\":[0,\"OPS-001\"]}]";
    EXPECT(0, "\"total\":2}", backlog_create_tasks_idempotent(s, "ops", "plan-1", plan, &out));
    EXPECT(0, "\"total\":2}", backlog_create_tasks_idempotent(s, "ops", "plan-1", plan, &out));
    EXPECT(0, "\"total\":3}", backlog_summary(s, "ops", &out));
    EXPECT(2, "OPS-099", backlog_create_task(s, "ops", "{\"title\":\"c\",\"depends_on\":[\"OPS-099\"]}", &out));

    /* OPS-003 waits for OPS-001 and OPS-002: claims take those first. */
    EXPECT(0, "{\"task_id\":\"OPS-003\",\"ready\":false,",
           backlog_call(s, "get_dependencies", "{\"agent_id\":\"ops\",\"task_id\":\"OPS-003\"}", &out));
    EXPECT(0, "\"total\":2}", backlog_call(s, "ready_tasks", "{\"agent_id\":\"ops\"}", &out));
    EXPECT(4, "OPS-001 \xe2\x86\x92 OPS-003",
           backlog_call(s, "add_dependency",
                        "{\"agent_id\":\"ops\",\"task_id\":\"OPS-001\",\"depends_on\":\"OPS-003\"}", &out));
    EXPECT(0, "\"id\":\"OPS-001\"", backlog_claim_next(s, "ops", &out));
    EXPECT(0, "\"id\":\"OPS-002\"", backlog_claim_next(s, "ops", &out));
    EXPECT(0, "null", backlog_claim_next(s, "ops", &out));
    EXPECT(0, "{\"task_id\":\"OPS-003\",\"depends_on\":[\"OPS-002\"]}",
           backlog_call(s, "remove_dependency",
                        "{\"agent_id\":\"ops\",\"task_id\":\"OPS-003\",\"depends_on\":\"OPS-001\"}", &out));
    EXPECT(0, "\"status\":\"complete\"",
           backlog_update_task(s, "ops", "OPS-002", "{\"status\":\"complete\"}", &out));
    EXPECT(0, "\"id\":\"OPS-003\"", backlog_claim_next(s, "ops", &out));
    backlog_close(s);
}

static void test_error_codes(const char *dir) {
    BacklogStore *s = open_memory();
    BacklogStore *other = (BacklogStore *)SENTINEL;
    char *error = SENTINEL;
    char path[4096];
    FILE *f;
    int rc;

    EXPECT(0, NULL, backlog_create_task(s, "ops", "{\"title\":\"Rotate keys\"}", &out));
    /* 1 */
    EXPECT(BACKLOG_INVALID_ARGUMENT, "priority must be an integer from 1 to 10, got 11",
           backlog_create_task(s, "ops", "{\"title\":\"x\",\"priority\":11}", &out));
    EXPECT(BACKLOG_INVALID_ARGUMENT, "agent_id must be", backlog_summary(s, "-bad", &out));
    EXPECT(BACKLOG_INVALID_ARGUMENT, NULL, backlog_get_task(s, "ops", "not an id", &out));
    /* 2 */
    EXPECT(BACKLOG_NOT_FOUND,
           "{\"error\":{\"code\":\"not_found\",\"message\":\"task OPS-009 is not in the backlog of ops\"}}",
           backlog_get_task(s, "ops", "OPS-009", &out));
    EXPECT(BACKLOG_NOT_FOUND, NULL, backlog_get_task(s, "dev", "OPS-001", &out));
    EXPECT(BACKLOG_NOT_FOUND, NULL, backlog_delete_task(s, "ops", "OPS-002", &out));
    EXPECT(BACKLOG_NOT_FOUND, NULL, backlog_update_task(s, "ops", "OPS-002", "{}", &out));
    /* 3: queued -> complete is refused, and nothing is written */
    EXPECT(BACKLOG_INVALID_TRANSITION, "queued",
           backlog_update_task(s, "ops", "OPS-001", "{\"status\":\"complete\"}", &out));
    EXPECT(0, "\"status\":\"queued\"", backlog_get_task(s, "ops", "OPS-001", &out));
    /* 4 */
    EXPECT(BACKLOG_CONFLICT, "fixed at OPS", backlog_set_prefix(s, "ops", "XYZ", &out));
    EXPECT(BACKLOG_CONFLICT, "held by agent ops", backlog_set_prefix(s, "other", "OPS", &out));
    /* 5: a folder that does not exist, and a file that is not a database */
    snprintf(path, sizeof path, "%s/no/such/folder/x.db", dir);
    rc = backlog_open(path, &other, &error);
    CHECK(rc == BACKLOG_STORAGE);
    CHECK(other == NULL);
    check_call(__FILE__, __LINE__, "backlog_open(missing folder)", rc, error, BACKLOG_STORAGE,
               "cannot open", 0);
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        for (int i = 0; i < 200; i++) fputs("this is not a database, just some text\n", f);
        fclose(f);
    }
    other = (BacklogStore *)SENTINEL;
    error = SENTINEL;
    rc = backlog_open_with_options(path, NULL, &other, &error);
    CHECK(rc == BACKLOG_STORAGE);
    CHECK(other == NULL);
    check_call(__FILE__, __LINE__, "backlog_open(text file)", rc, error, BACKLOG_STORAGE, NULL, 0);
    remove(path);

    backlog_close(s);
}

static void test_null_arguments(void) {
    BacklogStore *s = open_memory();
    BacklogStore *none = NULL;
    BacklogStore *store = (BacklogStore *)SENTINEL;
    char *error = SENTINEL;

    EXPECT(1, "store must not be NULL", backlog_list_tasks(none, "ops", NULL, &out));
    EXPECT(1, "agent_id must not be NULL", backlog_list_tasks(s, NULL, NULL, &out));
    EXPECT(1, "store must not be NULL", backlog_create_task(none, "ops", "{\"title\":\"t\"}", &out));
    EXPECT(1, "agent_id must not be NULL", backlog_create_task(s, NULL, "{\"title\":\"t\"}", &out));
    EXPECT(1, "task_json must not be NULL", backlog_create_task(s, "ops", NULL, &out));
    EXPECT(1, "store must not be NULL", backlog_create_tasks(none, "ops", "[]", &out));
    EXPECT(1, "agent_id must not be NULL", backlog_create_tasks(s, NULL, "[]", &out));
    EXPECT(1, "tasks_json_array must not be NULL", backlog_create_tasks(s, "ops", NULL, &out));
    EXPECT(1, "store must not be NULL", backlog_get_task(none, "ops", "OPS-001", &out));
    EXPECT(1, "agent_id must not be NULL", backlog_get_task(s, NULL, "OPS-001", &out));
    EXPECT(1, "task_id must not be NULL", backlog_get_task(s, "ops", NULL, &out));
    EXPECT(1, "store must not be NULL", backlog_update_task(none, "ops", "OPS-001", "{}", &out));
    EXPECT(1, "agent_id must not be NULL", backlog_update_task(s, NULL, "OPS-001", "{}", &out));
    EXPECT(1, "task_id must not be NULL", backlog_update_task(s, "ops", NULL, "{}", &out));
    EXPECT(1, "patch_json must not be NULL", backlog_update_task(s, "ops", "OPS-001", NULL, &out));
    EXPECT(1, "store must not be NULL", backlog_delete_task(none, "ops", "OPS-001", &out));
    EXPECT(1, "agent_id must not be NULL", backlog_delete_task(s, NULL, "OPS-001", &out));
    EXPECT(1, "task_id must not be NULL", backlog_delete_task(s, "ops", NULL, &out));
    EXPECT(1, "store must not be NULL", backlog_query_tasks(none, NULL, &out));
    EXPECT(1, "store must not be NULL", backlog_summary(none, "ops", &out));
    EXPECT(1, "agent_id must not be NULL", backlog_summary(s, NULL, &out));
    EXPECT(1, "store must not be NULL", backlog_claim_next(none, "ops", &out));
    EXPECT(1, "agent_id must not be NULL", backlog_claim_next(s, NULL, &out));
    EXPECT(1, "store must not be NULL", backlog_set_prefix(none, "ops", "OPS", &out));
    EXPECT(1, "agent_id must not be NULL", backlog_set_prefix(s, NULL, "OPS", &out));
    EXPECT(1, "prefix must not be NULL", backlog_set_prefix(s, "ops", NULL, &out));
    EXPECT(1, "store must not be NULL", backlog_create_task_idempotent(none, "ops", "k", "{\"title\":\"t\"}", &out));
    EXPECT(1, "idempotency_key must not be NULL", backlog_create_task_idempotent(s, "ops", NULL, "{\"title\":\"t\"}", &out));
    EXPECT(1, "task_json must not be NULL", backlog_create_task_idempotent(s, "ops", "k", NULL, &out));
    EXPECT(1, "idempotency_key must not be NULL", backlog_create_tasks_idempotent(s, "ops", NULL, "[]", &out));
    EXPECT(1, "tasks_json_array must not be NULL", backlog_create_tasks_idempotent(s, "ops", "k", NULL, &out));

    /* A NULL out-parameter: code 1, and the call does nothing. */
    CHECK(backlog_create_task(s, "ops", "{\"title\":\"t\"}", NULL) == 1);
    CHECK(backlog_create_tasks(s, "ops", "[{\"title\":\"t\"}]", NULL) == 1);
    CHECK(backlog_create_task_idempotent(s, "ops", "k", "{\"title\":\"t\"}", NULL) == 1);
    CHECK(backlog_create_tasks_idempotent(s, "ops", "k", "[{\"title\":\"t\"}]", NULL) == 1);
    CHECK(backlog_set_prefix(s, "ops", "ZZZ", NULL) == 1);
    CHECK(backlog_list_tasks(s, "ops", NULL, NULL) == 1);
    CHECK(backlog_get_task(s, "ops", "OPS-001", NULL) == 1);
    CHECK(backlog_update_task(s, "ops", "OPS-001", "{}", NULL) == 1);
    CHECK(backlog_delete_task(s, "ops", "OPS-001", NULL) == 1);
    CHECK(backlog_query_tasks(s, NULL, NULL) == 1);
    CHECK(backlog_summary(s, "ops", NULL) == 1);
    CHECK(backlog_claim_next(s, "ops", NULL) == 1);
    CHECK(backlog_claim_next(NULL, NULL, NULL) == 1);
    EXPECT(0, "\"total\":0}", backlog_summary(s, "ops", &out));
    EXPECT(0, "{\"agent_id\":\"ops\",\"prefix\":\"OPS\"}", backlog_set_prefix(s, "ops", "OPS", &out));

    /* backlog_open */
    CHECK(backlog_open(NULL, &store, &error) == 1);
    CHECK(store == NULL);
    check_call(__FILE__, __LINE__, "backlog_open(NULL)", 1, error, 1, "path must not be NULL", 0);
    error = SENTINEL;
    CHECK(backlog_open(":memory:", NULL, &error) == 1);
    check_call(__FILE__, __LINE__, "backlog_open(out_store NULL)", 1, error, 1,
               "out_store must not be NULL", 0);
    store = (BacklogStore *)SENTINEL;
    CHECK(backlog_open(":memory:", &store, NULL) == 1);
    CHECK(store == NULL);
    CHECK(backlog_open_with_options(NULL, NULL, NULL, NULL) == 1);

    /* Free and close of NULL do nothing. */
    backlog_string_free(NULL);
    backlog_close(NULL);
    backlog_close(s);
}

static void test_invalid_utf8(void) {
    BacklogStore *s = open_memory();
    BacklogStore *store = (BacklogStore *)SENTINEL;
    char *error = SENTINEL;
    const char *bad = "a\xff\xfez";
    const char *msg = "must be valid UTF-8, but the byte at offset 1 is not";

    EXPECT(0, NULL, backlog_create_task(s, "ops", "{\"title\":\"t\"}", &out));
    EXPECT(1, msg, backlog_list_tasks(s, bad, NULL, &out));
    EXPECT(1, "query_json must be valid UTF-8", backlog_list_tasks(s, "ops", bad, &out));
    EXPECT(1, "agent_id must be valid UTF-8", backlog_create_task(s, bad, "{\"title\":\"t\"}", &out));
    EXPECT(1, "task_json must be valid UTF-8", backlog_create_task(s, "ops", bad, &out));
    EXPECT(1, "tasks_json_array must be valid UTF-8", backlog_create_tasks(s, "ops", bad, &out));
    EXPECT(1, "task_id must be valid UTF-8", backlog_get_task(s, "ops", bad, &out));
    EXPECT(1, "patch_json must be valid UTF-8", backlog_update_task(s, "ops", "OPS-001", bad, &out));
    EXPECT(1, "task_id must be valid UTF-8", backlog_delete_task(s, "ops", bad, &out));
    EXPECT(1, "query_json must be valid UTF-8", backlog_query_tasks(s, bad, &out));
    EXPECT(1, "agent_id must be valid UTF-8", backlog_summary(s, bad, &out));
    EXPECT(1, "agent_id must be valid UTF-8", backlog_claim_next(s, bad, &out));
    EXPECT(1, "prefix must be valid UTF-8", backlog_set_prefix(s, "ops", bad, &out));
    /* A title that is UTF-8 but holds a lone surrogate escape is refused by the parser. */
    EXPECT(1, NULL, backlog_create_task(s, "ops", "{\"title\":\"\\ud800\"}", &out));
    /* Real UTF-8 is fine, and comes back as UTF-8. */
    EXPECT(0, "\"title\":\"Caf\xc3\xa9 \xe2\x9c\x93\"",
           backlog_create_task(s, "ops", "{\"title\":\"Caf\xc3\xa9 \xe2\x9c\x93\"}", &out));
    EXPECT(0, "\"queued\":2,", backlog_summary(s, "ops", &out));

    CHECK(backlog_open(bad, &store, &error) == 1);
    CHECK(store == NULL);
    check_call(__FILE__, __LINE__, "backlog_open(bad UTF-8)", 1, error, 1,
               "path must be valid UTF-8", 0);
    backlog_close(s);
}

static void test_malformed_json(void) {
    BacklogStore *s = open_memory();
    size_t big = 9u * 1024u * 1024u;
    char *huge = malloc(big + 32);

    EXPECT(1, "the task must be a JSON object", backlog_create_task(s, "ops", "{\"title\":\"t\"", &out));
    EXPECT(1, "the task must be a JSON object", backlog_create_task(s, "ops", "", &out));
    EXPECT(1, "unknown field \\\"owner\\\"",
           backlog_create_task(s, "ops", "{\"title\":\"t\",\"owner\":\"me\"}", &out));
    EXPECT(1, "priority", backlog_create_task(s, "ops", "{\"title\":\"t\",\"priority\":3.0}", &out));
    EXPECT(1, "appears twice", backlog_create_task(s, "ops", "{\"title\":\"a\",\"title\":\"b\"}", &out));
    EXPECT(1, "the task list must be a JSON array", backlog_create_tasks(s, "ops", "{\"title\":\"t\"}", &out));
    EXPECT(1, "tasks[1]: unknown field",
           backlog_create_tasks(s, "ops", "[{\"title\":\"a\"},{\"title\":\"b\",\"x\":1}]", &out));
    EXPECT(1, "unknown field \\\"priority\\\"", backlog_list_tasks(s, "ops", "{\"priority\":1}", &out));
    EXPECT(1, "status must be one of", backlog_query_tasks(s, "{\"status\":\"done\"}", &out));
    EXPECT(1, "limit", backlog_query_tasks(s, "{\"limit\":-1}", &out));
    CHECK(huge != NULL);
    if (huge != NULL) {
        memcpy(huge, "{\"title\":\"", 10);
        memset(huge + 10, 'x', big);
        memcpy(huge + 10 + big, "\"}", 3);
        EXPECT(1, "the limit is", backlog_create_task(s, "ops", huge, &out));
        free(huge);
    }
    /* all-or-nothing batch: nothing was created */
    EXPECT(0, "\"total\":0}", backlog_summary(s, "ops", &out));
    EXPECT(0, "\"total\":1}", backlog_create_tasks(s, "ops", "[{\"title\":\"ok\"}]", &out));
    EXPECT(1, "status cannot be null", backlog_update_task(s, "ops", "OPS-001", "{\"status\":null}", &out));
    EXPECT(1, "result can only be given",
           backlog_update_task(s, "ops", "OPS-001", "{\"result\":\"r\"}", &out));
    backlog_close(s);
}

static void test_options_and_handles(const char *dir) {
    BacklogStore *a = NULL, *b = NULL, *closed;
    char *error = SENTINEL;
    char path[4096];
    char not_a_store[64];

    CHECK(backlog_open_with_options(":memory:", "{\"busy_timeout_ms\":250,\"durability\":\"full\"}",
                                    &a, &error) == 0);
    CHECK(error == NULL && a != NULL);
    backlog_close(a);
    error = SENTINEL;
    CHECK(backlog_open_with_options(":memory:", "{\"durability\":\"fast\"}", &a, &error) == 1);
    CHECK(a == NULL);
    check_call(__FILE__, __LINE__, "options durability", 1, error, 1, "durability", 0);
    error = SENTINEL;
    CHECK(backlog_open_with_options(":memory:", "{\"timeout\":1}", &a, &error) == 1);
    check_call(__FILE__, __LINE__, "options unknown", 1, error, 1, "unknown field", 0);

    /* A file store: data survives close and reopen; two handles see each other's writes. */
    snprintf(path, sizeof path, "%s/backlog.db", dir);
    remove(path);
    CHECK(backlog_open(path, &a, &error) == 0);
    CHECK(backlog_open_with_options(path, NULL, &b, &error) == 0);
    CHECK(a != NULL && b != NULL && a != b);
    EXPECT(0, "\"id\":\"DEV-001\"", backlog_create_task(a, "dev", "{\"title\":\"Ship it\"}", &out));
    EXPECT(0, "\"title\":\"Ship it\"", backlog_claim_next(b, "dev", &out));
    EXPECT(0, "\"in_progress\":1,", backlog_summary(a, "dev", &out));
    backlog_close(a);
    backlog_close(b);

    /* A closed handle is a storage error, as every call after a close is (SPEC §8); one
       that was never opened is code 1. Neither is read. */
    closed = a;
    EXPECT(5, "the store is closed (backlog_close was called on this handle)", backlog_summary(closed, "dev", &out));
    EXPECT(5, "the store is closed", backlog_claim_next(closed, "dev", &out));
    backlog_close(closed); /* again: a no-op */
    memset(not_a_store, 0x5a, sizeof not_a_store);
    EXPECT(1, "store handle was never opened", backlog_get_task((BacklogStore *)not_a_store, "dev", "DEV-001", &out));
    backlog_close((BacklogStore *)not_a_store);
    CHECK(not_a_store[0] == 0x5a && not_a_store[63] == 0x5a);

    CHECK(backlog_open(path, &a, &error) == 0);
    EXPECT(0, "\"title\":\"Ship it\",\"description\":null,\"priority\":5,\"status\":\"in_progress\"",
           backlog_get_task(a, "dev", "DEV-001", &out));
    backlog_close(a);
    remove(path);
    snprintf(path, sizeof path, "%s/backlog.db-wal", dir);
    remove(path);
    snprintf(path, sizeof path, "%s/backlog.db-shm", dir);
    remove(path);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : ".";
    test_version();
    test_every_function();
    test_plans();
    test_history();
    test_error_codes(dir);
    test_null_arguments();
    test_invalid_utf8();
    test_malformed_json();
    test_options_and_handles(dir);
    if (check_failures != 0) {
        fprintf(stderr, "test_api: %d check(s) failed\n", check_failures);
        return 1;
    }
    printf("test_api: ok\n");
    return 0;
}
