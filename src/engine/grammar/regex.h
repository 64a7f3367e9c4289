// regex.h — a JSON schema `pattern` compiled into a DFA over code points.
//
// JSON schema patterns are ECMA-262 regular expressions, matched anywhere in
// the string unless anchored: `a+` accepts every string containing an "a",
// `^a+$` only strings of a's. The DFA accepts exactly the strings the pattern
// matches (search semantics: an alternative without `^` may be preceded by
// any text, one without `$` followed by any), so a matcher that walks it one
// code point at a time, and refuses a code point that leads nowhere, only
// ever produces matching strings.
//
// Supported: literals, `.`, classes `[...]` / `[^...]` with ranges, escapes
// \d \D \w \W \s \S \t \n \r \f \v \0 \xHH \uHHHH and escaped punctuation,
// groups `(...)`, `(?:...)`, `(?<name>...)`, alternation, the quantifiers
// * + ? {n} {n,} {n,m} (lazy forms are the same language), and `^` / `$` at
// the start / end of a top-level alternative. Refused, naming the feature:
// backreferences, lookaround, \b \B, anchors elsewhere, \p{…}, \c, flags.
// Surrogates (U+D800–DFFF) are never accepted: a JSON string cannot hold one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "engine/grammar/json_schema.h"

namespace cllm::engine::grammar {

inline constexpr uint32_t kMaxRegexDfaStates = 2048;
inline constexpr uint32_t kMaxRegexRepeat = 1000;  // the largest n or m of {n,m}

// RegexBudget: the work (automaton states, edges, closure steps) compiling
// may spend — one budget for all the patterns of a schema, since every
// pattern comes from an untrusted request. ~20 M steps is tens of ms.
struct RegexBudget {
  size_t left = 20'000'000;
  bool Spend(size_t n) {
    if (n > left) return left = 0, false;
    left -= n;
    return true;
  }
};

// AnyBitIn: some bit k in [lo, hi] of `bits` is set (EndLengths' rows).
inline bool AnyBitIn(const uint64_t* bits, uint32_t lo, uint32_t hi) {
  for (uint32_t k = lo; k <= hi; ++k) {
    if (bits[k / 64] >> (k % 64) & 1) return true;
  }
  return false;
}

class RegexDfa {
 public:
  static constexpr uint32_t kDead = 0xFFFFFFFF;
  static constexpr uint32_t kStart = 0;

  // Next is the state after code point cp from state s (kDead: refused).
  uint32_t Next(uint32_t s, uint32_t cp) const;
  // AnyStep: some code point in [lo, hi] leads from s to a state `ok`
  // accepts (a partial UTF-8 sequence or \u escape narrows the next code
  // point to such a range).
  template <typename Ok>
  bool AnyStep(uint32_t s, uint32_t lo, uint32_t hi, Ok ok) const {
    for (uint32_t e = FirstEnding(s, lo); e < first_[s + 1] && edges_[e].lo <= hi; ++e) {
      if (ok(edges_[e].to)) return true;
    }
    return false;
  }
  bool Accepting(uint32_t s) const { return accept_[s] != 0; }
  // MinRest / MaxRest: the fewest / most code points that take state s to an
  // accepting one (MaxRest kUnbounded when a loop can be reached).
  uint32_t MinRest(uint32_t s) const { return min_rest_[s]; }
  uint32_t MaxRest(uint32_t s) const { return max_rest_[s]; }
  // EndLengths: per state, a bitset of the code-point counts 0 … max in which
  // it can reach an accepting state (max / 64 + 1 words per state): with
  // minLength and maxLength both set, the counts left may not be a range.
  std::vector<uint64_t> EndLengths(uint32_t max) const;
  // Matches: the whole of `utf8` (valid UTF-8) is a string the pattern matches.
  bool Matches(std::string_view utf8) const;
  size_t states() const { return accept_.size(); }
  size_t edges() const { return edges_.size(); }
  static constexpr uint32_t kUnbounded = 0xFFFFFFFF;

 private:
  uint32_t FirstEnding(uint32_t s, uint32_t lo) const;  // s's first edge with hi >= lo
  std::vector<std::vector<uint32_t>> Preds() const;     // each state's predecessors

  friend class DfaBuilder;
  struct Edge {
    uint32_t lo, hi, to;
  };
  std::vector<uint32_t>
      first_;  // state s's edges: edges_[first_[s] .. first_[s + 1]), sorted, disjoint
  std::vector<Edge> edges_;
  std::vector<uint8_t> accept_;
  std::vector<uint32_t> min_rest_, max_rest_;
};

// CompileRegex: kInvalidSchema for a malformed pattern, kUnsupported for a
// feature above, kTooLarge past kMaxRegexDfaStates (or a repeat past
// kMaxRegexRepeat) or when `budget` (null: a fresh one) runs out. Messages
// name the pattern's problem, not the schema path.
GrammarResult<std::shared_ptr<const RegexDfa>> CompileRegex(std::string_view pattern,
                                                            RegexBudget* budget = nullptr);

// FormatPattern is the pattern enforced for a JSON schema `format` (date,
// time, date-time, uuid, ipv4, email), or null for a format we do not enforce.
// Each accepts a subset of its format's valid strings (dates never 29 Feb,
// times never a leap second; email a conservative dot-atom form).
const char* FormatPattern(std::string_view format);

}  // namespace cllm::engine::grammar
