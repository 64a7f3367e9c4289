// response_format.h — OpenAI's `response_format` request field (structured
// output): {"type":"text"} | {"type":"json_object"} |
// {"type":"json_schema","json_schema":{"name","schema","strict","description"}}.
//
// The schema is compiled here once to validate it (unsupported keywords,
// invalid schemas and schemas over the limits are a 400 naming
// response_format and the keyword); the service compiles it against the
// model's vocabulary (engine/grammar) to constrain sampling.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "server/openai_api.h"

namespace cllm::server {

inline constexpr size_t kMaxResponseSchemaBytes = 64 * 1024;  // the schema's JSON text

// ParseResponseFormat validates `v` (the request's response_format) and sets
// req->response_format (null for "text") and req->response_schema (the
// schema in the order of the request's text, re-read from `body` because
// nlohmann::json sorts object keys; {"type":"object"} for json_object).
// kBadRequest on failure.
ApiResult<Ok> ParseResponseFormat(const nlohmann::json& v, std::string_view body, CompletionRequest* req);

}  // namespace cllm::server
