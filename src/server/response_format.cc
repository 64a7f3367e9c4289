#include "server/response_format.h"

#include "engine/grammar/json_schema.h"

namespace cllm::server {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

ApiError Bad(const std::string& message) {
  return MakeError(ApiErrc::kBadRequest, "'response_format" + message);
}

// OrderedSchema re-reads response_format.json_schema.schema from the body
// with its keys in the text's order (properties are produced in that order).
ordered_json OrderedSchema(std::string_view body) {
  ordered_json j = ordered_json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return nullptr;
  auto rf = j.find("response_format");
  if (rf == j.end() || !rf->is_object()) return nullptr;
  auto js = rf->find("json_schema");
  if (js == rf->end() || !js->is_object()) return nullptr;
  auto s = js->find("schema");
  return s == js->end() ? ordered_json(nullptr) : *s;
}

}  // namespace

ApiResult<Ok> ParseResponseFormat(const json& v, std::string_view body, CompletionRequest* req) {
  if (v.is_null()) return Ok{};
  if (!v.is_object()) return Bad("' must be an object");
  auto type = v.find("type");
  if (type == v.end() || !type->is_string()) return Bad(".type' is required: text, json_object or json_schema");
  const std::string t = type->get<std::string>();
  for (const auto& [key, val] : v.items()) {
    if (key != "type" && !(t == "json_schema" && key == "json_schema")) return Bad("." + key + "' is not supported");
  }
  if (t == "text") return Ok{};
  ordered_json schema;
  if (t == "json_object") {
    schema = {{"type", "object"}};
  } else if (t == "json_schema") {
    auto js = v.find("json_schema");
    if (js == v.end() || !js->is_object()) return Bad(".json_schema' must be an object");
    for (const auto& [key, val] : js->items()) {
      if (key == "name") {
        if (!val.is_string() || val.get<std::string>().empty() || val.get<std::string>().size() > 64) {
          return Bad(".json_schema.name' must be a string of 1 to 64 characters");
        }
      } else if (key == "description") {
        if (!val.is_string()) return Bad(".json_schema.description' must be a string");
      } else if (key == "strict") {
        if (!val.is_boolean() && !val.is_null()) return Bad(".json_schema.strict' must be a boolean");
      } else if (key == "schema") {
        if (!val.is_object()) return Bad(".json_schema.schema' must be an object");
      } else {
        return Bad(".json_schema." + key.substr(0, 64) + "' is not supported");
      }
    }
    if (!js->contains("name")) return Bad(".json_schema.name' is required");
    // Without a schema the output is any JSON object, as with json_object.
    schema = js->contains("schema") ? OrderedSchema(body) : ordered_json{{"type", "object"}};
    if (!schema.is_object()) return Bad(".json_schema.schema' must be an object");
    if (schema.dump(-1, ' ', false, json::error_handler_t::replace).size() > kMaxResponseSchemaBytes) {
      return Bad(".json_schema.schema' is over " + std::to_string(kMaxResponseSchemaBytes) + " bytes");
    }
  } else {
    return Bad(".type' must be text, json_object or json_schema");
  }
  auto compiled = engine::grammar::CompileJsonSchema(schema);
  if (!compiled.ok()) return Bad("': " + compiled.detail());
  req->response_format = v;
  req->response_schema = std::move(schema);
  return Ok{};
}

}  // namespace cllm::server
