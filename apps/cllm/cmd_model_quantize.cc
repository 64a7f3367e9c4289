// `cllm model quantize IN OUT TYPE`: re-encode an F32/F16/BF16 GGUF model as
// f16, q8_0, q4_0, q4_k, q6_k or q4_k_m, with llama.cpp's per-tensor rules
// (engine/quant/quant_plan.h) and ggml-compatible blocks.
#include <cstdio>

#include "apps/cllm/command.h"
#include "apps/cllm/model_progress.h"
#include "engine/gguf/gguf.h"
#include "engine/quant/model_quantize.h"

namespace cllm::app {
namespace {

struct Args {
  std::string in, out, type;
  int threads = 0;
};

int Run(const Args& a) {
  const std::optional<engine::QuantScheme> scheme = engine::ParseQuantScheme(a.type);
  if (!scheme) return Fail("unknown type '" + a.type + "' (f16, q8_0, q4_0, q4_k, q6_k, q4_k_m)");
  auto in = engine::GgufFile::Open(a.in);
  if (!in.ok()) return Fail(a.in + ": " + engine::GgufErrcName(in.code()) + ": " + in.detail());
  TensorProgress progress;
  auto plan = engine::QuantizeModel(*in, a.out, *scheme, std::ref(progress), a.threads);
  if (!plan.ok()) return Fail(std::string(engine::QuantErrcName(plan.code())) + ": " + plan.detail());
  std::printf("%s: %s, %s\n", a.out.c_str(), engine::QuantSchemeName(*scheme), progress.Summary().c_str());
  return 0;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  CLI::App* model = SubcommandGroup(app, "model", "Inspect, convert and seal model files");
  auto* cmd = model->add_subcommand("quantize", "Quantize an F32/F16 GGUF model (llama.cpp-compatible output)");
  static Args a;
  cmd->add_option("input", a.in, "Input GGUF file (F32, F16 or BF16 weights)")->required()->check(CLI::ExistingFile);
  cmd->add_option("output", a.out, "Output GGUF file")->required();
  cmd->add_option("type", a.type, "f16, q8_0, q4_0, q4_k, q6_k or q4_k_m")->required();
  cmd->add_option("-t,--threads", a.threads, "Quantization threads (0: all cores; output is the same)")->check(CLI::Range(0, 1024))->capture_default_str();
  cmd->callback([&ctx] { ctx.exit_code = Run(a); });
}

CommandRegistration reg{"model-quantize", 12, Setup};

}  // namespace
}  // namespace cllm::app
