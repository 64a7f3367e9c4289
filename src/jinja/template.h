// template.h — cllm's Jinja renderer: the subset of jinja2 that real chat
// templates use, rendered as Hugging Face transformers renders them
// (sandboxed, trim_blocks, lstrip_blocks, loop controls, raise_exception,
// strftime_now, tojson without ASCII escaping).
//
// Templates are untrusted (they come from model files): Parse and Render
// never abort and never throw; every failure is a JinjaErrc with the
// template's line:column, and Limits bound the work and memory of both.
//
//   auto t = jinja::Template::Parse(source);
//   jinja::Variables vars;
//   vars.Set("messages", jinja::FromJson(messages_json));
//   auto out = (*t)->Render(vars, {});   // out->text, out->template_spans
#pragma once

#include <nlohmann/json.hpp>

#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "jinja/error.h"
#include "jinja/value.h"

namespace cllm::jinja {

struct Limits;
struct Stmt;

template <typename T>
using JinjaResult = Result<T, JinjaErrc>;

// Variables are the names a render sees (besides the globals).
class Variables {
 public:
  void Set(std::string name, Value v) { vars_.emplace_back(std::move(name), std::move(v)); }
  const std::vector<std::pair<std::string, Value>>& all() const { return vars_; }

 private:
  std::vector<std::pair<std::string, Value>> vars_;
};

// FromJson converts JSON (the messages, tools, kwargs: data, never template
// text) into a value; objects keep the JSON's key order. Nesting deeper than
// 128 levels becomes an error at render (kLimit).
template <typename Json>
Value FromJson(const Json& j, int depth = 0);

// Rendered is the output and the spans of it written by the template itself.
struct Rendered {
  std::string text;
  std::vector<Span> template_spans;  // sorted, disjoint
};

struct RenderOptions {
  // strftime_now(format): the clock is injected; UtcClock gives the real one.
  std::function<std::string(const std::string&)> strftime_now;
};

// StrftimeAt formats with C strftime at `t` (UTC), for strftime_now.
std::function<std::string(const std::string&)> StrftimeAt(std::time_t t);

class Template {
 public:
  ~Template();
  // Parse parses a template; kSyntax (or kLimit) with line:column on failure.
  static JinjaResult<std::shared_ptr<const Template>> Parse(std::string_view source);
  static JinjaResult<std::shared_ptr<const Template>> Parse(std::string_view source, const Limits& limits);

  // Render renders with `vars`: kRender (a type error, an undefined value
  // used), kRaised (raise_exception; the detail is "line:col: message") or
  // kLimit on failure.
  JinjaResult<Rendered> Render(const Variables& vars, const RenderOptions& options) const;

 private:
  Template();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// --- FromJson ---------------------------------------------------------------------

Value JsonDict(std::shared_ptr<Dict> d, int64_t depth);
Value JsonList(std::vector<Value> items, int64_t depth);

template <typename Json>
Value FromJson(const Json& j, int depth) {
  if (depth > 128) return Value::Undefined("'input nests too deeply'");
  switch (j.type()) {
    case Json::value_t::null: return Value::None();
    case Json::value_t::boolean: return Value::Bool(j.template get<bool>());
    case Json::value_t::number_integer: return Value::Int(j.template get<int64_t>());
    case Json::value_t::number_unsigned: {
      uint64_t u = j.template get<uint64_t>();
      return u > static_cast<uint64_t>(INT64_MAX) ? Value::Float(static_cast<double>(u))
                                                  : Value::Int(static_cast<int64_t>(u));
    }
    case Json::value_t::number_float: return Value::Float(j.template get<double>());
    case Json::value_t::string: return Value::DataString(j.template get<std::string>());
    case Json::value_t::array: {
      std::vector<Value> items;
      int64_t d = 0;
      for (const auto& x : j) {
        items.push_back(FromJson(x, depth + 1));
        if (items.back().kind == Kind::kList || items.back().kind == Kind::kDict) d = std::max(d, items.back().i);
      }
      return JsonList(std::move(items), d + 1);
    }
    case Json::value_t::object: {
      auto dict = std::make_shared<Dict>();
      int64_t d = 0;
      for (const auto& [k, x] : j.items()) {
        Value v = FromJson(x, depth + 1);
        if (v.kind == Kind::kList || v.kind == Kind::kDict) d = std::max(d, v.i);
        dict->Set(k, std::move(v));
      }
      return JsonDict(std::move(dict), d + 1);
    }
    default: return Value::None();  // binary, discarded: not in request JSON
  }
}

}  // namespace cllm::jinja
