// bench.h — llama-bench-style throughput measurements of a loaded Model.
//
//   pp<N>  prefill: one Forward of an N-token prompt (logits for the last
//          token only), on an empty KV cache.
//   tg<N>  decode: N single-token Forward calls, each returning logits,
//          continuing from an empty cache (as llama-bench's tg test).
//   bB     aggregate decode: B sequences advanced together, one Forward per
//          step with B entries (the batch shape continuous batching builds),
//          N steps; tokens/s counts all B·N tokens.
// Each test is run `reps` times after one untimed warm-up; we report the
// mean and sample standard deviation of tokens/s over the repetitions.
// Token ids are a fixed pseudo-random sequence: speed does not depend on them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/model/model.h"
#include "engine/model/op_profile.h"

namespace cllm::engine {

// ParseIntList parses "1,2,4" (positive ints, no spaces, no empties);
// nullopt on any malformed or non-positive item or values above `max`.
std::optional<std::vector<int>> ParseIntList(std::string_view text, int max = 1 << 20);

struct MeanSd {
  double mean = 0;
  double sd = 0;  // sample standard deviation (n − 1); 0 for a single sample
};
MeanSd ComputeMeanSd(const std::vector<double>& samples);

enum class BenchKind { kPrompt, kGenerate, kBatchDecode };
const char* BenchKindName(BenchKind k);

struct BenchTest {
  BenchKind kind = BenchKind::kPrompt;
  int n_tokens = 0;  // prompt length (pp) or decode steps (tg, batch)
  int batch = 1;     // sequences (kBatchDecode)
  int threads = 1;
  int reps = 1;
  KvType kv_type = KvType::kF16;
  // depth: positions already in each sequence's KV cache when the timed part
  // starts (llama-bench's -d): filled by an untimed prefill per sequence
  // and repetition, so tg measures decode at that context length.
  int depth = 0;
};

struct BenchResult {
  BenchTest test;
  std::vector<double> tokens_per_second;  // one per repetition
  MeanSd stats;
  std::string Label() const;  // "pp512", "tg128", "b8 tg32", "tg128@d1500"
};

// RunBenchTest measures `test` on `model`. Errors come from Model::Forward
// (e.g. kContextFull when the test does not fit the model's context).
ModelResult<BenchResult> RunBenchTest(const Model& model, const BenchTest& test);

// OpProfileRun is one profiled run: per-op time (op_profile.h) summed over
// `passes` Forward calls that took `wall_seconds` in all.
struct OpProfileRun {
  BenchTest test;
  OpProfile profile;
  double wall_seconds = 0;
  int passes = 0;
};

// ProfileBenchTest runs `test` once (one prefill, or n_tokens decode steps
// of test.batch sequences) with op profiling on, after an untimed warm-up.
ModelResult<OpProfileRun> ProfileBenchTest(const Model& model, const BenchTest& test);

// PeakRssBytes is the process's peak resident set size (getrusage).
uint64_t PeakRssBytes();

}  // namespace cllm::engine
