#include "engine/bench/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>

namespace cllm::engine {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// BenchToken returns a deterministic, spread-out token id for position `i`.
TokenId BenchToken(int i, int n_vocab) {
  return static_cast<TokenId>((static_cast<int64_t>(i) * 7919 + 13) % n_vocab);
}

// FillDepth prefills positions [0, depth) of sequence `seq`: untimed, and
// outside an op profile (--profile shows the timed steps only).
ModelResult<Ok> FillDepth(const Model& model, KvCache& cache, int seq, int depth) {
  if (depth == 0) return OkStatus();
  std::vector<BatchEntry> batch;
  for (int i = 0; i < depth; ++i) batch.push_back({seq, i, BenchToken(i * 17 + seq, model.config().n_vocab), false});
  const bool profiling = OpProfileEnabled();
  EnableOpProfile(false);
  auto st = model.Forward(batch, cache, nullptr);
  EnableOpProfile(profiling);
  return st;
}

ModelResult<double> TimePrompt(const Model& model, int n, KvType kv, int depth) {
  KvCache cache(model.config(), kv, depth + n);
  CLLM_RETURN_IF_ERROR(FillDepth(model, cache, 0, depth));
  std::vector<BatchEntry> batch;
  for (int i = 0; i < n; ++i) batch.push_back({0, depth + i, BenchToken(i, model.config().n_vocab), i == n - 1});
  std::vector<float> logits;
  const auto t0 = Clock::now();
  CLLM_RETURN_IF_ERROR(model.Forward(batch, cache, &logits));
  return Seconds(t0, Clock::now());
}

// TimeDecode advances `n_seq` sequences by `steps` tokens, one batch per step.
ModelResult<double> TimeDecode(const Model& model, int n_seq, int steps, KvType kv, int depth) {
  KvCache cache(model.config(), kv, depth + steps);
  for (int s = 0; s < n_seq; ++s) CLLM_RETURN_IF_ERROR(FillDepth(model, cache, s, depth));
  std::vector<float> logits;
  std::vector<BatchEntry> batch(static_cast<size_t>(n_seq));
  const auto t0 = Clock::now();
  for (int step = 0; step < steps; ++step) {
    for (int s = 0; s < n_seq; ++s) {
      batch[s] = {s, depth + step, BenchToken(step * 31 + s, model.config().n_vocab), true};
    }
    logits.clear();
    CLLM_RETURN_IF_ERROR(model.Forward(batch, cache, &logits));
  }
  return Seconds(t0, Clock::now());
}

ModelResult<double> TimeOnce(const Model& model, const BenchTest& t) {
  switch (t.kind) {
    case BenchKind::kPrompt: return TimePrompt(model, t.n_tokens, t.kv_type, t.depth);
    case BenchKind::kGenerate: return TimeDecode(model, 1, t.n_tokens, t.kv_type, t.depth);
    case BenchKind::kBatchDecode: return TimeDecode(model, t.batch, t.n_tokens, t.kv_type, t.depth);
  }
  return 0.0;
}

// CheckFits refuses a test whose sequences would run past the model's
// context length (depth + tokens positions each): the model was not trained
// there, and a mistyped -d would otherwise map gigabytes of KV cache.
ModelResult<Ok> CheckFits(const Model& model, const BenchTest& t) {
  const int64_t positions = int64_t{t.depth} + t.n_tokens;
  const int n_ctx = model.config().n_ctx_train;
  if (n_ctx > 0 && positions > n_ctx) {
    return MakeError(ModelErrc::kContextFull, "the test needs depth " + std::to_string(t.depth) + " + " +
                                                  std::to_string(t.n_tokens) + " tokens = " + std::to_string(positions) +
                                                  " positions per sequence, more than the model's context length " +
                                                  std::to_string(n_ctx));
  }
  return OkStatus();
}

}  // namespace

std::optional<std::vector<int>> ParseIntList(std::string_view text, int max) {
  std::vector<int> out;
  while (true) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    int v = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || v <= 0 || v > max) {
      return std::nullopt;
    }
    out.push_back(v);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

MeanSd ComputeMeanSd(const std::vector<double>& samples) {
  MeanSd r;
  if (samples.empty()) return r;
  for (double s : samples) r.mean += s;
  r.mean /= static_cast<double>(samples.size());
  if (samples.size() < 2) return r;
  double ss = 0;
  for (double s : samples) ss += (s - r.mean) * (s - r.mean);
  r.sd = std::sqrt(ss / static_cast<double>(samples.size() - 1));
  return r;
}

const char* BenchKindName(BenchKind k) {
  switch (k) {
    case BenchKind::kPrompt: return "pp";
    case BenchKind::kGenerate: return "tg";
    case BenchKind::kBatchDecode: return "batch";
  }
  return "?";
}

std::string BenchResult::Label() const {
  char buf[48];
  const char* kind = test.kind == BenchKind::kPrompt ? "pp" : "tg";
  if (test.kind == BenchKind::kBatchDecode) {
    std::snprintf(buf, sizeof buf, "b%d tg%d", test.batch, test.n_tokens);
  } else {
    std::snprintf(buf, sizeof buf, "%s%d", kind, test.n_tokens);
  }
  std::string label = buf;
  if (test.depth > 0) label += "@d" + std::to_string(test.depth);
  return label;
}

ModelResult<BenchResult> RunBenchTest(const Model& model, const BenchTest& test) {
  BenchResult r;
  r.test = test;
  const int n_seq = test.kind == BenchKind::kBatchDecode ? test.batch : 1;
  CLLM_RETURN_IF_ERROR(CheckFits(model, test));
  // Warm-up: touches the weights (page cache, mmap faults) and allocators so
  // the first repetition is not an outlier. A short version of the test.
  BenchTest warm = test;
  warm.n_tokens = std::min(test.n_tokens, 8);
  CLLM_RETURN_IF_ERROR(TimeOnce(model, warm));
  for (int i = 0; i < test.reps; ++i) {
    CLLM_ASSIGN_OR_RETURN(double seconds, TimeOnce(model, test));
    r.tokens_per_second.push_back(static_cast<double>(test.n_tokens) * n_seq / std::max(seconds, 1e-9));
  }
  r.stats = ComputeMeanSd(r.tokens_per_second);
  return r;
}

ModelResult<OpProfileRun> ProfileBenchTest(const Model& model, const BenchTest& test) {
  OpProfileRun r;
  r.test = test;
  CLLM_RETURN_IF_ERROR(CheckFits(model, test));
  BenchTest warm = test;
  warm.n_tokens = std::min(test.n_tokens, 8);
  CLLM_RETURN_IF_ERROR(TimeOnce(model, warm));
  const bool was_on = OpProfileEnabled();
  EnableOpProfile(true);
  ResetOpProfile();
  auto seconds = TimeOnce(model, test);
  r.profile = TakeOpProfile();
  EnableOpProfile(was_on);
  if (!seconds.ok()) return MakeError(seconds.code(), seconds.detail());
  r.wall_seconds = *seconds;
  r.passes = test.kind == BenchKind::kPrompt ? 1 : test.n_tokens;
  return r;
}

uint64_t PeakRssBytes() {
  struct rusage u {};
  if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
  return static_cast<uint64_t>(u.ru_maxrss) * 1024;  // Linux reports KiB
}

}  // namespace cllm::engine
