// value.h — the values a template computes with, as Python's jinja2 sees them.
//
// Undefined, None, bool, int, float, str, list, dict, namespace and
// callables (macros, methods, globals). Lists and dicts are immutable once
// built (the sandbox forbids mutating them); only namespaces change.
//
// Strings carry provenance: the byte spans of a Str that came from the
// template itself (its literal text and string literals) are recorded in
// `tmpl`. Concatenation shifts the spans, slicing clips them, and a filter
// that rewrites text keeps them only where the bytes are unchanged. The
// rendered output is one Str; its template spans are the only text that may
// become control tokens.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace cllm::jinja {

// Span is the byte range [begin, end) of a string.
struct Span {
  size_t begin = 0;
  size_t end = 0;
  bool operator==(const Span&) const = default;
};

// Str is text plus the (sorted, disjoint, non-adjacent) spans of it that
// came from the template.
struct Str {
  std::string s;
  std::vector<Span> tmpl;

  static Str Data(std::string text) { return Str{std::move(text), {}}; }
  static Str Template(std::string text);

  void Append(const Str& o);
  void AppendData(std::string_view t) { s.append(t); }
  void AppendTemplate(std::string_view t);
  // Slice returns bytes [b, e) with the spans clipped to them.
  Str Slice(size_t b, size_t e) const;
  // AllTemplate: every byte came from the template (true for "").
  bool AllTemplate() const;
};

class Interp;
struct Value;

// CallArgs are the positional and keyword arguments of a call.
struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
};

// Callable is a macro, a bound method or a global function.
struct Callable {
  std::string name;
  std::function<Value(Interp&, CallArgs&)> fn;
};

struct Dict;

enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kCallable };

struct Value {
  Kind kind = Kind::kUndefined;
  bool b = false;
  int64_t i = 0;               // kInt; kList and kDict: their nesting depth (bounded)
  double f = 0;
  std::shared_ptr<const Str> str;
  std::shared_ptr<const std::vector<Value>> list;
  std::shared_ptr<Dict> dict;  // kDict (treated as immutable) and kNamespace
  std::shared_ptr<const Callable> call;
  std::string hint;            // kUndefined: what was looked up, for messages

  static Value Undefined(std::string hint = "") {
    Value v;
    v.hint = std::move(hint);
    return v;
  }
  static Value None() { return Of(Kind::kNone); }
  static Value Bool(bool x) {
    Value v = Of(Kind::kBool);
    v.b = x;
    return v;
  }
  static Value Int(int64_t x) {
    Value v = Of(Kind::kInt);
    v.i = x;
    return v;
  }
  static Value Float(double x) {
    Value v = Of(Kind::kFloat);
    v.f = x;
    return v;
  }
  static Value String(Str s);
  static Value DataString(std::string s) { return String(Str::Data(std::move(s))); }
  static Value List(std::vector<Value> items);
  static Value MakeDict(std::shared_ptr<Dict> d);
  static Value Namespace(std::shared_ptr<Dict> d);
  static Value Function(std::string name, std::function<Value(Interp&, CallArgs&)> fn);

  bool is_undefined() const { return kind == Kind::kUndefined; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_number() const { return kind == Kind::kInt || kind == Kind::kFloat || kind == Kind::kBool; }
  bool is_mapping() const { return kind == Kind::kDict; }

 private:
  static Value Of(Kind k) {
    Value v;
    v.kind = k;
    return v;
  }
};

// Dict keeps Python's insertion order; keys are strings.
struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  std::unordered_map<std::string, size_t> index;

  const Value* Find(std::string_view key) const;
  void Set(const std::string& key, Value v);
};

// TypeName is Python's name for a value's type ("str", "dict", ...).
const char* TypeName(const Value& v);
// Truthy is Python's bool(v).
bool Truthy(const Value& v);
// ToStr is Python's str(v) (Undefined prints ""); string values keep their spans.
Str ToStr(const Value& v);
// Repr is Python's repr(v).
std::string Repr(const Value& v);
// FloatRepr is Python's repr(float).
std::string FloatRepr(double d);
// Equal is Python's ==.
bool Equal(const Value& a, const Value& b);

// Utf8 helpers: Python indexes strings by code point.
size_t CodePointCount(std::string_view s);
// CodePointOffsets returns the byte offset of each code point, plus s.size().
std::vector<size_t> CodePointOffsets(std::string_view s);

}  // namespace cllm::jinja
