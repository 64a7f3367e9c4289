// `cllm bench model -m FILE [-p 512] [-n 128] [-d 0] [-t 1,2] [-r 5] [--batch 1,2,4,8] [--json] [--profile]`
//
// llama-bench-style throughput of the local engine: pp = prefill of -p tokens
// in one forward pass, tg = -n single-token decode steps, bB = -n decode steps
// of B sequences batched together (aggregate tokens/s). Each test runs -r
// times per thread count, after -d positions already in the KV cache; we print mean ± sd tokens/s, the model load time,
// the time to the first token and the peak RSS. See docs/performance.md.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "apps/cllm/command.h"
#include "engine/bench/bench.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/thread_pool.h"

namespace cllm::app {
namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string model, threads = "1", batch, kv_type = "f16";
  int n_prompt = 512, n_gen = 128, reps = 5, depth = 0;
  bool json = false, profile = false;
};

// ApplyThreads sets the engine's worker count (the engine-wide pool; no
// forward pass runs between tests).
void ApplyThreads(int n) { engine::SetNumThreads(n); }

// PrintProfile prints one profiled run as a table: ms per forward pass per
// op, and its share of the pass's wall time ("other" is what no op timer
// covers: batch checks, buffer set-up, the final norm).
void PrintProfile(const engine::OpProfileRun& r) {
  const double per_pass_ms = 1e3 * r.wall_seconds / r.passes;
  const char* what = r.test.kind == engine::BenchKind::kPrompt ? "prefill"
                     : r.test.kind == engine::BenchKind::kGenerate ? "decode step"
                                                                    : "batched decode step";
  engine::BenchResult label;
  label.test = r.test;
  std::printf("\nprofile: %s (%s, %d thread%s), %.3f ms per pass, %.1f t/s\n", what, label.Label().c_str(), r.test.threads,
              r.test.threads == 1 ? "" : "s", per_pass_ms,
              r.test.n_tokens * r.test.batch / std::max(r.wall_seconds, 1e-9));
  std::printf("| %-16s | %10s | %6s |\n|------------------|------------|--------|\n", "op", "ms/pass", "share");
  double timed = 0;
  for (int i = 0; i < engine::kNumOps; ++i) {
    const double ms = 1e3 * r.profile.seconds[i] / r.passes;
    timed += ms;
    if (r.profile.calls[i] == 0) continue;
    std::printf("| %-16s | %10.3f | %5.1f%% |\n", engine::OpName(static_cast<engine::Op>(i)), ms,
                100 * ms / per_pass_ms);
  }
  std::printf("| %-16s | %10.3f | %5.1f%% |\n", "other", per_pass_ms - timed, 100 * (per_pass_ms - timed) / per_pass_ms);
}

nlohmann::json ProfileJson(const engine::OpProfileRun& r) {
  nlohmann::json ops = nlohmann::json::object();
  for (int i = 0; i < engine::kNumOps; ++i) {
    if (r.profile.calls[i] > 0) ops[engine::OpName(static_cast<engine::Op>(i))] = 1e3 * r.profile.seconds[i] / r.passes;
  }
  return {{"kind", engine::BenchKindName(r.test.kind)}, {"n_tokens", r.test.n_tokens}, {"batch", r.test.batch},
          {"threads", r.test.threads}, {"depth", r.test.depth},
          {"ms_per_pass", 1e3 * r.wall_seconds / r.passes}, {"op_ms_per_pass", ops}};
}

double Ms(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

int Run(const Args& a) {
  const auto threads = engine::ParseIntList(a.threads, 1024);
  if (!threads) return Fail("-t: expected a list of positive thread counts like 1,2 (got '" + a.threads + "')");
  std::vector<int> batches;
  if (!a.batch.empty()) {
    auto b = engine::ParseIntList(a.batch, 4096);
    if (!b) return Fail("--batch: expected a list of positive batch sizes like 1,4,16 (got '" + a.batch + "')");
    batches = *b;
  }
  const engine::KvType kv = a.kv_type == "f32" ? engine::KvType::kF32 : engine::KvType::kF16;

  const auto t0 = Clock::now();
  auto model = engine::Model::Open(a.model);
  if (!model.ok()) return Fail(a.model + ": " + engine::ModelErrcName(model.code()) + ": " + model.detail());
  const auto t1 = Clock::now();
  {  // time to first token: load + a one-token prompt's logits
    engine::KvCache cache((*model)->config(), kv, 1);
    std::vector<float> logits;
    auto st = (*model)->Forward({{0, 0, 0, true}}, cache, &logits);
    if (!st.ok()) return Fail(std::string(engine::ModelErrcName(st.code())) + ": " + st.detail());
  }
  const auto t2 = Clock::now();
  const double load_ms = Ms(t0, t1), first_token_ms = Ms(t0, t2);

  std::vector<engine::BenchResult> results;
  std::vector<engine::OpProfileRun> profiles;
  for (int t : *threads) {
    ApplyThreads(t);
    std::vector<engine::BenchTest> tests;
    if (a.n_prompt > 0) tests.push_back({engine::BenchKind::kPrompt, a.n_prompt, 1, t, a.reps, kv, a.depth});
    if (a.n_gen > 0) tests.push_back({engine::BenchKind::kGenerate, a.n_gen, 1, t, a.reps, kv, a.depth});
    for (int b : batches) tests.push_back({engine::BenchKind::kBatchDecode, a.n_gen, b, t, a.reps, kv, a.depth});
    for (const auto& test : tests) {
      auto r = engine::RunBenchTest(**model, test);
      if (!r.ok()) return Fail(std::string(engine::ModelErrcName(r.code())) + ": " + r.detail());
      if (!a.json) {
        std::fprintf(stderr, "  %-10s threads %-3d %10.2f ± %.2f t/s\n", r->Label().c_str(), t, r->stats.mean, r->stats.sd);
      }
      results.push_back(std::move(r).value());
    }
    if (a.profile) {
      for (const auto& test : tests) {
        auto p = engine::ProfileBenchTest(**model, test);
        if (!p.ok()) return Fail(std::string(engine::ModelErrcName(p.code())) + ": " + p.detail());
        profiles.push_back(std::move(p).value());
      }
    }
  }

  const engine::ModelConfig& c = (*model)->config();
  const uint64_t file_size = (*model)->file().file_size();
  const double rss_mib = static_cast<double>(engine::PeakRssBytes()) / (1 << 20);
  if (a.json) {
    nlohmann::json j = {{"model", a.model}, {"arch", c.arch}, {"file_size", file_size}, {"n_layer", c.n_layer},
                        {"n_embd", c.n_embd}, {"load_ms", load_ms}, {"first_token_ms", first_token_ms},
                        {"peak_rss_bytes", engine::PeakRssBytes()}, {"kernels", engine::IsaName(engine::ActiveIsa())},
                        {"kv_type", a.kv_type}, {"results", nlohmann::json::array()}};
    for (const auto& r : results) {
      j["results"].push_back({{"test", r.Label()}, {"kind", engine::BenchKindName(r.test.kind)},
                              {"n_tokens", r.test.n_tokens}, {"batch", r.test.batch}, {"threads", r.test.threads},
                              {"depth", r.test.depth}, {"reps", r.test.reps}, {"tokens_per_second", r.tokens_per_second},
                              {"mean", r.stats.mean}, {"sd", r.stats.sd}});
    }
    if (a.profile) {
      j["profiles"] = nlohmann::json::array();
      for (const auto& p : profiles) j["profiles"].push_back(ProfileJson(p));
    }
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("model: %s (%s, %d layers, hidden %d, %.1f MiB)\n", a.model.c_str(), c.arch.c_str(), c.n_layer,
              c.n_embd, static_cast<double>(file_size) / (1 << 20));
  std::printf("load: %.1f ms, first token: %.1f ms, peak RSS: %.1f MiB, kernels: %s\n\n", load_ms, first_token_ms, rss_mib,
              engine::IsaName(engine::ActiveIsa()));
  std::printf("| %-16s | %7s | %20s |\n|------------------|---------|----------------------|\n", "test", "threads", "t/s");
  for (const auto& r : results) {
    char ts[64];
    std::snprintf(ts, sizeof ts, "%.2f ± %.2f", r.stats.mean, r.stats.sd);
    std::printf("| %-16s | %7d | %20s |\n", r.Label().c_str(), r.test.threads, ts);
  }
  for (const auto& p : profiles) PrintProfile(p);
  return 0;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  CLI::App* bench = SubcommandGroup(app, "bench", "Benchmarks");
  auto* cmd = bench->add_subcommand("model", "Measure prefill / decode / batched decode throughput of a local model");
  static Args a;
  cmd->add_option("-m,--model", a.model, "GGUF model file")->required()->check(CLI::ExistingFile);
  cmd->add_option("-p,--n-prompt", a.n_prompt, "Prompt tokens for the pp test (0: skip)")->check(CLI::Range(0, 1 << 16))->capture_default_str();
  cmd->add_option("-n,--n-gen", a.n_gen, "Decode steps for tg and batch tests (0: skip tg)")->check(CLI::Range(0, 1 << 16))->capture_default_str();
  cmd->add_option("-d,--depth", a.depth,
                  "Context already in the KV cache before each timed test (untimed prefill per sequence), "
                  "as llama-bench's -d: tg at -d 1500 is decode at 1500 positions")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  cmd->add_option("-t,--threads", a.threads, "Thread counts, comma-separated")->capture_default_str();
  cmd->add_option("-r,--reps", a.reps, "Repetitions per test")->check(CLI::Range(1, 1000))->capture_default_str();
  cmd->add_option("--batch", a.batch, "Also measure aggregate decode with these sequence counts, comma-separated");
  cmd->add_option("--kv-type", a.kv_type, "KV cache element type")->check(CLI::IsMember({"f16", "f32"}))->capture_default_str();
  cmd->add_flag("--json", a.json, "Print one JSON object with every sample");
  cmd->add_flag("--profile", a.profile, "Also time each operation of one run of every test (pp, tg, batches) per thread count");
  cmd->callback([&ctx] { ctx.exit_code = Run(a); });
}

CommandRegistration reg{"bench", 50, Setup};

}  // namespace
}  // namespace cllm::app
