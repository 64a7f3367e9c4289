#include "engine/grammar/json_schema.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "engine/grammar/regex.h"

namespace cllm::engine::grammar {

const char* GrammarErrcName(GrammarErrc code) {
  switch (code) {
    case GrammarErrc::kUnsupported: return "unsupported";
    case GrammarErrc::kInvalidSchema: return "invalid_schema";
    case GrammarErrc::kTooLarge: return "too_large";
  }
  return "unknown";
}

// Compiled from ordered_json: properties keep the order of the schema's text.
using json = nlohmann::ordered_json;

namespace {

// Keywords that only annotate: accepted anywhere and ignored.
const std::set<std::string>& Annotations() {
  static const std::set<std::string> k = {"title", "description", "$schema", "$id", "$comment",
                                          "default", "examples", "strict", "$defs", "definitions"};
  return k;
}

const std::set<std::string>& Implemented() {
  static const std::set<std::string> k = {
      "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
      "enum", "const", "anyOf", "oneOf", "$ref", "minimum", "maximum", "exclusiveMinimum",
      "exclusiveMaximum", "minLength", "maxLength", "pattern", "format"};
  return k;
}

Error<GrammarErrc> Bad(GrammarErrc c, const std::string& path, const std::string& msg) {
  return MakeError(c, (path.empty() ? std::string("schema") : "schema at " + path) + ": " + msg);
}

// JsonTypeMatches says whether `v` is an instance of JSON schema type `t`.
bool JsonTypeMatches(const json& v, const std::string& t) {
  if (t == "string") return v.is_string();
  if (t == "integer") return v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
  if (t == "number") return v.is_number();
  if (t == "boolean") return v.is_boolean();
  if (t == "null") return v.is_null();
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  return false;
}

}  // namespace

class SchemaCompiler {
 public:
  SchemaCompiler(const json& doc, Grammar& g) : doc_(doc), g_(g) {}

  GrammarResult<const Node*> Top(const json& schema) {
    // {} (annotations only) at the top: any JSON object, as tools' arguments.
    bool only_annotations = schema.is_object();
    if (schema.is_object()) {
      for (const auto& [k, v] : schema.items()) {
        if (!Annotations().count(k)) only_annotations = false;
      }
    }
    if (only_annotations) return AnyObject(0);
    return Compile(schema, "", 0);
  }

  GrammarResult<Node*> New(NodeKind kind) {
    if (g_.nodes_.size() >= kMaxSchemaNodes) {
      return MakeError(GrammarErrc::kTooLarge, "schema compiles to more than " + std::to_string(kMaxSchemaNodes) + " nodes");
    }
    g_.nodes_.push_back(std::make_unique<Node>());
    g_.nodes_.back()->kind = kind;
    return g_.nodes_.back().get();
  }

  void SetRoot(const Node* root) { g_.root_ = root; }

  GrammarResult<const Node*> Literal(std::string bytes) {
    CLLM_ASSIGN_OR_RETURN(Node * n, New(NodeKind::kLiteral));
    n->literal = std::move(bytes);
    return n;
  }

 private:
  GrammarResult<const Node*> Compile(const json& s, const std::string& path, int depth) {
    if (depth > kMaxSchemaDepth) return Bad(GrammarErrc::kTooLarge, path, "nests deeper than " + std::to_string(kMaxSchemaDepth));
    if (s.is_boolean()) {
      if (s.get<bool>()) return AnyValue(0);
      return Bad(GrammarErrc::kInvalidSchema, path, "schema false matches nothing");
    }
    if (!s.is_object()) return Bad(GrammarErrc::kInvalidSchema, path, "a schema must be an object or a boolean");
    for (const auto& [k, v] : s.items()) {
      if (!Implemented().count(k) && !Annotations().count(k)) {
        return Bad(GrammarErrc::kUnsupported, path, "unsupported keyword '" + k + "'");
      }
    }
    if (s.contains("$ref")) return Ref(s, path, depth);
    if (s.contains("anyOf") || s.contains("oneOf")) {
      if (s.contains("anyOf") && s.contains("oneOf")) return Bad(GrammarErrc::kUnsupported, path, "anyOf together with oneOf");
      const char* key = s.contains("anyOf") ? "anyOf" : "oneOf";
      for (const auto& [k, v] : s.items()) {
        if (k != key && !Annotations().count(k)) {
          return Bad(GrammarErrc::kUnsupported, path, std::string("'") + k + "' next to '" + key + "' (put it inside each alternative)");
        }
      }
      const json& alts = s[key];
      if (!alts.is_array() || alts.empty()) return Bad(GrammarErrc::kInvalidSchema, path, std::string("'") + key + "' must be a non-empty array");
      CLLM_ASSIGN_OR_RETURN(Node * n, New(NodeKind::kAnyOf));
      for (size_t i = 0; i < alts.size(); ++i) {
        CLLM_ASSIGN_OR_RETURN(const Node* a, Compile(alts[i], path + "/" + key + "/" + std::to_string(i), depth + 1));
        n->alts.push_back(a);
      }
      return n;
    }
    std::vector<std::string> types;
    if (s.contains("type")) {
      const json& t = s["type"];
      if (t.is_string()) {
        types.push_back(t.get<std::string>());
      } else if (t.is_array() && !t.empty()) {
        for (const auto& e : t) {
          if (!e.is_string()) return Bad(GrammarErrc::kInvalidSchema, path, "'type' must be a string or an array of strings");
          if (std::find(types.begin(), types.end(), e.get<std::string>()) == types.end()) {
            types.push_back(e.get<std::string>());  // once each: ["string", "string", …] is one type
          }
        }
      } else {
        return Bad(GrammarErrc::kInvalidSchema, path, "'type' must be a string or an array of strings");
      }
      for (const auto& t1 : types) {
        static const std::set<std::string> known = {"string", "integer", "number", "boolean", "null", "object", "array"};
        if (!known.count(t1)) return Bad(GrammarErrc::kInvalidSchema, path, "unknown type '" + t1 + "'");
      }
    }
    if (s.contains("enum") || s.contains("const")) return Enum(s, types, path);
    if (types.empty()) {
      if (s.contains("properties") || s.contains("required") || s.contains("additionalProperties")) {
        types.push_back("object");
      } else if (s.contains("items") || s.contains("minItems") || s.contains("maxItems")) {
        types.push_back("array");
      } else if (s.contains("minLength") || s.contains("maxLength") || s.contains("pattern") ||
                 (s.contains("format") && s["format"].is_string() && FormatPattern(s["format"].get<std::string>()))) {
        types.push_back("string");
      } else if (s.contains("minimum") || s.contains("maximum") || s.contains("exclusiveMinimum") ||
                 s.contains("exclusiveMaximum")) {
        types.push_back("number");
      } else {
        return AnyValue(0);
      }
    }
    std::vector<const Node*> nodes;
    for (const auto& t : types) {
      CLLM_ASSIGN_OR_RETURN(const Node* n, Typed(s, t, path, depth));
      nodes.push_back(n);
    }
    if (nodes.size() == 1) return nodes[0];
    CLLM_ASSIGN_OR_RETURN(Node * any, New(NodeKind::kAnyOf));
    any->alts = std::move(nodes);
    return any;
  }

  GrammarResult<const Node*> Ref(const json& s, const std::string& path, int depth) {
    for (const auto& [k, v] : s.items()) {
      if (k != "$ref" && !Annotations().count(k)) return Bad(GrammarErrc::kUnsupported, path, "'" + k + "' next to '$ref'");
    }
    if (!s["$ref"].is_string()) return Bad(GrammarErrc::kInvalidSchema, path, "'$ref' must be a string");
    const std::string ref = s["$ref"].get<std::string>();
    if (auto it = refs_.find(ref); it != refs_.end()) return it->second;
    const json* target = nullptr;
    if (ref == "#") {
      target = &doc_;
    } else {
      for (const char* base : {"#/$defs/", "#/definitions/"}) {
        std::string b = base;
        if (ref.compare(0, b.size(), b) != 0) continue;
        std::string name = ref.substr(b.size());
        std::string unescaped;  // JSON pointer: ~1 is '/', ~0 is '~'
        for (size_t i = 0; i < name.size(); ++i) {
          if (name[i] == '~' && i + 1 < name.size() && (name[i + 1] == '0' || name[i + 1] == '1')) {
            unescaped += name[i + 1] == '0' ? '~' : '/';
            ++i;
          } else if (name[i] == '/' || name[i] == '~') {
            return Bad(GrammarErrc::kUnsupported, path, "'$ref' " + ref.substr(0, 64) + " is not #/$defs/NAME");
          } else {
            unescaped += name[i];
          }
        }
        std::string section = b.substr(2, b.size() - 3);
        if (doc_.is_object() && doc_.contains(section) && doc_[section].is_object() && doc_[section].contains(unescaped)) {
          target = &doc_[section][unescaped];
        }
      }
      if (!target) return Bad(GrammarErrc::kInvalidSchema, path, "'$ref' " + ref.substr(0, 64) + " does not name a definition of this schema (only #, #/$defs/NAME, #/definitions/NAME)");
    }
    // A placeholder first, so a recursive definition points back at it.
    CLLM_ASSIGN_OR_RETURN(Node * n, New(NodeKind::kAnyOf));
    refs_[ref] = n;
    CLLM_ASSIGN_OR_RETURN(const Node* t, Compile(*target, ref.substr(1), depth + 1));
    // A definition that is only a reference to itself would never produce a byte.
    for (const Node* p = t; p && p->kind == NodeKind::kAnyOf && p->alts.size() <= 1;
         p = p->alts.empty() ? nullptr : p->alts[0]) {
      if (p == n) return Bad(GrammarErrc::kInvalidSchema, path, "'$ref' " + ref.substr(0, 64) + " refers only to itself");
    }
    n->alts.push_back(t);
    return n;
  }

  GrammarResult<const Node*> Enum(const json& s, const std::vector<std::string>& types, const std::string& path) {
    std::vector<json> values;
    if (s.contains("const")) values.push_back(s["const"]);
    if (s.contains("enum")) {
      if (!s["enum"].is_array() || s["enum"].empty()) return Bad(GrammarErrc::kInvalidSchema, path, "'enum' must be a non-empty array");
      for (const auto& v : s["enum"]) {
        if (s.contains("const") && v != s["const"]) continue;
        values.push_back(v);
      }
      if (s.contains("const")) values.resize(std::min<size_t>(values.size(), 1));
    }
    std::shared_ptr<const RegexDfa> re;  // strings must also match a pattern / format
    if (std::any_of(values.begin(), values.end(), [](const json& v) { return v.is_string(); })) {
      CLLM_ASSIGN_OR_RETURN(re, StringPattern(s, path));
    }
    CLLM_ASSIGN_OR_RETURN(Node * n, New(NodeKind::kAnyOf));
    std::set<std::string> seen;
    for (const auto& v : values) {
      bool ok = types.empty();
      for (const auto& t : types) ok = ok || JsonTypeMatches(v, t);
      if (!ok || (re != nullptr && v.is_string() && !re->Matches(v.get<std::string>()))) continue;
      std::string text = v.dump(-1, ' ', false, json::error_handler_t::replace);
      if (!seen.insert(text).second) continue;
      CLLM_ASSIGN_OR_RETURN(const Node* lit, Literal(text));
      n->alts.push_back(lit);
    }
    if (n->alts.empty()) {
      return Bad(GrammarErrc::kInvalidSchema, path, "no 'enum'/'const' value matches 'type' (and 'pattern')");
    }
    return n;
  }

  GrammarResult<uint32_t> Count(const json& s, const char* key, const std::string& path, uint32_t dflt) {
    if (!s.contains(key)) return dflt;
    const json& v = s[key];
    if (!v.is_number_integer() || (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0)) {
      return Bad(GrammarErrc::kInvalidSchema, path, std::string("'") + key + "' must be a non-negative integer");
    }
    uint64_t u = v.get<uint64_t>();
    return static_cast<uint32_t>(std::min<uint64_t>(u, std::numeric_limits<uint32_t>::max()));
  }

  GrammarResult<const Node*> Typed(const json& s, const std::string& t, const std::string& path, int depth) {
    if (t == "null") return Literal("null");
    if (t == "boolean") {
      CLLM_ASSIGN_OR_RETURN(Node * n, New(NodeKind::kAnyOf));
      CLLM_ASSIGN_OR_RETURN(const Node* a, Literal("true"));
      CLLM_ASSIGN_OR_RETURN(const Node* b, Literal("false"));
      n->alts = {a, b};
      return n;
    }
    if (t == "string") {
      CLLM_ASSIGN_OR_RETURN(Node * n, New(NodeKind::kString));
      CLLM_ASSIGN_OR_RETURN(n->min_len, Count(s, "minLength", path, 0));
      CLLM_ASSIGN_OR_RETURN(n->max_len, Count(s, "maxLength", path, std::numeric_limits<uint32_t>::max()));
      if (n->min_len > n->max_len) return Bad(GrammarErrc::kInvalidSchema, path, "minLength above maxLength");
      CLLM_ASSIGN_OR_RETURN(n->regex, StringPattern(s, path));
      if (n->regex == nullptr) return n;
      bool fits = n->regex->MinRest(RegexDfa::kStart) <= n->max_len && n->regex->MaxRest(RegexDfa::kStart) >= n->min_len;
      if (fits && n->min_len > 0 && n->max_len != std::numeric_limits<uint32_t>::max()) {
        // A window of lengths: the counts a state can still end in may have
        // gaps (^(a|abcd)$ ends in 1 or 4), so keep them exactly.
        if (n->max_len > kMaxPatternWindow) {
          return Bad(GrammarErrc::kUnsupported, path,
                     "'pattern' with 'minLength' and a 'maxLength' above " + std::to_string(kMaxPatternWindow));
        }
        if (!regex_budget_.Spend((size_t{n->max_len} + 1) * (n->regex->edges() + n->regex->states()))) {
          return Bad(GrammarErrc::kTooLarge, path, "pattern: too costly to compile with these lengths");
        }
        n->end_words = n->max_len / 64 + 1;
        n->end_lengths = n->regex->EndLengths(n->max_len);
        fits = AnyBitIn(n->end_lengths.data(), n->min_len, n->max_len);  // the start state's row
      }
      if (!fits) return Bad(GrammarErrc::kInvalidSchema, path, "no string of the pattern's is within minLength / maxLength");
      return n;
    }
    if (t == "integer" || t == "number") return Numeric(s, t == "integer", path);
    if (t == "array") {
      CLLM_ASSIGN_OR_RETURN(Node * n, New(NodeKind::kArray));
      CLLM_ASSIGN_OR_RETURN(n->min_items, Count(s, "minItems", path, 0));
      CLLM_ASSIGN_OR_RETURN(n->max_items, Count(s, "maxItems", path, std::numeric_limits<uint32_t>::max()));
      if (n->min_items > n->max_items) return Bad(GrammarErrc::kInvalidSchema, path, "minItems above maxItems");
      if (s.contains("items")) {
        if (s["items"].is_array()) return Bad(GrammarErrc::kUnsupported, path, "'items' as an array (tuple validation)");
        CLLM_ASSIGN_OR_RETURN(n->items, Compile(s["items"], path + "/items", depth + 1));
      } else {
        CLLM_ASSIGN_OR_RETURN(n->items, AnyValue(1));
      }
      return n;
    }
    return Object(s, path, depth);
  }

  // StringPattern: the automaton of a string schema's `pattern` or `format`
  // (null: neither).
  GrammarResult<std::shared_ptr<const RegexDfa>> StringPattern(const json& s, const std::string& path) {
    std::string pattern;
    if (s.contains("pattern")) {
      if (!s["pattern"].is_string()) return Bad(GrammarErrc::kInvalidSchema, path, "'pattern' must be a string");
      pattern = s["pattern"].get<std::string>();
    }
    if (s.contains("format")) {
      if (!s["format"].is_string()) return Bad(GrammarErrc::kInvalidSchema, path, "'format' must be a string");
      const std::string format = s["format"].get<std::string>();
      const char* p = FormatPattern(format);
      if (p == nullptr) {
        return Bad(GrammarErrc::kUnsupported, path,
                   "unsupported format '" + format + "' (enforced: date, time, date-time, uuid, ipv4, email)");
      }
      if (s.contains("pattern")) return Bad(GrammarErrc::kUnsupported, path, "'format' together with 'pattern'");
      pattern = p;
    } else if (!s.contains("pattern")) {
      return std::shared_ptr<const RegexDfa>();
    }
    auto cached = patterns_.find(pattern);  // a pattern is compiled once per schema
    if (cached != patterns_.end()) return cached->second;
    auto dfa = CompileRegex(pattern, &regex_budget_);
    if (!dfa.ok()) return Bad(dfa.code(), path, dfa.detail());
    patterns_.emplace(pattern, *dfa);
    return std::move(dfa).value();
  }

  GrammarResult<const Node*> Numeric(const json& s, bool integer, const std::string& path) {
    bool bounded = false;
    double lo = -static_cast<double>(kMaxInteger), hi = static_cast<double>(kMaxInteger);
    for (const char* key : {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"}) {
      if (!s.contains(key)) continue;
      const json& v = s[key];
      if (!v.is_number() || !std::isfinite(v.get<double>())) {
        return Bad(GrammarErrc::kInvalidSchema, path, std::string("'") + key + "' must be a number (draft 4's boolean form is not supported)");
      }
      double d = v.get<double>();
      bounded = true;
      std::string k = key;
      // The integers a bound admits: ⌈min⌉, ⌊xmin⌋+1, ⌊max⌋, ⌈xmax⌉−1.
      if (k == "minimum") lo = std::max(lo, std::ceil(d));
      if (k == "exclusiveMinimum") lo = std::max(lo, std::floor(d) + 1);
      if (k == "maximum") hi = std::min(hi, std::floor(d));
      if (k == "exclusiveMaximum") hi = std::min(hi, std::ceil(d) - 1);
    }
    if (!integer && !bounded) {
      CLLM_ASSIGN_OR_RETURN(Node * num, New(NodeKind::kNumber));
      return num;
    }
    lo = std::max(lo, -static_cast<double>(kMaxInteger));
    hi = std::min(hi, static_cast<double>(kMaxInteger));
    if (lo > hi) return Bad(GrammarErrc::kInvalidSchema, path, integer ? "the bounds admit no integer" : "the bounds admit no integer (bounded numbers are produced as integers)");
    CLLM_ASSIGN_OR_RETURN(Node * n, New(NodeKind::kInteger));
    n->lo = static_cast<int64_t>(lo);
    n->hi = static_cast<int64_t>(hi);
    return n;
  }

  GrammarResult<const Node*> Object(const json& s, const std::string& path, int depth) {
    CLLM_ASSIGN_OR_RETURN(Node * n, New(NodeKind::kObject));
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) return Bad(GrammarErrc::kInvalidSchema, path, "'required' must be an array of strings");
      for (const auto& r : s["required"]) {
        if (!r.is_string()) return Bad(GrammarErrc::kInvalidSchema, path, "'required' must be an array of strings");
        required.insert(r.get<std::string>());
      }
    }
    if (s.contains("properties")) {
      const json& props = s["properties"];
      if (!props.is_object()) return Bad(GrammarErrc::kInvalidSchema, path, "'properties' must be an object");
      if (props.size() > kMaxProperties) return Bad(GrammarErrc::kTooLarge, path, "more than " + std::to_string(kMaxProperties) + " properties");
      for (const auto& [name, sub] : props.items()) {
        Property p;
        p.name = name;
        p.key_json = json(name).dump(-1, ' ', false, json::error_handler_t::replace);
        CLLM_ASSIGN_OR_RETURN(p.key, Literal(p.key_json));
        CLLM_ASSIGN_OR_RETURN(p.value, Compile(sub, path + "/properties/" + name.substr(0, 64), depth + 1));
        p.required = required.erase(name) > 0;
        n->props.push_back(std::move(p));
      }
    }
    if (!required.empty()) {
      return Bad(GrammarErrc::kUnsupported, path, "'required' names '" + required.begin()->substr(0, 64) + "', which is not in 'properties'");
    }
    n->next_required.assign(n->props.size() + 1, static_cast<uint32_t>(n->props.size()));
    for (size_t i = n->props.size(); i-- > 0;) {
      n->next_required[i] = n->props[i].required ? static_cast<uint32_t>(i) : n->next_required[i + 1];
    }
    if (s.contains("additionalProperties")) {
      const json& a = s["additionalProperties"];
      if (a.is_boolean()) {
        if (a.get<bool>()) {
          CLLM_ASSIGN_OR_RETURN(n->additional, AnyValue(1));
        }
      } else {
        CLLM_ASSIGN_OR_RETURN(n->additional, Compile(a, path + "/additionalProperties", depth + 1));
      }
    } else if (n->props.empty()) {
      CLLM_ASSIGN_OR_RETURN(n->additional, AnyValue(1));
    }
    if (n->additional) {
      CLLM_ASSIGN_OR_RETURN(Node * k, New(NodeKind::kString));
      for (const auto& p : n->props) k->exclude.push_back(p.name);
      n->free_key = k;
    }
    return n;
  }

  // AnyValue(d) is any JSON value nested at most kAnyJsonDepth − d deep.
  GrammarResult<const Node*> AnyValue(int d) {
    if (static_cast<int>(any_value_.size()) > d && any_value_[d]) return any_value_[d];
    if (any_value_.size() <= static_cast<size_t>(d)) any_value_.resize(d + 1, nullptr);
    CLLM_ASSIGN_OR_RETURN(Node * n, New(NodeKind::kAnyOf));
    any_value_[d] = n;
    if (d < kAnyJsonDepth) {
      CLLM_ASSIGN_OR_RETURN(const Node* o, AnyObject(d));
      CLLM_ASSIGN_OR_RETURN(Node * a, New(NodeKind::kArray));
      CLLM_ASSIGN_OR_RETURN(a->items, AnyValue(d + 1));
      n->alts.push_back(o);
      n->alts.push_back(a);
    }
    CLLM_ASSIGN_OR_RETURN(const Node* str, New(NodeKind::kString));
    CLLM_ASSIGN_OR_RETURN(const Node* num, New(NodeKind::kNumber));
    n->alts.push_back(str);
    n->alts.push_back(num);
    for (const char* lit : {"true", "false", "null"}) {
      CLLM_ASSIGN_OR_RETURN(const Node* l, Literal(lit));
      n->alts.push_back(l);
    }
    return n;
  }

  GrammarResult<const Node*> AnyObject(int d) {
    CLLM_ASSIGN_OR_RETURN(Node * o, New(NodeKind::kObject));
    o->next_required = {0};
    CLLM_ASSIGN_OR_RETURN(o->additional, AnyValue(std::min(d + 1, kAnyJsonDepth)));
    CLLM_ASSIGN_OR_RETURN(o->free_key, New(NodeKind::kString));
    return o;
  }

  const json& doc_;
  Grammar& g_;
  std::map<std::string, const Node*> refs_;
  std::map<std::string, std::shared_ptr<const RegexDfa>> patterns_;
  RegexBudget regex_budget_;  // shared by every pattern of the schema
  std::vector<const Node*> any_value_;
};

GrammarResult<std::shared_ptr<const Grammar>> CompileJsonSchema(const nlohmann::json& schema, std::string prefix,
                                                                std::string suffix) {
  // Already sorted by name: that order it is.
  return CompileJsonSchema(json::parse(schema.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)),
                           std::move(prefix), std::move(suffix));
}

GrammarResult<std::shared_ptr<const Grammar>> CompileJsonSchema(const json& schema, std::string prefix,
                                                                std::string suffix) {
  auto g = std::make_shared<Grammar>();
  SchemaCompiler c(schema, *g);
  CLLM_ASSIGN_OR_RETURN(const Node* value, c.Top(schema));
  CLLM_ASSIGN_OR_RETURN(Node * root, c.New(NodeKind::kRoot));
  root->literal = std::move(prefix);
  root->suffix = std::move(suffix);
  root->alts.push_back(value);
  c.SetRoot(root);
  return std::shared_ptr<const Grammar>(std::move(g));
}

}  // namespace cllm::engine::grammar
