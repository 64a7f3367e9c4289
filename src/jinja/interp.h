// interp.h — the evaluator: runs a parsed template against its variables.
//
// Scopes follow jinja2: a for-loop body, a macro call and a with block get
// their own scope; `if` does not. A macro sees the template's top-level
// variables (as they are when it is called) and its own parameters.
// Every step, loop iteration, byte of output and level of macro recursion
// is counted against Limits; over any of them rendering stops with kLimit.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "jinja/ast.h"
#include "jinja/value.h"

namespace cllm::jinja {

struct Limits {
  size_t max_output_bytes = 8u << 20;    // any string the template builds, the output included
  uint64_t max_steps = 20'000'000;       // expression and statement evaluations
  uint64_t max_iterations = 2'000'000;   // loop iterations in all
  int max_call_depth = 16;               // nested macro calls
  int max_nesting = 128;                 // depth of the parsed tree (statements and expressions)
  size_t max_tokens = 1'000'000;         // tokens in the template source
  int max_value_depth = 128;             // nesting of lists and dicts the template builds
};

struct Scope {
  std::unordered_map<std::string, Value> vars;
  Scope* parent = nullptr;
};

class Interp {
 public:
  Interp(const Limits& limits, std::function<std::string(const std::string&)> strftime_now);
  ~Interp();

  // Render runs `body` with `root` as the top-level scope.
  Str Render(const Body& body, Scope* root);

  // --- used by builtins ---------------------------------------------------------
  Value CallValue(const Value& fn, CallArgs& args);
  Value ApplyFilter(const std::string& name, Value v, CallArgs& args);
  bool ApplyTest(const std::string& name, const Value& v, CallArgs& args);
  Value GetAttr(const Value& obj, const std::string& name);
  Value GetItem(const Value& obj, const Value& key);
  void CheckSize(size_t bytes) const;
  void Step();
  void CountIteration();
  // Iterate lists the items of an iterable (a dict gives its keys).
  std::vector<Value> Iterate(const Value& v);
  Value MakeList(std::vector<Value> items) const;
  Value MakeDict(std::shared_ptr<Dict> d) const;
  Value NewNamespace(std::shared_ptr<Dict> d);
  const std::function<std::string(const std::string&)>& strftime_now() const { return strftime_now_; }

 private:
  enum class Flow { kNormal, kBreak, kContinue };
  Flow ExecBody(const Body& body, Scope* scope);
  Flow Exec(const Stmt& s, Scope* scope);
  void ExecFor(const Stmt& s, Scope* scope, Flow* flow);
  Value Eval(const Expr& e, Scope* scope);
  Value EvalBinary(const Expr& e, Scope* scope);
  bool EvalCompare(const std::string& op, const Value& a, const Value& b);
  Value Lookup(const std::string& name, Scope* scope) const;
  void Assign(const std::vector<std::string>& targets, const Value& v, Scope* scope);
  Value MakeMacro(const Stmt& s, const Body* caller_body, Scope* caller_scope);
  void Emit(const Str& s);

  Limits limits_;
  std::function<std::string(const std::string&)> strftime_now_;
  Scope* root_ = nullptr;
  Str* out_ = nullptr;
  uint64_t steps_ = 0;
  uint64_t iterations_ = 0;
  int call_depth_ = 0;
  // Every namespace made while rendering: cleared at the end, so a
  // namespace holding itself (ns.me = ns) is not leaked.
  std::vector<std::shared_ptr<Dict>> namespaces_;
};

// Builtins (builtins.cc).
// Filter applies a named filter; unknown names fail with kRender.
Value Filter(Interp& in, const std::string& name, Value v, CallArgs& args);
bool Test(Interp& in, const std::string& name, const Value& v, CallArgs& args);
// Method returns the bound method `name` of a str/dict/list value, or Undefined.
Value Method(const Value& obj, const std::string& name);
// Globals: range, dict, namespace, raise_exception, strftime_now, joiner-free subset.
void AddGlobals(Scope* root);
// ToJson is Python's json.dumps(v, ensure_ascii, indent, separators, sort_keys).
std::string ToJson(const Value& v, int indent, bool ensure_ascii, const std::string& item_sep,
                   const std::string& key_sep, bool sort_keys);

}  // namespace cllm::jinja
