// `cllm bench long-prompt -m MODEL [--users 4] [--long 2000] [--stall-factors off,1.5,2]`
//
// What a long prompt does to everyone else (issue 17 item 4): `--users`
// sequences stream tokens through one scheduler; after a warm-up their
// inter-token latency (ITL) is measured idle, then a `--long`-token prompt
// arrives and their ITL is measured again until that prompt's first token,
// and once more after it (the streams' contexts have grown by then, so their
// decode steps cost more than before the arrival). A control run then
// streams the same users with no long prompt: its gaps at the same token
// indices are the idle ITL at the same contexts, the fair baseline for the
// gaps during the arrival (issue 17: p99 during ≤ 2× idle).
// Printed per stall factor (SchedulerOptions::prefill_stall_factor): ITL
// p50/p99 idle and during the arrival, their p99 ratios (to the idle ITL
// before, after, and at the same contexts), and the long prompt's time to
// first token beside the streams and alone. In process, no network.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <sstream>

#include "apps/cllm/command.h"
#include "engine/kernels/thread_pool.h"
#include "engine/serve/scheduler.h"

namespace cllm::app {
namespace {

using Clock = std::chrono::steady_clock;
using engine::TokenId;

struct Args {
  std::string model, factors = "off,1.5,2";
  int users = 4, long_tokens = 2000, short_tokens = 16, warm = 4, idle = 16, threads = 2;
  bool json = false;
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Ids returns n valid token ids (the content does not matter for timing).
std::vector<TokenId> Ids(const engine::Model& m, int n, uint32_t seed) {
  std::vector<TokenId> ids;
  const uint32_t span = static_cast<uint32_t>(m.config().n_vocab - 3);
  for (int i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    ids.push_back(static_cast<TokenId>(3 + (seed >> 8) % span));
  }
  return ids;
}

// Streams records when each user's tokens arrived (callbacks run on the
// scheduler's worker; they only append under a lock).
struct Streams {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::vector<Clock::time_point>> at;
  Clock::time_point long_first{};
  bool long_done = false;

  size_t Fewest() {
    size_t n = SIZE_MAX;
    for (const auto& a : at) n = std::min(n, a.size());
    return n;
  }
};

struct Figures {
  std::string factor;
  std::vector<double> idle, during, after;
  double ttft_ms = 0;
  // Per stream, the token indices [first, last) whose gaps are `during`.
  std::vector<std::pair<size_t, size_t>> during_range;
  std::vector<double> control;  // the control run's gaps at those indices
};

// Percentile of a copy (nearest rank).
double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
}

Result<double> AloneTtft(const engine::Model& model, const Args& a) {
  engine::SchedulerOptions so;
  so.context_length = a.long_tokens + 8;
  Streams s;  // before the scheduler: its callbacks may run until it is gone
  engine::Scheduler sched(model, so);
  engine::SequenceRequest r;
  r.prompt = Ids(model, a.long_tokens, 7);
  r.max_tokens = 1;
  r.on_token = [&](TokenId, std::string_view) {
    std::lock_guard<std::mutex> l(s.mu);
    s.long_first = Clock::now();
    return true;
  };
  r.on_done = [&](const engine::SequenceOutcome&) {
    std::lock_guard<std::mutex> l(s.mu);
    s.long_done = true;
    s.cv.notify_all();
  };
  const auto t0 = Clock::now();
  if (auto ok = sched.Submit(std::move(r)); !ok.ok()) return MakeError(Errc::kInvalidArgument, ok.detail());
  std::unique_lock<std::mutex> l(s.mu);
  s.cv.wait(l, [&] { return s.long_done; });
  return Ms(s.long_first - t0);
}

// StreamOptions: the scheduler of the streams (and of the long prompt).
engine::SchedulerOptions StreamOptions(const Args& a, double stall_factor) {
  engine::SchedulerOptions so;
  so.max_active = a.users + 1;
  so.context_length = std::max(a.long_tokens, 4096) + 8;
  so.prefill_stall_factor = stall_factor;
  return so;
}

// SubmitStreams starts the `a.users` streams, each recording its tokens'
// times in `s` and counting in `finished` when it ends; `stop` cancels them.
Status<> SubmitStreams(engine::Scheduler& sched, const engine::Model& model, const Args& a,
                       const engine::SchedulerOptions& so, Streams& s, int& finished,
                       const std::shared_ptr<std::atomic<bool>>& stop) {
  s.at.resize(static_cast<size_t>(a.users));
  for (int u = 0; u < a.users; ++u) {
    engine::SequenceRequest r;
    r.user = "user" + std::to_string(u);
    r.prompt = Ids(model, a.short_tokens, static_cast<uint32_t>(u + 1));
    r.max_tokens = so.context_length - a.short_tokens - 1;
    r.stop_at_eog = false;
    r.cancelled = stop;
    r.on_token = [&s, u](TokenId, std::string_view) {
      std::lock_guard<std::mutex> l(s.mu);
      s.at[static_cast<size_t>(u)].push_back(Clock::now());
      s.cv.notify_all();
      return true;
    };
    r.on_done = [&s, &finished](const engine::SequenceOutcome&) {
      std::lock_guard<std::mutex> l(s.mu);
      ++finished;
      s.cv.notify_all();
    };
    if (auto ok = sched.Submit(std::move(r)); !ok.ok()) return MakeError(Errc::kInvalidArgument, ok.detail());
  }
  return OkStatus();
}

Result<Figures> UnderLoad(const engine::Model& model, const Args& a, const std::string& factor) {
  const engine::SchedulerOptions so = StreamOptions(a, factor == "off" ? 0 : std::stod(factor));
  Streams s;  // before the scheduler: its callbacks may run until it is gone
  int finished = 0;
  auto stop = std::make_shared<std::atomic<bool>>(false);
  engine::Scheduler sched(model, so);
  CLLM_RETURN_IF_ERROR(SubmitStreams(sched, model, a, so, s, finished, stop));
  Figures f;
  f.factor = factor;
  std::unique_lock<std::mutex> l(s.mu);
  s.cv.wait(l, [&] { return s.Fewest() >= static_cast<size_t>(a.warm + a.idle + 1) || finished > 0; });
  if (finished > 0) return MakeError(Errc::kInternal, "a stream ended early");
  for (const auto& times : s.at) {
    for (size_t i = static_cast<size_t>(a.warm) + 1; i < times.size(); ++i) f.idle.push_back(Ms(times[i] - times[i - 1]));
  }
  std::vector<size_t> seen;
  for (const auto& times : s.at) seen.push_back(times.size());

  engine::SequenceRequest r;
  r.user = "long";
  r.prompt = Ids(model, a.long_tokens, 7);
  r.max_tokens = 1;
  r.on_token = [&s](TokenId, std::string_view) {
    std::lock_guard<std::mutex> g(s.mu);
    s.long_first = Clock::now();
    return true;
  };
  r.on_done = [&s](const engine::SequenceOutcome&) {
    std::lock_guard<std::mutex> g(s.mu);
    s.long_done = true;
    s.cv.notify_all();
  };
  const auto t0 = Clock::now();
  l.unlock();
  if (auto ok = sched.Submit(std::move(r)); !ok.ok()) return MakeError(Errc::kInvalidArgument, ok.detail());
  l.lock();
  s.cv.wait(l, [&] { return s.long_done || finished > 0; });
  if (!s.long_done) return MakeError(Errc::kInternal, "a stream ended before the long prompt's first token");
  f.ttft_ms = Ms(s.long_first - t0);
  // Every gap that overlaps the arrival: from the last token before it to
  // the first token after the long prompt's first token.
  std::vector<size_t> after(s.at.size());
  for (size_t u = 0; u < s.at.size(); ++u) {
    const auto& times = s.at[u];
    const size_t first = std::max<size_t>(seen[u], 1);
    size_t i = first;
    for (; i < times.size(); ++i) {
      f.during.push_back(Ms(times[i] - times[i - 1]));
      if (times[i] > s.long_first) break;
    }
    after[u] = i + 1;  // the first gap wholly after the arrival's end
    f.during_range.emplace_back(first, std::min(i + 1, times.size()));
  }
  // Idle again (the long prompt asked for one token and is gone), at the
  // streams' longer contexts: their decode steps have grown meanwhile.
  auto ready = [&] {
    for (size_t u = 0; u < s.at.size(); ++u) {
      if (s.at[u].size() < after[u] + static_cast<size_t>(a.idle)) return false;
    }
    return true;
  };
  s.cv.wait(l, [&] { return ready() || finished > 0; });
  if (finished > 0) return MakeError(Errc::kInternal, "a stream ended early");
  for (size_t u = 0; u < s.at.size(); ++u) {
    const auto& times = s.at[u];
    for (size_t i = after[u]; i < after[u] + static_cast<size_t>(a.idle); ++i) {
      f.after.push_back(Ms(times[i] - times[i - 1]));
    }
  }
  l.unlock();
  stop->store(true);
  sched.Stop();
  return f;
}

// Control streams the same users with no long prompt until each has
// `tokens` tokens and returns every stream's gaps by token index (gap i:
// token i's time less token i - 1's).
Result<std::vector<std::vector<double>>> Control(const engine::Model& model, const Args& a, size_t tokens) {
  const engine::SchedulerOptions so = StreamOptions(a, 0);
  Streams s;  // before the scheduler: its callbacks may run until it is gone
  int finished = 0;
  auto stop = std::make_shared<std::atomic<bool>>(false);
  engine::Scheduler sched(model, so);
  CLLM_RETURN_IF_ERROR(SubmitStreams(sched, model, a, so, s, finished, stop));
  std::unique_lock<std::mutex> l(s.mu);
  s.cv.wait(l, [&] { return s.Fewest() >= tokens || finished > 0; });
  if (finished > 0) return MakeError(Errc::kInternal, "a control stream ended early");
  std::vector<std::vector<double>> gaps(s.at.size());
  for (size_t u = 0; u < s.at.size(); ++u) {
    gaps[u].push_back(0);  // no gap before the first token
    for (size_t i = 1; i < s.at[u].size(); ++i) gaps[u].push_back(Ms(s.at[u][i] - s.at[u][i - 1]));
  }
  l.unlock();
  stop->store(true);
  sched.Stop();
  return gaps;
}

int Run(const Args& a) {
  std::vector<std::string> factors;
  std::stringstream ss(a.factors);
  for (std::string item; std::getline(ss, item, ',');) {
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (item != "off" && (item.empty() || end != item.c_str() + item.size() || !(v > 1) || v > 1000)) {
      return Fail("--stall-factors: '" + item + "' is neither off nor a number above 1");
    }
    factors.push_back(item);
  }
  if (factors.empty()) return Fail("--stall-factors is empty");
  engine::SetNumThreads(a.threads);
  auto opened = engine::Model::Open(a.model);
  if (!opened.ok()) return Fail(opened.detail());
  const engine::Model& model = **opened;
  if (a.long_tokens + 8 > std::max(model.config().n_ctx_train, 1)) return Fail("--long exceeds the model's context");

  if (!a.json) std::fprintf(stderr, "long prompt alone ...\n");
  auto alone = AloneTtft(model, a);
  if (!alone.ok()) return Fail(alone.detail());
  std::vector<Figures> runs;
  for (const std::string& factor : factors) {
    if (!a.json) std::fprintf(stderr, "stall factor %s ...\n", factor.c_str());
    auto f = UnderLoad(model, a, factor);
    if (!f.ok()) return Fail(f.detail());
    runs.push_back(std::move(*f));
  }
  size_t control_tokens = 0;
  for (const Figures& f : runs) {
    for (const auto& r : f.during_range) control_tokens = std::max(control_tokens, r.second);
  }
  if (!a.json) std::fprintf(stderr, "control: the streams alone to token %zu ...\n", control_tokens);
  auto control = Control(model, a, control_tokens);
  if (!control.ok()) return Fail(control.detail());
  for (Figures& f : runs) {
    for (size_t u = 0; u < f.during_range.size(); ++u) {
      for (size_t i = f.during_range[u].first; i < f.during_range[u].second; ++i) f.control.push_back((*control)[u][i]);
    }
  }

  nlohmann::json out = {{"users", a.users}, {"long_tokens", a.long_tokens}, {"threads", a.threads},
                        {"long_ttft_alone_ms", *alone}, {"runs", nlohmann::json::array()}};
  for (const Figures& f : runs) {
    out["runs"].push_back({{"stall_factor", f.factor},
                           {"itl_idle_p50_ms", Pct(f.idle, 50)}, {"itl_idle_p99_ms", Pct(f.idle, 99)},
                           {"itl_during_p50_ms", Pct(f.during, 50)}, {"itl_during_p99_ms", Pct(f.during, 99)},
                           {"itl_during_max_ms", Pct(f.during, 100)},
                           {"itl_after_p50_ms", Pct(f.after, 50)}, {"itl_after_p99_ms", Pct(f.after, 99)},
                           {"p99_ratio", Pct(f.during, 99) / Pct(f.idle, 99)},
                           {"p99_ratio_after", Pct(f.during, 99) / Pct(f.after, 99)},
                           {"itl_control_p50_ms", Pct(f.control, 50)}, {"itl_control_p99_ms", Pct(f.control, 99)},
                           {"p99_ratio_control", Pct(f.during, 99) / Pct(f.control, 99)}, {"long_ttft_ms", f.ttft_ms},
                           {"idle_gaps", f.idle.size()}, {"during_gaps", f.during.size()}});
  }
  if (a.json) {
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("%d streams, a %d-token prompt arrives; %d threads; the long prompt alone: TTFT %.0f ms\n", a.users,
              a.long_tokens, a.threads, *alone);
  std::printf("| stall factor | ITL idle before p50 / p99 | during p50 / p99 / max | idle after p50 / p99 | "
              "idle at the same contexts p50 / p99 | p99 during ÷ before, ÷ after, ÷ same contexts | long TTFT |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& r : out["runs"]) {
    std::printf("| %s | %.1f / %.1f ms | %.1f / %.1f / %.1f ms | %.1f / %.1f ms | %.1f / %.1f ms | "
                "%.2f×, %.2f×, %.2f× | %.0f ms |\n",
                r["stall_factor"].get<std::string>().c_str(), r["itl_idle_p50_ms"].get<double>(),
                r["itl_idle_p99_ms"].get<double>(), r["itl_during_p50_ms"].get<double>(),
                r["itl_during_p99_ms"].get<double>(), r["itl_during_max_ms"].get<double>(),
                r["itl_after_p50_ms"].get<double>(), r["itl_after_p99_ms"].get<double>(),
                r["itl_control_p50_ms"].get<double>(), r["itl_control_p99_ms"].get<double>(),
                r["p99_ratio"].get<double>(), r["p99_ratio_after"].get<double>(),
                r["p99_ratio_control"].get<double>(), r["long_ttft_ms"].get<double>());
  }
  return 0;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  CLI::App* bench = SubcommandGroup(app, "bench", "Benchmarks");
  auto* cmd = bench->add_subcommand(
      "long-prompt", "Measure running streams' inter-token latency while a long prompt arrives, per stall factor");
  static Args a;
  cmd->add_option("-m,--model", a.model, "GGUF model file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--users", a.users, "Streams running when the long prompt arrives")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--long", a.long_tokens, "Tokens of the arriving prompt")->check(CLI::Range(1, 1 << 20))->capture_default_str();
  cmd->add_option("--short", a.short_tokens, "Prompt tokens of each stream")->check(CLI::Range(1, 4096))->capture_default_str();
  cmd->add_option("--warm", a.warm, "Tokens per stream before measuring")->check(CLI::Range(0, 1 << 16))->capture_default_str();
  cmd->add_option("--idle", a.idle, "Idle gaps measured per stream")->check(CLI::Range(1, 1 << 16))->capture_default_str();
  cmd->add_option("--stall-factors", a.factors,
                  "Comma-separated scheduler stall factors to compare (off, or a number above 1)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", a.threads, "Threads")->check(CLI::Range(1, 1024))->capture_default_str();
  cmd->add_flag("--json", a.json, "Print one JSON object");
  cmd->callback([&ctx] { ctx.exit_code = Run(a); });
}

CommandRegistration reg{"bench-long-prompt", 53, Setup};

}  // namespace
}  // namespace cllm::app
