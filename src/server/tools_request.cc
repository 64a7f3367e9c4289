#include "server/tools_request.h"

#include <set>

namespace cllm::server {
namespace {

using nlohmann::json;

ApiError Bad(std::string message) { return MakeError(ApiErrc::kBadRequest, std::move(message)); }

// OpenAI's rule for function names: [a-zA-Z0-9_-]{1,64}.
bool ValidFunctionName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Status<ApiErrc> CheckTool(const json& tool, const std::string& where, std::set<std::string>& names) {
  if (!tool.is_object()) return Bad("'" + where + "' must be an object");
  for (const auto& [key, v] : tool.items()) {
    if (key != "type" && key != "function") return Bad("unknown field '" + where + "." + key + "'");
  }
  auto type = tool.find("type");
  if (type == tool.end() || !type->is_string() || type->get_ref<const std::string&>() != "function") {
    return Bad("'" + where + ".type' must be \"function\"");
  }
  auto fn = tool.find("function");
  if (fn == tool.end() || !fn->is_object()) return Bad("'" + where + ".function' must be an object");
  for (const auto& [key, v] : fn->items()) {
    if (key == "name") {
      if (!v.is_string() || !ValidFunctionName(v.get<std::string>())) {
        return Bad("'" + where + ".function.name' must be 1 to 64 of a-z, A-Z, 0-9, _ and -");
      }
    } else if (key == "description") {
      if (!v.is_string()) return Bad("'" + where + ".function.description' must be a string");
    } else if (key == "parameters") {
      if (!v.is_object()) return Bad("'" + where + ".function.parameters' must be a JSON schema object");
    } else if (key == "strict") {
      if (!v.is_boolean() && !v.is_null()) return Bad("'" + where + ".function.strict' must be a boolean");
    } else {
      return Bad("unknown field '" + where + ".function." + key + "'");
    }
  }
  auto name = fn->find("name");
  if (name == fn->end()) return Bad("'" + where + ".function.name' is required");
  if (!names.insert(name->get<std::string>()).second) {
    return Bad("'" + where + ".function.name' repeats the name of an earlier tool");
  }
  // dump() cannot throw here: the body was parsed from valid UTF-8.
  if (tool.dump().size() > kMaxToolBytes) {
    return Bad("'" + where + "' is over " + std::to_string(kMaxToolBytes) + " bytes");
  }
  return OkStatus();
}

Status<ApiErrc> CheckToolChoiceShape(const json& v) {
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (s == "none" || s == "auto" || s == "required") return OkStatus();
  } else if (v.is_object()) {
    auto type = v.find("type");
    auto fn = v.find("function");
    if (v.size() == 2 && type != v.end() && type->is_string() && type->get_ref<const std::string&>() == "function" &&
        fn != v.end() && fn->is_object() && fn->size() == 1 && fn->contains("name") && (*fn)["name"].is_string()) {
      return OkStatus();
    }
  }
  return Bad("'tool_choice' must be \"none\", \"auto\", \"required\" or "
             "{\"type\": \"function\", \"function\": {\"name\": …}}");
}

}  // namespace

Status<ApiErrc> ParseToolsField(const std::string& key, const json& v, CompletionRequest& req) {
  if (key == "tools") {
    if (v.is_null()) return OkStatus();
    if (!v.is_array()) return Bad("'tools' must be an array");
    if (v.size() > kMaxTools) return Bad("at most " + std::to_string(kMaxTools) + " tools");
    std::set<std::string> names;
    for (size_t i = 0; i < v.size(); ++i) {
      CLLM_RETURN_IF_ERROR(CheckTool(v[i], "tools[" + std::to_string(i) + "]", names));
    }
    if (!v.empty()) req.tools = v;  // [] is no tools
    return OkStatus();
  }
  if (key == "tool_choice") {
    if (v.is_null()) return OkStatus();
    CLLM_RETURN_IF_ERROR(CheckToolChoiceShape(v));
    req.tool_choice = v;
    return OkStatus();
  }
  if (key == "parallel_tool_calls") {
    if (v.is_null()) return OkStatus();
    if (!v.is_boolean()) return Bad("'parallel_tool_calls' must be a boolean");
    req.parallel_tool_calls = v.get<bool>();
    return OkStatus();
  }
  return MakeError(ApiErrc::kInternal, "not a tools field: " + key);
}

Status<ApiErrc> CheckToolChoice(const CompletionRequest& req) {
  if (!req.chat && (!req.tools.is_null() || !req.tool_choice.is_null())) {
    return Bad("'tools' and 'tool_choice' are for /v1/chat/completions");
  }
  std::string name;
  const std::string mode = ToolChoiceMode(req.tool_choice, &name);
  if (mode == "required" && req.tools.is_null()) return Bad("'tool_choice' \"required\" needs 'tools'");
  if (mode == "function") {
    bool found = false;
    if (req.tools.is_array()) {
      for (const auto& t : req.tools) found = found || t["function"]["name"] == name;
    }
    if (!found) return Bad("'tool_choice' names a function that is not in 'tools'");
  }
  return OkStatus();
}

std::string ToolChoiceMode(const json& tool_choice, std::string* out_name) {
  if (tool_choice.is_string()) return tool_choice.get<std::string>();
  if (tool_choice.is_object()) {
    if (out_name) *out_name = tool_choice["function"]["name"].get<std::string>();
    return "function";
  }
  return "auto";
}

}  // namespace cllm::server
