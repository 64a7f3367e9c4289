// matcher.h — the pushdown automaton that walks a compiled grammar byte by
// byte.
//
// A stack holds one frame per open grammar node (root, object, array, string,
// number…), each with its small local state. Most of JSON is decided by the
// next byte, so a stack advances deterministically; the exceptions fork the
// stack: an anyOf (one stack per alternative) and an object key (one stack
// per declared property that may come next, one for a free key). A number
// does not know it has ended until a byte it cannot take arrives: it then
// pops and hands the byte to its parent. MatchState is the set of live
// stacks; a byte string is accepted while at least one stays alive.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/grammar/json_schema.h"

namespace cllm::engine::grammar {

inline constexpr size_t kMaxStackDepth = 96;  // open frames per stack
inline constexpr size_t kMaxStacks = 64;      // live alternatives
// anyOf expansions (with $ref) for one byte over all live stacks. The limit
// per path (32, for left-recursive chains) does not bound their product: a
// schema like {"anyOf": [{"$ref": "#"} ×4, {"type": "null"}]} expanded
// ~4^15 paths per byte and held the engine's step for everyone. Past this
// budget the remaining alternatives are not explored (such a schema is then
// matched more narrowly than written, never more widely).
inline constexpr size_t kMaxExpansionsPerByte = 4096;
// The work of one allowed-token set (a walk of the vocabulary trie), in
// stack² per trie edge — what a byte costs with that many live stacks (each
// new stack is compared with the others) — as a multiple of the trie's size:
// a walk with one live stack costs 1 per edge. Past it the walk stops and
// the set holds the tokens found so far (matched more narrowly, never more
// widely). Found by review: 64 live stacks made each step's mask cost ~0.6 s
// for everyone (performance.md §7).
inline constexpr size_t kMaxWalkWorkPerTrieNode = 16;

struct Frame {
  const Node* node = nullptr;
  uint64_t mask = 0;   // kString: excluded names still equal to the key so far
  int64_t val = 0;     // kInteger: absolute value so far
  uint32_t count = 0;  // code points (string), items (array), digits (numbers)
  uint32_t pos = 0;    // literal/prefix/suffix byte; string bytes; object's current property
  uint16_t idx = 0;    // object: next declared property
  uint8_t phase = 0;
  uint8_t ws = 0;      // whitespace bytes at the current place (containers)
  uint8_t aux = 0;     // string: UTF-8 continuation bytes left; object: free key; integer: negative
  uint8_t lo = 0, hi = 0;  // string: range of the next continuation byte

  bool operator==(const Frame& o) const;
};

class MatchState {
 public:
  MatchState() = default;
  // Start is the state before any byte of `g`.
  static MatchState Start(const Grammar& g);

  // Advance feeds one byte; false (and the state emptied) if no stack takes it.
  bool Advance(uint8_t b);
  bool Advance(std::string_view bytes);
  bool dead() const { return ends_.empty(); }
  size_t stacks() const { return ends_.size(); }
  // Complete: the whole output (prefix, value, suffix) has been produced, so
  // end-of-generation may come now.
  bool Complete() const;
  // InStringBody: a single stack whose top is a string between characters
  // (not in an escape or a UTF-8 sequence). Then `*room` is how many more
  // code points it takes. A free key still equal to the start of a declared
  // name is not "in the body": it needs the byte walk.
  bool InStringBody(uint32_t* room) const;
  // InLiteralOfRoot: a single stack in the root's prefix or suffix, where
  // user-defined tokens (e.g. "<tool_call>") may be produced.
  bool InRootLiteral() const;

  // Key appends a canonical byte encoding of the state (cache key).
  void Key(std::string* out) const;
  void Swap(MatchState& o) { frames_.swap(o.frames_); ends_.swap(o.ends_); }
  void CopyFrom(const MatchState& o) { frames_ = o.frames_; ends_ = o.ends_; }

 private:
  std::vector<Frame> frames_;   // stacks one after another
  std::vector<uint32_t> ends_;  // end offset of each stack in frames_
};

}  // namespace cllm::engine::grammar
