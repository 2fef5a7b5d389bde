/*
 * Issue 5, promise 1 through the C ABI: no task is ever claimed twice.
 *
 * The parent fills one backlog with TASKS tasks at pseudo-random priorities, then
 * starts PROCS child processes (this program again, by exec), each with THREADS
 * threads sharing one handle opened with the default options. Every thread claims
 * and completes until nothing is queued, logging "priority number id" for each claim
 * to its own file. The parent then checks: every task was claimed exactly once, each
 * worker's claims came in priority, then creation order, no call failed (so no busy
 * error reached a caller with the default 5 s timeout), and every task is complete
 * with the result of the worker that logged it.
 *
 *   race SCRATCH_DIR                 500 tasks, 4 processes x 2 threads
 *   AGENT_BACKLOG_STRESS=1 race DIR  5,000 tasks, 8 processes x 2 threads
 *
 * Children are bounded: each arms alarm(CHILD_SECONDS); the parent kills any child
 * still running after that and fails.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define AGENT "race-c"
#define MAX_PROCS 16
#define MAX_THREADS 8
#define MAX_WORKERS (MAX_PROCS * MAX_THREADS)
#define CHILD_SECONDS 600
#define BATCH 1000

static long tasks_n, procs_n, threads_n;
static char db_path[4096];
static char log_dir[4096];

/* Copies the integer value of "key" from a compact JSON object. */
static int json_int(const char *json, const char *key, long *value) {
    char pattern[64];
    const char *start;
    char *end;
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    start = json ? strstr(json, pattern) : NULL;
    if (start == NULL) return 0;
    start += strlen(pattern);
    *value = strtol(start, &end, 10);
    return end != start;
}

/* The number of a task ID ("RAC-0042" -> 42): its creation order. */
static long id_number(const char *id) {
    const char *dash = strrchr(id, '-');
    return dash ? strtol(dash + 1, NULL, 10) : -1;
}

static unsigned long long rng_state;
static unsigned next_random(void) {
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)(rng_state >> 33);
}

/* ------------------------------------------------------------------ children */

struct worker {
    BacklogStore *store;
    int process, thread;
    long claimed, errors;
};

static void *claim_until_empty(void *arg) {
    struct worker *w = arg;
    char path[4200], name[64], patch[160], id[32];
    FILE *log;
    snprintf(name, sizeof name, "p%dt%d", w->process, w->thread);
    snprintf(path, sizeof path, "%s/%s.log", log_dir, name);
    log = fopen(path, "w");
    if (log == NULL) {
        perror(path);
        w->errors++;
        return NULL;
    }
    snprintf(patch, sizeof patch, "{\"status\":\"complete\",\"result\":\"%s\"}", name);
    for (;;) {
        char *json = NULL;
        long priority;
        int rc = backlog_claim_next(w->store, AGENT, &json);
        if (rc != BACKLOG_OK) {
            fprintf(stderr, "%s: claim_next returned %d: %s\n", name, rc, json ? json : "");
            backlog_string_free(json);
            w->errors++;
            break;
        }
        if (strcmp(json, "null") == 0) {
            backlog_string_free(json);
            break;
        }
        if (!json_string(json, "id", id, sizeof id) || !json_int(json, "priority", &priority) ||
            strstr(json, "\"status\":\"in_progress\"") == NULL) {
            fprintf(stderr, "%s: unexpected claim: %s\n", name, json);
            backlog_string_free(json);
            w->errors++;
            break;
        }
        backlog_string_free(json);
        fprintf(log, "%ld %ld %s\n", priority, id_number(id), id);
        json = NULL;
        rc = backlog_update_task(w->store, AGENT, id, patch, &json);
        if (rc != BACKLOG_OK) {
            fprintf(stderr, "%s: completing %s returned %d: %s\n", name, id, rc, json ? json : "");
            w->errors++;
        }
        backlog_string_free(json);
        if (rc != BACKLOG_OK) break;
        w->claimed++;
    }
    if (fclose(log) != 0) w->errors++;
    return NULL;
}

/* A child: opens the store, says it is ready on `ready_fd`, waits at the start line
 * (the parent closes the pipe `start_fd` once every child is ready), then runs its
 * threads. */
static int child_main(int process, int ready_fd, int start_fd) {
    BacklogStore *store = NULL;
    char *error = NULL, c;
    pthread_t threads[MAX_THREADS];
    struct worker workers[MAX_THREADS];
    long errors = 0;
    alarm(CHILD_SECONDS);
    if (backlog_open(db_path, &store, &error) != BACKLOG_OK) {
        fprintf(stderr, "child %d: open failed: %s\n", process, error ? error : "");
        backlog_string_free(error);
        return 1;
    }
    while (write(ready_fd, "r", 1) < 0 && errno == EINTR) {
    }
    close(ready_fd);
    while (read(start_fd, &c, 1) < 0 && errno == EINTR) {
    }
    close(start_fd);
    for (int t = 0; t < threads_n; t++) {
        workers[t] = (struct worker){store, process, t, 0, 0};
        if (pthread_create(&threads[t], NULL, claim_until_empty, &workers[t]) != 0) return 1;
    }
    for (int t = 0; t < threads_n; t++) {
        pthread_join(threads[t], NULL);
        errors += workers[t].errors;
    }
    backlog_close(store);
    return errors == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------ parent */

struct claim {
    long priority, number;
};

static int fill(void) {
    BacklogStore *store = NULL;
    char *out = NULL;
    /* {"title":"race task 12345","priority":10}, at most ~48 bytes each */
    size_t size = (size_t)BATCH * 64 + 16;
    char *body = malloc(size);
    int ok = 1;
    if (body == NULL) return 0;
    if (backlog_open(db_path, &store, &out) != BACKLOG_OK) {
        fprintf(stderr, "open failed: %s\n", out ? out : "");
        backlog_string_free(out);
        free(body);
        return 0;
    }
    for (long done = 0; done < tasks_n && ok;) {
        size_t len = 0;
        long n = tasks_n - done < BATCH ? tasks_n - done : BATCH;
        body[len++] = '[';
        for (long i = 0; i < n; i++) {
            len += (size_t)snprintf(body + len, size - len, "%s{\"title\":\"race task %ld\",\"priority\":%u}",
                                    i ? "," : "", done + i, 1 + next_random() % 10);
        }
        body[len++] = ']';
        body[len] = '\0';
        out = NULL;
        if (backlog_create_tasks(store, AGENT, body, &out) != BACKLOG_OK) {
            fprintf(stderr, "create_tasks failed: %s\n", out ? out : "");
            ok = 0;
        }
        backlog_string_free(out);
        done += n;
    }
    backlog_close(store);
    free(body);
    return ok;
}

/* Waits for every child; kills them all if any runs past the deadline. */
static int wait_children(pid_t *pids, int n) {
    int failed = 0, left = n;
    time_t deadline = time(NULL) + CHILD_SECONDS + 60;
    while (left > 0) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0) {
            if (errno == EINTR) continue;
            perror("waitpid");
            return 0;
        }
        if (pid == 0) {
            struct timespec pause = {0, 10 * 1000 * 1000};
            if (time(NULL) > deadline) {
                fprintf(stderr, "race: children ran too long; killing them\n");
                for (int i = 0; i < n; i++) kill(pids[i], SIGKILL);
                while (waitpid(-1, &status, 0) > 0) {
                }
                return 0;
            }
            nanosleep(&pause, NULL);
            continue;
        }
        left--;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "race: child %d failed (status %d)\n", (int)pid, status);
            failed = 1;
        }
    }
    return !failed;
}

/* Reads one worker's log; returns the number of claims, or -1. */
static long read_log(int p, int t, struct claim *claims, long max) {
    char path[4200], id[32];
    long n = 0, priority, number;
    FILE *log;
    snprintf(path, sizeof path, "%s/p%dt%d.log", log_dir, p, t);
    log = fopen(path, "r");
    if (log == NULL) {
        perror(path);
        return -1;
    }
    while (fscanf(log, "%ld %ld %31s", &priority, &number, id) == 3) {
        if (n >= max) break;
        claims[n].priority = priority;
        claims[n].number = number;
        n++;
    }
    fclose(log);
    return n;
}

/* Checks, from the final listing, that each task is complete with the result of the
 * worker that logged it. */
static void check_results(const char *list, const int *owner) {
    const char *at = list;
    long seen = 0;
    while ((at = strstr(at, "{\"id\":\"")) != NULL) {
        char id[32], result[64], want[64];
        const char *next = strstr(at + 1, "{\"id\":\"");
        long number;
        CHECK(json_string(at, "id", id, sizeof id));
        number = id_number(id);
        CHECK(number >= 1 && number <= tasks_n);
        if (number < 1 || number > tasks_n) break;
        CHECK(strstr(at, "\"status\":\"complete\"") != NULL &&
              (next == NULL || strstr(at, "\"status\":\"complete\"") < next));
        CHECK(json_string(at, "result", result, sizeof result));
        snprintf(want, sizeof want, "p%dt%d", owner[number] / MAX_THREADS, owner[number] % MAX_THREADS);
        if (strcmp(result, want) != 0) {
            fprintf(stderr, "race: %s was completed by %s but claimed by %s\n", id, result, want);
            check_failures++;
        }
        seen++;
        at++;
    }
    CHECK(seen == tasks_n);
}

int main(int argc, char **argv) {
    const char *stress = getenv("AGENT_BACKLOG_STRESS");
    int full = stress != NULL && stress[0] != '\0' && strcmp(stress, "0") != 0;
    struct timespec start, end;
    pid_t pids[MAX_PROCS];
    int *owner;
    struct claim *claims;
    long total = 0, min_claims = -1, max_claims = 0;
    BacklogStore *store = NULL;
    char *out = NULL, *list = NULL;
    char expected[256], start_fd[16], ready_fd[16];
    int start_line[2], ready_line[2];

    if (argc < 2) {
        fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    tasks_n = full ? 5000 : 500;
    procs_n = full ? 8 : 4;
    threads_n = 2;
    snprintf(db_path, sizeof db_path, "%s/race.db", argv[1]);
    snprintf(log_dir, sizeof log_dir, "%s", argv[1]);

    if (argc == 6 && strcmp(argv[2], "--child") == 0)
        return child_main(atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));

    rng_state = (unsigned long long)time(NULL);
    printf("race (C ABI): seed %llu\n", rng_state);
    if (!fill()) return 1;

    /* The start line: children block reading it until the parent closes its end. */
    if (pipe(start_line) != 0 || fcntl(start_line[1], F_SETFD, FD_CLOEXEC) != 0 ||
        pipe(ready_line) != 0 || fcntl(ready_line[0], F_SETFD, FD_CLOEXEC) != 0) {
        perror("pipe");
        return 1;
    }
    snprintf(start_fd, sizeof start_fd, "%d", start_line[0]);
    snprintf(ready_fd, sizeof ready_fd, "%d", ready_line[1]);
    for (int p = 0; p < procs_n; p++) {
        char index[16];
        snprintf(index, sizeof index, "%d", p);
        pids[p] = fork();
        if (pids[p] < 0) {
            perror("fork");
            return 1;
        }
        if (pids[p] == 0) {
            execl("/proc/self/exe", argv[0], argv[1], "--child", index, ready_fd, start_fd,
                  (char *)NULL);
            perror("exec");
            _exit(127);
        }
    }
    close(start_line[0]);
    close(ready_line[1]);
    /* Every child is ready when the ready line has one byte per child, or ended (a
     * child that failed before it was ready is reported by wait_children). */
    for (long ready = 0; ready < procs_n;) {
        char buf[MAX_PROCS];
        ssize_t n = read(ready_line[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        ready += n;
    }
    close(ready_line[0]);
    clock_gettime(CLOCK_MONOTONIC, &start);
    close(start_line[1]);
    if (!wait_children(pids, (int)procs_n)) return 1;
    clock_gettime(CLOCK_MONOTONIC, &end);

    owner = malloc(sizeof *owner * (size_t)(tasks_n + 1));
    claims = malloc(sizeof *claims * (size_t)(tasks_n + 1));
    if (owner == NULL || claims == NULL) return 1;
    for (long i = 0; i <= tasks_n; i++) owner[i] = -1;
    for (int p = 0; p < procs_n; p++) {
        for (int t = 0; t < threads_n; t++) {
            long n = read_log(p, t, claims, tasks_n + 1);
            CHECK(n >= 0);
            if (n < 0) continue;
            for (long i = 0; i < n; i++) {
                long number = claims[i].number;
                CHECK(claims[i].priority >= 1 && claims[i].priority <= 10);
                CHECK(number >= 1 && number <= tasks_n);
                if (number < 1 || number > tasks_n) continue;
                if (owner[number] != -1) {
                    fprintf(stderr, "race: task %ld was claimed twice\n", number);
                    check_failures++;
                }
                owner[number] = p * MAX_THREADS + t;
                /* Every claim takes the global minimum: a worker's claims only go up. */
                if (i > 0 && (claims[i].priority < claims[i - 1].priority ||
                              (claims[i].priority == claims[i - 1].priority &&
                               claims[i].number <= claims[i - 1].number))) {
                    fprintf(stderr, "race: p%dt%d claimed %ld (priority %ld) after %ld (priority %ld)\n",
                            p, t, number, claims[i].priority, claims[i - 1].number,
                            claims[i - 1].priority);
                    check_failures++;
                }
            }
            total += n;
            if (min_claims < 0 || n < min_claims) min_claims = n;
            if (n > max_claims) max_claims = n;
        }
    }
    CHECK(total == tasks_n);
    for (long i = 1; i <= tasks_n; i++) CHECK(owner[i] != -1);

    CHECK(backlog_open(db_path, &store, &out) == BACKLOG_OK);
    snprintf(expected, sizeof expected,
             "{\"queued\":0,\"in_progress\":0,\"complete\":%ld,\"blocked\":0,\"total\":%ld}", tasks_n,
             tasks_n);
    EXPECT(BACKLOG_OK, expected, backlog_summary(store, AGENT, &out));
    EXPECT_KEEP(list, BACKLOG_OK, NULL, backlog_list_tasks(store, AGENT, NULL, &out));
    if (list != NULL) check_results(list, owner);
    backlog_string_free(list);
    backlog_close(store);
    free(owner);
    free(claims);

    if (check_failures > 0) {
        fprintf(stderr, "race (C ABI): %d checks failed\n", check_failures);
        return 1;
    }
    printf("race (C ABI): %ld tasks, %ld processes x %ld threads: %ld claims, 0 duplicates, 0 errors, "
           "per worker %ld..%ld, %.1f s\n",
           tasks_n, procs_n, threads_n, total, min_claims, max_claims,
           (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9);
    return 0;
}
