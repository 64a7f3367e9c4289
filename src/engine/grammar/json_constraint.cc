#include "engine/grammar/json_constraint.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <nlohmann/json.hpp>

namespace cllm::engine::grammar {
namespace {

// The allowed-set cache of one compiled grammar: at most this many states
// and bytes of ids (then it starts over), so a schema with many states (long
// bounded strings) cannot grow it without bound.
constexpr size_t kMaxCachedStates = 4096;
constexpr size_t kMaxCachedBytes = 8 << 20;

// BuildTrie indexes the pieces of `ids` (all non-empty) by their bytes.
TokenTrie BuildTrie(const std::vector<std::string>& pieces, std::vector<TokenId> ids) {
  TokenTrie t;
  std::sort(ids.begin(), ids.end(), [&](TokenId a, TokenId b) { return pieces[a] < pieces[b]; });
  t.ids = ids;
  t.nodes.emplace_back();
  // Iterative: (node, range of t.ids sharing a prefix of `depth` bytes).
  struct Work { uint32_t node; uint32_t lo, hi; uint32_t depth; };
  std::vector<Work> work = {{0, 0, static_cast<uint32_t>(ids.size()), 0}};
  while (!work.empty()) {
    Work w = work.back();
    work.pop_back();
    t.max_depth = std::max<size_t>(t.max_depth, w.depth);
    uint32_t i = w.lo;
    // Pieces that end here sort first.
    while (i < w.hi && pieces[t.ids[i]].size() == w.depth) ++i;
    t.nodes[w.node].first_id = w.lo;
    t.nodes[w.node].n_ids = i - w.lo;
    t.nodes[w.node].first_edge = static_cast<uint32_t>(t.edges.size());
    std::vector<Work> children;
    while (i < w.hi) {
      uint8_t b = static_cast<uint8_t>(pieces[t.ids[i]][w.depth]);
      uint32_t j = i;
      while (j < w.hi && static_cast<uint8_t>(pieces[t.ids[j]][w.depth]) == b) ++j;
      uint32_t child = static_cast<uint32_t>(t.nodes.size());
      t.nodes.emplace_back();
      t.edges.push_back({b, child});
      children.push_back({child, i, j, w.depth + 1});
      i = j;
    }
    t.nodes[w.node].n_edges = static_cast<uint32_t>(t.edges.size()) - t.nodes[w.node].first_edge;
    work.insert(work.end(), children.begin(), children.end());
  }
  return t;
}

uint64_t VocabHash(const Tokenizer& tok) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  auto mix = [&h](const void* p, size_t n) {
    const auto* c = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ c[i]) * 1099511628211ull;
  };
  int32_t n = tok.n_vocab();
  mix(&n, sizeof n);
  for (TokenId t = 0; t < n; ++t) {
    const std::string& s = tok.TokenText(t);
    mix(s.data(), s.size());
    int32_t ty = static_cast<int32_t>(tok.GetTokenType(t)) | (tok.IsEog(t) ? 0x100 : 0);
    mix(&ty, sizeof ty);
  }
  return h;
}

// The grammar of one unbounded string, to test whether a piece is plain text.
const Grammar& StringGrammar() {
  static const std::shared_ptr<const Grammar> g = [] {
    auto r = CompileJsonSchema(nlohmann::json{{"type", "string"}});
    return *r;
  }();
  return *g;
}

}  // namespace

VocabIndex::VocabIndex(const Tokenizer& tok) : n_vocab_(tok.n_vocab()) {
  pieces_.resize(n_vocab_);
  plain_chars_.assign(n_vocab_, 0);
  eog_mask_.assign(n_vocab_, 0);
  MatchState in_string = MatchState::Start(StringGrammar());
  (void)in_string.Advance('"');
  std::vector<TokenId> normal, special;
  for (TokenId t = 0; t < n_vocab_; ++t) {
    if (tok.IsEog(t)) {
      eog_mask_[t] = 1;
      eog_.push_back(t);
      continue;
    }
    TokenType ty = tok.GetTokenType(t);
    if (ty == TokenType::kControl || ty == TokenType::kUnknown || ty == TokenType::kUnused) continue;
    pieces_[t] = tok.TokenToPiece(t);
    const std::string& p = pieces_[t];
    if (p.empty()) continue;
    if (ty == TokenType::kUserDefined) {
      literal_tokens_.push_back(t);
      continue;
    }
    normal.push_back(t);
    // Plain: complete UTF-8 text a JSON string takes as is.
    bool plain = p.size() <= 255 && p.find_first_of("\"\\") == std::string::npos;
    if (plain) {
      MatchState s;
      s.CopyFrom(in_string);
      uint32_t room = 0;
      plain = s.Advance(p) && s.InStringBody(&room);
    }
    if (plain) {
      size_t cps = 0;
      for (unsigned char c : p) cps += (c & 0xC0) != 0x80;
      plain_chars_[t] = static_cast<uint8_t>(cps);
    } else {
      special.push_back(t);
    }
  }
  all_ = BuildTrie(pieces_, std::move(normal));
  special_ = BuildTrie(pieces_, std::move(special));
}

std::shared_ptr<const VocabIndex> VocabIndex::For(const Tokenizer& tok) {
  static std::mutex mu;
  static std::vector<std::pair<uint64_t, std::weak_ptr<const VocabIndex>>> cache;
  uint64_t h = VocabHash(tok);
  std::lock_guard lock(mu);
  for (auto& [key, weak] : cache) {
    if (key != h) continue;
    if (auto sp = weak.lock()) return sp;
  }
  auto sp = std::make_shared<const VocabIndex>(tok);
  std::erase_if(cache, [](const auto& e) { return e.second.expired(); });
  cache.emplace_back(h, sp);
  return sp;
}

// --- the allowed set of a state -------------------------------------------------

void JsonGrammar::Walk(const TokenTrie& trie, const MatchState& start, Allowed* out) const {
  if (trie.nodes.empty()) return;
  // Depth-first over the trie; states[d] is the matcher after d bytes.
  std::vector<MatchState> states(trie.max_depth + 1);
  states[0].CopyFrom(start);
  struct Pos { uint32_t node; uint32_t edge; };
  std::vector<Pos> path = {{0, 0}};
  const size_t budget = kMaxWalkWorkPerTrieNode * trie.nodes.size();
  size_t& work = out->walk_work;
  while (!path.empty()) {
    Pos& p = path.back();
    const auto& rec = trie.nodes[p.node];
    if (p.edge == rec.n_edges) {
      path.pop_back();
      continue;
    }
    const auto& e = trie.edges[rec.first_edge + p.edge++];
    size_t d = path.size();
    const size_t live = states[d - 1].stacks();
    work += live * live;
    if (work > budget) {  // the tokens found so far (matcher.h)
      out->walk_cut = true;
      return;
    }
    states[d].CopyFrom(states[d - 1]);
    if (!states[d].Advance(e.byte)) continue;  // prune the subtree
    const auto& child = trie.nodes[e.node];
    for (uint32_t i = 0; i < child.n_ids; ++i) out->ids.push_back(trie.ids[child.first_id + i]);
    if (child.n_edges) path.push_back({e.node, 0});
  }
}

Allowed JsonGrammar::Compute(const MatchState& state) const {
  Allowed a;
  const VocabIndex& v = *vocab_;
  uint32_t room = 0;
  if (state.InStringBody(&room)) {
    a.plain_room = room;
    Walk(v.special_, state, &a);
  } else {
    Walk(v.all_, state, &a);
  }
  if (state.InRootLiteral()) {
    for (TokenId t : v.literal_tokens_) {
      MatchState s;
      s.CopyFrom(state);
      if (s.Advance(v.pieces_[t])) a.ids.push_back(t);
    }
  }
  // A dead end (bounds no value can meet) ends the output rather than let the
  // sampler pick from nothing.
  if (state.Complete() || (a.ids.empty() && a.plain_room == 0)) {
    a.ids.insert(a.ids.end(), v.eog_.begin(), v.eog_.end());
  }
  return a;
}

std::shared_ptr<const Allowed> JsonGrammar::AllowedFor(const MatchState& state) {
  std::string key;
  state.Key(&key);
  {
    std::lock_guard lock(mu_);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  }
  auto a = std::make_shared<const Allowed>(Compute(state));
  const size_t bytes = key.size() + a->ids.size() * sizeof(TokenId) + 64;
  std::lock_guard lock(mu_);
  if (cache_.size() >= kMaxCachedStates || cache_bytes_ + bytes > kMaxCachedBytes) {
    cache_.clear();
    cache_bytes_ = 0;
  }
  if (cache_.emplace(std::move(key), a).second) cache_bytes_ += bytes;
  return a;
}

// --- one sequence's constraint -----------------------------------------------

class JsonConstraint final : public TokenConstraint {
 public:
  explicit JsonConstraint(std::shared_ptr<JsonGrammar> g)
      : g_(std::move(g)), state_(MatchState::Start(g_->grammar())) {}

  std::shared_ptr<TokenConstraint> Fresh() const override { return g_->NewConstraint(); }

  void Mask(std::span<float> logits) override {
    const VocabIndex& v = g_->vocab();
    const size_t n = std::min<size_t>(logits.size(), static_cast<size_t>(v.n_vocab()));
    constexpr float kNeg = -std::numeric_limits<float>::infinity();
    std::shared_ptr<const Allowed> a;
    if (state_.dead()) {
      dead_.ids = v.eog_;
      a = std::shared_ptr<const Allowed>(std::shared_ptr<const Allowed>(), &dead_);
    } else {
      a = g_->AllowedFor(state_);
    }
    saved_.clear();
    for (TokenId t : a->ids) {
      if (static_cast<size_t>(t) < n) saved_.push_back(logits[t]);
    }
    if (a->plain_room > 0) {
      const uint8_t* pc = v.plain_chars_.data();
      const uint32_t room = a->plain_room;
      for (size_t t = 0; t < n; ++t) {
        if (pc[t] == 0 || pc[t] > room) logits[t] = kNeg;
      }
    } else {
      std::fill(logits.begin(), logits.begin() + static_cast<std::ptrdiff_t>(n), kNeg);
    }
    for (size_t i = 0, k = 0; i < a->ids.size(); ++i) {
      if (static_cast<size_t>(a->ids[i]) < n) logits[a->ids[i]] = saved_[k++];
    }
    for (size_t t = n; t < logits.size(); ++t) logits[t] = kNeg;
  }

  void Accept(TokenId token) override {
    const VocabIndex& v = g_->vocab();
    if (token < 0 || token >= v.n_vocab() || v.is_eog(token) || v.piece(token).empty() ||
        !state_.Advance(v.piece(token))) {
      state_ = MatchState();  // dead: only end-of-generation from here
    }
  }

 private:
  std::shared_ptr<JsonGrammar> g_;
  MatchState state_;
  Allowed dead_;
  std::vector<float> saved_;
};

namespace {

template <typename J>
GrammarResult<std::shared_ptr<JsonGrammar>> CreateImpl(const Tokenizer& tok, const J& schema, std::string prefix,
                                                       std::string suffix) {
  CLLM_ASSIGN_OR_RETURN(auto g, CompileJsonSchema(schema, std::move(prefix), std::move(suffix)));
  return std::make_shared<JsonGrammar>(std::move(g), VocabIndex::For(tok));
}

}  // namespace

GrammarResult<std::shared_ptr<JsonGrammar>> JsonGrammar::Create(const Tokenizer& tok, const nlohmann::json& schema,
                                                                std::string prefix, std::string suffix) {
  return CreateImpl(tok, schema, std::move(prefix), std::move(suffix));
}

GrammarResult<std::shared_ptr<JsonGrammar>> JsonGrammar::Create(const Tokenizer& tok,
                                                                const nlohmann::ordered_json& schema,
                                                                std::string prefix, std::string suffix) {
  return CreateImpl(tok, schema, std::move(prefix), std::move(suffix));
}

std::shared_ptr<TokenConstraint> JsonGrammar::NewConstraint() {
  return std::make_shared<JsonConstraint>(shared_from_this());
}

GrammarResult<std::shared_ptr<TokenConstraint>> MakeJsonConstraint(const Tokenizer& tok, const nlohmann::json& schema,
                                                                  std::string prefix, std::string suffix) {
  CLLM_ASSIGN_OR_RETURN(auto g, JsonGrammar::Create(tok, schema, std::move(prefix), std::move(suffix)));
  return g->NewConstraint();
}

GrammarResult<std::shared_ptr<TokenConstraint>> MakeJsonConstraint(const Tokenizer& tok,
                                                                  const nlohmann::ordered_json& schema,
                                                                  std::string prefix, std::string suffix) {
  CLLM_ASSIGN_OR_RETURN(auto g, JsonGrammar::Create(tok, schema, std::move(prefix), std::move(suffix)));
  return g->NewConstraint();
}

}  // namespace cllm::engine::grammar
