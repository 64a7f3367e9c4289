// tools_request.h — the request fields of tool calling: `tools`,
// `tool_choice`, `parallel_tool_calls`.
//
// Tools are untrusted JSON that the chat template renders into the prompt:
// each is validated for shape (OpenAI's {"type":"function","function":{…}}),
// name syntax and count, and unknown keys are refused as elsewhere in the
// request. The function's JSON schema (`parameters`) must be an object; its
// contents are the template's to render, not ours to interpret.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "server/openai_api.h"

namespace cllm::server {

inline constexpr size_t kMaxTools = 128;
inline constexpr size_t kMaxToolBytes = 32 * 1024;  // one tool, as JSON text

// ParseToolsField handles the `tools`, `tool_choice` and
// `parallel_tool_calls` fields of a request into `req`; any other key is a
// bug of the caller (kInternal). kBadRequest names the field on failure.
Status<ApiErrc> ParseToolsField(const std::string& key, const nlohmann::json& v, CompletionRequest& req);

// CheckToolChoice runs once all fields are read: a tool_choice that needs
// tools (required, or a named function) must have them, by that name; tools
// are for the chat endpoint only.
Status<ApiErrc> CheckToolChoice(const CompletionRequest& req);

// ToolChoiceMode reads a validated tool_choice: "none", "auto" (also when
// absent), "required", or "function" (then `out_name` is the function).
std::string ToolChoiceMode(const nlohmann::json& tool_choice, std::string* out_name = nullptr);

}  // namespace cllm::server
