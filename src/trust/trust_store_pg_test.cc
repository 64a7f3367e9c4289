// Tests of the store on PostgreSQL that only several cllm-trust replicas on
// one database can fail (store.h, "Across processes"): each runs against a
// real PostgreSQL server (tests/support/postgres.h) with two Store instances
// — two connections — or two processes, and checks the guarantee itself:
// a nonce is accepted once, concurrent audit appends form one chain whose
// every signature verifies, two replicas creating the schema at once agree
// on one audit key; and the errors an operator meets are clear.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "trust/audit.h"
#include "trust/secret_box.h"
#include "trust/store.h"
#include "trust/store_test_db.h"
#include "trust/trust_service_fixture.h"

namespace cllm::trust {
namespace {

using testing::TestDb;
using json = nlohmann::json;

constexpr int64_t kT0 = 1'750'000'000;

Bytes Nonce(int i) {
  Bytes n(32, 0x11);
  n[0] = static_cast<uint8_t>(i);
  n[1] = static_cast<uint8_t>(i >> 8);
  return n;
}

class PgStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    db_ = TestDb::Create(/*postgres=*/true, &why);
    if (!db_) GTEST_SKIP() << why;
  }
  std::unique_ptr<Store> Open() {
    auto s = Store::Open(db_->location(), box_);
    EXPECT_TRUE(s.ok()) << s.detail();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  std::unique_ptr<TestDb> db_;
  SecretBox box_ = SecretBox::FromKey(Bytes(32, 0x5A)).value();
};

// Two replicas (two connections) race for every nonce: each is accepted
// exactly once in total.
TEST_F(PgStoreTest, NonceConsumedByTwoStoresSucceedsOnce) {
  auto a = Open(), b = Open();
  ASSERT_TRUE(a && b);
  constexpr int kNonces = 100;
  for (int n = 0; n < kNonces; ++n) ASSERT_TRUE(a->AddNonce(Nonce(n), kT0 + 60).ok());
  std::atomic<int> ok{0}, unknown{0}, other{0};
  std::vector<std::thread> threads;
  for (Store* s : {a.get(), b.get(), a.get(), b.get()}) {
    threads.emplace_back([&, s] {
      for (int n = 0; n < kNonces; ++n) {
        auto st = s->ConsumeNonce(Nonce(n), kT0);
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
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kNonces);
  EXPECT_EQ(unknown.load(), 3 * kNonces);
  EXPECT_EQ(other.load(), 0);
  // The count is per process; a purge re-reads the database's.
  ASSERT_TRUE(b->PurgeNonces(kT0).ok());
  EXPECT_EQ(b->CountNonces(), 0);
}

// RunChild forks a process that runs `body` with its own Store (its own
// connection), after the parent says go; its exit code is body's result.
pid_t RunChild(const std::string& location, const SecretBox& box, int go_fd, int (*body)(Store&)) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  // Child: never return into gtest, never touch the parent's connections.
  auto store = Store::Open(location, box);
  char c = 0;
  if (!store.ok() || ::read(go_fd, &c, 1) != 1) ::_exit(255);
  ::_exit(body(**store));
}

int WaitChild(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

constexpr int kProcessNonces = 120;

int ConsumeAll(Store& s) {
  int ok = 0;
  for (int n = 0; n < kProcessNonces; ++n) {
    auto st = s.ConsumeNonce(Nonce(n), kT0);
    if (!st.ok()) return 254;
    ok += *st == NonceState::kOk;
  }
  return ok;
}

// The same race between two processes (two cllm-trust replicas).
TEST_F(PgStoreTest, NonceConsumedByTwoProcessesSucceedsOnce) {
  auto a = Open();
  ASSERT_TRUE(a);
  for (int n = 0; n < kProcessNonces; ++n) ASSERT_TRUE(a->AddNonce(Nonce(n), kT0 + 60).ok());
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  pid_t child = RunChild(db_->location(), box_, go[0], ConsumeAll);
  ASSERT_GT(child, 0);
  ASSERT_EQ(::write(go[1], "g", 1), 1);
  const int mine = ConsumeAll(*a);
  const int theirs = WaitChild(child);
  ::close(go[0]);
  ::close(go[1]);
  ASSERT_GE(theirs, 0);
  ASSERT_LT(theirs, 254) << "the child failed";
  EXPECT_EQ(mine + theirs, kProcessNonces) << "parent " << mine << ", child " << theirs;
}

constexpr int kChildAppends = 60;

int AppendMany(Store& s) {
  for (int i = 0; i < kChildAppends; ++i) {
    if (!s.AppendAudit("attest", "{\"child\":" + std::to_string(i) + "}", kT0 + i).ok()) return 1;
  }
  return 0;
}

// Appends from two Store instances (threads each) and a second process at
// once form ONE chain: no gap, no fork, every signature and the head verify,
// and a fresh Open (which checks the whole chain) accepts it.
TEST_F(PgStoreTest, ConcurrentAppendsFromReplicasFormOneChain) {
  auto a = Open(), b = Open();
  ASSERT_TRUE(a && b);
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  pid_t child = RunChild(db_->location(), box_, go[0], AppendMany);
  ASSERT_GT(child, 0);
  ASSERT_EQ(::write(go[1], "g", 1), 1);
  constexpr int kThreads = 3, kEach = 30;
  std::mutex mu;
  std::set<uint64_t> seqs;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2 * kThreads; ++t) {
    Store* s = t % 2 ? b.get() : a.get();
    threads.emplace_back([&, s, t] {
      for (int i = 0; i < kEach; ++i) {
        auto e = s->AppendAudit("admin", "{\"t\":" + std::to_string(t) + ",\"i\":" + std::to_string(i) + "}", kT0);
        if (!e.ok()) {
          ADD_FAILURE() << e.detail();
          ++failures;
          continue;
        }
        std::lock_guard<std::mutex> lock(mu);
        EXPECT_TRUE(seqs.insert(e->seq).second) << "seq " << e->seq << " returned twice";
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(WaitChild(child), 0);
  ::close(go[0]);
  ::close(go[1]);
  EXPECT_EQ(failures.load(), 0);
  constexpr uint64_t kTotal = 2 * kThreads * kEach + kChildAppends;
  auto all = a->ReadAudit(1, 100000).value();
  ASSERT_EQ(all.size(), kTotal);
  auto head = VerifyAuditChain(all, a->audit_key());
  ASSERT_TRUE(head.ok()) << head.detail();
  EXPECT_EQ(head->seq, kTotal);
  EXPECT_EQ(head->signed_from, 1u);
  a.reset();
  EXPECT_TRUE(Open() != nullptr);
}

// Two replicas starting on an empty database at once: one creates the
// schema (under the advisory lock), the other opens it; one audit key.
TEST_F(PgStoreTest, ReplicasCreatingTheSchemaAtOnceAgree) {
  std::unique_ptr<Store> s[2];
  std::thread t0([&] { s[0] = Open(); }), t1([&] { s[1] = Open(); });
  t0.join();
  t1.join();
  ASSERT_TRUE(s[0] && s[1]);
  EXPECT_EQ(s[0]->audit_key()->ToPem(), s[1]->audit_key()->ToPem());
  ASSERT_TRUE(s[0]->PutPolicy("p", "{}", kT0).ok());
  EXPECT_EQ(s[1]->GetPolicy("p").value().value(), "{}");  // shared at once
}

// Updates of one row from two replicas: each is written over the version it
// checked, so none is lost to a stale read and the row stays authentic.
TEST_F(PgStoreTest, ConcurrentUpdatesOfOneRowStayAuthentic) {
  auto a = Open(), b = Open();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->PutModelKey({"m", Bytes{1}, "{}", kT0}).ok());
  std::thread ta([&] {
    for (int i = 0; i < 40; ++i) {
      auto st = a->SetReleasePolicy("m", "{\"a\":" + std::to_string(i) + "}");
      EXPECT_TRUE(st.ok()) << st.detail();
    }
  });
  std::thread tb([&] {
    for (int i = 0; i < 40; ++i) EXPECT_TRUE(b->PutMeta("k", std::to_string(i)).ok());
    for (int i = 0; i < 40; ++i) {
      auto st = b->SetReleasePolicy("m", "{\"b\":" + std::to_string(i) + "}");
      EXPECT_TRUE(st.ok()) << st.detail();
    }
  });
  ta.join();
  tb.join();
  EXPECT_TRUE(a->GetModelKey("m").ok());
  a.reset();
  b.reset();
  EXPECT_TRUE(Open() != nullptr);  // every row still verifies
}

// ---------------------------------------------------------------------------
// Errors an operator meets
// ---------------------------------------------------------------------------

TEST(PgStoreErrorsTest, UnreachableServerIsAClearErrorWithoutThePassword) {
  // Port 1 on loopback: nothing listens there.
  auto s = Store::Open("postgresql://cllm:s3cret-pw@127.0.0.1:1/trust", SecretBox::FromKey(Bytes(32, 1)).value());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Errc::kIo);
  EXPECT_NE(s.detail().find("cannot connect to the store (PostgreSQL host=127.0.0.1 port=1 dbname=trust user=cllm)"),
            std::string::npos)
      << s.detail();
  EXPECT_EQ(s.detail().find("s3cret-pw"), std::string::npos) << s.detail();
}

TEST_F(PgStoreTest, ForeignSchemaAndModesAreClearErrors) {
  StoreOptions existing;
  existing.mode = StoreOptions::Mode::kOpenExisting;
  auto none = Store::Open(db_->location(), box_, existing);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.code(), Errc::kNotFound);
  EXPECT_NE(none.detail().find("cllm-trust init"), std::string::npos) << none.detail();

  db_->Sql("CREATE TABLE meta(x INTEGER)");  // someone else's table of that name
  auto foreign = Store::Open(db_->location(), box_);
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.code(), Errc::kUnsupported);
  EXPECT_NE(foreign.detail().find("not a cllm-trust store"), std::string::npos) << foreign.detail();
  db_->Sql("DROP TABLE meta");

  ASSERT_TRUE(Open() != nullptr);
  StoreOptions create;
  create.mode = StoreOptions::Mode::kCreate;
  auto again = Store::Open(db_->location(), box_, create);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.code(), Errc::kInvalidArgument);
  EXPECT_NE(again.detail().find("already holds a cllm-trust store"), std::string::npos) << again.detail();
}

TEST_F(PgStoreTest, KeywordConnectionStringOverTheUnixSocket) {
  ASSERT_TRUE(Open() != nullptr);
  std::string why;
  auto* pg = testing::SharedPostgres(&why);
  ASSERT_TRUE(pg) << why;
  // The database name of this test's location is its last path element.
  const std::string& url = db_->location();
  const std::string conninfo = pg->ConnInfo(url.substr(url.rfind('/') + 1));
  EXPECT_TRUE(IsPostgresStore(conninfo));
  auto s = Store::Open(conninfo, box_);
  ASSERT_TRUE(s.ok()) << s.detail();
  EXPECT_NE((*s)->where().find("dbname="), std::string::npos);
}

// The fleet-key schedule on two cllm-trust replicas sharing one PostgreSQL
// database (the SQLite case: fleet_key_schedule_test.cc): started together
// every period, they decide from the same list and pick the same successor
// id; the model-key table's primary key lets one insert win, so each period
// makes exactly one rotation and leaves the newest key and its predecessor.
TEST_F(PgStoreTest, FleetKeyScheduleOnTwoReplicasRotatesEachKeyOnce) {
  constexpr int64_t kRotation = 3600, kOverlap = 600;
  std::atomic<int64_t> now{kT0};
  auto open_service = [&]() -> std::unique_ptr<TrustService> {
    auto store = Open();
    if (!store) return nullptr;
    TrustConfig config;
    config.fleet_key_rotation = std::chrono::seconds(kRotation);
    config.fleet_key_overlap = std::chrono::seconds(kOverlap);
    config.clock = [&now] { return TimePoint(std::chrono::seconds(now.load())); };
    auto s = TrustService::Create(std::move(store), SecretBox::FromKey(Bytes(32, 0x5A)).value(), config);
    EXPECT_TRUE(s.ok()) << s.detail();
    return s.ok() ? std::move(s).value() : nullptr;
  };
  auto a = open_service(), b = open_service();
  ASSERT_TRUE(a && b);
  auto admin = a->EnsureAdminToken();
  ASSERT_TRUE(admin.ok() && admin->has_value()) << admin.detail();
  auto call = [&](const std::string& method, const std::string& target, const std::string& body) {
    net::Request r;
    r.method = method;
    r.target = target;
    r.body = body;
    r.headers["authorization"] = "Bearer " + **admin;
    test::Writer w;
    a->Handle(r, w);
    return w;
  };
  const json policy = {{"model_digests", {test::DigestHex(test::kModelA)}}, {"allow_simulated", true}};
  ASSERT_EQ(call("POST", "/v1/admin/fleet-keys", json{{"suite", "x25519"}, {"release_policy", policy}}.dump()).status_,
            201);
  auto published = [&] {
    test::Writer w = call("GET", "/v1/admin/fleet-keys", "");
    EXPECT_EQ(w.status_, 200) << w.body_.dump();
    return w.body_["fleet_keys"].size();
  };
  std::set<int> rotated_to;
  for (int period = 1; period <= 8; ++period) {
    now += kRotation;
    std::atomic<int> ready{0};
    json here, there;
    auto run = [&](TrustService& svc, json* out) {
      ++ready;
      while (ready.load() < 2) std::this_thread::yield();
      test::Reply r = svc.RunFleetKeySchedule();
      ASSERT_TRUE(std::holds_alternative<json>(r)) << test::Describe(r);
      *out = std::get<json>(r);
    };
    std::thread t([&] { run(*b, &there); });
    run(*a, &here);
    t.join();
    ASSERT_EQ(here["rotated"].size() + there["rotated"].size(), 1u)
        << "period " << period << ": " << here.dump() << " / " << there.dump();
    EXPECT_TRUE(here["errors"].empty() && there["errors"].empty()) << here.dump() << " / " << there.dump();
    for (const json* d : {&here, &there}) {
      for (const auto& r : (*d)["rotated"]) EXPECT_TRUE(rotated_to.insert(r["key_id"].get<int>()).second);
    }
    ASSERT_EQ(published(), 2u) << "period " << period;
  }
}

}  // namespace
}  // namespace cllm::trust
