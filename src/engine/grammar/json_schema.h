// json_schema.h — a JSON schema compiled into a grammar of JSON values.
//
// The grammar is a graph of nodes (a $ref to a definition points at that
// definition's node, so recursive schemas are graphs with cycles), and the
// matcher (matcher.h) walks it byte by byte as a pushdown automaton. Output is
// compact JSON with at most kMaxWhitespace whitespace bytes between tokens.
//
// Supported keywords (anything else is refused, naming the keyword):
//   type (one type or an array of types), properties, required,
//   additionalProperties (false, true or a schema; ABSENT next to
//   `properties` means false: only the declared properties are produced),
//   items, minItems, maxItems, enum, const, anyOf, oneOf (matched as anyOf:
//   the alternatives of a generated value are not checked for exclusivity),
//   $ref to "#", "#/$defs/NAME" or "#/definitions/NAME", $defs/definitions,
//   minimum, maximum, exclusiveMinimum, exclusiveMaximum (numbers: see below),
//   minLength, maxLength, pattern (regex.h), format (date, time, date-time,
//   uuid, ipv4, email on strings; ignored on other types); and the
//   annotations title, description, $schema, $id, $comment, default,
//   examples, strict.
// Properties are produced in the schema's order; an optional property may be
// omitted; additional properties (when allowed) come after the declared ones
// and never reuse a declared name.
// Integers: at most 15 digits, bounds enforced exactly (digit by digit).
// Numbers without bounds: -?(0|[1-9]d{0,14})(.d{1,15})?([eE][+-]?d{1,2})?.
// Numbers with a bound: produced as integers within the bounds (valid for
// "number"; refused if the range holds no integer).
// Strings: valid UTF-8, control characters escaped, \u escapes without
// surrogates; minLength/maxLength count code points like the JSON schema spec.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/result.h"

namespace cllm::engine::grammar {

enum class GrammarErrc {
  kUnsupported = 1,  // a keyword or keyword value we do not implement
  kInvalidSchema,    // not a valid schema (wrong types, bad $ref, empty ranges)
  kTooLarge,         // over the size / depth limits
};
const char* GrammarErrcName(GrammarErrc code);

template <typename T>
using GrammarResult = Result<T, GrammarErrc>;

inline constexpr int kMaxWhitespace = 4;        // bytes of whitespace allowed at each place
inline constexpr size_t kMaxSchemaNodes = 4096;  // compiled nodes per schema
inline constexpr int kMaxSchemaDepth = 32;       // nesting of the schema document
inline constexpr size_t kMaxProperties = 64;     // declared properties per object
inline constexpr int kAnyJsonDepth = 6;          // nesting of free JSON values ({"type":"object"} etc.)
inline constexpr int64_t kMaxInteger = 999'999'999'999'999;  // 15 digits
inline constexpr uint32_t kMaxPatternWindow = 1024;  // maxLength of a pattern string that also has a minLength

struct Node;
class RegexDfa;

struct Property {
  std::string key_json;  // the name as a JSON string, with quotes
  std::string name;      // the raw name
  const Node* key = nullptr;    // literal node of key_json
  const Node* value = nullptr;
  bool required = false;
};

enum class NodeKind : uint8_t { kLiteral, kString, kInteger, kNumber, kObject, kArray, kAnyOf, kRoot };

struct Node {
  NodeKind kind = NodeKind::kLiteral;
  std::string literal;                 // kLiteral: exact bytes; kRoot: prefix
  std::string suffix;                  // kRoot
  // kString: lengths in code points; `exclude` are names a free key must not take.
  uint32_t min_len = 0;
  uint32_t max_len = std::numeric_limits<uint32_t>::max();
  std::vector<std::string> exclude;
  std::shared_ptr<const RegexDfa> regex;  // `pattern` or `format`: the decoded text must match (regex.h)
  std::vector<uint64_t> end_lengths;      // with both min_len > 0 and max_len: RegexDfa::EndLengths(max_len)
  uint32_t end_words = 0;                 // words per state in end_lengths
  // kInteger
  int64_t lo = -kMaxInteger, hi = kMaxInteger;
  // kObject: declared properties in order; next_required[i] = first required index ≥ i (or size)
  std::vector<Property> props;
  std::vector<uint32_t> next_required;
  const Node* additional = nullptr;    // free keys' value schema; null: none
  const Node* free_key = nullptr;      // kString node for free keys
  // kArray
  const Node* items = nullptr;
  uint32_t min_items = 0, max_items = std::numeric_limits<uint32_t>::max();
  // kAnyOf (also kRoot's value: alts[0])
  std::vector<const Node*> alts;
};

// Grammar owns the nodes of one compiled schema; root() is a kRoot node for
// prefix + value + suffix.
class Grammar {
 public:
  const Node* root() const { return root_; }
  size_t size() const { return nodes_.size(); }

 private:
  friend class SchemaCompiler;
  std::vector<std::unique_ptr<Node>> nodes_;
  const Node* root_ = nullptr;
};

// CompileJsonSchema builds the grammar for `prefix` + one JSON value matching
// `schema` + `suffix`. At the top, {} (or a schema of annotations only) and
// {"type":"object"} mean any JSON object; nested, {} means any JSON value.
// Errors name the offending keyword and its JSON pointer. Properties are
// produced in the order of `schema`: an ordered_json keeps the text's order,
// a json (a std::map) has them sorted by name.
GrammarResult<std::shared_ptr<const Grammar>> CompileJsonSchema(const nlohmann::ordered_json& schema,
                                                                std::string prefix = "",
                                                                std::string suffix = "");
GrammarResult<std::shared_ptr<const Grammar>> CompileJsonSchema(const nlohmann::json& schema,
                                                                std::string prefix = "",
                                                                std::string suffix = "");

}  // namespace cllm::engine::grammar
