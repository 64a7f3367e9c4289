// json_guard.h — a pre-parse check for untrusted JSON.
//
// nlohmann::json parses recursively with no depth limit: a body of a million
// '[' would exhaust the stack. Every parse of untrusted JSON (API requests,
// policies, collateral, evidence bundles) first checks the nesting depth here.
#pragma once

#include <cstddef>
#include <string_view>

namespace cllm {

inline constexpr size_t kMaxJsonDepth = 64;

// JsonDepthWithin reports whether arrays/objects in `text` nest at most
// `max_depth` deep (brackets inside strings are ignored). It does not
// validate the JSON otherwise.
bool JsonDepthWithin(std::string_view text, size_t max_depth = kMaxJsonDepth);

}  // namespace cllm
