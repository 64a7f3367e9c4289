// `cllm bench chat -m FILE [--turns 10] [--message-len 64] [--answer-len 32] [--system-len 0]
//                  [--cache-mib 256] [-t 1] [-r 1] [--kv-type f16|f32] [--json]`
//
// Time to first token over a multi-turn chat, with and without the per-user
// prompt cache (engine/serve/prefix_cache.h). Each turn's prompt is the
// whole conversation so far (an optional system prompt, every earlier user
// message and answer) plus a new user message, as an OpenAI client sends
// it; the answer (greedy, a fixed --answer-len tokens) joins the history.
// The engine's Scheduler is driven directly (no server, no network), once
// with the cache off and once on, each from a fresh scheduler, -r times;
// per turn we report the median time from Submit to the first token. Token
// ids are a fixed pseudo-random sequence (speed does not depend on them).
// See docs/performance.md.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <future>

#include "apps/cllm/command.h"
#include "engine/bench/bench.h"
#include "engine/kernels/thread_pool.h"
#include "engine/serve/scheduler.h"

namespace cllm::app {
namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string model, kv_type = "f16";
  int turns = 10, message_len = 64, answer_len = 32, system_len = 0, cache_mib = 256, threads = 1, reps = 1;
  bool json = false;
};

struct TurnResult {
  int prompt_tokens = 0;
  int cached_tokens = 0;
  double ttft_ms = 0;   // Submit → first token
  double total_ms = 0;  // Submit → done
};

// Tokens is `n` pseudo-random ids below `limit` (from 3: not the usual specials).
std::vector<engine::TokenId> Tokens(int n, uint32_t& state, int limit) {
  std::vector<engine::TokenId> t;
  for (int i = 0; i < n; ++i) {
    state = state * 1664525u + 1013904223u;
    t.push_back(static_cast<engine::TokenId>(3 + (state >> 4) % static_cast<uint32_t>(limit - 3)));
  }
  return t;
}

// Conversation plays one chat on a fresh scheduler; an error ends it early
// (the returned turns are those that ran).
std::vector<TurnResult> Conversation(const engine::Model& model, const Args& a, size_t cache_bytes,
                                     std::string* error) {
  engine::SchedulerOptions so;
  so.context_length = a.system_len + a.turns * (a.message_len + a.answer_len) + 1;
  so.kv_type = a.kv_type == "f32" ? engine::KvType::kF32 : engine::KvType::kF16;
  so.prompt_cache_bytes = cache_bytes;
  engine::Scheduler sched(model, so);
  const int limit = std::min(model.config().n_vocab, 150000);  // Qwen's special tokens start above
  uint32_t state = 12345;
  std::vector<engine::TokenId> history = Tokens(a.system_len, state, limit);
  std::vector<TurnResult> out;
  for (int turn = 0; turn < a.turns; ++turn) {
    const auto message = Tokens(a.message_len, state, limit);
    history.insert(history.end(), message.begin(), message.end());
    TurnResult r;
    r.prompt_tokens = static_cast<int>(history.size());
    std::vector<engine::TokenId> answer;
    Clock::time_point first{};
    std::promise<engine::SequenceOutcome> done;
    engine::SequenceRequest req;
    req.user = "bench";
    req.prompt = history;
    req.max_tokens = a.answer_len;
    req.stop_at_eog = false;  // every turn as long as asked
    req.on_token = [&](engine::TokenId id, std::string_view) {
      if (answer.empty()) first = Clock::now();
      if (id >= 0) answer.push_back(id);
      return true;
    };
    req.on_done = [&](const engine::SequenceOutcome& o) { done.set_value(o); };
    const auto t0 = Clock::now();
    auto submitted = sched.Submit(std::move(req));
    if (!submitted.ok()) {
      *error = submitted.detail();
      break;
    }
    const engine::SequenceOutcome o = done.get_future().get();
    const auto t1 = Clock::now();
    if (o.finish == engine::FinishKind::kError) {
      *error = o.error;
      break;
    }
    r.cached_tokens = o.cached_tokens;
    r.ttft_ms = std::chrono::duration<double, std::milli>(first - t0).count();
    r.total_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    out.push_back(r);
    history.insert(history.end(), answer.begin(), answer.end());
  }
  return out;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Play runs -r conversations and keeps, per turn, the median TTFT.
std::vector<TurnResult> Play(const engine::Model& model, const Args& a, size_t cache_bytes, std::string* error) {
  std::vector<std::vector<TurnResult>> runs;
  for (int r = 0; r < a.reps && error->empty(); ++r) runs.push_back(Conversation(model, a, cache_bytes, error));
  if (!error->empty()) return {};
  std::vector<TurnResult> out = runs.front();
  for (size_t t = 0; t < out.size(); ++t) {
    std::vector<double> ttft, total;
    for (const auto& run : runs) {
      ttft.push_back(run[t].ttft_ms);
      total.push_back(run[t].total_ms);
    }
    out[t].ttft_ms = Median(ttft);
    out[t].total_ms = Median(total);
  }
  return out;
}

nlohmann::json TurnsJson(const std::vector<TurnResult>& turns) {
  nlohmann::json j = nlohmann::json::array();
  for (size_t t = 0; t < turns.size(); ++t) {
    j.push_back({{"turn", t + 1}, {"prompt_tokens", turns[t].prompt_tokens},
                 {"cached_tokens", turns[t].cached_tokens}, {"ttft_ms", turns[t].ttft_ms},
                 {"total_ms", turns[t].total_ms}});
  }
  return j;
}

int Run(const Args& a) {
  auto model = engine::Model::Open(a.model);
  if (!model.ok()) return Fail(a.model + ": " + engine::ModelErrcName(model.code()) + ": " + model.detail());
  engine::SetNumThreads(a.threads);
  std::string error;
  const auto off = Play(**model, a, 0, &error);
  const auto on = error.empty() ? Play(**model, a, static_cast<size_t>(a.cache_mib) << 20, &error)
                                : std::vector<TurnResult>{};
  if (!error.empty()) return Fail("bench chat: " + error);
  const double ratio_off = off.back().ttft_ms / off.front().ttft_ms;
  const double ratio_on = on.back().ttft_ms / on.front().ttft_ms;
  if (a.json) {
    nlohmann::json j = {{"model", a.model}, {"turns", a.turns}, {"message_len", a.message_len},
                        {"answer_len", a.answer_len}, {"system_len", a.system_len}, {"cache_mib", a.cache_mib},
                        {"threads", a.threads}, {"reps", a.reps}, {"kv_type", a.kv_type},
                        {"without_cache", TurnsJson(off)}, {"with_cache", TurnsJson(on)},
                        {"ttft_last_over_first_without_cache", ratio_off},
                        {"ttft_last_over_first_with_cache", ratio_on}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("model: %s, %d turns of %d-token messages and %d-token answers, system prompt %d tokens, "
              "%d thread%s, median of %d\n\n",
              a.model.c_str(), a.turns, a.message_len, a.answer_len, a.system_len, a.threads,
              a.threads == 1 ? "" : "s", a.reps);
  std::printf("| turn | prompt | TTFT no cache (ms) | cached | TTFT cache (ms) |\n"
              "|------|--------|--------------------|--------|-----------------|\n");
  for (size_t t = 0; t < on.size(); ++t) {
    std::printf("| %4zu | %6d | %18.1f | %6d | %15.1f |\n", t + 1, on[t].prompt_tokens, off[t].ttft_ms,
                on[t].cached_tokens, on[t].ttft_ms);
  }
  std::printf("\nTTFT turn %d / turn 1: %.2fx without the cache, %.2fx with it\n", a.turns, ratio_off, ratio_on);
  return 0;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  CLI::App* bench = SubcommandGroup(app, "bench", "Benchmarks");
  auto* cmd = bench->add_subcommand("chat", "Time to first token over a multi-turn chat, with and without the prompt cache");
  static Args a;
  cmd->add_option("-m,--model", a.model, "GGUF model file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--turns", a.turns, "Conversation turns")->check(CLI::Range(1, 100))->capture_default_str();
  cmd->add_option("--message-len", a.message_len, "Tokens of each user message")->check(CLI::Range(1, 8192))->capture_default_str();
  cmd->add_option("--answer-len", a.answer_len, "Tokens of each answer")->check(CLI::Range(1, 8192))->capture_default_str();
  cmd->add_option("--system-len", a.system_len, "Tokens of a system prompt before the first message")->check(CLI::Range(0, 8192))->capture_default_str();
  cmd->add_option("--cache-mib", a.cache_mib, "Prompt cache budget for the cached run")->check(CLI::Range(1, 1 << 20))->capture_default_str();
  cmd->add_option("-t,--threads", a.threads, "Engine threads")->check(CLI::Range(1, 1024))->capture_default_str();
  cmd->add_option("-r,--reps", a.reps, "Conversations per mode (median per turn)")->check(CLI::Range(1, 100))->capture_default_str();
  cmd->add_option("--kv-type", a.kv_type, "KV cache element type")->check(CLI::IsMember({"f16", "f32"}))->capture_default_str();
  cmd->add_flag("--json", a.json, "Print one JSON object");
  cmd->callback([&ctx] { ctx.exit_code = Run(a); });
}

CommandRegistration reg{"bench-chat", 55, Setup};

}  // namespace
}  // namespace cllm::app
