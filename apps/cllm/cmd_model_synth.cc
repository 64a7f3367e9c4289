// `cllm model synth --preset P --type T --seed S --vocab VOCAB.gguf -o FILE`:
// a deterministic random-weight qwen3 model with real shapes, for benchmarks
// (engine/quant/synth_model.h). Same arguments → byte-identical file.
#include <cstdio>

#include "apps/cllm/command.h"
#include "apps/cllm/model_progress.h"
#include "engine/gguf/gguf.h"
#include "engine/quant/synth_model.h"

namespace cllm::app {
namespace {

struct Args {
  std::string preset = "tiny", type = "q8_0", vocab, out;
  uint64_t seed = 0;
  int threads = 0;
};

int Run(const Args& a) {
  const std::optional<engine::SynthPreset> preset = engine::FindSynthPreset(a.preset);
  if (!preset) return Fail("unknown preset '" + a.preset + "' (tiny, qwen3-0.6b, qwen3-1.7b)");
  const std::optional<engine::QuantScheme> scheme = engine::ParseQuantScheme(a.type);
  if (!scheme) return Fail("unknown type '" + a.type + "' (f16, q8_0, q4_0, q4_k, q6_k, q4_k_m)");
  auto vocab = engine::GgufFile::Open(a.vocab);
  if (!vocab.ok()) return Fail(a.vocab + ": " + engine::GgufErrcName(vocab.code()) + ": " + vocab.detail());
  TensorProgress progress;
  engine::SynthOptions opts{*preset, *scheme, a.seed};
  opts.n_threads = a.threads;
  auto plan = engine::SynthesizeModel(opts, *vocab, a.out, std::ref(progress));
  if (!plan.ok()) return Fail(std::string(engine::QuantErrcName(plan.code())) + ": " + plan.detail());
  std::printf("%s: %s %s seed %llu, %s\n", a.out.c_str(), preset->name.c_str(), engine::QuantSchemeName(*scheme),
              static_cast<unsigned long long>(a.seed), progress.Summary().c_str());
  return 0;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  CLI::App* model = SubcommandGroup(app, "model", "Inspect, convert and seal model files");
  auto* cmd = model->add_subcommand("synth", "Write a random-weight qwen3 model with real shapes (benchmarks)");
  static Args a;
  cmd->add_option("--preset", a.preset, "tiny, qwen3-0.6b or qwen3-1.7b")->capture_default_str();
  cmd->add_option("--type", a.type, "f16, q8_0, q4_0, q4_k, q6_k or q4_k_m")->capture_default_str();
  cmd->add_option("--seed", a.seed, "Random seed (same seed, same file)")->capture_default_str();
  cmd->add_option("--vocab", a.vocab, "GGUF whose tokenizer.* metadata to copy (e.g. ggml-vocab-qwen3.gguf)")
      ->required()->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", a.out, "Output GGUF file")->required();
  cmd->add_option("-t,--threads", a.threads, "Quantization threads (0: all cores; output is the same)")->check(CLI::Range(0, 1024))->capture_default_str();
  cmd->callback([&ctx] { ctx.exit_code = Run(a); });
}

CommandRegistration reg{"model-synth", 13, Setup};

}  // namespace
}  // namespace cllm::app
