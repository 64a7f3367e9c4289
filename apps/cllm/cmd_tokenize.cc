// `cllm tokenize -m FILE TEXT [--json] [--no-special] [--no-parse-special]`:
// the token ids (and pieces) the model's tokenizer gives for TEXT.
#include <nlohmann/json.hpp>

#include <cstdio>

#include "apps/cllm/command.h"
#include "engine/gguf/gguf.h"
#include "engine/tokenizer/tokenizer.h"

namespace cllm::app {
namespace {

int Run(const std::string& model, const std::string& text, bool json, bool add_special, bool parse_special) {
  auto f = engine::GgufFile::Open(model);
  if (!f.ok()) return Fail(model + ": " + engine::GgufErrcName(f.code()) + ": " + f.detail());
  auto tok = engine::Tokenizer::FromGguf(*f);
  if (!tok.ok()) return Fail(model + ": " + engine::TokenizerErrcName(tok.code()) + ": " + tok.detail());
  auto ids = (*tok)->Encode(text, add_special, parse_special);
  if (json) {
    nlohmann::json pieces = nlohmann::json::array();
    for (auto id : ids) pieces.push_back((*tok)->TokenToPiece(id, true));
    nlohmann::json j = {{"tokens", ids}, {"pieces", pieces}};
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  for (auto id : ids) {
    std::string piece = nlohmann::json((*tok)->TokenToPiece(id, true)).dump(-1, ' ', false,
                                                                            nlohmann::json::error_handler_t::replace);
    std::printf("%d\t%s\n", id, piece.c_str());
  }
  return 0;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  auto* cmd = app.add_subcommand("tokenize", "Show the token ids a model's tokenizer gives for a text");
  static std::string model, text;
  static bool json = false, no_special = false, no_parse = false;
  cmd->add_option("-m,--model", model, "GGUF file with a tokenizer")->required()->check(CLI::ExistingFile);
  cmd->add_option("text", text, "Text to tokenize")->required();
  cmd->add_flag("--json", json, "Print {\"tokens\": [...], \"pieces\": [...]}");
  cmd->add_flag("--no-special", no_special, "Do not add BOS/EOS");
  cmd->add_flag("--no-parse-special", no_parse, "Treat special-token texts as plain text");
  cmd->callback([&ctx] { ctx.exit_code = Run(model, text, json, !no_special, !no_parse); });
}

CommandRegistration reg{"tokenize", 30, Setup};

}  // namespace
}  // namespace cllm::app
