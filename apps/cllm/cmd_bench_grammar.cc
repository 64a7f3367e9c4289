// `cllm bench grammar -m FILE [--schema JSON|@FILE] [-n 128] [-r 3] [-t 1]`
//
// The cost of structured output: decode tokens/s sampling at temperature 1
// without a constraint and with the JSON-schema constraint of --schema
// (default {"type":"object"}: any JSON object, the widest grammar), the time
// spent in the mask per token, and the slowdown. Each repetition uses a new
// seed and a freshly compiled grammar (as a request does: its allowed-set
// cache starts empty). Constrained runs stop at end-of-generation, so tokens/s
// counts the tokens actually produced. See docs/performance.md.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "apps/cllm/command.h"
#include "engine/grammar/json_constraint.h"
#include "engine/kernels/thread_pool.h"
#include "engine/model/generator.h"

namespace cllm::app {
namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string model, schema = R"({"type":"object"})";
  int n_gen = 128, reps = 3, threads = 1;
};

// Timed wraps a constraint and adds up the time spent in it.
class Timed final : public engine::TokenConstraint {
 public:
  explicit Timed(std::shared_ptr<engine::TokenConstraint> c) : c_(std::move(c)) {}
  void Mask(std::span<float> logits) override {
    auto t0 = Clock::now();
    c_->Mask(logits);
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  void Accept(engine::TokenId t) override {
    auto t0 = Clock::now();
    c_->Accept(t);
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  std::shared_ptr<engine::TokenConstraint> Fresh() const override { return std::make_shared<Timed>(c_->Fresh()); }
  double seconds = 0;

 private:
  std::shared_ptr<engine::TokenConstraint> c_;
};

int Run(const Args& a) {
  std::string text = a.schema;
  if (!text.empty() && text[0] == '@') {
    std::ifstream in(text.substr(1));
    if (!in) return Fail("cannot read " + text.substr(1));
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  auto schema = nlohmann::ordered_json::parse(text, nullptr, false);
  if (schema.is_discarded()) return Fail("--schema is not JSON");
  engine::SetNumThreads(a.threads);
  auto model = engine::Model::Open(a.model);
  if (!model.ok()) return Fail(model.detail());
  const engine::Tokenizer& tok = (*model)->tokenizer();
  auto index_t0 = Clock::now();
  auto vocab = engine::grammar::VocabIndex::For(tok);  // built once per tokenizer; kept alive here
  double index_s = std::chrono::duration<double>(Clock::now() - index_t0).count();

  double free_tokens = 0, free_s = 0, json_tokens = 0, json_s = 0, mask_s = 0;
  for (int rep = 0; rep < a.reps; ++rep) {
    engine::GenerateOptions o;
    o.max_tokens = a.n_gen;
    o.sampling.temperature = 1.0f;
    o.sampling.seed = static_cast<uint64_t>(rep + 1);
    o.stop_at_eog = false;
    auto t0 = Clock::now();
    auto r = engine::Generate(**model, "Answer in JSON.", o);
    if (!r.ok()) return Fail(r.detail());
    free_s += std::chrono::duration<double>(Clock::now() - t0).count();
    free_tokens += static_cast<double>(r->tokens.size());

    auto g = engine::grammar::JsonGrammar::Create(tok, schema);
    if (!g.ok()) return Fail("--schema: " + g.detail());
    auto timed = std::make_shared<Timed>((*g)->NewConstraint());
    o.constraint = timed;
    o.stop_at_eog = true;
    t0 = Clock::now();
    r = engine::Generate(**model, "Answer in JSON.", o);
    if (!r.ok()) return Fail(r.detail());
    json_s += std::chrono::duration<double>(Clock::now() - t0).count();
    json_tokens += static_cast<double>(r->tokens.size()) + (r->stopped_at_eog ? 1 : 0);
    mask_s += timed->seconds;
  }
  const double free_tps = free_tokens / free_s, json_tps = json_tokens / json_s;
  std::printf("vocabulary index: %.1f ms (once per tokenizer)\n", 1e3 * index_s);
  std::printf("| run              | tokens | tokens/s | mask ms/token |\n");
  std::printf("| ---------------- | -----: | -------: | ------------: |\n");
  std::printf("| unconstrained    | %6.0f | %8.1f |             - |\n", free_tokens, free_tps);
  std::printf("| json constrained | %6.0f | %8.1f | %13.3f |\n", json_tokens, json_tps, 1e3 * mask_s / json_tokens);
  std::printf("slowdown: %.1f %%\n", 100.0 * (1.0 - json_tps / free_tps));
  return 0;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  CLI::App* bench = SubcommandGroup(app, "bench", "Benchmarks");
  auto* cmd = bench->add_subcommand("grammar", "Measure decode speed with and without a JSON-schema constraint");
  static Args a;
  cmd->add_option("-m,--model", a.model, "GGUF model file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--schema", a.schema, "JSON schema, inline or @FILE")->capture_default_str();
  cmd->add_option("-n,--n-gen", a.n_gen, "Tokens per run (at most)")->check(CLI::Range(1, 1 << 14))->capture_default_str();
  cmd->add_option("-r,--reps", a.reps, "Runs (seeds 1..r)")->check(CLI::Range(1, 1000))->capture_default_str();
  cmd->add_option("-t,--threads", a.threads, "Threads")->check(CLI::Range(1, 1024))->capture_default_str();
  cmd->callback([&ctx] { ctx.exit_code = Run(a); });
}

CommandRegistration reg{"bench-grammar", 51, Setup};

}  // namespace
}  // namespace cllm::app
