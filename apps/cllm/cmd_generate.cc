// `cllm generate`: run a GGUF model locally (no TEE involved) and stream text.
//
//   cllm generate -m FILE -p TEXT -n N [--greedy | --temp T --top-p P --top-k K
//                 --min-p M --repeat-penalty R --seed S] [--kv-type f16|f32] [--chat] [--json]
#include <nlohmann/json.hpp>

#include <cstdio>

#include "apps/cllm/command.h"
#include "engine/model/generator.h"
#include "engine/tokenizer/chat_template.h"

namespace cllm::app {
namespace {

struct Args {
  std::string model, prompt, kv_type = "f16";
  int n = 128;
  bool greedy = false, json = false, chat = false;
  float temp = 0.8f, top_p = 0.95f, min_p = 0.05f, repeat_penalty = 1.0f;
  int top_k = 40;
  uint64_t seed = 0;
};

int Run(const Args& a) {
  auto model = engine::Model::Open(a.model);
  if (!model.ok()) return Fail(a.model + ": " + engine::ModelErrcName(model.code()) + ": " + model.detail());
  engine::GenerateOptions opts;
  opts.max_tokens = a.n;
  opts.kv_type = a.kv_type == "f32" ? engine::KvType::kF32 : engine::KvType::kF16;
  if (!a.greedy) {
    opts.sampling = {a.temp, a.top_k, a.top_p, a.min_p, a.repeat_penalty, 64, a.seed};
  }
  std::string prompt = a.prompt;
  if (a.chat) {
    auto tmpl = engine::ChatTemplate::ForModel(model.value()->file(), model.value()->tokenizer());
    if (!tmpl.ok()) return Fail(tmpl.detail());
    engine::ChatTemplateInput in;
    in.messages = nlohmann::json::array({{{"role", "user"}, {"content", a.prompt}}});
    auto formatted = tmpl->Render(in);
    if (!formatted.ok()) return Fail(formatted.detail());
    prompt = formatted->text;
  }
  auto on_token = [&](engine::TokenId, std::string_view text) {
    if (!a.json) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  };
  auto r = engine::Generate(**model, prompt, opts, on_token);
  if (!r.ok()) return Fail(std::string(engine::ModelErrcName(r.code())) + ": " + r.detail());
  if (a.json) {
    nlohmann::json j = {{"prompt_tokens", r->prompt_tokens}, {"tokens", r->tokens}, {"text", r->text},
                        {"stopped_at_eog", r->stopped_at_eog}};
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("\n");
  }
  return 0;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  auto* cmd = app.add_subcommand("generate", "Generate text with a local GGUF model (no attestation)");
  static Args a;
  cmd->add_option("-m,--model", a.model, "GGUF model file")->required()->check(CLI::ExistingFile);
  cmd->add_option("-p,--prompt", a.prompt, "Prompt text")->required();
  cmd->add_option("-n,--max-tokens", a.n, "Tokens to generate")->check(CLI::Range(1, 1 << 20))->capture_default_str();
  cmd->add_flag("--greedy", a.greedy, "Always pick the most likely token");
  cmd->add_option("--temp", a.temp, "Temperature")->check(CLI::Range(0.0, 5.0))->capture_default_str();
  cmd->add_option("--top-p", a.top_p, "Nucleus sampling mass")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  cmd->add_option("--top-k", a.top_k, "Keep the k most likely tokens (0: off)")->check(CLI::Range(0, 1 << 24))->capture_default_str();
  cmd->add_option("--min-p", a.min_p, "Drop tokens below min-p × the top probability")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  cmd->add_option("--repeat-penalty", a.repeat_penalty, "Penalty for recently used tokens (1: off)")->check(CLI::Range(0.01, 10.0))->capture_default_str();
  cmd->add_option("--seed", a.seed, "Random seed (sampling is reproducible per seed)")->capture_default_str();
  cmd->add_option("--kv-type", a.kv_type, "KV cache element type")->check(CLI::IsMember({"f16", "f32"}))->capture_default_str();
  cmd->add_flag("--chat", a.chat, "Wrap the prompt in the model's chat template (ChatML for Qwen)");
  cmd->add_flag("--json", a.json, "Print one JSON object {prompt_tokens, tokens, text} at the end");
  cmd->callback([&ctx] { ctx.exit_code = Run(a); });
}

CommandRegistration reg{"generate", 20, Setup};

}  // namespace
}  // namespace cllm::app
