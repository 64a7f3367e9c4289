#include "engine/serve/prefix_cache.h"

#include <algorithm>
#include <cstring>

#include "base/check.h"

namespace cllm::engine {
namespace {

constexpr int kB = KvCache::kBlockSize;

void Put64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

}  // namespace

PrefixCache::PrefixCache(KvCache& kv, size_t max_blocks, size_t users)
    : kv_(kv), max_blocks_(max_blocks), per_user_(max_blocks / std::max<size_t>(users, 1)), key_(RandomSipKey()) {}

PrefixCache::~PrefixCache() {
  while (EvictOne()) {
  }
}

uint64_t PrefixCache::UserSalt(std::string_view user) const {
  // Domain-separated from block keys by the prefix (block keys hash 8 + 8 +
  // 4·kBlockSize bytes that never start with these).
  std::vector<uint8_t> in;
  const std::string_view tag = "cllm prompt-cache user\n";
  in.insert(in.end(), tag.begin(), tag.end());
  in.insert(in.end(), user.begin(), user.end());
  return SipHash24(key_, in);
}

uint64_t PrefixCache::BlockKey(uint64_t salt, uint64_t parent_key, std::span<const TokenId> tokens) const {
  std::vector<uint8_t> in;
  in.reserve(16 + 4 * tokens.size());
  Put64(in, salt);
  Put64(in, parent_key);
  for (TokenId t : tokens) {
    const auto u = static_cast<uint32_t>(t);
    for (int i = 0; i < 4; ++i) in.push_back(static_cast<uint8_t>(u >> (8 * i)));
  }
  return SipHash24(key_, in);
}

PrefixCache::Entry* PrefixCache::Find(uint64_t key, std::string_view user, uint64_t parent_serial,
                                      std::span<const TokenId> tokens) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return nullptr;
  Entry& e = it->second;
  // The key only indexes: a hit is this user's block, after this parent,
  // with these tokens, exactly.
  if (e.user != user || e.parent_serial != parent_serial ||
      !std::equal(tokens.begin(), tokens.end(), e.tokens.begin(), e.tokens.begin() + e.n_tokens)) {
    return nullptr;
  }
  return &e;
}

PrefixCache::Entry* PrefixCache::BestChild(uint64_t parent_key, std::string_view user, uint64_t parent_serial,
                                           std::span<const TokenId> rest, int* out_common) {
  *out_common = 0;
  auto it = children_.find(parent_key);
  if (it == children_.end()) return nullptr;
  Entry* best = nullptr;
  for (uint64_t key : it->second) {
    Entry& e = entries_.at(key);
    if (e.user != user || e.parent_serial != parent_serial) continue;  // never another user's block
    const int limit = std::min(e.n_tokens, static_cast<int>(rest.size()));
    int common = 0;
    while (common < limit && e.tokens[static_cast<size_t>(common)] == rest[static_cast<size_t>(common)]) ++common;
    if (common > *out_common) {
      *out_common = common;
      best = &e;
    }
  }
  return best;
}

PrefixCache::Entry& PrefixCache::Add(uint64_t key, std::string_view user, uint64_t parent_key, uint64_t parent_serial,
                                     std::span<const TokenId> tokens, int block) {
  Entry& n = entries_[key];
  n.key = key;
  n.serial = next_serial_++;
  n.parent_serial = parent_serial;
  n.parent_key = parent_key;
  n.user = std::string(user);
  std::copy(tokens.begin(), tokens.end(), n.tokens.begin());
  n.n_tokens = static_cast<int>(tokens.size());
  n.block = block;
  kv_.Retain(block);
  n.holder = &holders_[n.user];  // node-based map: the pointer stays valid while the holder exists
  n.lru = n.holder->lru.insert(n.holder->lru.begin(), key);
  children_[parent_key].push_back(key);
  ++stats_.inserted;
  return n;
}

void PrefixCache::Remove(uint64_t key) {
  auto it = entries_.find(key);
  CLLM_CHECK(it != entries_.end());
  Entry& e = it->second;
  auto siblings = children_.find(e.parent_key);
  CLLM_CHECK(siblings != children_.end());
  std::erase(siblings->second, key);
  if (siblings->second.empty()) children_.erase(siblings);
  Holder* holder = e.holder;
  holder->lru.erase(e.lru);
  if (holder->lru.empty()) holders_.erase(e.user);
  const int block = e.block;
  entries_.erase(it);
  kv_.Drop(block);  // zeroed and freed unless a live sequence still reads it
  stats_.blocks = entries_.size();
}

void PrefixCache::Touch(Entry& e) { e.holder->lru.splice(e.holder->lru.begin(), e.holder->lru, e.lru); }

void PrefixCache::Evict(Holder& h) {
  CLLM_CHECK(!h.lru.empty());
  Remove(h.lru.back());
  ++stats_.evictions;
}

size_t PrefixCache::Held(std::string_view user) const {
  auto it = holders_.find(std::string(user));
  return it == holders_.end() ? 0 : it->second.lru.size();
}

PrefixHit PrefixCache::Lookup(std::string_view user, std::span<const TokenId> tokens) {
  PrefixHit hit;
  if (!enabled()) return hit;
  ++stats_.lookups;
  const uint64_t salt = UserSalt(user);
  uint64_t parent_key = salt, parent_serial = 0;
  std::vector<Entry*> chain;
  // Full blocks: exact matches, found by key.
  size_t i = 0;
  for (; (i + 1) * kB <= tokens.size(); ++i) {
    const auto block = tokens.subspan(i * kB, kB);
    const uint64_t key = BlockKey(salt, parent_key, block);
    Entry* e = Find(key, user, parent_serial, block);
    if (e == nullptr || e->n_tokens != kB) break;
    chain.push_back(e);
    hit.blocks.push_back(e->block);
    parent_key = key;
    parent_serial = e->serial;
  }
  hit.tokens = static_cast<int>(hit.blocks.size()) * kB;
  // Then the block after them that shares the most leading tokens.
  if (i * kB < tokens.size()) {
    int common = 0;
    Entry* e = BestChild(parent_key, user, parent_serial, tokens.subspan(i * kB), &common);
    if (e != nullptr) {
      chain.push_back(e);
      hit.blocks.push_back(e->block);
      hit.tokens += common;
    }
  }
  // Ends first, so each block is more recent than every block extending it.
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) Touch(**it);
  if (!hit.blocks.empty()) {
    ++stats_.hits;
    stats_.hit_blocks += hit.blocks.size();
  }
  return hit;
}

void PrefixCache::Insert(std::string_view user, std::span<const TokenId> tokens, std::span<const int> blocks) {
  if (!enabled() || tokens.empty()) return;
  CLLM_CHECK((tokens.size() + kB - 1) / kB == blocks.size());
  const uint64_t salt = UserSalt(user);
  uint64_t parent_key = salt, parent_serial = 0;
  std::vector<Entry*> chain;
  for (size_t i = 0; i < blocks.size(); ++i) {
    const auto block = tokens.subspan(i * kB, std::min<size_t>(kB, tokens.size() - i * kB));
    const bool full = block.size() == static_cast<size_t>(kB);
    const uint64_t key = BlockKey(salt, parent_key, block);
    Entry* e = Find(key, user, parent_serial, block);
    if (e == nullptr && !full) {
      // A partial block is worth keeping only if no cached block after the
      // same parent already starts with all of its tokens.
      int common = 0;
      Entry* sibling = BestChild(parent_key, user, parent_serial, block, &common);
      if (sibling != nullptr && common == static_cast<int>(block.size())) e = sibling;
    }
    if (e == nullptr) {
      if (entries_.count(key) != 0) break;  // another block under this key (a 2^-64 collision): stop here
      e = &Add(key, user, parent_key, parent_serial, block, blocks[i]);
      if (full) {
        // Partial blocks after the same parent that this one extends are now redundant.
        std::vector<uint64_t> redundant;
        for (uint64_t k : children_.at(parent_key)) {
          const Entry& s = entries_.at(k);
          if (k != key && s.n_tokens < kB && s.user == user && s.parent_serial == parent_serial &&
              std::equal(s.tokens.begin(), s.tokens.begin() + s.n_tokens, e->tokens.begin())) {
            redundant.push_back(k);
          }
        }
        for (uint64_t k : redundant) Remove(k);
      }
    }
    chain.push_back(e);
    if (!full) break;
    parent_key = key;
    parent_serial = e->serial;
  }
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) Touch(**it);
  // Only this user's own blocks make room for this user's: the shares add
  // up to at most max_blocks_, so no other user's block need ever go.
  if (auto mine = holders_.find(std::string(user)); mine != holders_.end()) {
    Holder& h = mine->second;
    while (h.lru.size() > per_user_) Evict(h);  // per_user_ >= 1: h keeps a block, so it stays
  }
  // More users than shares (a caller that named fewer): the largest first.
  while (entries_.size() > max_blocks_ && EvictOne()) {
  }
  stats_.blocks = entries_.size();
}

bool PrefixCache::EvictOne() {
  Holder* largest = nullptr;
  for (auto& [user, h] : holders_) {
    if (largest == nullptr || h.lru.size() > largest->lru.size()) largest = &h;
  }
  if (largest == nullptr) return false;
  Evict(*largest);
  return true;
}

}  // namespace cllm::engine
