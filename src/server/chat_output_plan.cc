#include "server/chat_output_plan.h"

#include "engine/grammar/json_constraint.h"
#include "server/tools_request.h"

namespace cllm::server {

ChatOutputPlanner::ChatOutputPlanner(std::string_view template_source, const engine::Tokenizer& tok)
    : format_(DetectOutputFormat(template_source)) {
  std::vector<std::string_view> markers = ToolMarkers(format_.tools);
  if (format_.think_tags) {
    markers.push_back("<think>");
    markers.push_back("</think>");
  }
  for (std::string_view m : markers) {
    auto ids = tok.Encode(m, /*add_special=*/false, /*parse_special=*/true);
    if (ids.size() == 1 && tok.GetTokenType(ids[0]) == engine::TokenType::kControl) markers_[ids[0]] = std::string(m);
  }
}

bool ChatOutputPlanner::RendersTools(const CompletionRequest& req) {
  return !req.tools.is_null() && ToolChoiceMode(req.tool_choice) != "none";
}

ApiResult<OutputParserOptions> ChatOutputPlanner::Plan(const CompletionRequest& req,
                                                       std::string_view prompt_text) const {
  OutputParserOptions o;
  o.format = format_;
  o.starts_in_reasoning = format_.think_tags && PromptOpensReasoning(prompt_text);
  if (!RendersTools(req)) return o;
  switch (format_.tools) {
    case ToolCallFormat::kNone:
      return MakeError(ApiErrc::kBadRequest, "'tools': this model's chat template does not render tools");
    case ToolCallFormat::kUnsupported:
      return MakeError(ApiErrc::kBadRequest,
                       "'tools': this model's tool-call format is not supported (supported: Hermes/Qwen "
                       "<tool_call>, Llama 3.1 JSON, Mistral [TOOL_CALLS], Granite <|tool_call|>, GLM)");
    default: break;
  }
  o.parse_tools = true;
  if (!req.parallel_tool_calls) o.max_tool_calls = 1;
  return o;
}

namespace {

using nlohmann::ordered_json;

// CallSchema is the JSON schema of one call of `tool` in the family's key
// names; `any_arguments` replaces the tool's parameters by any object.
ordered_json CallSchema(const nlohmann::json& tool, ToolCallFormat f, bool any_arguments) {
  const auto& fn = tool["function"];
  ordered_json args = ordered_json{{"type", "object"}};
  if (!any_arguments && fn.contains("parameters")) args = ordered_json::parse(fn["parameters"].dump());
  ordered_json props;
  props["name"] = {{"const", fn["name"].get<std::string>()}};
  props[f == ToolCallFormat::kLlama3 ? "parameters" : "arguments"] = std::move(args);
  return {{"type", "object"},
          {"properties", std::move(props)},
          {"required", {"name", f == ToolCallFormat::kLlama3 ? "parameters" : "arguments"}}};
}

}  // namespace

ApiResult<std::shared_ptr<engine::TokenConstraint>> ChatOutputPlanner::ToolChoiceConstraint(
    const CompletionRequest& req, const engine::Tokenizer& tok) const {
  std::string name;
  const std::string mode = ToolChoiceMode(req.tool_choice, &name);
  if (mode != "required" && mode != "function") return std::shared_ptr<engine::TokenConstraint>();
  std::string prefix, suffix;
  switch (format_.tools) {
    case ToolCallFormat::kHermes: prefix = "<tool_call>\n", suffix = "\n</tool_call>"; break;
    case ToolCallFormat::kLlama3: break;  // the whole reply is the call's JSON
    case ToolCallFormat::kMistral: prefix = "[TOOL_CALLS][", suffix = "]"; break;
    case ToolCallFormat::kGranite: prefix = "<|tool_call|>[", suffix = "]"; break;
    default:
      // GLM's calls are not JSON: no schema describes them.
      return MakeError(ApiErrc::kBadRequest, std::string("'tool_choice': \"") + mode +
                                                 "\" is not supported for this model's tool-call format (" +
                                                 ToolCallFormatName(format_.tools) + ")");
  }
  for (bool any_arguments : {false, true}) {
    ordered_json alts = ordered_json::array();
    for (const auto& tool : req.tools) {
      if (mode == "required" || tool["function"]["name"] == name) alts.push_back(CallSchema(tool, format_.tools, any_arguments));
    }
    ordered_json schema = alts.size() == 1 ? alts[0] : ordered_json{{"anyOf", std::move(alts)}};
    auto g = engine::grammar::CompileJsonSchema(schema, prefix, suffix);
    if (!g.ok()) continue;
    // The index is built once and kept here (VocabIndex::For holds it only
    // weakly and hashes the whole vocabulary at each call).
    std::call_once(vocab_->once, [&] { vocab_->index = engine::grammar::VocabIndex::For(tok); });
    return std::make_shared<engine::grammar::JsonGrammar>(std::move(g).value(), vocab_->index)->NewConstraint();
  }
  return MakeError(ApiErrc::kBadRequest, "'tool_choice': the tools' names cannot be constrained");
}

}  // namespace cllm::server
