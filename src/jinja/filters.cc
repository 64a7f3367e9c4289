// filters.cc — jinja2's built-in filters (the subset chat templates use, and
// their neighbours), plus transformers' tojson.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "jinja/args.h"
#include "jinja/interp.h"
#include "jinja/strings.h"

namespace cllm::jinja {
namespace {

// --- tojson ---------------------------------------------------------------------

void JsonString(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  for (size_t k = 0; k < s.size(); ++k) {
    unsigned char c = static_cast<unsigned char>(s[k]);
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    char buf[16];
    if (c < 0x20) {
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else if (c >= 0x80 && ensure_ascii) {
      // Decode one code point; escape it (surrogate pairs above U+FFFF).
      size_t n = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
      uint32_t cp = n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : n == 4 ? (c & 0x07) : c;
      for (size_t j = 1; j < n && k + j < s.size(); ++j) cp = (cp << 6) | (static_cast<unsigned char>(s[k + j]) & 0x3f);
      k += n - 1;
      if (cp >= 0x10000) {
        cp -= 0x10000;
        std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
      } else {
        std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
      }
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

struct JsonStyle {
  std::string indent;  // empty with has_indent: newlines only
  bool has_indent = false;
  bool ensure_ascii = false;
  std::string item_sep, key_sep;
  bool sort_keys = false;
};

void JsonValue(std::string& out, const Value& v, const JsonStyle& st, int level) {
  auto newline = [&](int lvl) {
    if (!st.has_indent) return;
    out += '\n';
    for (int k = 0; k < lvl; ++k) out += st.indent;
  };
  switch (v.kind) {
    case Kind::kNone: out += "null"; return;
    case Kind::kBool: out += v.b ? "true" : "false"; return;
    case Kind::kInt: out += std::to_string(v.i); return;
    case Kind::kFloat: {
      if (std::isnan(v.f)) {
        out += "NaN";
      } else if (std::isinf(v.f)) {
        out += v.f > 0 ? "Infinity" : "-Infinity";
      } else {
        out += FloatRepr(v.f);
      }
      return;
    }
    case Kind::kString: JsonString(out, v.str->s, st.ensure_ascii); return;
    case Kind::kList: {
      if (v.list->empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += st.item_sep;
        newline(level + 1);
        JsonValue(out, (*v.list)[k], st, level + 1);
      }
      newline(level);
      out += ']';
      return;
    }
    case Kind::kDict: {
      if (v.dict->items.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : v.dict->items) items.push_back(&kv);
      if (st.sort_keys) {
        std::sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
      }
      out += '{';
      for (size_t k = 0; k < items.size(); ++k) {
        if (k) out += st.item_sep;
        newline(level + 1);
        JsonString(out, items[k]->first, st.ensure_ascii);
        out += st.key_sep;
        JsonValue(out, items[k]->second, st, level + 1);
      }
      newline(level);
      out += '}';
      return;
    }
    default: Fail(JinjaErrc::kRender, std::string("Object of type ") + TypeName(v) + " is not JSON serializable");
  }
}

Value ToJsonFilter(Interp& in, const Value& v, const CallArgs& a) {
  JsonStyle st;
  st.ensure_ascii = OptBool(a, 0, "ensure_ascii", false);
  const Value* indent = Arg(a, 1, "indent");
  if (indent != nullptr && indent->kind != Kind::kNone) {
    st.has_indent = true;
    if (indent->is_string()) {
      st.indent = indent->str->s;
    } else {
      int64_t n = OptInt(a, 1, "indent", 0);
      st.indent = std::string(static_cast<size_t>(std::clamp<int64_t>(n, 0, 64)), ' ');
    }
  }
  st.item_sep = st.has_indent ? "," : ", ";
  st.key_sep = ": ";
  const Value* seps = Arg(a, 2, "separators");
  if (seps != nullptr && seps->kind == Kind::kList && seps->list->size() == 2 && (*seps->list)[0].is_string() &&
      (*seps->list)[1].is_string()) {
    st.item_sep = (*seps->list)[0].str->s;
    st.key_sep = (*seps->list)[1].str->s;
  }
  st.sort_keys = OptBool(a, 3, "sort_keys", false);
  std::string out;
  JsonValue(out, v, st, 0);
  in.CheckSize(out.size());
  return Value::DataString(std::move(out));
}

// --- helpers ---------------------------------------------------------------------

int64_t Length(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined: return 0;
    case Kind::kString: return static_cast<int64_t>(CodePointCount(v.str->s));
    case Kind::kList: return static_cast<int64_t>(v.list->size());
    case Kind::kDict: return static_cast<int64_t>(v.dict->items.size());
    default: Fail(JinjaErrc::kRender, std::string("object of type '") + TypeName(v) + "' has no len()");
  }
}

// Attribute reads "a.b" from an item as jinja2's attribute getters do.
Value Attribute(Interp& in, const Value& item, const std::string& path) {
  Value cur = item;
  size_t b = 0;
  for (;;) {
    size_t dot = path.find('.', b);
    std::string part = path.substr(b, dot == std::string::npos ? std::string::npos : dot - b);
    Value key = Value::DataString(part);
    if (!part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      key = Value::Int(std::stoll(part.substr(0, 18)));
    }
    cur = in.GetItem(cur, key);
    if (dot == std::string::npos) return cur;
    b = dot + 1;
  }
}

// SelectOrReject implements select/reject/selectattr/rejectattr.
Value SelectOrReject(Interp& in, const Value& v, CallArgs& a, bool by_attr, bool keep_if) {
  std::vector<Value> items = in.Iterate(v);
  size_t first = 0;
  std::string attr;
  if (by_attr) {
    if (a.args.empty() || !a.args[0].is_string()) Fail(JinjaErrc::kRender, "selectattr/rejectattr need an attribute name");
    attr = a.args[0].str->s;
    first = 1;
  }
  std::string test;
  CallArgs rest;
  if (a.args.size() > first) {
    if (!a.args[first].is_string()) Fail(JinjaErrc::kRender, "the test name must be a string");
    test = a.args[first].str->s;
    rest.args.assign(a.args.begin() + static_cast<std::ptrdiff_t>(first) + 1, a.args.end());
  }
  std::vector<Value> out;
  for (const Value& item : items) {
    in.CountIteration();
    Value x = by_attr ? Attribute(in, item, attr) : item;
    bool r = test.empty() ? Truthy(x) : in.ApplyTest(test, x, rest);
    if (r == keep_if) out.push_back(item);
  }
  return in.MakeList(std::move(out));
}

Value Map(Interp& in, const Value& v, CallArgs& a) {
  std::vector<Value> items = in.Iterate(v);
  std::vector<Value> out;
  const Value* attr = nullptr;
  for (const auto& [k, val] : a.kwargs) {
    if (k == "attribute") attr = &val;
  }
  if (attr != nullptr) {
    const Value* dflt = nullptr;
    for (const auto& [k, val] : a.kwargs) {
      if (k == "default") dflt = &val;
    }
    for (const Value& item : items) {
      in.CountIteration();
      Value x = Attribute(in, item, ToStr(*attr).s);
      out.push_back(x.is_undefined() && dflt != nullptr ? *dflt : x);
    }
    return in.MakeList(std::move(out));
  }
  if (a.args.empty() || !a.args[0].is_string()) Fail(JinjaErrc::kRender, "map needs a filter name or attribute=");
  std::string filter = a.args[0].str->s;
  CallArgs rest;
  rest.args.assign(a.args.begin() + 1, a.args.end());
  rest.kwargs = a.kwargs;
  for (const Value& item : items) {
    in.CountIteration();
    CallArgs copy = rest;
    out.push_back(in.ApplyFilter(filter, item, copy));
  }
  return in.MakeList(std::move(out));
}

// Compare orders values for sort/min/max (numbers or strings).
bool Less(const Value& x, const Value& y, bool case_sensitive) {
  if (x.is_number() && y.is_number()) {
    double a = x.kind == Kind::kFloat ? x.f : static_cast<double>(x.kind == Kind::kBool ? x.b : x.i);
    double b = y.kind == Kind::kFloat ? y.f : static_cast<double>(y.kind == Kind::kBool ? y.b : y.i);
    return a < b;
  }
  if (x.is_string() && y.is_string()) {
    if (case_sensitive) return x.str->s < y.str->s;
    return Lower(*x.str).s < Lower(*y.str).s;
  }
  Fail(JinjaErrc::kRender, std::string("'<' not supported between instances of '") + TypeName(x) + "' and '" +
                               TypeName(y) + "'");
}

}  // namespace

std::string ToJson(const Value& v, int indent, bool ensure_ascii, const std::string& item_sep,
                   const std::string& key_sep, bool sort_keys) {
  JsonStyle st;
  st.has_indent = indent >= 0;
  st.indent = std::string(static_cast<size_t>(std::max(indent, 0)), ' ');
  st.ensure_ascii = ensure_ascii;
  st.item_sep = item_sep;
  st.key_sep = key_sep;
  st.sort_keys = sort_keys;
  std::string out;
  JsonValue(out, v, st, 0);
  return out;
}

Value Filter(Interp& in, const std::string& name, Value v, CallArgs& a) {
  if (name == "default" || name == "d") {
    const Value* dflt = Arg(a, 0, "default_value");
    bool boolean = OptBool(a, 1, "boolean", false);
    if (v.is_undefined() || (boolean && !Truthy(v))) return dflt != nullptr ? *dflt : Value::DataString("");
    return v;
  }
  // Every other filter fails on an undefined value the way jinja2 does only
  // where it would; most treat it as empty.
  if (name == "length" || name == "count") return Value::Int(Length(v));
  if (name == "string") return Value::String(ToStr(v));
  if (name == "tojson") return ToJsonFilter(in, v, a);
  if (name == "safe") return v;
  if (name == "trim") return Value::String(Strip(ToStr(v), OptString(a, 0, "chars"), true, true));
  if (name == "upper") return Value::String(Upper(ToStr(v)));
  if (name == "lower") return Value::String(Lower(ToStr(v)));
  if (name == "capitalize") return Value::String(Capitalize(ToStr(v)));
  if (name == "title") return Value::String(TitleFilter(ToStr(v)));
  if (name == "replace") {
    const Value* old_v = Arg(a, 0, "old");
    const Value* new_v = Arg(a, 1, "new");
    if (old_v == nullptr || new_v == nullptr) Fail(JinjaErrc::kRender, "replace needs old and new");
    return Value::String(Replace(ToStr(v), ToStr(*old_v).s, ToStr(*new_v), OptInt(a, 2, "count", -1)));
  }
  if (name == "join") {
    const Value* sep = Arg(a, 0, "d");
    Str sep_s = sep != nullptr ? ToStr(*sep) : Str{};
    std::optional<std::string> attr = OptString(a, 1, "attribute");
    Str out;
    bool first = true;
    for (const Value& item : in.Iterate(v)) {
      in.CountIteration();
      if (!first) out.Append(sep_s);
      first = false;
      out.Append(ToStr(attr ? Attribute(in, item, *attr) : item));
      in.CheckSize(out.s.size());
    }
    return Value::String(std::move(out));
  }
  if (name == "items") {
    if (v.is_undefined()) return in.MakeList({});
    if (v.kind != Kind::kDict) Fail(JinjaErrc::kRender, "Can only get item pairs from a mapping.");
    std::vector<Value> out;
    for (const auto& [k, val] : v.dict->items) out.push_back(in.MakeList({Value::DataString(k), val}));
    return in.MakeList(std::move(out));
  }
  if (name == "list") return in.MakeList(in.Iterate(v));
  if (name == "first" || name == "last") {
    std::vector<Value> items = in.Iterate(v);
    if (items.empty()) return Value::Undefined("No first item, sequence was empty.");
    return name == "first" ? items.front() : items.back();
  }
  if (name == "reverse") {
    if (v.is_string()) {
      std::vector<size_t> cps = CodePointOffsets(v.str->s);
      Str out;
      for (size_t k = cps.size() - 1; k > 0; --k) out.Append(v.str->Slice(cps[k - 1], cps[k]));
      return Value::String(std::move(out));
    }
    std::vector<Value> items = in.Iterate(v);
    std::reverse(items.begin(), items.end());
    return in.MakeList(std::move(items));
  }
  if (name == "selectattr") return SelectOrReject(in, v, a, true, true);
  if (name == "rejectattr") return SelectOrReject(in, v, a, true, false);
  if (name == "select") return SelectOrReject(in, v, a, false, true);
  if (name == "reject") return SelectOrReject(in, v, a, false, false);
  if (name == "map") return Map(in, v, a);
  if (name == "unique") {
    std::vector<Value> out;
    for (const Value& item : in.Iterate(v)) {
      in.CountIteration();
      bool seen = false;
      for (const Value& o : out) {
        in.Step();
        if (Equal(o, item)) {
          seen = true;
          break;
        }
      }
      if (!seen) out.push_back(item);
    }
    return in.MakeList(std::move(out));
  }
  if (name == "sort" || name == "min" || name == "max") {
    bool reverse = name == "sort" && OptBool(a, 0, "reverse", false);
    bool case_sensitive = OptBool(a, name == "sort" ? 1 : 0, "case_sensitive", false);
    std::optional<std::string> attr = OptString(a, name == "sort" ? 2 : 1, "attribute");
    std::vector<Value> items = in.Iterate(v);
    if (items.size() > 100000) Fail(JinjaErrc::kLimit, "too many items to sort");
    auto key = [&](const Value& x) { return attr ? Attribute(in, x, *attr) : x; };
    if (name != "sort") {
      if (items.empty()) return Value::Undefined("No aggregated item, sequence was empty.");
      Value best = items[0];
      for (const Value& x : items) {
        bool less = Less(key(x), key(best), case_sensitive);
        if (name == "min" ? less : Less(key(best), key(x), case_sensitive)) best = x;
      }
      return best;
    }
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
      return reverse ? Less(key(y), key(x), case_sensitive) : Less(key(x), key(y), case_sensitive);
    });
    return in.MakeList(std::move(items));
  }
  if (name == "sum") {
    std::optional<std::string> attr = OptString(a, 0, "attribute");
    const Value* start = Arg(a, 1, "start");
    bool is_float = start != nullptr && start->kind == Kind::kFloat;
    double f = start != nullptr && start->is_number() ? (is_float ? start->f : static_cast<double>(start->i)) : 0;
    int64_t i = start != nullptr && start->kind == Kind::kInt ? start->i : 0;
    for (const Value& x0 : in.Iterate(v)) {
      Value x = attr ? Attribute(in, x0, *attr) : x0;
      if (!x.is_number()) Fail(JinjaErrc::kRender, "sum needs numbers");
      if (x.kind == Kind::kFloat) is_float = true;
      double xf = x.kind == Kind::kFloat ? x.f : static_cast<double>(x.kind == Kind::kBool ? x.b : x.i);
      f += xf;
      if (x.kind != Kind::kFloat && __builtin_add_overflow(i, x.kind == Kind::kBool ? x.b : x.i, &i)) {
        Fail(JinjaErrc::kRender, "integer overflow");
      }
    }
    return is_float ? Value::Float(f) : Value::Int(i);
  }
  if (name == "int" || name == "float") {
    const Value* dflt = Arg(a, 0, "default");
    Value fallback = dflt != nullptr ? *dflt : (name == "int" ? Value::Int(0) : Value::Float(0));
    double d = 0;
    if (v.kind == Kind::kInt || v.kind == Kind::kBool) {
      d = static_cast<double>(v.kind == Kind::kBool ? v.b : v.i);
      if (name == "int") return Value::Int(v.kind == Kind::kBool ? v.b : v.i);
    } else if (v.kind == Kind::kFloat) {
      d = v.f;
    } else if (v.is_string()) {
      std::string t = Strip(*v.str, std::nullopt, true, true).s;
      char* end = nullptr;
      errno = 0;
      if (t.empty()) return fallback;
      d = std::strtod(t.c_str(), &end);
      if (end != t.c_str() + t.size() || errno != 0) return fallback;
    } else {
      return fallback;
    }
    if (name == "float") return Value::Float(d);
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return fallback;
    return Value::Int(static_cast<int64_t>(d));
  }
  if (name == "abs") {
    if (v.kind == Kind::kFloat) return Value::Float(std::fabs(v.f));
    if (v.kind == Kind::kInt && v.i != INT64_MIN) return Value::Int(v.i < 0 ? -v.i : v.i);
    if (v.kind == Kind::kBool) return Value::Int(v.b);
    Fail(JinjaErrc::kRender, std::string("bad operand type for abs(): '") + TypeName(v) + "'");
  }
  if (name == "round") {
    if (!v.is_number()) Fail(JinjaErrc::kRender, "round needs a number");
    int64_t precision = std::clamp<int64_t>(OptInt(a, 0, "precision", 0), -20, 20);
    std::string method = OptString(a, 1, "method").value_or("common");
    double x = v.kind == Kind::kFloat ? v.f : static_cast<double>(v.kind == Kind::kBool ? v.b : v.i);
    double scale = std::pow(10.0, static_cast<double>(precision));
    double r = method == "ceil" ? std::ceil(x * scale) : method == "floor" ? std::floor(x * scale) : std::nearbyint(x * scale);
    return Value::Float(r / scale);
  }
  if (name == "indent") {
    const Value* width = Arg(a, 0, "width");
    Str pad = width != nullptr && width->is_string()
                  ? *width->str
                  : Str::Data(std::string(static_cast<size_t>(std::clamp<int64_t>(OptInt(a, 0, "width", 4), 0, 256)), ' '));
    bool first = OptBool(a, 1, "first", false), blank = OptBool(a, 2, "blank", false);
    std::vector<Str> lines = Split(ToStr(v), std::string("\n"), -1, false);
    Str out;
    for (size_t k = 0; k < lines.size(); ++k) {
      if (k) out.AppendData("\n");
      bool add = (k > 0 || first) && (blank || !Strip(lines[k], std::nullopt, true, true).s.empty());
      if (add) out.Append(pad);
      out.Append(lines[k]);
      in.CheckSize(out.s.size());
    }
    return Value::String(std::move(out));
  }
  if (name == "escape" || name == "e" || name == "forceescape") {
    std::string out;
    for (char c : ToStr(v).s) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&#34;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
      }
    }
    return Value::DataString(std::move(out));
  }
  if (name == "wordcount") {
    return Value::Int(static_cast<int64_t>(Split(ToStr(v), std::nullopt, -1, false).size()));
  }
  Fail(JinjaErrc::kRender, "no filter named '" + name + "'");
}

}  // namespace cllm::jinja
