// An agent working through its backlog, in C++17 over the agent-backlog C ABI, with a
// tiny RAII wrapper: std::unique_ptr with the library's free functions owns every
// handle and string, and an error code becomes an exception.
//
//   make examples-c        (builds target/c/agent-cpp)
//   target/c/agent-cpp [DATABASE]     default: an in-memory store
#include "agent_backlog.h"

#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace backlog {

struct StringFree {
    void operator()(char *s) const noexcept { backlog_string_free(s); }
};
struct StoreClose {
    void operator()(BacklogStore *s) const noexcept { backlog_close(s); }
};
using Json = std::unique_ptr<char, StringFree>;

// A failed call: the C code (1..6) and the error JSON.
struct Error : std::runtime_error {
    int code;
    Error(int code, const std::string &json) : std::runtime_error(json), code(code) {}
};

// Calls a C function whose last parameter is `char **out_json`; returns the JSON.
template <class F>
std::string call(F &&f) {
    char *out = nullptr;
    int code = f(&out);
    Json json(out);  // freed on every path
    std::string text = json ? json.get() : "";
    if (code != BACKLOG_OK) throw Error(code, text);
    return text;
}

class Store {
  public:
    explicit Store(const std::string &path) {
        BacklogStore *raw = nullptr;
        char *error = nullptr;
        int code = backlog_open(path.c_str(), &raw, &error);
        Json owned(error);
        if (code != BACKLOG_OK) throw Error(code, owned ? owned.get() : "");
        store_.reset(raw);
    }

    std::string create_task(const std::string &agent, const std::string &task_json) {
        return call([&](char **out) {
            return backlog_create_task(store_.get(), agent.c_str(), task_json.c_str(), out);
        });
    }
    std::string update_task(const std::string &agent, const std::string &id,
                            const std::string &patch_json) {
        return call([&](char **out) {
            return backlog_update_task(store_.get(), agent.c_str(), id.c_str(),
                                       patch_json.c_str(), out);
        });
    }
    std::string get_task(const std::string &agent, const std::string &id) {
        return call([&](char **out) {
            return backlog_get_task(store_.get(), agent.c_str(), id.c_str(), out);
        });
    }
    // The claimed task, or nothing when no task is queued.
    std::optional<std::string> claim_next(const std::string &agent) {
        std::string json = call(
            [&](char **out) { return backlog_claim_next(store_.get(), agent.c_str(), out); });
        if (json == "null") return std::nullopt;
        return json;
    }
    std::string summary(const std::string &agent) {
        return call(
            [&](char **out) { return backlog_summary(store_.get(), agent.c_str(), out); });
    }

  private:
    std::unique_ptr<BacklogStore, StoreClose> store_;
};

// The value of a string field in compact JSON (a real program would use a JSON library).
std::string field(const std::string &json, const std::string &key) {
    const std::string pattern = "\"" + key + "\":\"";
    auto start = json.find(pattern);
    if (start == std::string::npos) return "";
    start += pattern.size();
    return json.substr(start, json.find('"', start) - start);
}

}  // namespace backlog

int main(int argc, char **argv) {
    const std::string agent = "support-bot";
    try {
        backlog::Store store(argc > 1 ? argv[1] : ":memory:");
        std::printf("agent-backlog %s\n", backlog_version());
        std::printf("create     %s\n",
                    store.create_task(agent, R"({"title":"Draft FAQ responses","priority":2})")
                        .c_str());
        std::printf("create     %s\n",
                    store.create_task(agent, R"({"title":"Tag open tickets"})").c_str());

        while (auto task = store.claim_next(agent)) {
            std::printf("claimed    %s\n", task->c_str());
            const std::string id = backlog::field(*task, "id");
            std::printf("completed  %s\n",
                        store
                            .update_task(agent, id,
                                         R"({"status":"complete","result":"Handled by the C++ agent"})")
                            .c_str());
        }
        std::printf("summary    %s\n", store.summary(agent).c_str());

        try {
            store.get_task(agent, "SUP-999");
        } catch (const backlog::Error &e) {
            std::printf("missing    code %d: %s\n", e.code, e.what());
        }
    } catch (const backlog::Error &e) {
        std::fprintf(stderr, "error %d: %s\n", e.code, e.what());
        return 1;
    }
    return 0;
}
