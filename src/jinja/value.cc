#include "jinja/value.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace cllm::jinja {

// --- Str --------------------------------------------------------------------

Str Str::Template(std::string text) {
  Str out{std::move(text), {}};
  if (!out.s.empty()) out.tmpl.push_back({0, out.s.size()});
  return out;
}

void Str::AppendTemplate(std::string_view t) {
  if (t.empty()) return;
  size_t b = s.size();
  s.append(t);
  if (!tmpl.empty() && tmpl.back().end == b) {
    tmpl.back().end = s.size();  // adjacent: one span
  } else {
    tmpl.push_back({b, s.size()});
  }
}

void Str::Append(const Str& o) {
  size_t shift = s.size();
  s.append(o.s);
  for (const Span& sp : o.tmpl) {
    Span moved{sp.begin + shift, sp.end + shift};
    if (!tmpl.empty() && tmpl.back().end == moved.begin) {
      tmpl.back().end = moved.end;
    } else {
      tmpl.push_back(moved);
    }
  }
}

Str Str::Slice(size_t b, size_t e) const {
  if (e > s.size()) e = s.size();
  if (b > e) b = e;
  Str out{s.substr(b, e - b), {}};
  for (const Span& sp : tmpl) {
    size_t lo = std::max(sp.begin, b), hi = std::min(sp.end, e);
    if (lo < hi) out.tmpl.push_back({lo - b, hi - b});
  }
  return out;
}

bool Str::AllTemplate() const {
  if (s.empty()) return true;
  return tmpl.size() == 1 && tmpl[0].begin == 0 && tmpl[0].end == s.size();
}

// --- Value constructors -------------------------------------------------------

Value Value::String(Str s) {
  Value v = Of(Kind::kString);
  v.str = std::make_shared<const Str>(std::move(s));
  return v;
}

Value Value::List(std::vector<Value> items) {
  Value v = Of(Kind::kList);
  v.list = std::make_shared<const std::vector<Value>>(std::move(items));
  return v;
}

Value Value::MakeDict(std::shared_ptr<Dict> d) {
  Value v = Of(Kind::kDict);
  v.dict = std::move(d);
  return v;
}

Value Value::Namespace(std::shared_ptr<Dict> d) {
  Value v = Of(Kind::kNamespace);
  v.dict = std::move(d);
  return v;
}

Value Value::Function(std::string name, std::function<Value(Interp&, CallArgs&)> fn) {
  Value v = Of(Kind::kCallable);
  v.call = std::make_shared<const Callable>(Callable{std::move(name), std::move(fn)});
  return v;
}

const Value* Dict::Find(std::string_view key) const {
  auto it = index.find(std::string(key));
  return it == index.end() ? nullptr : &items[it->second].second;
}

void Dict::Set(const std::string& key, Value v) {
  auto it = index.find(key);
  if (it != index.end()) {
    items[it->second].second = std::move(v);
    return;
  }
  index.emplace(key, items.size());
  items.emplace_back(key, std::move(v));
}

// --- Python semantics -----------------------------------------------------------

const char* TypeName(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined: return "Undefined";
    case Kind::kNone: return "NoneType";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "str";
    case Kind::kList: return "list";
    case Kind::kDict: return "dict";
    case Kind::kNamespace: return "Namespace";
    case Kind::kCallable: return "function";
  }
  return "object";
}

bool Truthy(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool: return v.b;
    case Kind::kInt: return v.i != 0;
    case Kind::kFloat: return v.f != 0;
    case Kind::kString: return !v.str->s.empty();
    case Kind::kList: return !v.list->empty();
    case Kind::kDict: return !v.dict->items.empty();
    case Kind::kNamespace:
    case Kind::kCallable: return true;
  }
  return false;
}

std::string FloatRepr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  // Shortest round-trip digits, then Python's layout: fixed for exponents
  // in [-4, 16), scientific (two-digit exponent at least) otherwise.
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t e_pos = sci.find('e');
  std::string mant = sci.substr(0, e_pos);
  int exp = std::stoi(sci.substr(e_pos + 1));
  std::string digits;
  for (char c : mant) {
    if (c != '.') digits += c;
  }
  std::string out;
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      if (digits.size() <= static_cast<size_t>(exp) + 1) {
        out = digits + std::string(static_cast<size_t>(exp) + 1 - digits.size(), '0') + ".0";
      } else {
        out = digits.substr(0, static_cast<size_t>(exp) + 1) + "." + digits.substr(static_cast<size_t>(exp) + 1);
      }
    } else {
      out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof(eb), "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += eb;
  }
  return neg ? "-" + out : out;
}

namespace {

std::string StrRepr(const std::string& s) {
  char quote = '\'';
  if (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) quote = '"';
  std::string out(1, quote);
  for (unsigned char c : s) {
    if (c == static_cast<unsigned char>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof(b), "\\x%02x", c);
      out += b;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
  return out;
}

}  // namespace

std::string Repr(const Value& v) {
  switch (v.kind) {
    case Kind::kString: return StrRepr(v.str->s);
    case Kind::kList: {
      std::string out = "[";
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += ", ";
        out += Repr((*v.list)[k]);
      }
      return out + "]";
    }
    case Kind::kDict: {
      std::string out = "{";
      bool first = true;
      for (const auto& [key, val] : v.dict->items) {
        if (!first) out += ", ";
        first = false;
        out += StrRepr(key) + ": " + Repr(val);
      }
      return out + "}";
    }
    case Kind::kNamespace: return "<Namespace>";
    case Kind::kCallable: return "<function " + v.call->name + ">";
    default: return ToStr(v).s;
  }
}

Str ToStr(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined: return {};
    case Kind::kNone: return Str::Data("None");
    case Kind::kBool: return Str::Data(v.b ? "True" : "False");
    case Kind::kInt: return Str::Data(std::to_string(v.i));
    case Kind::kFloat: return Str::Data(FloatRepr(v.f));
    case Kind::kString: return *v.str;
    default: return Str::Data(Repr(v));
  }
}

bool Equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind == Kind::kFloat || b.kind == Kind::kFloat) {
      double x = a.kind == Kind::kFloat ? a.f : static_cast<double>(a.kind == Kind::kBool ? a.b : a.i);
      double y = b.kind == Kind::kFloat ? b.f : static_cast<double>(b.kind == Kind::kBool ? b.b : b.i);
      return x == y;
    }
    int64_t x = a.kind == Kind::kBool ? a.b : a.i, y = b.kind == Kind::kBool ? b.b : b.i;
    return x == y;
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Kind::kUndefined:
    case Kind::kNone: return true;
    case Kind::kString: return a.str->s == b.str->s;
    case Kind::kList: {
      if (a.list->size() != b.list->size()) return false;
      for (size_t k = 0; k < a.list->size(); ++k) {
        if (!Equal((*a.list)[k], (*b.list)[k])) return false;
      }
      return true;
    }
    case Kind::kDict: {
      if (a.dict->items.size() != b.dict->items.size()) return false;
      for (const auto& [key, val] : a.dict->items) {
        const Value* o = b.dict->Find(key);
        if (o == nullptr || !Equal(val, *o)) return false;
      }
      return true;
    }
    case Kind::kNamespace: return a.dict == b.dict;
    case Kind::kCallable: return a.call == b.call;
    default: return false;
  }
}

size_t CodePointCount(std::string_view s) {
  size_t n = 0;
  for (size_t k = 0; k < s.size(); ++k) n += k == 0 || (static_cast<unsigned char>(s[k]) & 0xC0) != 0x80;
  return n;
}

std::vector<size_t> CodePointOffsets(std::string_view s) {
  std::vector<size_t> out;
  out.reserve(s.size() + 1);
  for (size_t k = 0; k < s.size(); ++k) {
    if (k == 0 || (static_cast<unsigned char>(s[k]) & 0xC0) != 0x80) out.push_back(k);
  }
  out.push_back(s.size());
  return out;
}

}  // namespace cllm::jinja
