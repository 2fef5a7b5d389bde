// The header compiled as C++17 with -Wall -Wextra -pedantic -Werror, and used from C++:
// extern "C" linkage, the constants in constant expressions, and a round trip.
#include "agent_backlog.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

static_assert(BACKLOG_OK == 0 && BACKLOG_INVALID_ARGUMENT == 1 && BACKLOG_NOT_FOUND == 2 &&
                  BACKLOG_INVALID_TRANSITION == 3 && BACKLOG_CONFLICT == 4 &&
                  BACKLOG_STORAGE == 5 && BACKLOG_INTERNAL == 6,
              "the return codes of the contract");

namespace {
struct StringFree {
    void operator()(char *s) const noexcept { backlog_string_free(s); }
};
struct StoreClose {
    void operator()(BacklogStore *s) const noexcept { backlog_close(s); }
};
using Json = std::unique_ptr<char, StringFree>;
using Store = std::unique_ptr<BacklogStore, StoreClose>;
}  // namespace

int main() {
    int failures = 0;
    auto check = [&failures](bool ok, const char *what) {
        if (!ok) {
            std::fprintf(stderr, "test_header: check failed: %s\n", what);
            failures++;
        }
    };
    // Function pointers with the exact C signatures: a signature change breaks the build.
    int (*open)(const char *, BacklogStore **, char **) = backlog_open;
    int (*update)(const BacklogStore *, const char *, const char *, const char *, char **) =
        backlog_update_task;
    void (*free_string)(char *) = backlog_string_free;
    const char *(*version)(void) = backlog_version;
    (void)update;
    (void)free_string;

    check(version() != nullptr && std::strlen(version()) > 0, "version");

    BacklogStore *raw = nullptr;
    char *error = nullptr;
    check(open(":memory:", &raw, &error) == BACKLOG_OK && error == nullptr, "open");
    Store store(raw);

    char *out = nullptr;
    int rc = backlog_create_task(store.get(), "qa-bot", R"({"title":"From C++"})", &out);
    Json task(out);
    check(rc == BACKLOG_OK, "create_task");
    check(std::string(task.get()).rfind(R"({"id":"QAB-001","title":"From C++",)", 0) == 0,
          "create_task JSON");

    out = nullptr;
    rc = backlog_get_task(store.get(), "qa-bot", "QAB-009", &out);
    Json missing(out);
    check(rc == BACKLOG_NOT_FOUND, "get_task not_found");
    check(std::strstr(missing.get(), R"("code":"not_found")") != nullptr, "error JSON");

    if (failures != 0) return 1;
    std::printf("test_header: ok (C++17)\n");
    return 0;
}
