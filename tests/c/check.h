/* Tiny assertion helpers for the C tests of the agent-backlog C ABI. */
#ifndef AGENT_BACKLOG_CHECK_H
#define AGENT_BACKLOG_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_backlog.h"

/* Failed checks so far; main returns non-zero when any failed. */
static int check_failures = 0;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            check_failures++;                                                       \
        }                                                                           \
    } while (0)

/* A value no string written by the library can have. */
static char check_sentinel_byte;
#define SENTINEL (&check_sentinel_byte)

static inline const char *code_name(int code) {
    switch (code) {
    case BACKLOG_INVALID_ARGUMENT: return "invalid_argument";
    case BACKLOG_NOT_FOUND: return "not_found";
    case BACKLOG_INVALID_TRANSITION: return "invalid_transition";
    case BACKLOG_CONFLICT: return "conflict";
    case BACKLOG_STORAGE: return "storage";
    case BACKLOG_INTERNAL: return "internal";
    default: return "?";
    }
}

/* 1 when the JSON text has no white space outside its strings. */
static inline int is_compact(const char *json) {
    int in_string = 0, escaped = 0;
    for (const char *p = json; *p; p++) {
        if (in_string) {
            if (escaped) escaped = 0;
            else if (*p == '\\') escaped = 1;
            else if (*p == '"') in_string = 0;
        } else if (*p == '"') {
            in_string = 1;
        } else if (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') {
            return 0;
        }
    }
    return 1;
}

/*
 * Checks one call's outcome: the code, a JSON string written to the out-parameter,
 * compact, holding `needle` (if not NULL) and, on failure, the error object of the
 * code. Frees the JSON unless `keep`; returns it when kept.
 */
static inline char *check_call(const char *file, int line, const char *what, int rc,
                               char *json, int want, const char *needle, int keep) {
    int ok = 1;
    char prefix[64];
    if (rc != want) {
        fprintf(stderr, "%s:%d: %s returned %d, expected %d\n", file, line, what, rc, want);
        ok = 0;
    }
    if (json == NULL || json == SENTINEL) {
        fprintf(stderr, "%s:%d: %s wrote no JSON\n", file, line, what);
        check_failures++;
        return NULL;
    }
    if (!is_compact(json)) {
        fprintf(stderr, "%s:%d: %s: not compact JSON\n", file, line, what);
        ok = 0;
    }
    if (want != BACKLOG_OK) {
        snprintf(prefix, sizeof prefix, "{\"error\":{\"code\":\"%s\",\"message\":\"",
                 code_name(want));
        if (strncmp(json, prefix, strlen(prefix)) != 0) {
            fprintf(stderr, "%s:%d: %s: not the error object of %s\n", file, line, what,
                    code_name(want));
            ok = 0;
        }
    } else if (strstr(json, "{\"error\":") == json) {
        ok = 0;
    }
    if (needle != NULL && strstr(json, needle) == NULL) {
        fprintf(stderr, "%s:%d: %s: missing %s\n", file, line, what, needle);
        ok = 0;
    }
    if (!ok) {
        fprintf(stderr, "    got: %.300s\n", json);
        check_failures++;
    }
    if (!keep) {
        backlog_string_free(json);
        return NULL;
    }
    return json;
}

/*
 * EXPECT(want, needle, call): runs `call`, which must write to `out`, and checks it.
 * The out variable is set to SENTINEL first and consumed afterwards.
 */
#define EXPECT(want, needle, call)                                                   \
    do {                                                                             \
        int rc_;                                                                     \
        out = SENTINEL;                                                              \
        rc_ = (call);                                                                \
        check_call(__FILE__, __LINE__, #call, rc_, out, (want), (needle), 0);        \
        out = NULL;                                                                  \
    } while (0)

/* Like EXPECT, but keeps the JSON in `kept` (free it with backlog_string_free). */
#define EXPECT_KEEP(kept, want, needle, call)                                        \
    do {                                                                             \
        int rc_;                                                                     \
        out = SENTINEL;                                                              \
        rc_ = (call);                                                                \
        (kept) = check_call(__FILE__, __LINE__, #call, rc_, out, (want), (needle), 1); \
        out = NULL;                                                                  \
    } while (0)

/* Copies the string value of "key" from a compact JSON object into buf. */
static inline int json_string(const char *json, const char *key, char *buf, size_t size) {
    char pattern[64];
    const char *start, *end;
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    start = json ? strstr(json, pattern) : NULL;
    if (start == NULL) return 0;
    start += strlen(pattern);
    end = strchr(start, '"');
    if (end == NULL || (size_t)(end - start) >= size) return 0;
    memcpy(buf, start, (size_t)(end - start));
    buf[end - start] = '\0';
    return 1;
}

#endif
