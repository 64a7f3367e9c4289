// builtins.cc — methods of str/dict/list values, tests, and globals.
//
// The sandbox transformers uses (ImmutableSandboxedEnvironment) refuses
// methods that modify a list or dict; so do we.
#include <algorithm>
#include <cmath>
#include <set>

#include "jinja/args.h"
#include "jinja/interp.h"
#include "jinja/strings.h"

namespace cllm::jinja {
namespace {

using Fn = std::function<Value(Interp&, CallArgs&)>;

Value Bound(const std::string& name, Fn fn) { return Value::Function(name, std::move(fn)); }

bool Prefixed(const std::string& s, const Value& arg, bool suffix) {
  auto one = [&](const Value& p) {
    if (!p.is_string()) Fail(JinjaErrc::kRender, "startswith/endswith need a string or a tuple of strings");
    const std::string& t = p.str->s;
    if (t.size() > s.size()) return false;
    return suffix ? s.compare(s.size() - t.size(), t.size(), t) == 0 : s.compare(0, t.size(), t) == 0;
  };
  if (arg.kind == Kind::kList) {
    return std::any_of(arg.list->begin(), arg.list->end(), one);
  }
  return one(arg);
}

Value StringMethod(const Value& obj, const std::string& name) {
  const Str s = *obj.str;
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    bool left = name != "rstrip", right = name != "lstrip";
    return Bound(name, [s, left, right](Interp&, CallArgs& a) {
      return Value::String(Strip(s, OptString(a, 0, "chars"), left, right));
    });
  }
  if (name == "split" || name == "rsplit") {
    bool from_right = name == "rsplit";
    return Bound(name, [s, from_right](Interp& in, CallArgs& a) {
      std::vector<Value> out;
      for (Str& piece : Split(s, OptString(a, 0, "sep"), OptInt(a, 1, "maxsplit", -1), from_right)) {
        out.push_back(Value::String(std::move(piece)));
      }
      return in.MakeList(std::move(out));
    });
  }
  if (name == "splitlines") {
    return Bound(name, [s](Interp& in, CallArgs&) {
      std::vector<Value> out;
      std::vector<Str> parts = Split(s, std::string("\n"), -1, false);
      if (!parts.empty() && parts.back().s.empty()) parts.pop_back();
      for (Str& p : parts) {
        if (!p.s.empty() && p.s.back() == '\r') p = p.Slice(0, p.s.size() - 1);
        out.push_back(Value::String(std::move(p)));
      }
      return in.MakeList(std::move(out));
    });
  }
  if (name == "startswith" || name == "endswith") {
    bool suffix = name == "endswith";
    return Bound(name, [s, suffix](Interp&, CallArgs& a) {
      const Value* p = Arg(a, 0, "prefix");
      if (p == nullptr) Fail(JinjaErrc::kRender, "startswith/endswith need an argument");
      return Value::Bool(Prefixed(s.s, *p, suffix));
    });
  }
  if (name == "replace") {
    return Bound(name, [s](Interp& in, CallArgs& a) {
      const Value* o = Arg(a, 0, "old");
      const Value* n = Arg(a, 1, "new");
      if (o == nullptr || n == nullptr || !o->is_string() || !n->is_string()) {
        Fail(JinjaErrc::kRender, "replace() needs two strings");
      }
      Str r = Replace(s, o->str->s, *n->str, OptInt(a, 2, "count", -1));
      in.CheckSize(r.s.size());
      return Value::String(std::move(r));
    });
  }
  if (name == "upper") return Bound(name, [s](Interp&, CallArgs&) { return Value::String(Upper(s)); });
  if (name == "lower") return Bound(name, [s](Interp&, CallArgs&) { return Value::String(Lower(s)); });
  if (name == "capitalize") return Bound(name, [s](Interp&, CallArgs&) { return Value::String(Capitalize(s)); });
  if (name == "title") return Bound(name, [s](Interp&, CallArgs&) { return Value::String(TitleMethod(s)); });
  if (name == "find" || name == "rfind" || name == "count" || name == "index") {
    return Bound(name, [s, name](Interp&, CallArgs& a) {
      std::optional<std::string> sub = OptString(a, 0, "sub");
      if (!sub) Fail(JinjaErrc::kRender, name + "() needs a string");
      if (name == "count") {
        if (sub->empty()) return Value::Int(static_cast<int64_t>(CodePointCount(s.s)) + 1);
        int64_t n = 0;
        for (size_t p = s.s.find(*sub); p != std::string::npos; p = s.s.find(*sub, p + sub->size())) ++n;
        return Value::Int(n);
      }
      size_t p = name == "rfind" ? s.s.rfind(*sub) : s.s.find(*sub);
      if (p == std::string::npos) {
        if (name == "index") Fail(JinjaErrc::kRender, "substring not found");
        return Value::Int(-1);
      }
      return Value::Int(static_cast<int64_t>(CodePointCount(s.s.substr(0, p))));
    });
  }
  if (name == "join") {
    return Bound(name, [s](Interp& in, CallArgs& a) {
      const Value* items = Arg(a, 0, "iterable");
      if (items == nullptr) Fail(JinjaErrc::kRender, "join() needs an iterable");
      Str out;
      bool first = true;
      for (const Value& x : in.Iterate(*items)) {
        if (!x.is_string()) Fail(JinjaErrc::kRender, std::string("sequence item: expected str instance, ") + TypeName(x) + " found");
        if (!first) out.Append(s);
        first = false;
        out.Append(*x.str);
        in.CheckSize(out.s.size());
      }
      return Value::String(std::move(out));
    });
  }
  if (name == "removeprefix" || name == "removesuffix") {
    bool suffix = name == "removesuffix";
    return Bound(name, [s, suffix](Interp&, CallArgs& a) {
      std::optional<std::string> p = OptString(a, 0, "prefix");
      if (!p) Fail(JinjaErrc::kRender, "removeprefix/removesuffix need a string");
      if (!Prefixed(s.s, Value::DataString(*p), suffix)) return Value::String(s);
      return Value::String(suffix ? s.Slice(0, s.s.size() - p->size()) : s.Slice(p->size(), s.s.size()));
    });
  }
  if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" || name == "islower" ||
      name == "isupper") {
    return Bound(name, [s, name](Interp&, CallArgs&) {
      if (s.s.empty()) return Value::Bool(false);
      bool any_cased = false, ok = true;
      for (char c : s.s) {
        bool digit = c >= '0' && c <= '9', lower = c >= 'a' && c <= 'z', upper = c >= 'A' && c <= 'Z';
        bool space = c == ' ' || (c >= '\t' && c <= '\r');
        if (name == "isdigit") ok = ok && digit;
        if (name == "isalpha") ok = ok && (lower || upper);
        if (name == "isalnum") ok = ok && (lower || upper || digit);
        if (name == "isspace") ok = ok && space;
        if (name == "islower") {
          ok = ok && !upper;
          any_cased = any_cased || lower;
        }
        if (name == "isupper") {
          ok = ok && !lower;
          any_cased = any_cased || upper;
        }
      }
      if (name == "islower" || name == "isupper") ok = ok && any_cased;
      return Value::Bool(ok);
    });
  }
  return Value::Undefined();
}

Value DictMethod(const Value& obj, const std::string& name) {
  std::shared_ptr<Dict> d = obj.dict;
  if (name == "items") {
    return Bound(name, [d](Interp& in, CallArgs&) {
      std::vector<Value> out;
      for (const auto& [k, v] : d->items) out.push_back(in.MakeList({Value::DataString(k), v}));
      return in.MakeList(std::move(out));
    });
  }
  if (name == "keys") {
    return Bound(name, [d](Interp& in, CallArgs&) {
      std::vector<Value> out;
      for (const auto& kv : d->items) out.push_back(Value::DataString(kv.first));
      return in.MakeList(std::move(out));
    });
  }
  if (name == "values") {
    return Bound(name, [d](Interp& in, CallArgs&) {
      std::vector<Value> out;
      for (const auto& kv : d->items) out.push_back(kv.second);
      return in.MakeList(std::move(out));
    });
  }
  if (name == "get") {
    return Bound(name, [d](Interp&, CallArgs& a) {
      const Value* key = Arg(a, 0, "key");
      const Value* dflt = Arg(a, 1, "default");
      if (key != nullptr && key->is_string()) {
        if (const Value* v = d->Find(key->str->s)) return *v;
      }
      return dflt != nullptr ? *dflt : Value::None();
    });
  }
  static const std::set<std::string> kMutating = {"pop", "popitem", "setdefault", "update", "clear"};
  if (kMutating.count(name)) {
    return Bound(name, [name](Interp&, CallArgs&) -> Value {
      Fail(JinjaErrc::kRender, "access to attribute '" + name + "' of 'dict' object is unsafe.");
    });
  }
  return Value::Undefined();
}

Value ListMethod(const Value& obj, const std::string& name) {
  auto list = obj.list;
  if (name == "index" || name == "count") {
    return Bound(name, [list, name](Interp&, CallArgs& a) {
      const Value* x = Arg(a, 0, "value");
      if (x == nullptr) Fail(JinjaErrc::kRender, name + "() needs an argument");
      int64_t n = 0;
      for (size_t k = 0; k < list->size(); ++k) {
        if (!Equal((*list)[k], *x)) continue;
        if (name == "index") return Value::Int(static_cast<int64_t>(k));
        ++n;
      }
      if (name == "index") Fail(JinjaErrc::kRender, "value is not in list");
      return Value::Int(n);
    });
  }
  static const std::set<std::string> kMutating = {"append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse"};
  if (kMutating.count(name)) {
    return Bound(name, [name](Interp&, CallArgs&) -> Value {
      Fail(JinjaErrc::kRender, "access to attribute '" + name + "' of 'list' object is unsafe.");
    });
  }
  return Value::Undefined();
}

int64_t IntOf(const Value& v) {
  if (v.kind == Kind::kBool) return v.b;
  if (v.kind != Kind::kInt) Fail(JinjaErrc::kRender, std::string("'") + TypeName(v) + "' object cannot be interpreted as an integer");
  return v.i;
}

int Compare(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    double x = a.kind == Kind::kFloat ? a.f : static_cast<double>(a.kind == Kind::kBool ? a.b : a.i);
    double y = b.kind == Kind::kFloat ? b.f : static_cast<double>(b.kind == Kind::kBool ? b.b : b.i);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) return a.str->s.compare(b.str->s);
  Fail(JinjaErrc::kRender, std::string("cannot compare '") + TypeName(a) + "' and '" + TypeName(b) + "'");
}

}  // namespace

Value Method(const Value& obj, const std::string& name) {
  switch (obj.kind) {
    case Kind::kString: return StringMethod(obj, name);
    case Kind::kDict: return DictMethod(obj, name);
    case Kind::kList: return ListMethod(obj, name);
    default: return Value::Undefined();
  }
}

bool Test(Interp& in, const std::string& name, const Value& v, CallArgs& a) {
  (void)in;
  auto arg = [&]() -> const Value& {
    if (a.args.empty()) Fail(JinjaErrc::kRender, "test '" + name + "' needs an argument");
    return a.args[0];
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.kind == Kind::kNone;
  if (name == "boolean") return v.kind == Kind::kBool;
  if (name == "false") return v.kind == Kind::kBool && !v.b;
  if (name == "true") return v.kind == Kind::kBool && v.b;
  if (name == "integer") return v.kind == Kind::kInt;
  if (name == "float") return v.kind == Kind::kFloat;
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.kind == Kind::kDict;
  if (name == "iterable") {
    return v.kind == Kind::kString || v.kind == Kind::kList || v.kind == Kind::kDict || v.is_undefined();
  }
  if (name == "sequence") return v.kind == Kind::kString || v.kind == Kind::kList || v.kind == Kind::kDict;
  if (name == "callable") return v.kind == Kind::kCallable;
  if (name == "sameas") {
    const Value& o = arg();
    if (v.kind != o.kind) return false;
    if (v.kind == Kind::kNone || v.kind == Kind::kUndefined) return true;
    if (v.kind == Kind::kBool) return v.b == o.b;
    if (v.kind == Kind::kList) return v.list == o.list;
    if (v.kind == Kind::kDict || v.kind == Kind::kNamespace) return v.dict == o.dict;
    if (v.kind == Kind::kString) return v.str == o.str;
    return Equal(v, o);
  }
  if (name == "equalto" || name == "eq" || name == "==") return Equal(v, arg());
  if (name == "ne" || name == "!=") return !Equal(v, arg());
  if (name == "lt" || name == "lessthan" || name == "<") return Compare(v, arg()) < 0;
  if (name == "le" || name == "<=") return Compare(v, arg()) <= 0;
  if (name == "gt" || name == "greaterthan" || name == ">") return Compare(v, arg()) > 0;
  if (name == "ge" || name == ">=") return Compare(v, arg()) >= 0;
  if (name == "in") {
    const Value& seq = arg();
    if (seq.kind == Kind::kString) return v.is_string() && seq.str->s.find(v.str->s) != std::string::npos;
    if (seq.kind == Kind::kDict) return v.is_string() && seq.dict->Find(v.str->s) != nullptr;
    if (seq.kind == Kind::kList) return std::any_of(seq.list->begin(), seq.list->end(), [&](const Value& x) { return Equal(v, x); });
    Fail(JinjaErrc::kRender, std::string("argument of type '") + TypeName(seq) + "' is not iterable");
  }
  if (name == "odd" || name == "even") {
    int64_t n = IntOf(v);
    return (n % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    int64_t d = IntOf(arg());
    if (d == 0) Fail(JinjaErrc::kRender, "integer division or modulo by zero");
    return IntOf(v) % d == 0;
  }
  if (name == "lower" || name == "upper") {
    if (!v.is_string()) return false;
    return name == "lower" ? Lower(*v.str).s == v.str->s : Upper(*v.str).s == v.str->s;
  }
  if (name == "escaped") return false;
  Fail(JinjaErrc::kRender, "no test named '" + name + "'");
}

void AddGlobals(Scope* root) {
  auto& g = root->vars;
  g["range"] = Value::Function("range", [](Interp& in, CallArgs& a) {
    if (a.args.empty() || a.args.size() > 3) Fail(JinjaErrc::kRender, "range expected 1 to 3 arguments");
    int64_t start = 0, stop, step = 1;
    if (a.args.size() == 1) {
      stop = IntOf(a.args[0]);
    } else {
      start = IntOf(a.args[0]);
      stop = IntOf(a.args[1]);
      if (a.args.size() == 3) step = IntOf(a.args[2]);
    }
    if (step == 0) Fail(JinjaErrc::kRender, "range() arg 3 must not be zero");
    // jinja2's sandbox caps ranges at 100000 items (MAX_RANGE).
    double count = std::ceil((static_cast<double>(stop) - static_cast<double>(start)) / static_cast<double>(step));
    if (count > 100000) Fail(JinjaErrc::kLimit, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    std::vector<Value> out;
    for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) out.push_back(Value::Int(k));
    return in.MakeList(std::move(out));
  });
  g["dict"] = Value::Function("dict", [](Interp& in, CallArgs& a) {
    auto d = std::make_shared<Dict>();
    if (!a.args.empty()) {
      if (a.args.size() > 1 || a.args[0].kind != Kind::kDict) Fail(JinjaErrc::kRender, "dict() takes a mapping and keywords");
      for (const auto& [k, v] : a.args[0].dict->items) d->Set(k, v);
    }
    for (const auto& [k, v] : a.kwargs) d->Set(k, v);
    return in.MakeDict(std::move(d));
  });
  g["namespace"] = Value::Function("namespace", [](Interp& in, CallArgs& a) {
    auto d = std::make_shared<Dict>();
    for (const Value& init : a.args) {
      if (init.kind != Kind::kDict) Fail(JinjaErrc::kRender, "namespace() takes a mapping and keywords");
      for (const auto& [k, v] : init.dict->items) d->Set(k, v);
    }
    for (const auto& [k, v] : a.kwargs) d->Set(k, v);
    return in.NewNamespace(std::move(d));
  });
  g["raise_exception"] = Value::Function("raise_exception", [](Interp&, CallArgs& a) -> Value {
    Fail(JinjaErrc::kRaised, a.args.empty() ? std::string() : ToStr(a.args[0]).s);
  });
  g["strftime_now"] = Value::Function("strftime_now", [](Interp& in, CallArgs& a) {
    std::optional<std::string> fmt = OptString(a, 0, "format");
    if (!fmt) Fail(JinjaErrc::kRender, "strftime_now() needs a format string");
    return Value::DataString(in.strftime_now() ? in.strftime_now()(*fmt) : std::string());
  });
}

}  // namespace cllm::jinja
