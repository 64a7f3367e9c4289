// The prompt cache's parts without a model: SipHash against the paper's
// vector, KvCache sharing (reference counts, copy-on-write, zeroing), and
// PrefixCache's per-user keys, LRU order and eviction.
#include "engine/serve/prefix_cache.h"

#include <gtest/gtest.h>

#include <numeric>
#include <string>

namespace cllm::engine {
namespace {

constexpr int kB = KvCache::kBlockSize;

ModelConfig SmallConfig() {
  ModelConfig c;
  c.n_layer = 2;
  c.n_head_kv = 2;
  c.head_dim = 4;
  return c;
}

// Fill writes `value` into every element of positions [0, n) of `seq`.
void Fill(KvCache& kv, int seq, int n, float value) {
  std::vector<float> row(8, value);
  for (int p = 0; p < n; ++p) {
    for (int l = 0; l < 2; ++l) {
      kv.Store(l, 0, seq, p, row.data());
      kv.Store(l, 1, seq, p, row.data());
    }
  }
  kv.SetLength(seq, n);
}

// AllEqual: every element of positions [0, n) of `seq` is `value`.
bool AllEqual(const KvCache& kv, int seq, int n, float value) {
  float back[8];
  for (int p = 0; p < n; ++p) {
    for (int l = 0; l < 2; ++l) {
      for (int k = 0; k < 2; ++k) {
        kv.Load(l, k, seq, p, back);
        for (float x : back) {
          if (x != value) return false;
        }
      }
    }
  }
  return true;
}

std::vector<TokenId> Tokens(int n, TokenId start) {
  std::vector<TokenId> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), start);
  return t;
}

TEST(SipHashTest, PaperVector) {
  // SipHash paper, Appendix A: key 00..0f, message 00..0e.
  SipKey key;
  for (int i = 0; i < 16; ++i) key[i] = static_cast<uint8_t>(i);
  std::vector<uint8_t> msg(15);
  for (int i = 0; i < 15; ++i) msg[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(SipHash24(key, msg), 0xa129ca6149be45e5ull);
  EXPECT_EQ(SipHash24(key, {}), 0x726fdb47dd0e0e31ull);  // reference vectors.h, first entry
  EXPECT_NE(RandomSipKey(), RandomSipKey());
}

TEST(KvCacheShareTest, SharedBlocksAreCopiedBeforeAWriteAndZeroedByTheLastHolder) {
  KvCache kv(SmallConfig(), KvType::kF32, 4 * kB);
  ASSERT_TRUE(kv.Prepare(1, 2 * kB).ok());
  Fill(kv, 1, 2 * kB, 7.0f);
  const std::vector<int> blocks(kv.Blocks(1).begin(), kv.Blocks(1).end());
  for (int b : blocks) kv.Retain(b);  // a second holder (the prompt cache)
  kv.Release(1);
  ASSERT_EQ(kv.blocks_in_use(), 2u);  // still held

  kv.Share(2, blocks, 2 * kB - 1);
  EXPECT_EQ(kv.Length(2), 2 * kB - 1);
  EXPECT_TRUE(AllEqual(kv, 2, 2 * kB, 7.0f));
  // Rewriting the last position: block 1 is copied, block 0 stays shared.
  ASSERT_TRUE(kv.Unshare(2, 2 * kB - 1, 2 * kB).ok());
  EXPECT_EQ(kv.Blocks(2)[0], blocks[0]);
  EXPECT_NE(kv.Blocks(2)[1], blocks[1]);
  EXPECT_EQ(kv.holders(blocks[0]), 2);
  EXPECT_EQ(kv.holders(blocks[1]), 1);
  std::vector<float> row(8, -1.0f);
  kv.Store(0, 0, 2, 2 * kB - 1, row.data());
  kv.Release(2);
  // The shared originals are untouched by the writer.
  kv.Share(3, blocks, 2 * kB);
  EXPECT_TRUE(AllEqual(kv, 3, 2 * kB, 7.0f));
  kv.Release(3);

  // The last holder lets go: zeroed before anyone gets the block again.
  for (int b : blocks) kv.Drop(b);
  EXPECT_EQ(kv.blocks_in_use(), 0u);
  ASSERT_TRUE(kv.Prepare(4, 3 * kB).ok());
  EXPECT_TRUE(AllEqual(kv, 4, 3 * kB, 0.0f));
}

TEST(KvCacheShareTest, AtTheBlockCapTheReclaimerGivesWayOrTheCallFails) {
  KvCache kv(SmallConfig(), KvType::kF32, 4 * kB);
  kv.SetMaxBlocks(2);
  ASSERT_TRUE(kv.Prepare(1, 2 * kB).ok());
  EXPECT_EQ(kv.Prepare(2, 1).code(), ModelErrc::kOutOfMemory);
  int calls = 0;
  kv.SetReclaimer([&] {
    ++calls;
    if (kv.Blocks(1).empty()) return false;
    kv.Release(1);
    return true;
  });
  EXPECT_TRUE(kv.Prepare(2, 1).ok());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(kv.Prepare(3, 2 * kB).code(), ModelErrc::kOutOfMemory);  // 1 free, then nothing to reclaim
}

TEST(PrefixCacheTest, HitsOnlyTheSameUsersLongestPrefix) {
  KvCache kv(SmallConfig(), KvType::kF32, 8 * kB);
  PrefixCache cache(kv, 16);
  const auto tokens = Tokens(3 * kB + 5, 100);
  ASSERT_TRUE(kv.Prepare(1, 3 * kB + 5).ok());
  Fill(kv, 1, 3 * kB + 5, 1.0f);
  cache.Insert("alice", tokens, kv.Blocks(1));  // three full blocks and 5 positions of a fourth
  const std::vector<int> blocks(kv.Blocks(1).begin(), kv.Blocks(1).end());
  kv.Release(1);

  const PrefixHit all = cache.Lookup("alice", tokens);
  EXPECT_EQ(all.blocks, blocks);
  EXPECT_EQ(all.tokens, 3 * kB + 5);
  EXPECT_TRUE(cache.Lookup("bob", tokens).blocks.empty()) << "another user's prefix must never hit";
  EXPECT_TRUE(cache.Lookup("alice ", tokens).blocks.empty());
  EXPECT_TRUE(cache.Lookup("", tokens).blocks.empty());
  // Shorter prompts: whole blocks, then the part of the next block they share.
  auto tokens_of = [&](std::span<const TokenId> t) { return cache.Lookup("alice", t).tokens; };
  EXPECT_EQ(tokens_of(std::span(tokens).first(2 * kB + 31)), 2 * kB + 31);
  EXPECT_EQ(tokens_of(std::span(tokens).first(kB)), kB);
  EXPECT_EQ(tokens_of(std::span(tokens).first(kB - 1)), kB - 1);
  // Longer or different: up to the first difference.
  auto longer = tokens;
  longer.push_back(1);
  EXPECT_EQ(tokens_of(longer), 3 * kB + 5);
  auto changed = tokens;
  changed[kB + 3] = 7;
  const PrefixHit diverged = cache.Lookup("alice", changed);
  EXPECT_EQ(diverged.tokens, kB + 3);
  EXPECT_EQ(diverged.blocks, std::vector<int>(blocks.begin(), blocks.begin() + 2));
  // The same tokens of block 1 after a different block 0 are not block 1.
  auto shifted = tokens;
  shifted[0] = 7;
  EXPECT_TRUE(cache.Lookup("alice", shifted).blocks.empty());
  EXPECT_EQ(cache.stats().hits, 6u);
  EXPECT_EQ(cache.stats().blocks, 4u);
}

TEST(PrefixCacheTest, AFullBlockReplacesThePartialBlocksItExtends) {
  KvCache kv(SmallConfig(), KvType::kF32, 8 * kB);
  PrefixCache cache(kv, 16);
  const auto tokens = Tokens(2 * kB, 100);
  ASSERT_TRUE(kv.Prepare(1, kB + 9).ok());
  cache.Insert("u", std::span(tokens).first(kB + 9), kv.Blocks(1));  // turn 1: a block and 9 positions
  kv.Release(1);
  ASSERT_TRUE(kv.Prepare(2, kB + 4).ok());
  cache.Insert("u", std::span(tokens).first(kB + 4), kv.Blocks(2));  // 4 positions: already held, in part
  kv.Release(2);
  EXPECT_EQ(cache.stats().blocks, 2u);
  ASSERT_TRUE(kv.Prepare(3, 2 * kB).ok());
  cache.Insert("u", tokens, kv.Blocks(3));  // turn 2 filled the block: the 9-position one goes
  kv.Release(3);
  EXPECT_EQ(cache.stats().blocks, 2u);
  EXPECT_EQ(cache.Lookup("u", tokens).tokens, 2 * kB);
  EXPECT_EQ(kv.blocks_in_use(), 2u);
}

TEST(PrefixCacheTest, EvictsLeastRecentlyUsedChainEndsAndZeroesTheBlocks) {
  KvCache kv(SmallConfig(), KvType::kF32, 8 * kB);
  PrefixCache cache(kv, 3);
  const auto a = Tokens(2 * kB, 1000), b = Tokens(2 * kB, 2000);
  ASSERT_TRUE(kv.Prepare(1, 2 * kB).ok());
  Fill(kv, 1, 2 * kB, 3.0f);
  cache.Insert("u", a, kv.Blocks(1));
  const std::vector<int> a_blocks(kv.Blocks(1).begin(), kv.Blocks(1).end());
  kv.Release(1);
  ASSERT_TRUE(kv.Prepare(2, 2 * kB).ok());
  Fill(kv, 2, 2 * kB, 4.0f);
  cache.Insert("u", b, kv.Blocks(2));  // 4 blocks > 3: a's end (the least recent) goes
  kv.Release(2);
  EXPECT_EQ(cache.stats().evictions, 1u);
  EXPECT_EQ(cache.Lookup("u", a).tokens, kB);  // a's first block stays; touching it makes it recent
  EXPECT_EQ(cache.Lookup("u", b).tokens, 2 * kB);
  EXPECT_EQ(kv.holders(a_blocks[0]), 1);
  // The evicted block was zeroed and is the next one handed out.
  ASSERT_TRUE(kv.Prepare(3, kB).ok());
  EXPECT_EQ(kv.Blocks(3)[0], a_blocks[1]);
  EXPECT_TRUE(AllEqual(kv, 3, kB, 0.0f));
  kv.Release(3);
  // Evicting everything frees everything, zeroed.
  while (cache.EvictOne()) {
  }
  EXPECT_EQ(kv.blocks_in_use(), 0u);
  ASSERT_TRUE(kv.Prepare(4, 4 * kB).ok());
  EXPECT_TRUE(AllEqual(kv, 4, 4 * kB, 0.0f));
}

TEST(PrefixCacheTest, GivesWayWhenALiveSequenceNeedsItsBlocks) {
  KvCache kv(SmallConfig(), KvType::kF32, 8 * kB);
  kv.SetMaxBlocks(3);
  PrefixCache cache(kv, 16);
  kv.SetReclaimer([&] { return cache.EvictOne(); });
  const auto t = Tokens(2 * kB, 1);
  ASSERT_TRUE(kv.Prepare(1, 2 * kB).ok());
  Fill(kv, 1, 2 * kB, 5.0f);
  cache.Insert("u", t, kv.Blocks(1));
  kv.Release(1);
  ASSERT_EQ(cache.stats().blocks, 2u);
  ASSERT_TRUE(kv.Prepare(2, 3 * kB).ok());  // needs all three: the cache lets its two go
  EXPECT_EQ(cache.stats().blocks, 0u);
  EXPECT_EQ(cache.stats().evictions, 2u);
  EXPECT_TRUE(AllEqual(kv, 2, 3 * kB, 0.0f));
}

// Insert caches `n` tokens from `start` for `user` as one finished sequence.
void InsertSequence(KvCache& kv, PrefixCache& cache, const std::string& user, int n, TokenId start) {
  ASSERT_TRUE(kv.Prepare(99, n).ok());
  cache.Insert(user, Tokens(n, start), kv.Blocks(99));
  kv.Release(99);
}

TEST(PrefixCacheTest, NoUsersTrafficEvictsAnotherUsersBlocks) {
  KvCache kv(SmallConfig(), KvType::kF32, 8 * kB);
  PrefixCache cache(kv, 6, /*users=*/3);  // two blocks each
  ASSERT_EQ(cache.per_user_blocks(), 2u);
  InsertSequence(kv, cache, "alice", 2 * kB, 100);
  InsertSequence(kv, cache, "carol", kB, 500);
  // Bob sends a lot: only his own blocks make room for his.
  for (int i = 0; i < 20; ++i) InsertSequence(kv, cache, "bob", 3 * kB, static_cast<TokenId>(1000 + 100 * i));
  EXPECT_EQ(cache.Held("bob"), 2u);
  EXPECT_EQ(cache.Held("alice"), 2u);
  EXPECT_EQ(cache.Held("carol"), 1u);
  EXPECT_EQ(cache.Lookup("alice", Tokens(2 * kB, 100)).tokens, 2 * kB) << "alice's cache shrank for bob's traffic";
  EXPECT_EQ(cache.Lookup("carol", Tokens(kB, 500)).tokens, kB);
  // Alice's own third block evicts her least recently used one.
  InsertSequence(kv, cache, "alice", kB, 700);
  EXPECT_EQ(cache.Held("alice"), 2u);
  EXPECT_EQ(cache.Lookup("alice", Tokens(2 * kB, 100)).tokens, kB);
  EXPECT_EQ(cache.Lookup("alice", Tokens(kB, 700)).tokens, kB);
  EXPECT_EQ(kv.blocks_in_use(), 5u);
}

TEST(PrefixCacheTest, MemoryPressureTakesTheLargestHoldersBlocksFirst) {
  KvCache kv(SmallConfig(), KvType::kF32, 8 * kB);
  PrefixCache cache(kv, 8, /*users=*/2);
  InsertSequence(kv, cache, "small", kB, 100);
  InsertSequence(kv, cache, "large", 3 * kB, 200);
  ASSERT_TRUE(cache.EvictOne());
  ASSERT_TRUE(cache.EvictOne());
  EXPECT_EQ(cache.Held("large"), 1u);
  EXPECT_EQ(cache.Held("small"), 1u);
  EXPECT_EQ(cache.Lookup("large", Tokens(3 * kB, 200)).tokens, kB) << "its chain goes from the end";
}

TEST(PrefixCacheTest, AShareUnderOneBlockTurnsItOff) {
  KvCache kv(SmallConfig(), KvType::kF32, 2 * kB);
  PrefixCache cache(kv, 3, /*users=*/4);
  EXPECT_FALSE(cache.enabled());
  InsertSequence(kv, cache, "u", kB, 1);
  EXPECT_EQ(kv.blocks_in_use(), 0u);
}

TEST(PrefixCacheTest, DisabledKeepsNothing) {
  KvCache kv(SmallConfig(), KvType::kF32, 2 * kB);
  PrefixCache cache(kv, 0);
  const auto t = Tokens(kB, 1);
  ASSERT_TRUE(kv.Prepare(1, kB).ok());
  cache.Insert("u", t, kv.Blocks(1));
  kv.Release(1);
  EXPECT_EQ(kv.blocks_in_use(), 0u);
  EXPECT_TRUE(cache.Lookup("u", t).blocks.empty());
}

}  // namespace
}  // namespace cllm::engine
