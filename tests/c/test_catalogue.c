/*
 * The catalogue of bad inputs, from C: a table of (description, call, expected code).
 * Every case runs on a fresh store holding one task in each status; a refused call
 * must leave it exactly as it was (the JSON of query_tasks with no filter and the
 * summary of every agent involved, compared before and after), and the next task must
 * still get the next ID (MKT-005, and NEW-001 for an agent that had none). Covers NULL
 * pointers, invalid UTF-8, closed and never-opened handles, NULL out-parameters,
 * truncated, deeply nested, duplicate-key and oversized JSON, lone surrogates, NULs,
 * out-of-range and overflowing numbers, SQL-looking text in every field and filter,
 * and bad database paths and options. Run under valgrind by `make test-catalogue-c`.
 *
 * Bad values that a JSON request can hold (every field's range, length, format and
 * type, IDs, lifecycle moves, conflicts) are cases of testdata/conformance/, run on
 * every surface; this table keeps what only C can pass, the JSON text of the strict
 * parsers, the list and query filters of the per-operation functions, and the
 * SQL-looking text that each function must store verbatim.
 *
 * Usage: test_catalogue SCRATCH_DIR   (an absolute, existing, writable, empty folder;
 *                                      the program's working directory)
 */
#define _POSIX_C_SOURCE 200809L /* stat() */

#include "check.h"

#include <sys/stat.h>

static char *out;

enum op { LIST, CREATE, CREATE_MANY, GET, UPDATE, DELETE, QUERY, SUMMARY, CLAIM, PREFIX };
enum handle { OPEN, NULL_STORE, CLOSED, BOGUS };

/* Arguments built at run time: these markers are replaced by generated text. */
#define GEN_BODY_OVER_8MIB "\x01" "body over 8 MiB"
#define GEN_BATCH_OVER_64MIB "\x01" "batch over 64 MiB"
#define GEN_DEEP_ARRAY "\x01" "array nested 100000 deep"
#define GEN_DEEP_OBJECT "\x01" "object nested 100000 deep"
#define GEN_AGENT_1MIB "\x01" "agent_id of 1 MiB"
#define GEN_TITLE_8MIB "\x01" "title of 8 MiB"

struct c_case {
    const char *what;
    enum handle handle;
    enum op op;
    const char *a, *b, *c; /* the string arguments, in order; NULL is passed as NULL */
    int want;
    const char *needle; /* text the JSON must contain (NULL: none) */
    int creates;        /* tasks of marketing-lead the call creates (when it succeeds) */
};

#define ML "marketing-lead"
#define SQL "'); DROP TABLE tasks; --"
#define UTF8 "must be valid UTF-8"

static const struct c_case CASES[] = {
    /* handles */
    {"NULL store in list_tasks", NULL_STORE, LIST, ML, NULL, NULL, 1, "store must not be NULL", 0},
    {"NULL store in create_task", NULL_STORE, CREATE, ML, "{\"title\":\"t\"}", NULL, 1, "store must not be NULL", 0},
    {"NULL store in create_tasks", NULL_STORE, CREATE_MANY, ML, "[{\"title\":\"t\"}]", NULL, 1, "store must not be NULL", 0},
    {"NULL store in get_task", NULL_STORE, GET, ML, "MKT-001", NULL, 1, "store must not be NULL", 0},
    {"NULL store in update_task", NULL_STORE, UPDATE, ML, "MKT-004", "{}", 1, "store must not be NULL", 0},
    {"NULL store in delete_task", NULL_STORE, DELETE, ML, "MKT-001", NULL, 1, "store must not be NULL", 0},
    {"NULL store in query_tasks", NULL_STORE, QUERY, NULL, NULL, NULL, 1, "store must not be NULL", 0},
    {"NULL store in summary", NULL_STORE, SUMMARY, ML, NULL, NULL, 1, "store must not be NULL", 0},
    {"NULL store in claim_next", NULL_STORE, CLAIM, ML, NULL, NULL, 1, "store must not be NULL", 0},
    {"NULL store in set_prefix", NULL_STORE, PREFIX, "new-agent", "NEW", NULL, 1, "store must not be NULL", 0},
    {"closed handle in create_task", CLOSED, CREATE, ML, "{\"title\":\"t\"}", NULL, 5, "the store is closed", 0},
    {"closed handle in claim_next", CLOSED, CLAIM, ML, NULL, NULL, 5, "the store is closed", 0},
    {"closed handle in update_task", CLOSED, UPDATE, ML, "MKT-004", "{\"status\":\"in_progress\"}", 5, "the store is closed", 0},
    {"never-opened handle in delete_task", BOGUS, DELETE, ML, "MKT-001", NULL, 1, "store handle was never opened", 0},
    {"never-opened handle in query_tasks", BOGUS, QUERY, NULL, NULL, NULL, 1, "store handle was never opened", 0},
    /* NULL strings */
    {"NULL agent_id in list_tasks", OPEN, LIST, NULL, NULL, NULL, 1, "agent_id must not be NULL", 0},
    {"NULL agent_id in create_task", OPEN, CREATE, NULL, "{\"title\":\"t\"}", NULL, 1, "agent_id must not be NULL", 0},
    {"NULL agent_id in create_tasks", OPEN, CREATE_MANY, NULL, "[]", NULL, 1, "agent_id must not be NULL", 0},
    {"NULL agent_id in get_task", OPEN, GET, NULL, "MKT-001", NULL, 1, "agent_id must not be NULL", 0},
    {"NULL agent_id in update_task", OPEN, UPDATE, NULL, "MKT-004", "{}", 1, "agent_id must not be NULL", 0},
    {"NULL agent_id in delete_task", OPEN, DELETE, NULL, "MKT-001", NULL, 1, "agent_id must not be NULL", 0},
    {"NULL agent_id in summary", OPEN, SUMMARY, NULL, NULL, NULL, 1, "agent_id must not be NULL", 0},
    {"NULL agent_id in claim_next", OPEN, CLAIM, NULL, NULL, NULL, 1, "agent_id must not be NULL", 0},
    {"NULL agent_id in set_prefix", OPEN, PREFIX, NULL, "NEW", NULL, 1, "agent_id must not be NULL", 0},
    {"NULL task_json", OPEN, CREATE, ML, NULL, NULL, 1, "task_json must not be NULL", 0},
    {"NULL tasks_json_array", OPEN, CREATE_MANY, ML, NULL, NULL, 1, "tasks_json_array must not be NULL", 0},
    {"NULL task_id in get_task", OPEN, GET, ML, NULL, NULL, 1, "task_id must not be NULL", 0},
    {"NULL task_id in update_task", OPEN, UPDATE, ML, NULL, "{}", 1, "task_id must not be NULL", 0},
    {"NULL task_id in delete_task", OPEN, DELETE, ML, NULL, NULL, 1, "task_id must not be NULL", 0},
    {"NULL patch_json", OPEN, UPDATE, ML, "MKT-004", NULL, 1, "patch_json must not be NULL", 0},
    {"NULL prefix", OPEN, PREFIX, "new-agent", NULL, NULL, 1, "prefix must not be NULL", 0},
    {"NULL query_json in list_tasks is no filter", OPEN, LIST, ML, NULL, NULL, 0, "\"total\":4}", 0},
    {"NULL query_json in query_tasks is no filter", OPEN, QUERY, NULL, NULL, NULL, 0, "\"total\":5}", 0},
    /* invalid UTF-8 */
    {"agent_id not UTF-8", OPEN, CREATE, "marketing\xff-lead", "{\"title\":\"t\"}", NULL, 1, UTF8, 0},
    {"task_id with an overlong NUL", OPEN, GET, ML, "MKT-\xc0\x80" "001", NULL, 1, UTF8, 0},
    {"task_json with a byte 0xFF in a string", OPEN, CREATE, ML, "{\"title\":\"a\xff" "b\"}", NULL, 1, UTF8, 0},
    {"batch with a UTF-8-encoded surrogate", OPEN, CREATE_MANY, ML, "[{\"title\":\"\xed\xa0\x80\"}]", NULL, 1, UTF8, 0},
    {"patch cut inside a character", OPEN, UPDATE, ML, "MKT-004", "{\"title\":\"\xe2\x82", 1, UTF8, 0},
    {"list query not UTF-8", OPEN, LIST, ML, "{\"status\":\"\xfe\"}", NULL, 1, UTF8, 0},
    {"cross-agent query not UTF-8", OPEN, QUERY, "\x80", NULL, NULL, 1, UTF8, 0},
    {"prefix not UTF-8", OPEN, PREFIX, "new-agent", "N\xc3", NULL, 1, UTF8, 0},
    {"summary agent_id in Latin-1", OPEN, SUMMARY, "caf\xe9", NULL, NULL, 1, UTF8, 0},
    /* malformed, deep, duplicate and oversized JSON */
    {"empty task_json", OPEN, CREATE, ML, "", NULL, 1, "the task must be a JSON object", 0},
    {"truncated task_json", OPEN, CREATE, ML, "{\"title\":\"Wri", NULL, 1, "EOF while parsing", 0},
    {"truncated batch", OPEN, CREATE_MANY, ML, "[{\"title\":\"a\"},", NULL, 1, "the task list must be", 0},
    {"truncated patch", OPEN, UPDATE, ML, "MKT-004", "{", 1, "the patch must be", 0},
    {"truncated list query", OPEN, LIST, ML, "{\"limit\":", NULL, 1, "the list query must be", 0},
    {"truncated query", OPEN, QUERY, "{\"status\":\"queu", NULL, NULL, 1, "the query must be", 0},
    {"trailing garbage", OPEN, CREATE, ML, "{\"title\":\"a\"}x", NULL, 1, "trailing characters", 0},
    {"array nested 100000 deep", OPEN, CREATE, ML, GEN_DEEP_ARRAY, NULL, 1, "recursion limit", 0},
    {"object nested 100000 deep", OPEN, UPDATE, ML, "MKT-004", GEN_DEEP_OBJECT, 1, "recursion limit", 0},
    {"duplicate keys in a query", OPEN, QUERY, "{\"agent_id\":\"a\",\"agent_id\":\"b\"}", NULL, NULL, 1, "appears twice", 0},
    {"task over 8 MiB, refused by size", OPEN, CREATE, ML, GEN_BODY_OVER_8MIB, NULL, 1, "the limit is 8388608 bytes", 0},
    {"patch over 8 MiB, refused by size", OPEN, UPDATE, ML, "MKT-004", GEN_BODY_OVER_8MIB, 1, "the limit is 8388608 bytes", 0},
    {"list query over 8 MiB, refused by size", OPEN, LIST, ML, GEN_BODY_OVER_8MIB, NULL, 1, "the limit is 8388608 bytes", 0},
    {"query over 8 MiB, refused by size", OPEN, QUERY, GEN_BODY_OVER_8MIB, NULL, NULL, 1, "the limit is 8388608 bytes", 0},
    {"batch over 64 MiB, refused by size", OPEN, CREATE_MANY, ML, GEN_BATCH_OVER_64MIB, NULL, 1, "the limit is 67108864 bytes", 0},
    {"title of 8 MiB within the body limit", OPEN, CREATE, ML, GEN_TITLE_8MIB, NULL, 1, "title must be 1 to 500 characters", 0},
    {"agent_id of 1 MiB", OPEN, CLAIM, GEN_AGENT_1MIB, NULL, NULL, 1, "agent_id must be", 0},
    /* strings and numbers */
    {"lone high surrogate escape", OPEN, CREATE, ML, "{\"title\":\"\\ud83d\"}", NULL, 1, "hex escape", 0},
    {"lone low surrogate escape", OPEN, UPDATE, ML, "MKT-003", "{\"blocker\":\"\\udfff x\"}", 1, "surrogate", 0},
    {"priority false", OPEN, QUERY, "{\"priority\":false}", NULL, NULL, 1, "got false", 0},
    {"priority 1e400 overflows", OPEN, CREATE, ML, "{\"title\":\"a\",\"priority\":1e400}", NULL, 1, "number out of range", 0},
    {"priority 2^64 in a batch", OPEN, CREATE_MANY, ML, "[{\"title\":\"a\",\"priority\":18446744073709551616}]", NULL, 1, "tasks[0]: priority", 0},
    {"limit -1", OPEN, LIST, ML, "{\"limit\":-1}", NULL, 1, "limit must be", 0},
    {"offset 0.5", OPEN, QUERY, "{\"offset\":0.5}", NULL, NULL, 1, "offset must be an integer", 0},
    {"limit i64::MAX lists everything", OPEN, LIST, ML, "{\"limit\":9223372036854775807}", NULL, 0, "\"total\":4}", 0},
    /* SQL-looking text: plain text where the field allows it, refused where it does not */
    {"SQL title and description are plain text", OPEN, CREATE, ML,
     "{\"title\":\"" SQL "\",\"description\":\"' OR 1=1 --\"}", NULL, 0, "\"title\":\"" SQL "\"", 1},
    {"SQL blocker is plain text", OPEN, UPDATE, ML, "MKT-004",
     "{\"status\":\"blocked\",\"blocker\":\"'); DROP TABLE agents; --\"}", 0, "DROP TABLE agents", 0},
    {"SQL result is plain text", OPEN, UPDATE, ML, "MKT-002",
     "{\"status\":\"complete\",\"result\":\"1; DELETE FROM tasks\"}", 0, "1; DELETE FROM tasks", 0},
    {"SQL title in a batch is plain text", OPEN, CREATE_MANY, ML, "[{\"title\":\"x' OR '1'='1\"},{\"title\":\"--\"}]",
     NULL, 0, "x' OR '1'='1", 2},
    {"SQL status filter", OPEN, LIST, ML, "{\"status\":\"queued' OR '1'='1\"}", NULL, 1, "status must be", 0},
    {"SQL agent_id filter", OPEN, QUERY, "{\"agent_id\":\"' OR ''='\"}", NULL, NULL, 1, "agent_id must be", 0},
    {"SQL priority filter as a string", OPEN, QUERY, "{\"priority\":\"1 OR 1=1\"}", NULL, NULL, 1, "priority must be an integer", 0},
    {"SQL as a field name", OPEN, QUERY, "{\"" SQL "\":1}", NULL, NULL, 1, "unknown field", 0},
};

#define N_CASES (sizeof CASES / sizeof CASES[0])

/* A run-time argument for a marker, or the argument itself. Free with release(). */
static char *repeat(const char *head, const char *unit, size_t times, const char *tail) {
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(hl + ul * times + tl + 1), *p;
    if (s == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memcpy(s, head, hl);
    p = s + hl;
    for (size_t i = 0; i < times; i++, p += ul) memcpy(p, unit, ul);
    memcpy(p, tail, tl + 1);
    return s;
}

static const char *expand(const char *arg) {
    char *s, *close;
    if (arg == NULL || arg[0] != '\x01') return arg;
    if (strcmp(arg, GEN_BODY_OVER_8MIB) == 0) return repeat("", "[", 8u * 1024 * 1024 + 1, "");
    if (strcmp(arg, GEN_BATCH_OVER_64MIB) == 0) return repeat("", "[", 64u * 1024 * 1024 + 1, "");
    if (strcmp(arg, GEN_AGENT_1MIB) == 0) return repeat("", "a", 1024 * 1024, "");
    if (strcmp(arg, GEN_TITLE_8MIB) == 0) return repeat("{\"title\":\"", "x", 8u * 1024 * 1024 - 20, "\"}");
    if (strcmp(arg, GEN_DEEP_ARRAY) == 0) {
        close = repeat("1", "]", 100000, "}");
        s = repeat("{\"title\":", "[", 100000, close);
        free(close);
        return s;
    }
    if (strcmp(arg, GEN_DEEP_OBJECT) == 0) {
        close = repeat("1", "}", 100000, "");
        s = repeat("", "{\"status\":", 100000, close);
        free(close);
        return s;
    }
    fprintf(stderr, "unknown marker %s\n", arg + 1);
    exit(2);
}

static void release(const char *expanded, const char *arg) {
    if (expanded != arg) free((char *)expanded);
}

static int run(const BacklogStore *s, enum op op, const char *a, const char *b, const char *c,
               char **json) {
    switch (op) {
    case LIST: return backlog_list_tasks(s, a, b, json);
    case CREATE: return backlog_create_task(s, a, b, json);
    case CREATE_MANY: return backlog_create_tasks(s, a, b, json);
    case GET: return backlog_get_task(s, a, b, json);
    case UPDATE: return backlog_update_task(s, a, b, c, json);
    case DELETE: return backlog_delete_task(s, a, b, json);
    case QUERY: return backlog_query_tasks(s, a, json);
    case SUMMARY: return backlog_summary(s, a, json);
    case CLAIM: return backlog_claim_next(s, a, json);
    case PREFIX: return backlog_set_prefix(s, a, b, json);
    }
    return -1;
}

static BacklogStore *open_store(const char *path) {
    BacklogStore *store = NULL;
    char *error = NULL;
    int rc = backlog_open(path, &store, &error);
    CHECK(rc == BACKLOG_OK && store != NULL && error == NULL);
    backlog_string_free(error);
    return store;
}

/* One task in each status, as in tests/catalogue.rs. */
static void fixture(BacklogStore *s) {
    EXPECT(0, "\"total\":4}", backlog_create_tasks(s, ML,
        "[{\"title\":\"Write posts\",\"priority\":1},{\"title\":\"Audit pricing\",\"priority\":2},"
        "{\"title\":\"Plan webinar\",\"priority\":3},{\"title\":\"Draft newsletter\",\"priority\":4}]", &out));
    EXPECT(0, "\"id\":\"MKT-001\"", backlog_claim_next(s, ML, &out));
    EXPECT(0, "\"status\":\"complete\"",
           backlog_update_task(s, ML, "MKT-001", "{\"status\":\"complete\",\"result\":\"done\"}", &out));
    EXPECT(0, "\"id\":\"MKT-002\"", backlog_claim_next(s, ML, &out));
    EXPECT(0, "\"status\":\"blocked\"",
           backlog_update_task(s, ML, "MKT-003", "{\"status\":\"blocked\",\"blocker\":\"waiting\"}", &out));
    EXPECT(0, "\"id\":\"SUP-001\"",
           backlog_create_task(s, "support-bot", "{\"title\":\"Draft FAQ\",\"description\":\"top 10\"}", &out));
}

static char *append(char *text, const char *more) {
    size_t n = text ? strlen(text) : 0;
    char *s = realloc(text, n + strlen(more) + 1);
    if (s == NULL) exit(2);
    strcpy(s + n, more);
    return s;
}

/* Everything observable: every task, and the summaries of the agents involved. */
static char *snapshot(const BacklogStore *s) {
    static const char *agents[] = {ML, "support-bot", "new-agent"};
    char *text = NULL, *json = NULL;
    CHECK(backlog_query_tasks(s, NULL, &json) == BACKLOG_OK);
    text = append(text, json);
    backlog_string_free(json);
    for (size_t i = 0; i < 3; i++) {
        CHECK(backlog_summary(s, agents[i], &json) == BACKLOG_OK);
        text = append(text, json);
        backlog_string_free(json);
    }
    return text;
}

/* The next IDs are as expected: no refused call took a number or registered an agent. */
static void check_next_ids(const char *what, BacklogStore *s, int created) {
    char id[32], want[64];
    char *json = NULL;
    snprintf(id, sizeof id, "MKT-%03d", 5 + created);
    snprintf(want, sizeof want, "{\"id\":\"%s\"", id);
    CHECK(backlog_create_task(s, ML, "{\"title\":\"probe\"}", &json) == BACKLOG_OK);
    if (json == NULL || strncmp(json, want, strlen(want)) != 0) {
        fprintf(stderr, "%s: the next ID is not %s: %.80s\n", what, id, json ? json : "");
        check_failures++;
    }
    backlog_string_free(json);
    CHECK(backlog_create_task(s, "new-agent", "{\"title\":\"probe\"}", &json) == BACKLOG_OK);
    if (json == NULL || strncmp(json, "{\"id\":\"NEW-001\"", 15) != 0) {
        fprintf(stderr, "%s: new-agent's first ID is not NEW-001\n", what);
        check_failures++;
    }
    backlog_string_free(json);
}

static void run_case(const struct c_case *k) {
    BacklogStore *store = open_store(":memory:");
    BacklogStore *closed = open_store(":memory:");
    const BacklogStore *handle = store;
    const char *a = expand(k->a), *b = expand(k->b), *c = expand(k->c);
    char *before, *after, *json = SENTINEL;
    int before_failures = check_failures, rc;

    fixture(store);
    before = snapshot(store);
    switch (k->handle) {
    case OPEN: handle = store; break;
    case NULL_STORE: handle = NULL; break;
    case CLOSED: backlog_close(closed); handle = closed; break;
    case BOGUS: handle = (const BacklogStore *)&before; break;
    }
    rc = run(handle, k->op, a, b, c, &json);
    check_call(__FILE__, __LINE__, k->what, rc, json, k->want, k->needle, 0);
    after = snapshot(store);
    if (k->want != BACKLOG_OK && strcmp(before, after) != 0) {
        fprintf(stderr, "%s: something was written\n", k->what);
        check_failures++;
    }
    if (k->want == BACKLOG_OK && k->needle != NULL && strstr(after, k->needle) == NULL) {
        fprintf(stderr, "%s: not stored verbatim\n", k->what);
        check_failures++;
    }
    check_next_ids(k->what, store, k->want == BACKLOG_OK ? k->creates : 0);
    if (check_failures != before_failures) fprintf(stderr, "    in case: %s\n", k->what);
    free(before);
    free(after);
    release(a, k->a);
    release(b, k->b);
    release(c, k->c);
    if (k->handle != CLOSED) backlog_close(closed);
    backlog_close(store);
}

/* A NULL out-parameter: code 1, and the call does nothing at all. */
static void test_null_out_parameter(void) {
    BacklogStore *s = open_store(":memory:");
    char *before, *after;
    fixture(s);
    before = snapshot(s);
    CHECK(backlog_list_tasks(s, ML, NULL, NULL) == 1);
    CHECK(backlog_create_task(s, ML, "{\"title\":\"t\"}", NULL) == 1);
    CHECK(backlog_create_tasks(s, ML, "[{\"title\":\"t\"}]", NULL) == 1);
    CHECK(backlog_get_task(s, ML, "MKT-001", NULL) == 1);
    CHECK(backlog_update_task(s, ML, "MKT-004", "{\"status\":\"in_progress\"}", NULL) == 1);
    CHECK(backlog_delete_task(s, ML, "MKT-001", NULL) == 1);
    CHECK(backlog_query_tasks(s, NULL, NULL) == 1);
    CHECK(backlog_summary(s, ML, NULL) == 1);
    CHECK(backlog_claim_next(s, ML, NULL) == 1);
    CHECK(backlog_set_prefix(s, "new-agent", "ZZZ", NULL) == 1);
    after = snapshot(s);
    CHECK(strcmp(before, after) == 0);
    check_next_ids("NULL out-parameter", s, 0);
    free(before);
    free(after);
    backlog_close(s);
    /* closing or freeing anything harmless does nothing */
    backlog_close(NULL);
    backlog_close(s);
    backlog_string_free(NULL);
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* One open: the code, and on failure the error object and no handle. */
static void expect_open(const char *what, const char *path, const char *options, int want,
                        const char *needle) {
    BacklogStore *store = (BacklogStore *)SENTINEL;
    char *error = SENTINEL;
    int rc = backlog_open_with_options(path, options, &store, &error);
    if (want == BACKLOG_OK) {
        if (rc != 0 || store == NULL || error != NULL) {
            fprintf(stderr, "%s: expected to open, got %d: %s\n", what, rc, error ? error : "");
            check_failures++;
        }
        backlog_string_free(error);
        backlog_close(store);
        return;
    }
    CHECK(store == NULL);
    check_call(__FILE__, __LINE__, what, rc, error, want, needle, 0);
}

/* Database paths and options. The working directory is the scratch folder. */
static void test_open(const char *scratch) {
    char path[4096], uri[4200], notes[4200], missing[4200], good[4200];
    FILE *f;
    const char *text = "plain text, not SQLite\n";
    char content[64];

    snprintf(path, sizeof path, "%s", scratch);
    snprintf(uri, sizeof uri, "file:%s/target.db?mode=memory", path);
    snprintf(notes, sizeof notes, "%s/notes.txt", path);
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.db", path);
    snprintf(good, sizeof good, "%s/good.db", path);
    f = fopen(notes, "w");
    CHECK(f != NULL);
    if (f == NULL) return;
    fputs(text, f);
    fclose(f);

    expect_open("NULL path", NULL, NULL, 1, "path must not be NULL");
    expect_open("empty path", "", NULL, 1, "empty path");
    expect_open("path not UTF-8", "/tmp/\xff.db", NULL, 1, UTF8);
    expect_open("file: URI of an absolute path", uri, NULL, 5, "cannot open");
    CHECK(!exists("target.db"));
    expect_open("folder that does not exist", missing, NULL, 5, "cannot open");
    expect_open("a folder", path, NULL, 5, NULL);
    expect_open("a text file", notes, NULL, 5, "not an SQLite database");
    f = fopen(notes, "r");
    CHECK(f != NULL && fgets(content, sizeof content, f) != NULL && strcmp(content, text) == 0);
    if (f) fclose(f);
    /* A relative name starting with file: is a plain file name: no URI parameters. */
    expect_open("relative file: URI with parameters", "file:x.db?mode=memory&nolock=1", NULL, 0, NULL);
    CHECK(exists("file:x.db?mode=memory&nolock=1"));
    CHECK(!exists("x.db"));

    expect_open("options not UTF-8", good, "{\"durability\":\"\xff\"}", 1, UTF8);
    expect_open("options empty", good, "", 1, "the options must be");
    expect_open("options truncated", good, "{\"busy_timeout_ms\":", 1, "the options must be");
    expect_open("options as an array", good, "[]", 1, "the options must be");
    expect_open("options duplicate keys", good, "{\"durability\":\"full\",\"durability\":\"normal\"}", 1, "appears twice");
    expect_open("busy_timeout_ms -1", good, "{\"busy_timeout_ms\":-1}", 1, "busy_timeout_ms must be");
    expect_open("busy_timeout_ms 1e400", good, "{\"busy_timeout_ms\":1e400}", 1, "number out of range");
    expect_open("busy_timeout_ms as a string", good, "{\"busy_timeout_ms\":\"5000\"}", 1, "busy_timeout_ms must be");
    expect_open("busy_timeout_ms past i32::MAX", good, "{\"busy_timeout_ms\":2147483648}", 1, "busy_timeout must be at most");
    expect_open("durability FULL", good, "{\"durability\":\"FULL\"}", 1, "durability must be");
    expect_open("durability SQL", good, "{\"durability\":\"OFF; PRAGMA journal_mode=OFF\"}", 1, "durability must be");
    expect_open("unknown option", good, "{\"synchronous\":\"OFF\"}", 1, "unknown field");
    CHECK(!exists(good));
    expect_open("busy_timeout_ms of 24 days", ":memory:", "{\"busy_timeout_ms\":2147483647}", 0, NULL);

    /* NULL out-parameters */
    {
        BacklogStore *store = (BacklogStore *)SENTINEL;
        char *error = SENTINEL;
        CHECK(backlog_open(good, NULL, &error) == 1);
        CHECK(error != NULL && error != SENTINEL);
        if (error != SENTINEL) backlog_string_free(error);
        CHECK(backlog_open(good, &store, NULL) == 1);
        CHECK(store == NULL);
        CHECK(!exists(good));
    }
}

int main(int argc, char **argv) {
    size_t refused = 0;
    if (argc != 2) {
        fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < N_CASES; i++) {
        run_case(&CASES[i]);
        refused += CASES[i].want != BACKLOG_OK;
    }
    test_null_out_parameter();
    test_open(argv[1]);
    if (check_failures != 0) {
        fprintf(stderr, "test_catalogue: %d checks failed\n", check_failures);
        return 1;
    }
    printf("test_catalogue: %zu cases (%zu refused, %zu accepted), "
           "10 NULL out-parameters, 23 opens: ok\n", (size_t)N_CASES, refused, (size_t)N_CASES - refused);
    return 0;
}
