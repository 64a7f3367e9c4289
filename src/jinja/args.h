// args.h — reading the arguments of a filter, test, method or global.
#pragma once

#include <optional>
#include <string>

#include "jinja/error.h"
#include "jinja/value.h"

namespace cllm::jinja {

// Arg returns argument `pos` (positional) or `name` (keyword), or null.
inline const Value* Arg(const CallArgs& a, size_t pos, const char* name) {
  if (pos < a.args.size()) return &a.args[pos];
  for (const auto& [k, v] : a.kwargs) {
    if (k == name) return &v;
  }
  return nullptr;
}

inline std::optional<std::string> OptString(const CallArgs& a, size_t pos, const char* name) {
  const Value* v = Arg(a, pos, name);
  if (v == nullptr || v->kind == Kind::kNone) return std::nullopt;
  if (!v->is_string()) Fail(JinjaErrc::kRender, std::string("argument '") + name + "' must be a string");
  return v->str->s;
}

inline int64_t OptInt(const CallArgs& a, size_t pos, const char* name, int64_t dflt) {
  const Value* v = Arg(a, pos, name);
  if (v == nullptr || v->kind == Kind::kNone) return dflt;
  if (v->kind == Kind::kBool) return v->b;
  if (v->kind != Kind::kInt) Fail(JinjaErrc::kRender, std::string("argument '") + name + "' must be an integer");
  return v->i;
}

inline bool OptBool(const CallArgs& a, size_t pos, const char* name, bool dflt) {
  const Value* v = Arg(a, pos, name);
  return v == nullptr ? dflt : Truthy(*v);
}

}  // namespace cllm::jinja
