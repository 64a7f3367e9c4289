// prefix_cache.h — a per-user cache of prompt prefixes' KV blocks.
//
// Multi-turn chat sends the whole conversation again each turn, and many
// requests start with the same system prompt: their leading KV blocks are
// the same as those of the user's earlier sequences. When a sequence ends,
// its KV blocks (prompt and generated) stay here, held read-only (KvCache
// reference counts); a later sequence of the SAME user whose tokens start
// the same way starts its block table with them and computes only the rest.
//
// Never across users: each block's key is a chain hash
//   key_i = SipHash(k, salt(user) ‖ key_{i-1} ‖ tokens of block i),  key_{-1} = salt(user)
// under a per-process random key k, and a hit must also match the stored
// user, parent entry and tokens exactly (the hash only indexes). So a
// user's request can only ever be sped up by that user's own earlier text:
// the prefix-cache timing attack on shared caches (one user timing another's
// prompts) has nothing to measure. docs/security.md.
//
// Blocks hold KvCache::kBlockSize positions. A finished sequence leaves its
// full blocks and its last, partly filled one. A new sequence follows the
// chain of full blocks that match its tokens exactly, then takes the one
// cached block after them that shares the most leading tokens with the rest
// of its prompt (a conversation's last partial block, or a block where an
// edited prompt diverges): the positions up to the difference are reused,
// and its first write into that shared block copies it (KvCache::Unshare).
// The budget is split in equal shares, one per user (`users`, the number
// of API keys): a user's insert evicts only that user's own least recently
// used blocks (a block is always touched after the blocks that extend it,
// so chains are evicted from their ends), and the shares add up to no more
// than the budget. So no user's traffic ever evicts another's blocks: a
// user watching its own cached_tokens learns nothing of how much others
// send (with one shared LRU it could). Only when live sequences need the
// memory (KvCache's reclaimer, at the block cap or when memory cannot be
// locked) do cached blocks give way across users, the largest holder's
// first; that reveals only the memory load of the moment, which the
// shared batch's speed shows anyway. An evicted block that no sequence
// still uses is zeroed at once (KvCache::Drop).
//
// Not thread-safe: the scheduler's worker thread owns it.
#pragma once

#include <array>
#include <cstdint>
#include <list>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/model/kv_cache.h"
#include "engine/serve/siphash.h"
#include "engine/tokenizer/tokenizer.h"

namespace cllm::engine {

struct PrefixCacheStats {
  uint64_t lookups = 0;
  uint64_t hits = 0;        // lookups that reused at least one block
  uint64_t hit_blocks = 0;  // blocks reused (× kBlockSize positions)
  uint64_t inserted = 0;    // blocks taken in
  uint64_t evictions = 0;   // blocks let go (budget or memory pressure)
  size_t blocks = 0;        // held now
};

// PrefixHit is what Lookup found: `blocks` hold the KV of the first `tokens`
// tokens (the last block possibly only in part).
struct PrefixHit {
  std::vector<int> blocks;
  int tokens = 0;
};

class PrefixCache {
 public:
  // `kv` must outlive the cache. Each of `users` gets max_blocks / users
  // blocks; a share of 0 disables it (nothing kept).
  PrefixCache(KvCache& kv, size_t max_blocks, size_t users = 1);
  ~PrefixCache();  // lets go of every block
  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;

  bool enabled() const { return per_user_ > 0; }
  size_t per_user_blocks() const { return per_user_; }

  // Lookup returns the blocks holding the longest cached prefix of `tokens`
  // for `user` (none from any other user). The cache keeps its hold on
  // them: KvCache::Share them into a sequence, which must not write into
  // them (the partly used last one is copied on its first write).
  PrefixHit Lookup(std::string_view user, std::span<const TokenId> tokens);

  // Insert offers the KV of a finished sequence of `user`: `blocks[i]`
  // holds tokens[i·kBlockSize, (i+1)·kBlockSize), the last block possibly
  // only in part (tokens.size() positions in all). Blocks already cached
  // are only touched; new ones are retained. Then `user`'s least recently
  // used blocks beyond its share are evicted (never another user's).
  void Insert(std::string_view user, std::span<const TokenId> tokens, std::span<const int> blocks);

  // EvictOne lets go of the least recently used block of the user holding
  // the most (memory pressure); false when empty.
  bool EvictOne();
  // Held is how many blocks `user` holds.
  size_t Held(std::string_view user) const;

  const PrefixCacheStats& stats() const { return stats_; }

 private:
  struct Holder;
  struct Entry {
    uint64_t key = 0;
    uint64_t serial = 0;         // unique for the process's lifetime
    uint64_t parent_serial = 0;  // 0: the first block of a prompt
    std::string user;
    std::array<TokenId, KvCache::kBlockSize> tokens{};
    int n_tokens = 0;            // valid in `tokens` (kBlockSize: a full block, which may have children)
    uint64_t parent_key = 0;     // the children_ list it is in
    int block = -1;
    Holder* holder = nullptr;
    std::list<uint64_t>::iterator lru;  // position in holder->lru (front: most recent)
  };
  // Holder: one user's blocks, by chain key, most recently used first.
  struct Holder {
    std::list<uint64_t> lru;
  };
  uint64_t UserSalt(std::string_view user) const;
  uint64_t BlockKey(uint64_t salt, uint64_t parent_key, std::span<const TokenId> tokens) const;
  // Find returns the entry for block `tokens` after `parent` of `user`, or null.
  Entry* Find(uint64_t key, std::string_view user, uint64_t parent_serial, std::span<const TokenId> tokens);
  // BestChild returns the entry after `parent` of `user` sharing the most
  // leading tokens with `rest` (and how many), or null.
  Entry* BestChild(uint64_t parent_key, std::string_view user, uint64_t parent_serial,
                   std::span<const TokenId> rest, int* out_common);
  Entry& Add(uint64_t key, std::string_view user, uint64_t parent_key, uint64_t parent_serial,
             std::span<const TokenId> tokens, int block);
  void Remove(uint64_t key);
  void Touch(Entry& e);
  // Evict lets go of `h`'s least recently used block.
  void Evict(Holder& h);

  KvCache& kv_;
  size_t max_blocks_;
  size_t per_user_;
  SipKey key_;
  uint64_t next_serial_ = 1;
  std::unordered_map<uint64_t, Entry> entries_;  // by chain key
  // Chain key of a block (for first blocks: the user's salt) → keys of the
  // entries that follow it: where a lookup looks for a partial match.
  std::unordered_map<uint64_t, std::vector<uint64_t>> children_;
  std::unordered_map<std::string, Holder> holders_;  // users holding at least one block
  PrefixCacheStats stats_;
};

}  // namespace cllm::engine
