// `cllm bench serve --url URL --users N --prompt-len L --gen-len G`
//
// Load-tests a running cllm-server the way users see it: N concurrent users
// each send streamed chat completions for a while; we record time to first
// token, inter-token latency and aggregate generated tokens/s, as p50/p90/p99.
// Against https:// every user connection is RA-TLS-verified first (and the
// handshake + verification time is measured separately); against the
// server's http:// debug listener the same load runs without the channel, so
// the two results give the cost of the attested channel.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "apps/cllm/bench_stats.h"
#include "apps/cllm/command.h"
#include "apps/cllm/remote_common.h"

namespace cllm::app {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Args {
  std::string url;
  std::string policy;
  std::string api_key;
  int users = 4;
  int prompt_len = 64;
  int gen_len = 64;
  int requests = 2;       // per user
  int handshakes = 20;    // measured separately (https only)
  bool json_out = false;
  bool accept_unpinned = false;  // --insecure-accept-unpinned
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

json ToJson(const Percentiles& p) { return {{"p50", p.p50}, {"p90", p.p90}, {"p99", p.p99}, {"mean", p.mean}, {"n", p.n}}; }

// A prompt of roughly `len` tokens for a story model: repeated common words.
std::string Prompt(int len, int user) {
  static const char* kWords[] = {"the", "little", "dog", "saw", "a", "big", "red", "ball", "in", "park"};
  std::string s = "User " + std::to_string(user) + ":";
  for (int i = 0; i < len; ++i) s += std::string(" ") + kWords[(i + user) % 10];
  return s;
}

int BenchServe(Args a) {
  if (a.api_key.empty()) {
    if (const char* k = std::getenv("CLLM_API_KEY")) a.api_key = k;
  }
  auto url = client::ParseUrl(a.url);
  if (!url.ok()) return Fail(url.detail(), 2);
  CLLM_ASSIGN_OR_EXIT(auto policy, LoadClientPolicy(a.policy, a.accept_unpinned));
  auto connect = [&]() { return url->tls ? client::Connect(*url, policy) : client::ConnectPlain(*url); };

  // --- handshake + verification ----------------------------------------------
  std::vector<double> handshake_ms;
  if (url->tls) {
    for (int i = 0; i < a.handshakes; ++i) {
      auto t0 = Clock::now();
      auto c = connect();
      if (!c.ok()) return Fail(std::string(client::ClientErrcName(c.code())) + ": " + c.detail(), 1);
      handshake_ms.push_back(Ms(Clock::now() - t0));
    }
  }
  std::string model;
  {
    auto c = connect();
    if (!c.ok()) return Fail(c.detail(), 2);
    model = (*c)->server() ? (*c)->server()->payload.model_name : "";
  }

  // --- load ------------------------------------------------------------------
  std::mutex mu;
  std::vector<double> ttft, itl;
  std::atomic<long> tokens{0}, failures{0};
  std::string first_failure;
  auto failed = [&](const std::string& why) {
    ++failures;
    std::lock_guard<std::mutex> l(mu);
    if (first_failure.empty()) first_failure = why;
  };
  auto start = Clock::now();
  std::vector<std::thread> users;
  for (int u = 0; u < a.users; ++u) {
    users.emplace_back([&, u] {
      auto c = connect();  // one verified connection per user, kept for all its requests
      if (!c.ok()) {
        failed(c.detail());
        return;
      }
      std::map<std::string, std::string> headers;
      if (!a.api_key.empty()) headers["Authorization"] = "Bearer " + a.api_key;
      for (int r = 0; r < a.requests; ++r) {
        json req = {{"messages", {{{"role", "user"}, {"content", Prompt(a.prompt_len, u)}}}},
                    {"max_tokens", a.gen_len}, {"temperature", 0.8}, {"seed", u * 1000 + r}, {"stream", true}};
        if (!model.empty()) req["model"] = model;
        SseReader sse;
        auto t0 = Clock::now();
        std::optional<Clock::time_point> last;
        std::vector<double> my_itl;
        double my_ttft = -1;
        long my_tokens = 0;
        auto resp = (*c)->Request("POST", "/v1/chat/completions", req.dump(), headers, [&](std::string_view b) {
          sse.Feed(b, [&](const std::string& data) {
            if (data == "[DONE]") return;
            auto j = json::parse(data, nullptr, false);
            if (j.is_discarded() || !j.contains("choices") || j["choices"].empty()) return;
            const auto& d = j["choices"][0]["delta"];
            if (!d.contains("content") || d["content"].get<std::string>().empty()) return;
            auto now = Clock::now();
            if (my_ttft < 0) {
              my_ttft = Ms(now - t0);
            } else {
              my_itl.push_back(Ms(now - *last));
            }
            last = now;
            ++my_tokens;
          });
          return true;
        });
        if (!resp.ok()) {
          failed(resp.detail());
          continue;
        }
        if (resp->status != 200) {
          failed("HTTP " + std::to_string(resp->status) + ": " + resp->body.substr(0, 300));
          continue;
        }
        tokens += my_tokens;
        std::lock_guard<std::mutex> l(mu);
        if (my_ttft >= 0) ttft.push_back(my_ttft);
        itl.insert(itl.end(), my_itl.begin(), my_itl.end());
      }
    });
  }
  for (auto& t : users) t.join();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  auto hs = Summarize(handshake_ms), tf = Summarize(ttft), il = Summarize(itl);
  double tps = seconds > 0 ? static_cast<double>(tokens) / seconds : 0;
  if (a.json_out) {
    json out = {{"url", a.url},           {"attested", url->tls}, {"users", a.users},
                {"prompt_len", a.prompt_len}, {"gen_len", a.gen_len}, {"requests_per_user", a.requests},
                {"tokens", tokens.load()},  {"seconds", seconds},   {"tokens_per_second", tps},
                {"failures", failures.load()}, {"first_failure", first_failure}, {"ttft_ms", ToJson(tf)}, {"itl_ms", ToJson(il)}};
    if (url->tls) out["handshake_verify_ms"] = ToJson(hs);
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("%s — %s, %d users × %d requests, prompt ~%d words, %d tokens each\n", a.url.c_str(),
                url->tls ? "RA-TLS (verified)" : "plain HTTP (not attested)", a.users, a.requests, a.prompt_len,
                a.gen_len);
    if (url->tls) {
      std::printf("  handshake + verification  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  (n=%zu)\n", hs.p50, hs.p90, hs.p99,
                  hs.n);
    }
    std::printf("  time to first token       p50 %.1f ms  p90 %.1f ms  p99 %.1f ms\n", tf.p50, tf.p90, tf.p99);
    std::printf("  inter-token latency       p50 %.2f ms  p90 %.2f ms  p99 %.2f ms\n", il.p50, il.p90, il.p99);
    std::printf("  aggregate                 %.1f tokens/s (%ld tokens in %.2f s), %ld failed requests\n", tps,
                tokens.load(), seconds, failures.load());
    if (!first_failure.empty()) std::printf("  first failure: %s\n", first_failure.c_str());
  }
  return failures == 0 ? 0 : 1;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  static Args args;
  CLI::App* bench = SubcommandGroup(app, "bench", "Benchmarks");
  auto* cmd = bench->add_subcommand("serve", "Load-test a running server: TTFT, inter-token latency, tokens/s");
  cmd->add_option("--url", args.url, "https://HOST:PORT (RA-TLS) or http://HOST:PORT (debug listener)")->required();
  cmd->add_option("--policy", args.policy, "Client policy JSON for https:// (must pin the server, as for chat)");
  AddUnpinnedFlag(cmd, &args.accept_unpinned);
  cmd->add_option("--api-key", args.api_key, "API key (default: $CLLM_API_KEY)");
  cmd->add_option("--users", args.users, "Concurrent users")->check(CLI::Range(1, 1024))->capture_default_str();
  cmd->add_option("--prompt-len", args.prompt_len, "Prompt length in words")->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--gen-len", args.gen_len, "Tokens to generate per request")->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--requests", args.requests, "Requests per user")->check(CLI::Range(1, 100000))->capture_default_str();
  cmd->add_option("--handshakes", args.handshakes, "RA-TLS handshakes to time")->check(CLI::Range(0, 100000))
      ->capture_default_str();
  cmd->add_flag("--json", args.json_out, "Print one JSON object");
  cmd->callback([&ctx] { ctx.exit_code = BenchServe(args); });
}

CommandRegistration reg{"bench-serve", 60, Setup};

}  // namespace
}  // namespace cllm::app
