// Tests for cllm-trust's store (store.h), audit chain (audit.h) and secrets at
// rest (secret_box.h): single-use nonces, every table's round trip, the audit
// chain and every authenticated row under each kind of tampering (naming the
// first bad seq or row), and a close/reopen that must lose nothing. The same
// cases run on a real SQLite file (trust_test) and on a real PostgreSQL
// server (trust_store_pg_test, built with CLLM_STORE_TEST_POSTGRES): the
// tampering SQL is run from outside the store, with sqlite3 or psql.
#include "trust/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/encoding.h"
#include "trust/audit.h"
#include "trust/secret_box.h"
#include "trust/signing_keys.h"
#include "trust/store_test_db.h"

namespace cllm::trust {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kT0 = 1'750'000'000;  // an arbitrary fixed "now" (Unix seconds)

Bytes Nonce(uint8_t fill) { return Bytes(32, fill); }

using testing::TempDir;
using testing::TestDb;

#ifndef CLLM_STORE_TEST_POSTGRES
// Sql runs one statement on a SQLite file through a second connection.
void Sql(const fs::path& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string why = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << sql << ": " << why;
}
#endif

enum class Engine { kSqlite, kPostgres };

std::string EngineName(const ::testing::TestParamInfo<Engine>& info) {
  return info.param == Engine::kPostgres ? "Postgres" : "Sqlite";
}

class StoreTest : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    std::string why;
    db_ = TestDb::Create(GetParam() == Engine::kPostgres, &why);
    if (!db_) GTEST_SKIP() << why;
    Reopen();
  }
  void Reopen() {
    store_.reset();
    auto s = Store::Open(location(), box_);
    ASSERT_TRUE(s.ok()) << s.detail();
    store_ = std::move(s).value();
  }
  const std::string& location() const { return db_->location(); }
  void Sql(const std::string& sql) { db_->Sql(sql); }
  std::string Blob(const std::string& hex) const { return db_->Blob(hex); }

  // AppendN appends entries "e1".."eN" at kT0 + i.
  void AppendN(int n) {
    for (int i = 1; i <= n; ++i) {
      auto e = store_->AppendAudit(i % 2 ? "attest" : "admin", "{\"i\":" + std::to_string(i) + "}", kT0 + i);
      ASSERT_TRUE(e.ok()) << e.detail();
    }
  }
  std::vector<AuditEntry> All() { return store_->ReadAudit(1, 1000).value(); }

  std::unique_ptr<TestDb> db_;
  SecretBox box_ = SecretBox::FromKey(Bytes(32, 0x5A)).value();
  std::unique_ptr<Store> store_;
};

#ifdef CLLM_STORE_TEST_POSTGRES
constexpr Engine kEngine = Engine::kPostgres;
#else
constexpr Engine kEngine = Engine::kSqlite;
#endif
INSTANTIATE_TEST_SUITE_P(Engines, StoreTest, ::testing::Values(kEngine), EngineName);

// ---------------------------------------------------------------------------
// Nonces
// ---------------------------------------------------------------------------

TEST_P(StoreTest, NonceIsGoodForOneAttemptOnly) {
  ASSERT_TRUE(store_->AddNonce(Nonce(1), kT0 + 60).ok());
  EXPECT_EQ(store_->ConsumeNonce(Nonce(1), kT0).value(), NonceState::kOk);
  EXPECT_EQ(store_->ConsumeNonce(Nonce(1), kT0).value(), NonceState::kUnknown);
  EXPECT_EQ(store_->ConsumeNonce(Nonce(2), kT0).value(), NonceState::kUnknown);  // never issued
}

TEST_P(StoreTest, NonceAddedTwiceIsRefused) {
  ASSERT_TRUE(store_->AddNonce(Nonce(1), kT0 + 60).ok());
  EXPECT_FALSE(store_->AddNonce(Nonce(1), kT0 + 60).ok());
}

TEST_P(StoreTest, ExpiredNonceIsReportedAndStillConsumed) {
  ASSERT_TRUE(store_->AddNonce(Nonce(1), kT0 + 60).ok());
  EXPECT_EQ(store_->ConsumeNonce(Nonce(1), kT0 + 61).value(), NonceState::kExpired);
  EXPECT_EQ(store_->ConsumeNonce(Nonce(1), kT0).value(), NonceState::kUnknown);
  // The last second of its lifetime still counts.
  ASSERT_TRUE(store_->AddNonce(Nonce(2), kT0 + 60).ok());
  EXPECT_EQ(store_->ConsumeNonce(Nonce(2), kT0 + 60).value(), NonceState::kOk);
}

TEST_P(StoreTest, PurgeDropsOnlyExpiredNonces) {
  ASSERT_TRUE(store_->AddNonce(Nonce(1), kT0 - 1).ok());
  ASSERT_TRUE(store_->AddNonce(Nonce(2), kT0 - 100).ok());
  ASSERT_TRUE(store_->AddNonce(Nonce(3), kT0 + 60).ok());
  EXPECT_EQ(store_->PurgeNonces(kT0).value(), 2);
  EXPECT_EQ(store_->PurgeNonces(kT0).value(), 0);
  EXPECT_EQ(store_->ConsumeNonce(Nonce(1), kT0).value(), NonceState::kUnknown);
  EXPECT_EQ(store_->ConsumeNonce(Nonce(3), kT0).value(), NonceState::kOk);
}

// ---------------------------------------------------------------------------
// Policies, model keys, signing keys, meta
// ---------------------------------------------------------------------------

TEST_P(StoreTest, PoliciesPutGetListDelete) {
  EXPECT_FALSE(store_->GetPolicy("default").value().has_value());
  ASSERT_TRUE(store_->PutPolicy("zeta", R"({"policy":{"v":1}})", kT0).ok());
  ASSERT_TRUE(store_->PutPolicy("default", R"({"policy":{"v":2}})", kT0).ok());
  EXPECT_EQ(store_->GetPolicy("default").value().value(), R"({"policy":{"v":2}})");
  EXPECT_EQ(store_->ListPolicies().value(), (std::vector<std::string>{"default", "zeta"}));
  // Put replaces.
  ASSERT_TRUE(store_->PutPolicy("default", R"({"policy":{"v":3}})", kT0 + 1).ok());
  EXPECT_EQ(store_->GetPolicy("default").value().value(), R"({"policy":{"v":3}})");
  EXPECT_TRUE(store_->DeletePolicy("default").value());
  EXPECT_FALSE(store_->DeletePolicy("default").value());
  EXPECT_FALSE(store_->GetPolicy("default").value().has_value());
  EXPECT_EQ(store_->ListPolicies().value(), (std::vector<std::string>{"zeta"}));
}

TEST_P(StoreTest, ModelKeyIsNeverSilentlyReplaced) {
  ModelKeyRow row{"llama-v1", Bytes{1, 2, 3}, R"({"model_digests":["aa"]})", kT0};
  ASSERT_TRUE(store_->PutModelKey(row).ok());
  ModelKeyRow other{"llama-v1", Bytes{9, 9}, R"({"model_digests":["bb"]})", kT0 + 5};
  auto st = store_->PutModelKey(other);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Errc::kInvalidArgument);
  EXPECT_NE(st.detail().find("llama-v1"), std::string::npos) << st.detail();
  auto got = store_->GetModelKey("llama-v1").value();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->sealed_key, (Bytes{1, 2, 3}));
  EXPECT_EQ(got->release_policy, R"({"model_digests":["aa"]})");
  EXPECT_EQ(got->created, kT0);
  EXPECT_FALSE(store_->GetModelKey("nope").value().has_value());
}

TEST_P(StoreTest, ReleasePolicyUpdateAndListingWithoutSecrets) {
  ASSERT_TRUE(store_->PutModelKey({"b", Bytes{1}, "{}", kT0}).ok());
  ASSERT_TRUE(store_->PutModelKey({"a", Bytes{2}, "{}", kT0}).ok());
  ASSERT_TRUE(store_->SetReleasePolicy("a", R"({"x":1})").ok());
  EXPECT_EQ(store_->SetReleasePolicy("zzz", "{}").code(), Errc::kNotFound);
  auto rows = store_->ListModelKeys().value();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].key_id, "a");
  EXPECT_EQ(rows[0].release_policy, R"({"x":1})");
  EXPECT_TRUE(rows[0].sealed_key.empty());  // listings never carry the sealed key
  EXPECT_TRUE(rows[1].sealed_key.empty());
}

// A retired fleet key's row is deleted: gone from reads and listings, its id
// free for a new key (fleet_keys.cc), the other rows untouched and the store
// still opening (every remaining row verifies).
TEST_P(StoreTest, ModelKeyDeleteDestroysTheRow) {
  ASSERT_TRUE(store_->PutModelKey({"fleet-0-x25519", Bytes{1}, "{}", kT0}).ok());
  ASSERT_TRUE(store_->PutModelKey({"fleet-1-gmt", Bytes{2}, "{}", kT0}).ok());
  EXPECT_TRUE(store_->DeleteModelKey("fleet-0-x25519").value());
  EXPECT_FALSE(store_->DeleteModelKey("fleet-0-x25519").value());
  EXPECT_FALSE(store_->GetModelKey("fleet-0-x25519").value().has_value());
  auto rows = store_->ListModelKeys().value();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].key_id, "fleet-1-gmt");
  ASSERT_TRUE(store_->PutModelKey({"fleet-0-x25519", Bytes{3}, "{}", kT0 + 1}).ok());
  EXPECT_EQ(store_->GetModelKey("fleet-0-x25519").value()->sealed_key, Bytes{3});
}

TEST_P(StoreTest, SigningKeysRetireOnceAndDelete) {
  ASSERT_TRUE(store_->AddSigningKey({"k1", Bytes{1}, kT0, std::nullopt}).ok());
  ASSERT_TRUE(store_->AddSigningKey({"k2", Bytes{2}, kT0 + 10, std::nullopt}).ok());
  ASSERT_TRUE(store_->RetireSigningKey("k1", kT0 + 10).ok());
  // A second retire does not move the retirement time (the overlap counts from the first).
  ASSERT_TRUE(store_->RetireSigningKey("k1", kT0 + 500).ok());
  auto keys = store_->SigningKeys().value();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].kid, "k1");
  EXPECT_EQ(keys[0].retired, std::optional<int64_t>(kT0 + 10));
  EXPECT_EQ(keys[1].kid, "k2");
  EXPECT_FALSE(keys[1].retired.has_value());
  ASSERT_TRUE(store_->DeleteSigningKey("k1").ok());
  keys = store_->SigningKeys().value();
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].kid, "k2");
}

TEST_P(StoreTest, MetaRoundTripsAndHasTheSchemaVersion) {
  EXPECT_EQ(store_->GetMeta("schema").value().value(), "2");
  EXPECT_FALSE(store_->GetMeta("admin_token_sha256").value().has_value());
  ASSERT_TRUE(store_->PutMeta("k", "v1").ok());
  ASSERT_TRUE(store_->PutMeta("k", "v2").ok());
  EXPECT_EQ(store_->GetMeta("k").value().value(), "v2");
}

TEST_P(StoreTest, UnknownSchemaVersionIsRefused) {
  store_.reset();
  Sql("UPDATE meta SET v = '3' WHERE k = 'schema'");
  auto s = Store::Open(location(), box_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Errc::kUnsupported);
}

// ---------------------------------------------------------------------------
// Audit chain
// ---------------------------------------------------------------------------

TEST_P(StoreTest, AuditAppendChainsAndVerifies) {
  EXPECT_EQ(VerifyAuditChain({}).value().seq, 0u);
  AppendN(5);
  auto all = All();
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[0].seq, 1u);
  EXPECT_EQ(all[0].prev_hash, Digest32{});
  for (size_t i = 1; i < all.size(); ++i) EXPECT_EQ(all[i].prev_hash, all[i - 1].hash);
  auto head = VerifyAuditChain(all);
  ASSERT_TRUE(head.ok()) << head.detail();
  EXPECT_EQ(head->seq, 5u);
  EXPECT_EQ(head->hash, all[4].hash);
  // Paging.
  auto tail = store_->ReadAudit(4, 10).value();
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail[0].seq, 4u);
  EXPECT_EQ(store_->ReadAudit(1, 2).value().size(), 2u);
}

// Concurrent appends are group-committed (Store::AppendAudit): every caller
// gets its own entry, seqs have no gaps or duplicates, the chain and every
// signature verify, and the entries survive a reopen.
TEST_P(StoreTest, ConcurrentAuditAppendsChainAndVerify) {
  constexpr int kThreads = 8, kEach = 40;
  std::vector<std::thread> threads;
  std::vector<std::vector<uint64_t>> seqs(kThreads);
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto e = store_->AppendAudit("attest", "{\"t\":" + std::to_string(t) + ",\"i\":" + std::to_string(i) + "}",
                                     kT0 + i);
        if (!e.ok() || e->body.find("\"t\":" + std::to_string(t) + ",") == std::string::npos) {
          ++failures;
          continue;
        }
        seqs[t].push_back(e->seq);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  std::vector<bool> seen(kThreads * kEach + 1, false);
  for (const auto& v : seqs) {
    for (uint64_t s : v) {
      ASSERT_TRUE(s >= 1 && s <= kThreads * kEach) << s;
      EXPECT_FALSE(seen[s]) << "seq " << s << " returned twice";
      seen[s] = true;
    }
  }
  Reopen();  // Open checks the whole chain and the head's signature
  auto all = store_->ReadAudit(1, 10000).value();
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kEach));
  auto head = VerifyAuditChain(all, store_->audit_key());
  ASSERT_TRUE(head.ok()) << head.detail();
  EXPECT_EQ(head->seq, static_cast<uint64_t>(kThreads * kEach));
  EXPECT_EQ(head->signed_from, 1u);
}

// Nonces stay single-use when many callers race for the same ones.
TEST_P(StoreTest, NonceSingleUseUnderConcurrency) {
  constexpr int kNonces = 50, kThreads = 8;
  for (int n = 0; n < kNonces; ++n) ASSERT_TRUE(store_->AddNonce(Nonce(static_cast<uint8_t>(n)), kT0 + 60).ok());
  std::atomic<int> ok{0}, unknown{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int n = 0; n < kNonces; ++n) {
        auto st = store_->ConsumeNonce(Nonce(static_cast<uint8_t>(n)), kT0);
        if (st.ok() && *st == NonceState::kOk) {
          ++ok;
        } else if (st.ok() && *st == NonceState::kUnknown) {
          ++unknown;
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kNonces);  // each nonce accepted exactly once
  EXPECT_EQ(unknown.load(), kNonces * (kThreads - 1));
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(store_->CountNonces(), 0);
}

// ExpectBrokenAt checks that verification fails naming `seq` first.
void ExpectBrokenAt(const std::vector<AuditEntry>& entries, uint64_t seq, const std::string& why) {
  auto r = VerifyAuditChain(entries);
  ASSERT_FALSE(r.ok()) << "tampering not detected (" << why << ")";
  EXPECT_EQ(r.code(), Errc::kCrypto);
  EXPECT_EQ(r.detail().rfind("audit entry " + std::to_string(seq) + ":", 0), 0u) << why << ": " << r.detail();
}

TEST_P(StoreTest, AuditTamperingInMemoryIsCaughtAtTheRightSeq) {
  AppendN(6);
  const auto good = All();
  {
    auto v = good;
    v[2].body = R"({"i":99})";  // seq 3
    ExpectBrokenAt(v, 3, "changed body");
  }
  {
    auto v = good;
    v[3].time += 1;  // seq 4
    ExpectBrokenAt(v, 4, "changed time");
  }
  {
    auto v = good;
    v[1].kind = "key_release";  // seq 2
    ExpectBrokenAt(v, 2, "changed kind");
  }
  {
    auto v = good;
    v.erase(v.begin() + 2);  // drop seq 3: seq 4 follows seq 2
    ExpectBrokenAt(v, 4, "deleted middle entry");
  }
  {
    auto v = good;
    std::swap(v[1], v[2]);  // 1, 3, 2, 4, …
    ExpectBrokenAt(v, 3, "reordered entries");
  }
  {
    // A forger who recomputes the altered entry's own hash still breaks the next link.
    auto v = good;
    v[2].body = R"({"i":99})";
    v[2].hash = AuditHash(v[2].seq, v[2].time, v[2].kind, v[2].body, v[2].prev_hash);
    ExpectBrokenAt(v, 4, "rehashed altered entry");
  }
  {
    // Renumbering after a deletion does not help either.
    auto v = good;
    v.erase(v.begin() + 2);
    for (size_t i = 2; i < v.size(); ++i) v[i].seq -= 1;
    ExpectBrokenAt(v, 3, "renumbered after deletion");
  }
}

TEST_P(StoreTest, AuditTamperingOnDiskIsCaughtAtTheRightSeq) {
  AppendN(6);
  Sql(R"(UPDATE audit SET body = '{"i":42}' WHERE seq = 5)");
  ExpectBrokenAt(All(), 5, "body edited in the database");
  Sql("UPDATE audit SET time = time - 3600 WHERE seq = 2");
  ExpectBrokenAt(All(), 2, "time edited in the database");
}

TEST_P(StoreTest, AuditRowDeletedOnDiskIsCaught) {
  AppendN(6);
  Sql("DELETE FROM audit WHERE seq = 3");
  ExpectBrokenAt(All(), 4, "row deleted in the database");
}

// An entry removed from the log's end while the service runs left a chain
// that still verified: the next append took its seq and signed anew. The
// store remembers the newest entry it verified or wrote and refuses to
// append past a log that no longer has it.
TEST_P(StoreTest, AnEntryRemovedFromTheEndIsCaughtByTheNextAppend) {
  AppendN(3);
  Sql("DELETE FROM audit WHERE seq = 3");
  auto e = store_->AppendAudit("attest", "{}", kT0 + 10);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.code(), Errc::kCrypto);
  EXPECT_NE(e.detail().find("entries were removed"), std::string::npos) << e.detail();
  // The same after a restart that verified entries 1-2: 3 is not known.
  Reopen();
  ASSERT_TRUE(store_->AppendAudit("attest", "{}", kT0 + 11).ok());
  Sql("DELETE FROM audit WHERE seq = 3; DELETE FROM audit WHERE seq = 2");
  auto again = store_->AppendAudit("attest", "{}", kT0 + 12);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.code(), Errc::kCrypto);
}

#ifndef CLLM_STORE_TEST_POSTGRES
// A trigger the host planted in the SQLite file dropped each entry of a
// kind as it was written (every MAC and signature intact): the append now
// checks its entry is there before it commits, and Open refuses a store
// with any trigger or view.
TEST_P(StoreTest, ATriggerThatDropsEntriesFailsTheAppendAndTheStoreWillNotOpen) {
  AppendN(2);
  Sql("CREATE TRIGGER hide AFTER INSERT ON audit WHEN NEW.kind = 'key_release' BEGIN "
      "DELETE FROM audit WHERE seq = NEW.seq; END");
  auto e = store_->AppendAudit("key_release", "{}", kT0 + 10);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.code(), Errc::kCrypto);
  EXPECT_NE(e.detail().find("not kept as written"), std::string::npos) << e.detail();
  EXPECT_EQ(All().size(), 2u);
  store_.reset();
  auto reopened = Store::Open(location(), box_);
  ASSERT_FALSE(reopened.ok());
  EXPECT_NE(reopened.detail().find("trigger hide"), std::string::npos) << reopened.detail();
  Sql("DROP TRIGGER hide; CREATE VIEW v AS SELECT * FROM audit");
  reopened = Store::Open(location(), box_);
  ASSERT_FALSE(reopened.ok());
  EXPECT_NE(reopened.detail().find("view v"), std::string::npos) << reopened.detail();
  Sql("DROP VIEW v");
  Reopen();
}
#endif

// Two replicas whose clocks differ: one rotates "later" (its clock ahead),
// the other rotates after it and retires that key. The key newest by
// `created` is then a retired one; each reload used to make yet another
// key (the JWKS grew by one every 2 s). The active key stays.
TEST_P(StoreTest, SigningKeysKeepTheirActiveKeyWhenARetiredOneIsNewer) {
  auto keys = SigningKeys::Load(*store_, box_, kT0, std::chrono::seconds(630)).value();
  ASSERT_TRUE(keys->Rotate(kT0 + 4000).ok());                // the replica whose clock is ahead
  const std::string kept = keys->Rotate(kT0 + 100).value();  // the other, retiring that key
  std::set<std::string> active;
  for (int64_t t = kT0 + 102; t < kT0 + 112; t += 2) {
    ASSERT_TRUE(keys->Reload(t).ok());
    active.insert(keys->active_kid());
  }
  EXPECT_EQ(active, std::set<std::string>{kept});
  EXPECT_EQ(keys->Jwks()["keys"].size(), 3u);
  auto token = keys->SignJwt({{"sub", "x"}});
  ASSERT_TRUE(token.ok()) << token.detail();
}

TEST_P(StoreTest, AuditRowsSwappedOnDiskAreCaught) {
  AppendN(4);
  // Swap the contents of seq 2 and 3 (keeping the seq column in order).
  Sql("UPDATE audit SET seq = -2 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 3; "
      "UPDATE audit SET seq = 3 WHERE seq = -2;");
  ExpectBrokenAt(All(), 2, "rows swapped in the database");
}

// ---------------------------------------------------------------------------
// Restart
// ---------------------------------------------------------------------------

TEST_P(StoreTest, RestartLosesNothing) {
  Bytes master(32, 0x5A);
  auto box = SecretBox::FromKey(master).value();
  const Bytes model_key(32, 0xC3);
  ASSERT_TRUE(store_->AddNonce(Nonce(7), kT0 + 120).ok());
  ASSERT_TRUE(store_->PutPolicy("default", R"({"policy":{}})", kT0).ok());
  ASSERT_TRUE(store_->PutModelKey({"m1", box.Seal("model-key:m1", model_key), R"({"r":1})", kT0}).ok());
  ASSERT_TRUE(store_->AddSigningKey({"s1", box.Seal("signing-key:s1", Bytes(40, 1)), kT0, kT0 + 5}).ok());
  ASSERT_TRUE(store_->AddSigningKey({"s2", box.Seal("signing-key:s2", Bytes(40, 2)), kT0 + 5, std::nullopt}).ok());
  ASSERT_TRUE(store_->PutMeta("admin_token_sha256", "abcd").ok());
  AppendN(3);
  const auto head_before = VerifyAuditChain(All()).value();

  Reopen();
  auto box2 = SecretBox::FromKey(master).value();  // the same master key, a new object
  EXPECT_EQ(store_->ConsumeNonce(Nonce(7), kT0).value(), NonceState::kOk);
  EXPECT_EQ(store_->GetPolicy("default").value().value(), R"({"policy":{}})");
  auto row = store_->GetModelKey("m1").value();
  ASSERT_TRUE(row.has_value());
  auto opened = box2.Open("model-key:m1", row->sealed_key);
  ASSERT_TRUE(opened.ok()) << opened.detail();
  EXPECT_EQ(Bytes(opened->span().begin(), opened->span().end()), model_key);
  auto keys = store_->SigningKeys().value();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].retired, std::optional<int64_t>(kT0 + 5));
  EXPECT_TRUE(box2.Open("signing-key:s2", keys[1].sealed_pkcs8).ok());
  EXPECT_EQ(store_->GetMeta("admin_token_sha256").value().value(), "abcd");
  auto head_after = VerifyAuditChain(All());
  ASSERT_TRUE(head_after.ok()) << head_after.detail();
  EXPECT_EQ(head_after->seq, head_before.seq);
  EXPECT_EQ(head_after->hash, head_before.hash);
  // The chain continues from the stored head.
  ASSERT_TRUE(store_->AppendAudit("admin", "{}", kT0 + 10).ok());
  EXPECT_EQ(VerifyAuditChain(All()).value().seq, 4u);
}

// ---------------------------------------------------------------------------
// Tamper evidence: rows edited, copied or inserted by someone who can write
// trust.db but does not hold the master key (row_mac.h, audit.h)
// ---------------------------------------------------------------------------

// ExpectTampered checks a typed refusal naming the table and row.
template <typename R>
void ExpectTampered(const R& r, const std::string& row) {
  ASSERT_FALSE(r.ok()) << "tampering with " << row << " not detected";
  EXPECT_EQ(r.code(), Errc::kCrypto);
  EXPECT_NE(r.detail().find(row), std::string::npos) << r.detail();
}

TEST_P(StoreTest, EditedReleasePolicyIsRefusedNamingTheRow) {
  ASSERT_TRUE(store_->PutModelKey({"m1", Bytes{1, 2}, R"({"model_digests":["aa"]})", kT0}).ok());
  Sql(R"(UPDATE model_keys SET release_policy = '{"model_digests":["bb"]}' WHERE key_id = 'm1')");
  ExpectTampered(store_->GetModelKey("m1"), "model_keys[\"m1\"]");
  ExpectTampered(store_->ListModelKeys(), "model_keys[\"m1\"]");
  // An update never re-authenticates the tampered row.
  ExpectTampered(store_->SetReleasePolicy("m1", "{}"), "model_keys[\"m1\"]");
  store_.reset();
  ExpectTampered(Store::Open(location(), box_), "model_keys[\"m1\"]");  // and the store refuses to open
}

TEST_P(StoreTest, EditedAdminTokenDigestIsRefused) {
  ASSERT_TRUE(store_->PutMeta("admin_token_sha256", std::string(64, 'a')).ok());
  Sql("UPDATE meta SET v = '" + std::string(64, 'b') + "' WHERE k = 'admin_token_sha256'");
  ExpectTampered(store_->GetMeta("admin_token_sha256"), "meta[\"admin_token_sha256\"]");
  // An update never writes over (and so re-authenticates) the tampered row.
  ExpectTampered(store_->PutMeta("admin_token_sha256", std::string(64, 'c')), "meta[\"admin_token_sha256\"]");
  store_.reset();
  ExpectTampered(Store::Open(location(), box_), "meta[\"admin_token_sha256\"]");
}

// The same for a policy: PUT over a tampered policy is refused (it wiped
// out the evidence of the tampering before), and so is a version set to
// the largest integer (which made every later update fail).
TEST_P(StoreTest, APolicyUpdateNeverWritesOverATamperedRow) {
  ASSERT_TRUE(store_->PutPolicy("prod", R"({"policy":{"strict":true}})", kT0).ok());
  Sql(R"(UPDATE policies SET json = '{"policy":{"strict":false}}' WHERE name = 'prod')");
  ExpectTampered(store_->PutPolicy("prod", R"({"policy":{"strict":true,"v":2}})", kT0 + 1), "policies[\"prod\"]");
  ExpectTampered(store_->GetPolicy("prod"), "policies[\"prod\"]");
  ASSERT_TRUE(store_->PutPolicy("dev", R"({"policy":{}})", kT0).ok());
  Sql("UPDATE policies SET ver = 9223372036854775807 WHERE name = 'dev'");
  ExpectTampered(store_->PutPolicy("dev", R"({"policy":{"v":2}})", kT0 + 1), "policies[\"dev\"]");
}

TEST_P(StoreTest, RowCopiedToAnotherKeyOrTableIsRefused) {
  ASSERT_TRUE(store_->PutPolicy("prod", R"({"policy":{"strict":true}})", kT0).ok());
  ASSERT_TRUE(store_->PutPolicy("dev", R"({"policy":{"strict":false}})", kT0).ok());
  // The whole authenticated "dev" row (contents, version, MAC) copied over "prod".
  Sql("UPDATE policies SET (json, updated, ver, mac) = (SELECT json, updated, ver, mac FROM policies "
                 "WHERE name = 'dev') WHERE name = 'prod'");
  ExpectTampered(store_->GetPolicy("prod"), "policies[\"prod\"]");
  EXPECT_TRUE(store_->GetPolicy("dev").ok());
  // A meta row's MAC moved onto another meta key.
  ASSERT_TRUE(store_->PutMeta("x", "1").ok());
  Sql("INSERT INTO meta(k, v, ver, mac) SELECT 'admin_token_sha256', v, ver, mac FROM meta WHERE k = 'x'");
  ExpectTampered(store_->GetMeta("admin_token_sha256"), "meta[\"admin_token_sha256\"]");
}

TEST_P(StoreTest, StaleMacOnNewerVersionIsRefused) {
  ASSERT_TRUE(store_->PutPolicy("p", R"({"v":1})", kT0).ok());
  ASSERT_TRUE(store_->PutPolicy("p", R"({"v":2})", kT0).ok());
  // Keep the current contents and version but bring back version 1's MAC.
  Sql("UPDATE policies SET ver = 1 WHERE name = 'p'");
  ExpectTampered(store_->GetPolicy("p"), "policies[\"p\"]");
}

TEST_P(StoreTest, InsertedRowsWithoutMacAreRefused) {
  Sql("INSERT INTO policies(name, json, updated) VALUES('evil', '{}', 0)");
  ExpectTampered(store_->GetPolicy("evil"), "policies[\"evil\"]");
  ExpectTampered(store_->ListPolicies(), "policies[\"evil\"]");
  Sql("INSERT INTO signing_keys(kid, sealed_pkcs8, created) VALUES('k', " + Blob("00") + ", 0)");
  ExpectTampered(store_->SigningKeys(), "signing_keys[\"k\"]");
  // A nonce slipped in to replay evidence made for it.
  Sql("INSERT INTO nonces(nonce, expires) VALUES(" + Blob(HexEncode(Nonce(9))) + ", " +
                     std::to_string(kT0 + 60) + ")");
  ExpectTampered(store_->ConsumeNonce(Nonce(9), kT0), "nonces[\"" + HexEncode(Nonce(9)) + "\"]");
}

TEST_P(StoreTest, EditedSigningKeyRetirementIsRefused) {
  ASSERT_TRUE(store_->AddSigningKey({"k1", Bytes{1}, kT0, kT0 + 10}).ok());
  Sql("UPDATE signing_keys SET retired = NULL WHERE kid = 'k1'");  // bring a retired key back
  ExpectTampered(store_->SigningKeys(), "signing_keys[\"k1\"]");
}

TEST_P(StoreTest, AnotherMasterKeyCannotOpenTheStore) {
  store_.reset();
  ExpectTampered(Store::Open(location(), SecretBox::FromKey(Bytes(32, 0x01)).value()), "meta[\"");
}

// Recompute rewrites every hash, as an attacker with the database but
// without the audit key can: the unkeyed chain verifies again. `sql` runs a
// statement, `blob` makes a bytes literal of hex.
template <typename SqlFn, typename BlobFn>
void Recompute(SqlFn sql, BlobFn blob, std::vector<AuditEntry> entries) {
  Digest32 prev{};
  for (auto& e : entries) {
    e.prev_hash = prev;
    e.hash = AuditHash(e.seq, e.time, e.kind, e.body, e.prev_hash);
    prev = e.hash;
    sql("UPDATE audit SET body = '" + e.body + "', prev_hash = " + blob(HexEncode(e.prev_hash)) +
        ", hash = " + blob(HexEncode(e.hash)) + " WHERE seq = " + std::to_string(e.seq));
  }
}

TEST_P(StoreTest, RecomputedAuditChainIsCaughtBySignatures) {
  AppendN(6);
  auto v = All();
  ASSERT_TRUE(VerifyAuditChain(v, store_->audit_key()).ok());
  v[2].body = R"({"i":99})";  // seq 3
  Recompute([&](const std::string& q) { Sql(q); }, [&](const std::string& h) { return Blob(h); }, v);
  // The old, unkeyed check is fooled…
  ASSERT_TRUE(VerifyAuditChain(All()).ok());
  // …the signatures are not, at the first altered entry.
  auto r = VerifyAuditChain(All(), store_->audit_key());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.detail().rfind("audit entry 3:", 0), 0u) << r.detail();
  EXPECT_NE(r.detail().find("signature"), std::string::npos) << r.detail();
  // The store refuses to open: its head is no longer signed by the audit key.
  store_.reset();
  ExpectTampered(Store::Open(location(), box_), "store table audit");
}

TEST_P(StoreTest, StrippedOrForeignAuditSignaturesAreCaught) {
  AppendN(4);
  Sql("UPDATE audit SET sig = NULL WHERE seq = 3");
  auto r = VerifyAuditChain(All(), store_->audit_key());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.detail().rfind("audit entry 3:", 0), 0u) << r.detail();
  Sql("UPDATE audit SET sig = NULL");  // every signature gone: the head is unsigned
  EXPECT_FALSE(VerifyAuditChain(All(), store_->audit_key()).ok());
  // Signed by another key (another store's): does not verify under ours.
  std::string why;
  auto other_db = TestDb::Create(db_->postgres(), &why);
  ASSERT_TRUE(other_db) << why;
  auto other = Store::Open(other_db->location(), box_).value();
  ASSERT_TRUE(other->AppendAudit("admin", "{}", kT0).ok());
  EXPECT_FALSE(VerifyAuditChain(other->ReadAudit(1, 10).value(), store_->audit_key()).ok());
}

TEST_P(StoreTest, DeletedAuditKeyRefusesToOpen) {
  store_.reset();
  Sql("DELETE FROM meta WHERE k = 'audit_key_sealed'");
  ExpectTampered(Store::Open(location(), box_), "meta[\"audit_key_sealed\"]");
}

#ifndef CLLM_STORE_TEST_POSTGRES  // SQLite only: schema 1 never existed on PostgreSQL; SecretBox has no engine
// A schema-1 store (before rows were authenticated): refused until upgraded,
// then every row and the old audit entries are covered.
TEST(StoreUpgradeTest, SchemaOneIsRefusedThenUpgradedOnce) {
  TempDir dir;
  const fs::path db = dir.path() / "trust.db";
  Sql(db, R"sql(
CREATE TABLE meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE nonces(nonce BLOB PRIMARY KEY, expires INTEGER NOT NULL);
CREATE TABLE policies(name TEXT PRIMARY KEY, json TEXT NOT NULL, updated INTEGER NOT NULL);
CREATE TABLE model_keys(key_id TEXT PRIMARY KEY, sealed_key BLOB NOT NULL, release_policy TEXT NOT NULL,
                        created INTEGER NOT NULL);
CREATE TABLE signing_keys(kid TEXT PRIMARY KEY, sealed_pkcs8 BLOB NOT NULL, created INTEGER NOT NULL, retired INTEGER);
CREATE TABLE audit(seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
                   prev_hash BLOB NOT NULL, hash BLOB NOT NULL);
INSERT INTO meta VALUES('schema', '1'), ('admin_token_sha256', 'abcd');
INSERT INTO policies VALUES('default', '{"policy":{}}', 5);
INSERT INTO model_keys VALUES('m1', x'0102', '{"r":1}', 6);
INSERT INTO signing_keys VALUES('s1', x'03', 7, NULL);
INSERT INTO nonces VALUES(x'00', 99);
)sql");
  const Digest32 h1 = AuditHash(1, kT0, "admin", "{}", Digest32{});
  Sql(db, "INSERT INTO audit VALUES(1, " + std::to_string(kT0) + ", 'admin', '{}', x'" + HexEncode(Digest32{}) +
              "', x'" + HexEncode(h1) + "')");
  auto box = SecretBox::FromKey(Bytes(32, 7)).value();
  auto refused = Store::Open(db, box);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), Errc::kUnsupported);
  EXPECT_NE(refused.detail().find("cllm-trust upgrade"), std::string::npos) << refused.detail();

  auto rows = Store::Upgrade(db, box);
  ASSERT_TRUE(rows.ok()) << rows.detail();
  EXPECT_EQ(*rows, 5);  // 2 meta + 1 policy + 1 model key + 1 signing key
  EXPECT_EQ(Store::Upgrade(db, box).code(), Errc::kInvalidArgument);  // only once
  auto store = Store::Open(db, box);
  ASSERT_TRUE(store.ok()) << store.detail();
  EXPECT_EQ((*store)->GetMeta("admin_token_sha256").value().value(), "abcd");
  EXPECT_EQ((*store)->GetModelKey("m1").value()->release_policy, R"({"r":1})");
  auto audit = (*store)->ReadAudit(1, 10).value();
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_TRUE(audit[0].sig.empty());
  EXPECT_EQ(audit[1].kind, "store_upgrade");
  auto head = VerifyAuditChain(audit, (*store)->audit_key());
  ASSERT_TRUE(head.ok()) << head.detail();
  EXPECT_EQ(head->signed_from, 2u);
  // The legacy entry is covered by the signed one after it.
  const crypto::PublicKey audit_key = *(*store)->audit_key();
  store->reset();
  auto legacy = Store::OpenAuditReader(db).value()->ReadAudit(1, 10).value();
  legacy[0].body = R"({"x":1})";
  Recompute([&](const std::string& q) { Sql(db, q); }, [](const std::string& h) { return "x'" + h + "'"; }, legacy);
  EXPECT_FALSE(VerifyAuditChain(Store::OpenAuditReader(db).value()->ReadAudit(1, 10).value(), &audit_key).ok());
  ExpectTampered(Store::Open(db, box), "store table audit");
}

// ---------------------------------------------------------------------------
// SecretBox
// ---------------------------------------------------------------------------

TEST(SecretBoxTest, OpensOnlyWithTheSameKeyAndLabelAndUnchangedBytes) {
  auto box = SecretBox::FromKey(Bytes(32, 1)).value();
  const Bytes secret = {1, 2, 3, 4, 5, 6, 7, 8};
  Bytes blob = box.Seal("model-key:a", secret);
  auto ok = box.Open("model-key:a", blob);
  ASSERT_TRUE(ok.ok()) << ok.detail();
  EXPECT_EQ(Bytes(ok->span().begin(), ok->span().end()), secret);
  // Sealing twice gives different blobs (fresh nonce).
  EXPECT_NE(box.Seal("model-key:a", secret), blob);

  auto other = SecretBox::FromKey(Bytes(32, 2)).value();
  EXPECT_EQ(other.Open("model-key:a", blob).code(), Errc::kCrypto);
  EXPECT_EQ(box.Open("model-key:b", blob).code(), Errc::kCrypto);  // copied into another row
  for (size_t i : {size_t{0}, size_t{12}, blob.size() / 2, blob.size() - 1}) {
    Bytes flipped = blob;
    flipped[i] ^= 0x01;
    EXPECT_EQ(box.Open("model-key:a", flipped).code(), Errc::kCrypto) << "byte " << i;
  }
  EXPECT_FALSE(box.Open("model-key:a", ByteSpan(blob).subspan(0, 27)).ok());  // shorter than nonce + tag
  EXPECT_EQ(SecretBox::FromKey(Bytes(31, 1)).code(), Errc::kInvalidArgument);
}

TEST(SecretBoxTest, LoadsFromAFileAndFromTheEnvironment) {
  TempDir dir;
  const Bytes master(32, 0x42);
  const std::string hex = HexEncode(master);
  const fs::path file = dir.path() / "master.key";
  std::ofstream(file) << hex << "\n";
  auto from_file = SecretBox::Load(file);
  ASSERT_TRUE(from_file.ok()) << from_file.detail();
  Bytes blob = SecretBox::FromKey(master).value().Seal("x", Bytes{9});
  EXPECT_TRUE(from_file->Open("x", blob).ok());

  ::setenv("CLLM_TRUST_MASTER_KEY", hex.c_str(), 1);
  const char* value = std::getenv("CLLM_TRUST_MASTER_KEY");
  const size_t length = std::strlen(value);
  auto from_env = SecretBox::Load("");
  ASSERT_TRUE(from_env.ok()) << from_env.detail();
  EXPECT_TRUE(from_env->Open("x", blob).ok());
  // Read once, then gone from the environment, and the value overwritten
  // where it lay (glibc keeps setenv's string: reading it back is defined).
  EXPECT_EQ(std::getenv("CLLM_TRUST_MASTER_KEY"), nullptr);
  EXPECT_EQ(std::string(value, length), std::string(length, '\0'));

  EXPECT_EQ(SecretBox::Load("").code(), Errc::kNotFound);  // neither
  ::setenv("CLLM_TRUST_MASTER_KEY", "abcd", 1);
  EXPECT_EQ(SecretBox::Load("").code(), Errc::kParse);
  EXPECT_EQ(std::getenv("CLLM_TRUST_MASTER_KEY"), nullptr);  // a bad value is not left there either
  ::setenv("CLLM_TRUST_MASTER_KEY", hex.c_str(), 1);
  EXPECT_TRUE(SecretBox::Load(file).ok());
  EXPECT_EQ(std::getenv("CLLM_TRUST_MASTER_KEY"), nullptr);  // set beside a file that wins: scrubbed too
  std::ofstream(dir.path() / "short.key") << "abcd\n";
  EXPECT_FALSE(SecretBox::Load(dir.path() / "short.key").ok());
  EXPECT_FALSE(SecretBox::Load(dir.path() / "missing.key").ok());
}

TEST(SecretBoxTest, CreateKeyFileNeverOverwrites) {
  TempDir dir;
  const fs::path file = dir.path() / "master.key";
  ASSERT_TRUE(SecretBox::CreateKeyFile(file).ok());
  EXPECT_EQ(fs::status(file).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  auto box = SecretBox::Load(file);
  ASSERT_TRUE(box.ok()) << box.detail();
  Bytes blob = box->Seal("y", Bytes{1});
  EXPECT_FALSE(SecretBox::CreateKeyFile(file).ok());
  EXPECT_TRUE(SecretBox::Load(file).value().Open("y", blob).ok());  // the key is unchanged
}

#endif  // CLLM_STORE_TEST_POSTGRES

}  // namespace
}  // namespace cllm::trust
