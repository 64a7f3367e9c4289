// chat_output_plan.h — what a chat request's reply is parsed for.
//
// Built once per served model from its chat template's source: the family's
// output format (chat_output.h) and which of its markers the vocabulary
// holds as control tokens. Per request, Plan decides from the request's
// tools and tool_choice, and from the rendered prompt (a prompt that opens
// <think> makes the reply start as reasoning), how ChatOutputParser runs.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "engine/grammar/json_constraint.h"
#include "engine/model/sampler.h"
#include "engine/tokenizer/tokenizer.h"
#include "server/chat_output.h"
#include "server/openai_api.h"

namespace cllm::server {

class ChatOutputPlanner {
 public:
  ChatOutputPlanner() = default;  // the plain format: no tools, no reasoning
  ChatOutputPlanner(std::string_view template_source, const engine::Tokenizer& tok);

  // Plan returns the parser options for `req`, or kBadRequest when it asks
  // for tool calls that this template cannot render or we cannot parse, or
  // for a tool_choice we cannot enforce.
  ApiResult<OutputParserOptions> Plan(const CompletionRequest& req, std::string_view prompt_text) const;

  // ToolChoiceConstraint returns, for tool_choice "required" or a named
  // function, the constraint that makes the reply one call of the family's
  // syntax (prefix + {"name", "arguments"} object + suffix, through the
  // grammar library); null for auto/none. A tool whose parameters schema the
  // grammar does not support is called with any JSON object as arguments.
  ApiResult<std::shared_ptr<engine::TokenConstraint>> ToolChoiceConstraint(const CompletionRequest& req,
                                                                          const engine::Tokenizer& tok) const;

  // RendersTools says whether the request's tools go to the template:
  // not with tool_choice "none" (the model is not told of tools it may not
  // call, as llama-server does).
  static bool RendersTools(const CompletionRequest& req);

  const OutputFormat& format() const { return format_; }
  const std::unordered_map<engine::TokenId, std::string>& marker_tokens() const { return markers_; }

 private:
  OutputFormat format_;
  std::unordered_map<engine::TokenId, std::string> markers_;
  // The vocabulary index forced tool calls walk, built at the first and kept
  // (VocabIndex::For holds it weakly and hashes the whole vocabulary at each
  // call: without this, each such request could build it anew).
  struct VocabPin {
    std::once_flag once;
    std::shared_ptr<const engine::grammar::VocabIndex> index;
  };
  std::shared_ptr<VocabPin> vocab_ = std::make_shared<VocabPin>();
};

}  // namespace cllm::server
