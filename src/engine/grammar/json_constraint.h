// json_constraint.h — JSON-schema-constrained sampling: the per-step token
// mask over the vocabulary.
//
// Tokens are byte strings (Tokenizer::TokenToPiece). The vocabulary is
// indexed once per tokenizer (VocabIndex, shared): a byte trie of every
// token, the "plain" tokens (complete UTF-8 text without '"', '\\' or
// control bytes: what may continue a JSON string whatever comes before) with
// their length in code points, and a trie of the rest. Each step the matcher
// state (matcher.h) walks a trie, pruning a subtree at its first rejected
// byte; inside a string only the small trie is walked and the plain tokens
// are allowed by their length. The allowed set is cached per matcher state
// in the compiled grammar (JsonGrammar), shared by the requests that use it.
//
// Control tokens are never allowed; user-defined tokens (e.g. Qwen's
// "<tool_call>") only inside the prefix/suffix literals; end-of-generation
// tokens only once the output is complete (then only they, and the suffix).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "engine/grammar/json_schema.h"
#include "engine/grammar/matcher.h"
#include "engine/model/sampler.h"
#include "engine/tokenizer/tokenizer.h"

namespace cllm::engine::grammar {

// A byte trie of token pieces; tokens ending at a node are a range of ids_.
struct TokenTrie {
  struct NodeRec {
    uint32_t first_edge = 0, n_edges = 0;
    uint32_t first_id = 0, n_ids = 0;
  };
  struct Edge {
    uint8_t byte = 0;
    uint32_t node = 0;
  };
  std::vector<NodeRec> nodes;  // nodes[0] is the root (the empty prefix)
  std::vector<Edge> edges;
  std::vector<TokenId> ids;
  size_t max_depth = 0;
};

class VocabIndex {
 public:
  // For returns the index of `tok`'s vocabulary, built on first use and
  // shared (keyed by a hash of the vocabulary, not by the object's address).
  static std::shared_ptr<const VocabIndex> For(const Tokenizer& tok);
  explicit VocabIndex(const Tokenizer& tok);

  int32_t n_vocab() const { return n_vocab_; }
  const std::string& piece(TokenId t) const { return pieces_[t]; }
  bool is_eog(TokenId t) const { return eog_mask_[t] != 0; }

 private:
  friend class JsonGrammar;
  friend class JsonConstraint;
  int32_t n_vocab_ = 0;
  std::vector<std::string> pieces_;      // [n_vocab] bytes ("" for tokens never produced)
  std::vector<uint8_t> plain_chars_;     // [n_vocab] code points of a plain token, 0 if not plain
  std::vector<uint8_t> eog_mask_;        // [n_vocab]
  std::vector<TokenId> eog_;             // end-of-generation tokens
  std::vector<TokenId> literal_tokens_;  // user-defined tokens: only in the prefix/suffix
  TokenTrie all_;                        // every normal token
  TokenTrie special_;                    // normal tokens that are not plain
};

// Allowed is the set of tokens allowed in one matcher state.
struct Allowed {
  uint32_t plain_room = 0;     // plain tokens of at most this many code points (0: none)
  std::vector<TokenId> ids;    // and these
  size_t walk_work = 0;        // what the trie walk cost (kMaxWalkWorkPerTrieNode)
  bool walk_cut = false;       // the walk ran out of budget: `ids` are those found so far
};

// JsonGrammar is a schema compiled for one vocabulary; it makes the
// constraints of any number of requests and caches allowed sets by state.
class JsonGrammar : public std::enable_shared_from_this<JsonGrammar> {
 public:
  static GrammarResult<std::shared_ptr<JsonGrammar>> Create(const Tokenizer& tok, const nlohmann::json& schema,
                                                           std::string prefix = "", std::string suffix = "");
  static GrammarResult<std::shared_ptr<JsonGrammar>> Create(const Tokenizer& tok,
                                                           const nlohmann::ordered_json& schema,
                                                           std::string prefix = "", std::string suffix = "");
  JsonGrammar(std::shared_ptr<const Grammar> g, std::shared_ptr<const VocabIndex> vocab)
      : grammar_(std::move(g)), vocab_(std::move(vocab)) {}

  // NewConstraint returns a fresh matcher for one sequence.
  std::shared_ptr<TokenConstraint> NewConstraint();

  // AllowedFor returns the tokens allowed in `state` (cached).
  std::shared_ptr<const Allowed> AllowedFor(const MatchState& state);
  const Grammar& grammar() const { return *grammar_; }
  const VocabIndex& vocab() const { return *vocab_; }

 private:
  Allowed Compute(const MatchState& state) const;
  void Walk(const TokenTrie& trie, const MatchState& start, Allowed* out) const;

  std::shared_ptr<const Grammar> grammar_;
  std::shared_ptr<const VocabIndex> vocab_;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const Allowed>> cache_;  // by MatchState::Key
  size_t cache_bytes_ = 0;
};

// MakeJsonConstraint: a constraint for output = prefix + one JSON value
// matching `schema` + suffix (e.g. "<tool_call>\n" … "\n</tool_call>"). At
// the top, {} and {"type":"object"} mean any JSON object. Errors: unsupported
// keywords, invalid schemas and schemas over the limits (json_schema.h).
GrammarResult<std::shared_ptr<TokenConstraint>> MakeJsonConstraint(const Tokenizer& tok, const nlohmann::json& schema,
                                                                  std::string prefix = "", std::string suffix = "");
GrammarResult<std::shared_ptr<TokenConstraint>> MakeJsonConstraint(const Tokenizer& tok,
                                                                  const nlohmann::ordered_json& schema,
                                                                  std::string prefix = "", std::string suffix = "");

}  // namespace cllm::engine::grammar
