// Tests for scheduled fleet-key rotation (TrustService::RunFleetKeySchedule,
// TrustConfig::fleet_key_rotation / fleet_key_overlap): a suite's newest key
// is rotated once it is `rotation` old, with its release policy, to the first
// free id after its own; its predecessors are retired once it is `overlap`
// old; the suites are independent; model keys are never touched; replicas
// sharing a store that run the schedule at the same moment rotate each key
// once; bad periods are refused when the service is made. Both suites.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "trust/e2e_keys.h"
#include "trust/trust_service_fixture.h"

namespace cllm::trust {
namespace {

using namespace cllm::trust::test;  // NOLINT: the fixture's names

constexpr int64_t kRotation = 3600, kOverlap = 600;

class FleetKeyScheduleTest : public TrustServiceTest,
                             public ::testing::WithParamInterface<const char*> {
 protected:
  void SetUp() override {
    config_.fleet_key_rotation = std::chrono::seconds(kRotation);
    config_.fleet_key_overlap = std::chrono::seconds(kOverlap);
    TrustServiceTest::SetUp();
  }
  std::string suite() const { return GetParam(); }
  std::string other_suite_name() const { return suite() == "gmt" ? "x25519" : "gmt"; }
  // SealedKey is fleet key `id`'s sealed private key as the store holds it.
  Bytes SealedKey(int id) {
    const std::string name =
        FleetModelKeyId(static_cast<uint8_t>(id), crypto::hpke::ParseSuite(suite()).value());
    auto row = service_->store().GetModelKey(name);
    EXPECT_TRUE(row.ok() && row->has_value());
    const Bytes sealed = row.ok() && *row ? (*row)->sealed_key : Bytes();
    EXPECT_GE(sealed.size(), 32u);
    return sealed;
  }
  // OnDisk: whether `bytes` (raw or hex) are in the store's file or its WAL.
  bool OnDisk(const Bytes& bytes) {
    std::string all;
    for (const char* suffix : {"", "-wal"}) {
      std::ifstream f(dir_ / ("trust.db" + std::string(suffix)), std::ios::binary);
      all += std::string(std::istreambuf_iterator<char>(f), {});
    }
    return all.find(std::string(bytes.begin(), bytes.end())) != std::string::npos ||
           all.find(HexEncode(bytes)) != std::string::npos;
  }
  // HoldOldSnapshot opens a reader that keeps the store's current snapshot
  // (as a backup would) until EndSnapshot.
  sqlite3* HoldOldSnapshot() {
    sqlite3* reader = nullptr;
    if (sqlite3_open_v2((dir_ / "trust.db").c_str(), &reader, SQLITE_OPEN_READONLY, nullptr) !=
            SQLITE_OK ||
        sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM model_keys;", nullptr, nullptr,
                     nullptr) != SQLITE_OK) {
      sqlite3_close(reader);
      return nullptr;
    }
    return reader;
  }
  static void EndSnapshot(sqlite3* reader) {
    sqlite3_exec(reader, "COMMIT;", nullptr, nullptr, nullptr);
    sqlite3_close(reader);
  }
  Writer RotateByAdmin(int id) {
    return AdminCall("POST", "/v1/admin/fleet-keys/rotate", json{{"key_id", id}}.dump());
  }
  json List() {
    Writer w = AdminCall("GET", "/v1/admin/fleet-keys", "");
    EXPECT_EQ(w.status_, 200) << w.body_.dump();
    return w.body_["fleet_keys"];
  }
  json PolicyFor(uint8_t model) const {
    return {{"model_digests", {DigestHex(model)}}, {"allow_simulated", true}};
  }
  // The n-th id of this suite's half: x25519 keys even, gmt keys odd.
  int Id(int n) const { return 2 * n + (suite() == "gmt" ? 1 : 0); }

  Writer Create(const std::string& s, const json& policy) {
    return AdminCall("POST", "/v1/admin/fleet-keys",
                     json{{"suite", s}, {"release_policy", policy}}.dump());
  }
  // Ids lists the published fleet keys' ids (ascending).
  std::vector<int> Ids() {
    std::vector<int> out;
    Writer w = AdminCall("GET", "/v1/admin/fleet-keys", "");
    EXPECT_EQ(w.status_, 200) << w.body_.dump();
    for (const auto& k : w.body_["fleet_keys"]) {
      out.push_back(k["key_id"].get<int>());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  json Run(TrustService& svc) {
    Reply r = svc.RunFleetKeySchedule();
    EXPECT_TRUE(std::holds_alternative<json>(r)) << Describe(r);
    return std::holds_alternative<json>(r) ? std::get<json>(r) : json();
  }
  json Run() { return Run(*service_); }
  // Scheduled lists the audited scheduled actions "<action> <key_id>" in order.
  std::vector<std::string> Scheduled() {
    std::vector<std::string> out;
    const auto entries = service_->store().ReadAudit(1, 10000).value();
    for (const auto& e : entries) {
      if (e.kind != "admin") continue;
      const json b = json::parse(e.body);
      if (b.value("scheduled", false))
        out.push_back(b.value("action", "") + " " + std::to_string(b.value("key_id", -1)));
    }
    return out;
  }
};

INSTANTIATE_TEST_SUITE_P(Suites, FleetKeyScheduleTest, ::testing::Values("x25519", "gmt"),
                         [](const auto& param_info) { return std::string(param_info.param); });

const json kNothing = {
    {"rotated", json::array()}, {"retired", json::array()}, {"errors", json::array()}};

TEST_P(FleetKeyScheduleTest, RotatesWhenDueAndRetiresAfterTheOverlap) {
  EXPECT_EQ(Run(), kNothing);  // no keys: nothing to do
  Writer c = Create(suite(), PolicyFor(kModelA));
  ASSERT_EQ(c.status_, 201) << c.body_.dump();
  now_ += kRotation - 1;
  EXPECT_EQ(Run(), kNothing);
  now_ += 1;
  json done = Run();
  ASSERT_EQ(done["rotated"].size(), 1u) << done.dump();
  EXPECT_EQ(done["rotated"][0], (json{{"key_id", Id(1)}, {"previous_key_id", Id(0)}}));
  EXPECT_EQ(done["retired"], json::array());
  EXPECT_EQ(Run(), kNothing);  // the new key is the newest now: nothing is due
  EXPECT_EQ(Ids(), (std::vector<int>{Id(0), Id(1)}));

  // The successor has the predecessor's release policy; clients keep sealing
  // to the old key until replicas have had time to fetch the new one.
  const json listed = AdminCall("GET", "/v1/admin/fleet-keys", "").body_["fleet_keys"];
  for (const auto& k : listed)
    EXPECT_EQ(k["release_policy"], c.body_["release_policy"]) << k.dump();
  EXPECT_EQ(listed[0]["key_id"], Id(0));
  now_ += kFleetKeyActivationSeconds;
  auto published =
      VerifyE2eKeys(std::get<json>(service_->E2eKeys()), service_->Jwks(),
                    {TimePoint(std::chrono::seconds(now_.load())), std::chrono::seconds(30)});
  ASSERT_TRUE(published.ok()) << published.detail();
  ASSERT_EQ(published->size(), 2u);
  EXPECT_EQ((*published)[0].config.key_id, Id(1));

  // The old key goes once the new one is `overlap` old — and with it its
  // sealed private part: nothing can release it again.
  now_ += kOverlap - kFleetKeyActivationSeconds - 1;
  EXPECT_EQ(Run(), kNothing);
  now_ += 1;
  done = Run();
  EXPECT_EQ(done["retired"], json::array({Id(0)})) << done.dump();
  EXPECT_EQ(done["rotated"], json::array());
  EXPECT_EQ(Ids(), (std::vector<int>{Id(1)}));
  auto eph = NewP256();
  EXPECT_EQ(ErrorCode(Release(FleetModelKeyId(static_cast<uint8_t>(Id(0)),
                                              crypto::hpke::ParseSuite(suite()).value()),
                              Token(), eph)),
            "unknown_key");

  // The next period: the next id of the half after the current key's.
  now_ += kRotation - kOverlap;
  done = Run();
  EXPECT_EQ(done["rotated"][0], (json{{"key_id", Id(2)}, {"previous_key_id", Id(1)}}))
      << done.dump();
  EXPECT_EQ(Scheduled(), (std::vector<std::string>{"fleet_key_rotate " + std::to_string(Id(1)),
                                                   "fleet_key_retire " + std::to_string(Id(0)),
                                                   "fleet_key_rotate " + std::to_string(Id(2))}));
}

// After a long outage both steps are due at once: the superseded keys go and
// the newest is rotated, so the suite ends with the newest and its successor.
TEST_P(FleetKeyScheduleTest, CatchesUpAfterAnOutage) {
  ASSERT_EQ(Create(suite(), PolicyFor(kModelA)).status_, 201);
  now_ += 10;
  ASSERT_EQ(RotateByAdmin(Id(0)).status_, 201);
  now_ += 10 * kRotation;
  json done = Run();
  EXPECT_EQ(done["retired"], json::array({Id(0)})) << done.dump();
  EXPECT_EQ(done["rotated"][0], (json{{"key_id", Id(2)}, {"previous_key_id", Id(1)}}))
      << done.dump();
  EXPECT_EQ(Ids(), (std::vector<int>{Id(1), Id(2)}));
}

// A chain is one suite and one release policy: each fleet's keys (another
// policy) and each suite rotate and retire on their own, and an admin's key
// of another policy never retires a chain's keys. Model keys are not fleet
// keys and are never touched.
TEST_P(FleetKeyScheduleTest, EachSuiteAndReleasePolicyIsItsOwnChain) {
  ASSERT_EQ(Create(suite(), PolicyFor(kModelA)).status_, 201);
  now_ += kRotation / 2;
  Writer other_suite = Create(other_suite_name(), PolicyFor(kModelA));
  ASSERT_EQ(other_suite.status_, 201);
  Writer other_fleet = Create(suite(), PolicyFor(kModelB));
  ASSERT_EQ(other_fleet.status_, 201);
  const int os = other_suite.body_["key_id"].get<int>(),
            of = other_fleet.body_["key_id"].get<int>();
  now_ += kRotation / 2;
  json done = Run();
  ASSERT_EQ(done["rotated"].size(), 1u) << done.dump();
  EXPECT_EQ(done["rotated"][0]["previous_key_id"], Id(0));
  EXPECT_EQ(done["retired"], json::array())
      << done.dump();  // the other fleet's key is another chain
  const int a1 = done["rotated"][0]["key_id"].get<int>();

  now_ += kRotation / 2;
  done = Run();
  EXPECT_EQ(done["retired"], json::array({Id(0)})) << done.dump();
  std::set<int> previous;
  for (const auto& r : done["rotated"]) previous.insert(r["previous_key_id"].get<int>());
  EXPECT_EQ(previous, (std::set<int>{os, of})) << done.dump();
  EXPECT_EQ(done["errors"], json::array());

  now_ += kOverlap;
  done = Run();
  std::vector<int> retired = done["retired"].get<std::vector<int>>();
  std::sort(retired.begin(), retired.end());
  EXPECT_EQ(retired, (std::vector<int>{std::min(os, of), std::max(os, of)})) << done.dump();
  // Each successor kept its chain's release policy: three chains, one key each.
  const std::vector<int> ids = Ids();
  ASSERT_EQ(ids.size(), 3u);
  std::map<std::string, int> by_policy;
  for (const auto& k : List())
    ++by_policy[k["suite"].get<std::string>() + " " + k["release_policy"].dump()];
  EXPECT_EQ(by_policy.size(), 3u);
  EXPECT_TRUE(std::find(ids.begin(), ids.end(), a1) != ids.end());
  // The fixture's model keys are still there and still released.
  EXPECT_FALSE(ReleasedKey("key-a", Token()).empty());
}

// Retiring destroys the sealed private key on disk too: SQLite's
// secure_delete (Debian builds SQLite with it on; the store sets it anyway)
// zeroes the row, and the WAL, which still holds the page as it was, is
// checkpointed and emptied. Before, the WAL kept the key's page until SQLite
// happened to reuse that part of the file.
TEST_P(FleetKeyScheduleTest, RetiredKeyLeavesNoCopyInTheStoreFiles) {
  ASSERT_EQ(Create(suite(), PolicyFor(kModelA)).status_, 201);
  const Bytes sealed = SealedKey(Id(0));
  ASSERT_TRUE(OnDisk(sealed));  // the search finds it while the key is published
  now_ += kRotation;
  ASSERT_EQ(Run()["rotated"].size(), 1u);
  now_ += kOverlap;
  ASSERT_EQ(Run()["retired"], json::array({Id(0)}));
  EXPECT_FALSE(OnDisk(sealed));
}

// A reader holding an old snapshot of the store (a backup, `cllm trust audit
// verify --db` on a live store) keeps the WAL from being emptied: the retired
// key's bytes survive that moment, the schedule says so ("erase_pending"),
// waits at most 100 ms under the store's lock, and erases them at its next
// run once the reader is gone. Before, the checkpoint waited 5 s holding the
// lock and reported success.
TEST_P(FleetKeyScheduleTest, ErasureHeldUpByAReaderIsRetried) {
  ASSERT_EQ(Create(suite(), PolicyFor(kModelA)).status_, 201);
  const Bytes sealed = SealedKey(Id(0));
  now_ += kRotation;
  ASSERT_EQ(Run()["rotated"].size(), 1u);
  sqlite3* reader = HoldOldSnapshot();
  ASSERT_NE(reader, nullptr);
  now_ += kOverlap;
  const auto t0 = std::chrono::steady_clock::now();
  json done = Run();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ(done["retired"], json::array({Id(0)}));
  ASSERT_EQ(done["errors"].size(), 1u) << done.dump();
  EXPECT_EQ(done["errors"][0]["code"], "erase_pending");
  EXPECT_TRUE(OnDisk(sealed));  // what the reader held up
  EndSnapshot(reader);
  done = Run();
  EXPECT_EQ(done["errors"], json::array()) << done.dump();
  EXPECT_FALSE(OnDisk(sealed));
}

// Changing a fleet key's release policy replaces its whole chain: a new key
// under the new policy, every key of the old chain retired at once (nodes the
// old policy allowed may hold them), so nothing is left that the schedule
// could rotate under the old, weaker policy, and no key is re-labelled.
TEST_P(FleetKeyScheduleTest, ANewReleasePolicyReplacesTheWholeChain) {
  ASSERT_EQ(Create(suite(), PolicyFor(kModelA)).status_, 201);
  now_ += kRotation;
  ASSERT_EQ(Run()["rotated"].size(), 1u);  // Id(0) and Id(1), policy A
  const std::string name =
      FleetModelKeyId(static_cast<uint8_t>(Id(1)), crypto::hpke::ParseSuite(suite()).value());
  Writer put =
      AdminCall("PUT", "/v1/admin/keys/" + name + "/release-policy", PolicyFor(kModelB).dump());
  ASSERT_EQ(put.status_, 200) << put.body_.dump();
  EXPECT_EQ(put.body_["retired"].size(), 2u) << put.body_.dump();
  ASSERT_EQ(List().size(), 1u);
  for (const auto& k : List())
    EXPECT_EQ(k["release_policy"]["model_digests"][0], DigestHex(kModelB)) << k.dump();
  // The new key is the chain's newest: nothing is made under policy A.
  json done = Run();
  EXPECT_EQ(done["rotated"], json::array()) << done.dump();
  EXPECT_EQ(done["retired"], json::array()) << done.dump();
  now_ += kRotation;
  done = Run();
  ASSERT_EQ(done["rotated"].size(), 1u) << done.dump();
  for (const auto& k : List())
    EXPECT_EQ(k["release_policy"]["model_digests"][0], DigestHex(kModelB)) << k.dump();
}

// The erasure is retried even with the schedule off: a key the admin
// retired while a reader held the WAL is erased at a later run.
TEST_P(FleetKeyScheduleTest, ErasureIsRetriedWithTheScheduleOff) {
  config_.fleet_key_rotation = std::chrono::seconds(0);
  StartService();
  ASSERT_EQ(Create(suite(), PolicyFor(kModelA)).status_, 201);
  const Bytes sealed = SealedKey(Id(0));
  sqlite3* reader = HoldOldSnapshot();
  ASSERT_NE(reader, nullptr);
  ASSERT_EQ(AdminCall("DELETE", "/v1/admin/fleet-keys/" + std::to_string(Id(0)), "").status_, 200);
  EXPECT_TRUE(OnDisk(sealed));
  json done = Run();
  ASSERT_EQ(done["errors"].size(), 1u) << done.dump();
  EXPECT_EQ(done["errors"][0]["code"], "erase_pending");
  EndSnapshot(reader);
  EXPECT_EQ(Run(), kNothing);
  EXPECT_FALSE(OnDisk(sealed));
}

TEST_P(FleetKeyScheduleTest, OffWhenTheRotationIsZero) {
  config_.fleet_key_rotation = std::chrono::seconds(0);
  StartService();
  ASSERT_EQ(Create(suite(), PolicyFor(kModelA)).status_, 201);
  now_ += 10;
  ASSERT_EQ(RotateByAdmin(Id(0)).status_, 201);
  now_ += 100 * kRotation;
  EXPECT_EQ(Run(), kNothing);
  EXPECT_EQ(Ids(), (std::vector<int>{Id(0), Id(1)}));
}

// Replicas on one store each run the schedule; started together they decide
// from the same list, pick the same successor id, and only one insert wins:
// each period ends with exactly the newest key and its predecessor (a race
// producing an extra key would leave three), and every id is used once.
TEST_P(FleetKeyScheduleTest, ReplicasRunningItTogetherRotateEachKeyOnce) {
  std::unique_ptr<TrustService> other = OpenService();
  ASSERT_NE(other, nullptr);
  ASSERT_EQ(Create(suite(), PolicyFor(kModelA)).status_, 201);
  std::set<int> rotated_to;
  for (int period = 1; period <= 12; ++period) {
    now_ += kRotation;
    std::atomic<int> ready{0};
    json here, there;
    auto run = [&](TrustService& svc, json* out) {
      ++ready;
      while (ready.load() < 2) std::this_thread::yield();
      *out = Run(svc);
    };
    std::thread t([&] { run(*other, &there); });
    run(*service_, &here);
    t.join();
    const size_t rotations = here["rotated"].size() + there["rotated"].size();
    ASSERT_EQ(rotations, 1u) << "period " << period << ": " << here.dump() << " / " << there.dump();
    for (const json* d : {&here, &there}) {
      for (const auto& r : (*d)["rotated"])
        EXPECT_TRUE(rotated_to.insert(r["key_id"].get<int>()).second);
    }
    ASSERT_EQ(Ids().size(), 2u) << "period " << period;
  }
}

TEST(FleetKeyScheduleConfigTest, RefusesPeriodsThatCannotWork) {
  using std::chrono::seconds;
  EXPECT_EQ(FleetKeyScheduleError(seconds(0), seconds(0)), std::nullopt);  // off
  EXPECT_EQ(FleetKeyScheduleError(seconds(86400), seconds(3600)), std::nullopt);
  EXPECT_EQ(FleetKeyScheduleError(kMinFleetKeyRotation, kMinFleetKeyOverlap), std::nullopt);
  auto error = [](int64_t rotation, int64_t overlap) {
    return FleetKeyScheduleError(seconds(rotation), seconds(overlap)).value_or("<valid>");
  };
  EXPECT_NE(error(kMinFleetKeyRotation.count() - 1, 120).find("at least 600 s"), std::string::npos);
  EXPECT_NE(error(3600, kMinFleetKeyOverlap.count() - 1).find("at least 120 s"), std::string::npos);
  EXPECT_NE(error(3600, 3600).find("shorter than the rotation period (3600 s)"), std::string::npos);
  EXPECT_NE(error(-5, 120).find("at least 600 s"), std::string::npos);

  // And the service refuses to start with them.
  TrustConfig config;
  config.fleet_key_rotation = seconds(3600);
  config.fleet_key_overlap = seconds(7200);
  auto box = SecretBox::FromKey(Bytes(32, 0x4B)).value();
  const fs::path db =
      fs::temp_directory_path() / ("cllm_schedule_cfg_" + std::to_string(::getpid()) + ".db");
  auto store = Store::Open(db, box);
  ASSERT_TRUE(store.ok()) << store.detail();
  auto s = TrustService::Create(std::move(store).value(), std::move(box), config);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.detail().find("shorter than the rotation period"), std::string::npos) << s.detail();
  std::error_code ec;
  fs::remove(db, ec);
}

}  // namespace
}  // namespace cllm::trust
