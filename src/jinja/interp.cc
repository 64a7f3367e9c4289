#include "jinja/interp.h"

#include <cmath>

#include "jinja/parser.h"

namespace cllm::jinja {
namespace {

std::string UndefinedMessage(const Value& v) {
  return v.hint.empty() ? "value is undefined" : v.hint.front() == '\'' ? v.hint : "'" + v.hint + "' is undefined";
}

[[noreturn]] void FailUndefined(const Value& v) { Fail(JinjaErrc::kRender, UndefinedMessage(v)); }

[[noreturn]] void FailOperands(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) FailUndefined(a);
  if (b.is_undefined()) FailUndefined(b);
  Fail(JinjaErrc::kRender, "unsupported operand type(s) for " + op + ": '" + TypeName(a) + "' and '" + TypeName(b) + "'");
}

double AsDouble(const Value& v) {
  return v.kind == Kind::kFloat ? v.f : static_cast<double>(v.kind == Kind::kBool ? v.b : v.i);
}
int64_t AsInt(const Value& v) { return v.kind == Kind::kBool ? v.b : v.i; }
bool IsIntLike(const Value& v) { return v.kind == Kind::kInt || v.kind == Kind::kBool; }

// RAII: restores the output target and the call depth.
struct OutputSwap {
  OutputSwap(Str** slot, Str* next) : slot_(slot), saved_(*slot) { *slot = next; }
  ~OutputSwap() { *slot_ = saved_; }
  Str** slot_;
  Str* saved_;
};

}  // namespace

Interp::Interp(const Limits& limits, std::function<std::string(const std::string&)> strftime_now)
    : limits_(limits), strftime_now_(std::move(strftime_now)) {}

Interp::~Interp() {
  // Break reference cycles through namespaces (ns.me = ns) before they go.
  std::vector<std::pair<std::string, Value>> graveyard;
  for (auto& ns : namespaces_) {
    for (auto& kv : ns->items) graveyard.push_back(std::move(kv));
    ns->items.clear();
    ns->index.clear();
  }
  graveyard.clear();
  namespaces_.clear();
}

Str Interp::Render(const Body& body, Scope* root) {
  root_ = root;
  Str out;
  OutputSwap swap(&out_, &out);
  ExecBody(body, root);
  return out;
}

// --- accounting ------------------------------------------------------------------

void Interp::Step() {
  if (++steps_ > limits_.max_steps) Fail(JinjaErrc::kLimit, "template takes too many steps");
}

void Interp::CountIteration() {
  if (++iterations_ > limits_.max_iterations) Fail(JinjaErrc::kLimit, "template loops too many times");
}

void Interp::CheckSize(size_t bytes) const {
  if (bytes > limits_.max_output_bytes) Fail(JinjaErrc::kLimit, "template output grows over the size limit");
}

void Interp::Emit(const Str& s) {
  CheckSize(out_->s.size() + s.s.size());
  out_->Append(s);
}

Value Interp::MakeList(std::vector<Value> items) const {
  CheckSize(items.size());
  for (const Value& v : items) {
    if ((v.kind == Kind::kList || v.kind == Kind::kDict) && v.i + 1 > limits_.max_value_depth) {
      Fail(JinjaErrc::kLimit, "lists and dicts nest too deeply");
    }
  }
  int64_t depth = 0;
  for (const Value& v : items) {
    if (v.kind == Kind::kList || v.kind == Kind::kDict) depth = std::max(depth, v.i);
  }
  Value out = Value::List(std::move(items));
  out.i = depth + 1;  // a list's `i` is its nesting depth
  return out;
}

Value Interp::MakeDict(std::shared_ptr<Dict> d) const {
  int64_t depth = 0;
  for (const auto& kv : d->items) {
    if (kv.second.kind == Kind::kList || kv.second.kind == Kind::kDict) depth = std::max(depth, kv.second.i);
  }
  if (depth + 1 > limits_.max_value_depth) Fail(JinjaErrc::kLimit, "lists and dicts nest too deeply");
  Value out = Value::MakeDict(std::move(d));
  out.i = depth + 1;
  return out;
}

Value Interp::NewNamespace(std::shared_ptr<Dict> d) {
  namespaces_.push_back(d);
  return Value::Namespace(std::move(d));
}

// --- statements ----------------------------------------------------------------------

Interp::Flow Interp::ExecBody(const Body& body, Scope* scope) {
  for (const auto& s : body) {
    Flow f = Exec(*s, scope);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

Interp::Flow Interp::Exec(const Stmt& s, Scope* scope) {
  Step();
  try {
    switch (s.kind) {
      case StmtKind::kText: {
        CheckSize(out_->s.size() + s.text.size());
        out_->AppendTemplate(s.text);
        return Flow::kNormal;
      }
      case StmtKind::kOutput: Emit(ToStr(Eval(*s.expr, scope))); return Flow::kNormal;
      case StmtKind::kIf: {
        for (const auto& [cond, body] : s.branches) {
          if (Truthy(Eval(*cond, scope))) return ExecBody(body, scope);
        }
        return ExecBody(s.else_body, scope);
      }
      case StmtKind::kFor: {
        Flow f = Flow::kNormal;
        ExecFor(s, scope, &f);
        return Flow::kNormal;
      }
      case StmtKind::kSet: {
        Value v = Eval(*s.expr, scope);
        if (!s.attr.empty()) {
          Value ns = Lookup(s.name, scope);
          if (ns.kind != Kind::kNamespace) Fail(JinjaErrc::kRender, "cannot assign attribute on non-namespace object");
          ns.dict->Set(s.attr, std::move(v));
        } else {
          Assign(s.targets, v, scope);
        }
        return Flow::kNormal;
      }
      case StmtKind::kSetBlock: {
        Str captured;
        {
          OutputSwap swap(&out_, &captured);
          ExecBody(s.body, scope);
        }
        scope->vars[s.name] = Value::String(std::move(captured));
        return Flow::kNormal;
      }
      case StmtKind::kMacro: scope->vars[s.name] = MakeMacro(s, nullptr, nullptr); return Flow::kNormal;
      case StmtKind::kCallBlock: {
        // caller() renders the block's body where the call stands; it dies
        // with the block (a template may store it, but not call it later).
        auto alive = std::make_shared<bool>(true);
        Value caller = MakeMacro(s, &s.body, scope);
        Value wrapped = Value::Function("caller", [alive, caller](Interp& in, CallArgs& a) {
          if (!*alive) Fail(JinjaErrc::kRender, "caller() called outside its call block");
          return in.CallValue(caller, a);
        });
        const Expr& call = *s.expr;
        Value fn = Eval(*call.kids[0], scope);
        CallArgs args;
        for (size_t k = 1; k < call.kids.size(); ++k) args.args.push_back(Eval(*call.kids[k], scope));
        for (const auto& [key, e] : call.kwargs) args.kwargs.emplace_back(key, Eval(*e, scope));
        args.kwargs.emplace_back("caller", wrapped);
        Value r;
        try {
          r = CallValue(fn, args);
        } catch (...) {
          *alive = false;
          throw;
        }
        *alive = false;
        Emit(ToStr(r));
        return Flow::kNormal;
      }
      case StmtKind::kFilterBlock: {
        Str captured;
        {
          OutputSwap swap(&out_, &captured);
          ExecBody(s.body, scope);
        }
        Scope inner{{}, scope};
        inner.vars[kBodyVar] = Value::String(std::move(captured));
        Emit(ToStr(Eval(*s.expr, &inner)));
        return Flow::kNormal;
      }
      case StmtKind::kWith: {
        Scope inner{{}, scope};
        for (size_t k = 0; k < s.targets.size(); ++k) inner.vars[s.targets[k]] = Eval(*s.values[k], scope);
        return ExecBody(s.body, &inner);
      }
      case StmtKind::kBreak: return Flow::kBreak;
      case StmtKind::kContinue: return Flow::kContinue;
      case StmtKind::kScope: return ExecBody(s.body, scope);
    }
  } catch (Failure& f) {
    if (!f.has_pos) {
      f.pos = s.pos;
      f.has_pos = true;
    }
    throw;
  }
  return Flow::kNormal;
}

void Interp::ExecFor(const Stmt& s, Scope* scope, Flow* flow) {
  std::vector<Value> items = Iterate(Eval(*s.expr, scope));
  if (s.cond) {
    std::vector<Value> kept;
    for (auto& item : items) {
      CountIteration();
      Scope probe{{}, scope};
      Assign(s.targets, item, &probe);
      if (Truthy(Eval(*s.cond, &probe))) kept.push_back(std::move(item));
    }
    items.swap(kept);
  }
  if (items.empty()) {
    *flow = ExecBody(s.else_body, scope);
    return;
  }
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t k = 0; k < n; ++k) {
    CountIteration();
    Scope iter{{}, scope};
    auto loop = std::make_shared<Dict>();
    loop->Set("index", Value::Int(k + 1));
    loop->Set("index0", Value::Int(k));
    loop->Set("revindex", Value::Int(n - k));
    loop->Set("revindex0", Value::Int(n - k - 1));
    loop->Set("first", Value::Bool(k == 0));
    loop->Set("last", Value::Bool(k == n - 1));
    loop->Set("length", Value::Int(n));
    loop->Set("depth", Value::Int(1));
    loop->Set("depth0", Value::Int(0));
    if (k > 0) loop->Set("previtem", items[static_cast<size_t>(k - 1)]);
    if (k + 1 < n) loop->Set("nextitem", items[static_cast<size_t>(k + 1)]);
    loop->Set("cycle", Value::Function("cycle", [k](Interp&, CallArgs& a) {
      if (a.args.empty()) Fail(JinjaErrc::kRender, "no items for cycling given");
      return a.args[static_cast<size_t>(k) % a.args.size()];
    }));
    iter.vars["loop"] = Value::MakeDict(loop);
    Assign(s.targets, items[static_cast<size_t>(k)], &iter);
    Flow f = ExecBody(s.body, &iter);
    if (f == Flow::kBreak) break;
  }
  *flow = Flow::kNormal;
}

void Interp::Assign(const std::vector<std::string>& targets, const Value& v, Scope* scope) {
  if (targets.size() == 1) {
    scope->vars[targets[0]] = v;
    return;
  }
  std::vector<Value> parts = Iterate(v);
  if (parts.size() != targets.size()) {
    Fail(JinjaErrc::kRender, parts.size() < targets.size() ? "not enough values to unpack" : "too many values to unpack");
  }
  for (size_t k = 0; k < targets.size(); ++k) scope->vars[targets[k]] = parts[k];
}

Value Interp::MakeMacro(const Stmt& s, const Body* caller_body, Scope* caller_scope) {
  const Stmt* def = &s;
  const Body* body = caller_body != nullptr ? caller_body : &s.body;
  std::string name = caller_body != nullptr ? "caller" : s.name;
  return Value::Function(name, [def, body, caller_scope, name](Interp& in, CallArgs& a) {
    if (in.call_depth_ >= in.limits_.max_call_depth) Fail(JinjaErrc::kLimit, "macros recurse too deeply");
    ++in.call_depth_;
    struct Depth {
      Interp* in;
      ~Depth() { --in->call_depth_; }
    } depth{&in};
    // A macro sees the top-level scope; a call block's body, its own place.
    Scope scope{{}, caller_scope != nullptr ? caller_scope : in.root_};
    const auto& params = def->params;
    if (a.args.size() > params.size()) {
      Fail(JinjaErrc::kRender, "macro '" + name + "' takes not more than " + std::to_string(params.size()) +
                                   " argument(s)");
    }
    std::vector<bool> bound(params.size(), false);
    for (size_t k = 0; k < a.args.size(); ++k) {
      scope.vars[params[k].name] = a.args[k];
      bound[k] = true;
    }
    for (auto& [key, val] : a.kwargs) {
      size_t k = 0;
      while (k < params.size() && params[k].name != key) ++k;
      if (k == params.size()) {
        if (key == "caller") {
          scope.vars["caller"] = val;
          continue;
        }
        Fail(JinjaErrc::kRender, "macro '" + name + "' takes no keyword argument '" + key + "'");
      }
      if (bound[k]) Fail(JinjaErrc::kRender, "macro '" + name + "' got multiple values for argument '" + key + "'");
      scope.vars[key] = val;
      bound[k] = true;
    }
    for (size_t k = 0; k < params.size(); ++k) {
      if (bound[k]) continue;
      scope.vars[params[k].name] = params[k].default_value ? in.Eval(*params[k].default_value, &scope)
                                                           : Value::Undefined(params[k].name);
    }
    Str captured;
    {
      OutputSwap swap(&in.out_, &captured);
      in.ExecBody(*body, &scope);
    }
    return Value::String(std::move(captured));
  });
}

// --- expressions ---------------------------------------------------------------------

Value Interp::Lookup(const std::string& name, Scope* scope) const {
  for (Scope* s = scope; s != nullptr; s = s->parent) {
    auto it = s->vars.find(name);
    if (it != s->vars.end()) return it->second;
  }
  return Value::Undefined(name);
}

Value Interp::CallValue(const Value& fn, CallArgs& args) {
  if (fn.kind == Kind::kCallable) return fn.call->fn(*this, args);
  if (fn.is_undefined()) FailUndefined(fn);
  Fail(JinjaErrc::kRender, std::string("'") + TypeName(fn) + "' object is not callable");
}

Value Interp::GetAttr(const Value& obj, const std::string& name) {
  switch (obj.kind) {
    case Kind::kUndefined: FailUndefined(obj);
    case Kind::kDict: {
      Value m = Method(obj, name);
      if (!m.is_undefined()) return m;
      if (const Value* v = obj.dict->Find(name)) return *v;
      return Value::Undefined("'dict object' has no attribute '" + name + "'");
    }
    case Kind::kNamespace: {
      if (const Value* v = obj.dict->Find(name)) return *v;
      return Value::Undefined("'Namespace object' has no attribute '" + name + "'");
    }
    case Kind::kString:
    case Kind::kList: {
      Value m = Method(obj, name);
      if (!m.is_undefined()) return m;
      return Value::Undefined(std::string("'") + TypeName(obj) + " object' has no attribute '" + name + "'");
    }
    default: return Value::Undefined(std::string("'") + TypeName(obj) + " object' has no attribute '" + name + "'");
  }
}

Value Interp::GetItem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) FailUndefined(obj);
  if (key.is_string() && obj.kind != Kind::kDict) return GetAttr(obj, key.str->s);
  switch (obj.kind) {
    case Kind::kDict: {
      if (key.is_string()) {
        if (const Value* v = obj.dict->Find(key.str->s)) return *v;
        Value m = Method(obj, key.str->s);
        if (!m.is_undefined()) return m;
        return Value::Undefined("'dict object' has no attribute '" + key.str->s + "'");
      }
      return Value::Undefined("'dict object' has no item " + Repr(key));
    }
    case Kind::kList: {
      if (!IsIntLike(key)) break;
      int64_t n = static_cast<int64_t>(obj.list->size()), k = AsInt(key);
      if (k < 0) k += n;
      if (k < 0 || k >= n) return Value::Undefined("list object has no element " + std::to_string(AsInt(key)));
      return (*obj.list)[static_cast<size_t>(k)];
    }
    case Kind::kString: {
      if (!IsIntLike(key)) break;
      std::vector<size_t> cps = CodePointOffsets(obj.str->s);
      int64_t n = static_cast<int64_t>(cps.size()) - 1, k = AsInt(key);
      if (k < 0) k += n;
      if (k < 0 || k >= n) return Value::Undefined("str object has no element " + std::to_string(AsInt(key)));
      return Value::String(obj.str->Slice(cps[static_cast<size_t>(k)], cps[static_cast<size_t>(k) + 1]));
    }
    default: break;
  }
  return Value::Undefined(std::string("'") + TypeName(obj) + " object' has no item " + Repr(key));
}

namespace {

// SliceIndices is Python's slice.indices(n) followed by the index walk.
std::vector<int64_t> SliceIndices(int64_t n, const Value* start, const Value* stop, const Value* step) {
  int64_t st = step != nullptr ? AsInt(*step) : 1;
  if (st == 0) Fail(JinjaErrc::kRender, "slice step cannot be zero");
  auto clamp = [&](const Value* v, int64_t dflt) {
    if (v == nullptr) return dflt;
    int64_t k = AsInt(*v);
    if (k < 0) {
      k += n;
      if (k < 0) k = st < 0 ? -1 : 0;
    } else if (k >= n) {
      k = st < 0 ? n - 1 : n;
    }
    return k;
  };
  int64_t b = clamp(start, st < 0 ? n - 1 : 0), e = clamp(stop, st < 0 ? -1 : n);
  std::vector<int64_t> out;
  for (int64_t k = b; st > 0 ? k < e : k > e; k += st) out.push_back(k);
  return out;
}

}  // namespace

Value Interp::Eval(const Expr& e, Scope* scope) {
  Step();
  try {
    switch (e.kind) {
      case ExprKind::kLiteral: return e.literal;
      case ExprKind::kName: return Lookup(e.name, scope);
      case ExprKind::kList:
      case ExprKind::kTuple: {
        std::vector<Value> items;
        for (const auto& k : e.kids) items.push_back(Eval(*k, scope));
        return MakeList(std::move(items));
      }
      case ExprKind::kDict: {
        auto d = std::make_shared<Dict>();
        for (size_t k = 0; k + 1 < e.kids.size(); k += 2) {
          Value key = Eval(*e.kids[k], scope);
          if (!key.is_string()) Fail(JinjaErrc::kRender, "only string keys are supported in dict literals");
          d->Set(key.str->s, Eval(*e.kids[k + 1], scope));
        }
        return MakeDict(std::move(d));
      }
      case ExprKind::kAttr: return GetAttr(Eval(*e.kids[0], scope), e.name);
      case ExprKind::kItem: {
        Value obj = Eval(*e.kids[0], scope);
        return GetItem(obj, Eval(*e.kids[1], scope));
      }
      case ExprKind::kSlice: {
        Value obj = Eval(*e.kids[0], scope);
        Value parts[3];
        const Value* p[3] = {nullptr, nullptr, nullptr};
        for (int k = 0; k < 3; ++k) {
          if (!e.kids[static_cast<size_t>(k) + 1]) continue;
          parts[k] = Eval(*e.kids[static_cast<size_t>(k) + 1], scope);
          if (parts[k].kind == Kind::kNone) continue;
          if (!IsIntLike(parts[k])) Fail(JinjaErrc::kRender, "slice indices must be integers or None");
          p[k] = &parts[k];
        }
        if (obj.kind == Kind::kList) {
          std::vector<Value> out;
          for (int64_t k : SliceIndices(static_cast<int64_t>(obj.list->size()), p[0], p[1], p[2])) {
            out.push_back((*obj.list)[static_cast<size_t>(k)]);
          }
          return MakeList(std::move(out));
        }
        if (obj.kind == Kind::kString) {
          std::vector<size_t> cps = CodePointOffsets(obj.str->s);
          std::vector<int64_t> idx = SliceIndices(static_cast<int64_t>(cps.size()) - 1, p[0], p[1], p[2]);
          bool contiguous = p[2] == nullptr || AsInt(*p[2]) == 1;
          if (contiguous) {
            if (idx.empty()) return Value::DataString("");
            return Value::String(obj.str->Slice(cps[static_cast<size_t>(idx.front())],
                                                cps[static_cast<size_t>(idx.back()) + 1]));
          }
          Str out;
          for (int64_t k : idx) out.Append(obj.str->Slice(cps[static_cast<size_t>(k)], cps[static_cast<size_t>(k) + 1]));
          return Value::String(std::move(out));
        }
        if (obj.is_undefined()) FailUndefined(obj);
        Fail(JinjaErrc::kRender, std::string("'") + TypeName(obj) + "' object is not subscriptable");
      }
      case ExprKind::kCall: {
        Value fn = Eval(*e.kids[0], scope);
        CallArgs args;
        for (size_t k = 1; k < e.kids.size(); ++k) args.args.push_back(Eval(*e.kids[k], scope));
        for (const auto& [key, ex] : e.kwargs) args.kwargs.emplace_back(key, Eval(*ex, scope));
        return CallValue(fn, args);
      }
      case ExprKind::kFilter: {
        Value v = Eval(*e.kids[0], scope);
        CallArgs args;
        for (size_t k = 1; k < e.kids.size(); ++k) args.args.push_back(Eval(*e.kids[k], scope));
        for (const auto& [key, ex] : e.kwargs) args.kwargs.emplace_back(key, Eval(*ex, scope));
        return Filter(*this, e.name, std::move(v), args);
      }
      case ExprKind::kTest: {
        Value v = Eval(*e.kids[0], scope);
        CallArgs args;
        for (size_t k = 1; k < e.kids.size(); ++k) args.args.push_back(Eval(*e.kids[k], scope));
        for (const auto& [key, ex] : e.kwargs) args.kwargs.emplace_back(key, Eval(*ex, scope));
        return Value::Bool(Test(*this, e.name, v, args) != e.negated);
      }
      case ExprKind::kNot: return Value::Bool(!Truthy(Eval(*e.kids[0], scope)));
      case ExprKind::kNeg:
      case ExprKind::kPos: {
        Value v = Eval(*e.kids[0], scope);
        if (v.is_undefined()) FailUndefined(v);
        if (!v.is_number()) Fail(JinjaErrc::kRender, std::string("bad operand type for unary -: '") + TypeName(v) + "'");
        if (e.kind == ExprKind::kPos) return v.kind == Kind::kBool ? Value::Int(v.b) : v;
        if (v.kind == Kind::kFloat) return Value::Float(-v.f);
        if (AsInt(v) == INT64_MIN) Fail(JinjaErrc::kRender, "integer overflow");
        return Value::Int(-AsInt(v));
      }
      case ExprKind::kBinary: return EvalBinary(e, scope);
      case ExprKind::kAnd: {
        Value l = Eval(*e.kids[0], scope);
        return Truthy(l) ? Eval(*e.kids[1], scope) : l;
      }
      case ExprKind::kOr: {
        Value l = Eval(*e.kids[0], scope);
        return Truthy(l) ? l : Eval(*e.kids[1], scope);
      }
      case ExprKind::kCompare: {
        Value l = Eval(*e.kids[0], scope);
        for (size_t k = 0; k < e.ops.size(); ++k) {
          Value r = Eval(*e.kids[k + 1], scope);
          if (!EvalCompare(e.ops[k], l, r)) return Value::Bool(false);
          l = std::move(r);
        }
        return Value::Bool(true);
      }
      case ExprKind::kCond: {
        if (Truthy(Eval(*e.kids[1], scope))) return Eval(*e.kids[0], scope);
        if (e.kids[2]) return Eval(*e.kids[2], scope);
        return Value::Undefined("the inline if-expression evaluated to false and no else section was defined");
      }
    }
  } catch (Failure& f) {
    if (!f.has_pos) {
      f.pos = e.pos;
      f.has_pos = true;
    }
    throw;
  }
  return Value::Undefined();
}

bool Interp::EvalCompare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return Equal(a, b);
  if (op == "!=") return !Equal(a, b);
  if (op == "in" || op == "not in") {
    bool found = false;
    switch (b.kind) {
      case Kind::kString:
        if (!a.is_string()) {
          Fail(JinjaErrc::kRender, std::string("'in <string>' requires string as left operand, not ") + TypeName(a));
        }
        found = b.str->s.find(a.str->s) != std::string::npos;
        break;
      case Kind::kList:
        for (const Value& x : *b.list) {
          Step();
          if (Equal(a, x)) {
            found = true;
            break;
          }
        }
        break;
      case Kind::kDict: found = a.is_string() && b.dict->Find(a.str->s) != nullptr; break;
      case Kind::kUndefined: found = false; break;
      default: Fail(JinjaErrc::kRender, std::string("argument of type '") + TypeName(b) + "' is not iterable");
    }
    return op == "in" ? found : !found;
  }
  if (a.is_undefined()) FailUndefined(a);
  if (b.is_undefined()) FailUndefined(b);
  int c;
  if (a.is_number() && b.is_number()) {
    double x = AsDouble(a), y = AsDouble(b);
    if (IsIntLike(a) && IsIntLike(b)) {
      c = AsInt(a) < AsInt(b) ? -1 : AsInt(a) > AsInt(b) ? 1 : 0;
    } else {
      if (std::isnan(x) || std::isnan(y)) return false;
      c = x < y ? -1 : x > y ? 1 : 0;
    }
  } else if (a.is_string() && b.is_string()) {
    c = a.str->s.compare(b.str->s);  // UTF-8 byte order is code point order
  } else {
    Fail(JinjaErrc::kRender, "'" + op + "' not supported between instances of '" + TypeName(a) + "' and '" +
                                 TypeName(b) + "'");
  }
  if (op == "<") return c < 0;
  if (op == ">") return c > 0;
  if (op == "<=") return c <= 0;
  return c >= 0;
}

Value Interp::EvalBinary(const Expr& e, Scope* scope) {
  Value a = Eval(*e.kids[0], scope);
  Value b = Eval(*e.kids[1], scope);
  const std::string& op = e.name;
  if (op == "~") {
    Str s = ToStr(a);
    Str t = ToStr(b);
    CheckSize(s.s.size() + t.s.size());
    s.Append(t);
    return Value::String(std::move(s));
  }
  if (a.is_undefined() || b.is_undefined()) FailOperands(op, a, b);
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      CheckSize(a.str->s.size() + b.str->s.size());
      Str s = *a.str;
      s.Append(*b.str);
      return Value::String(std::move(s));
    }
    if (a.kind == Kind::kList && b.kind == Kind::kList) {
      std::vector<Value> items(*a.list);
      items.insert(items.end(), b.list->begin(), b.list->end());
      return MakeList(std::move(items));
    }
    if (a.is_string() || b.is_string()) {
      Fail(JinjaErrc::kRender, std::string("can only concatenate str (not \"") + TypeName(a.is_string() ? b : a) +
                                   "\") to str");
    }
  }
  if (op == "*" && (a.is_string() || a.kind == Kind::kList || b.is_string() || b.kind == Kind::kList)) {
    const Value& seq = a.is_string() || a.kind == Kind::kList ? a : b;
    const Value& count = &seq == &a ? b : a;
    if (!IsIntLike(count)) FailOperands(op, a, b);
    int64_t n = std::max<int64_t>(0, AsInt(count));
    size_t unit = seq.is_string() ? seq.str->s.size() : seq.list->size();
    if (unit != 0 && static_cast<uint64_t>(n) > limits_.max_output_bytes / unit) CheckSize(limits_.max_output_bytes + 1);
    if (seq.is_string()) {
      Str s;
      for (int64_t k = 0; k < n; ++k) s.Append(*seq.str);
      return Value::String(std::move(s));
    }
    std::vector<Value> items;
    for (int64_t k = 0; k < n; ++k) items.insert(items.end(), seq.list->begin(), seq.list->end());
    return MakeList(std::move(items));
  }
  if (!a.is_number() || !b.is_number()) FailOperands(op, a, b);
  bool ints = IsIntLike(a) && IsIntLike(b);
  if (op == "/") {
    if (AsDouble(b) == 0) Fail(JinjaErrc::kRender, "division by zero");
    return Value::Float(AsDouble(a) / AsDouble(b));
  }
  if (ints) {
    int64_t x = AsInt(a), y = AsInt(b), r = 0;
    bool overflow = false;
    if (op == "+") {
      overflow = __builtin_add_overflow(x, y, &r);
    } else if (op == "-") {
      overflow = __builtin_sub_overflow(x, y, &r);
    } else if (op == "*") {
      overflow = __builtin_mul_overflow(x, y, &r);
    } else if (op == "//" || op == "%") {
      if (y == 0) Fail(JinjaErrc::kRender, "integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) Fail(JinjaErrc::kRender, "integer overflow");
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {  // Python floors
        --q;
        m += y;
      }
      r = op == "//" ? q : m;
    } else if (op == "**") {
      if (y < 0) return Value::Float(std::pow(static_cast<double>(x), static_cast<double>(y)));
      r = 1;
      for (int64_t k = 0; k < y && !overflow; ++k) overflow = __builtin_mul_overflow(r, x, &r);
    }
    if (overflow) Fail(JinjaErrc::kRender, "integer overflow");
    return Value::Int(r);
  }
  double x = AsDouble(a), y = AsDouble(b);
  if (op == "+") return Value::Float(x + y);
  if (op == "-") return Value::Float(x - y);
  if (op == "*") return Value::Float(x * y);
  if (op == "**") return Value::Float(std::pow(x, y));
  if (y == 0) Fail(JinjaErrc::kRender, "float division by zero");
  if (op == "//") return Value::Float(std::floor(x / y));
  double m = std::fmod(x, y);
  if (m != 0 && ((m < 0) != (y < 0))) m += y;
  return Value::Float(m);
}

std::vector<Value> Interp::Iterate(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined: return {};
    case Kind::kList: return *v.list;
    case Kind::kDict: {
      std::vector<Value> keys;
      for (const auto& kv : v.dict->items) keys.push_back(Value::DataString(kv.first));
      return keys;
    }
    case Kind::kString: {
      std::vector<size_t> cps = CodePointOffsets(v.str->s);
      std::vector<Value> out;
      for (size_t k = 0; k + 1 < cps.size(); ++k) out.push_back(Value::String(v.str->Slice(cps[k], cps[k + 1])));
      return out;
    }
    default: Fail(JinjaErrc::kRender, std::string("'") + TypeName(v) + "' object is not iterable");
  }
}

Value Interp::ApplyFilter(const std::string& name, Value v, CallArgs& args) { return Filter(*this, name, std::move(v), args); }
bool Interp::ApplyTest(const std::string& name, const Value& v, CallArgs& args) { return Test(*this, name, v, args); }

}  // namespace cllm::jinja
