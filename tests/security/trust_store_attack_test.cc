// Attacks on cllm-trust's store by someone who can write trust.db but does
// not hold the master key (issue #11, item 4): real `cllm-trust init/serve`
// and `cllm trust …` processes; the tampering is done with the sqlite3
// command-line tool, as an attacker on the host would.
//
//   1. edit a key's release policy  → the running service refuses the row
//      (naming it), and a restarted service refuses to start;
//   2. replace the admin token digest with the digest of the attacker's
//      token → the attacker's token is refused; restart refused;
//   3. edit an audit entry and recompute the (unkeyed) hash chain →
//      `cllm trust audit verify` fails on the signatures, online and
//      offline with the pinned audit key; restart refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attestation/sim/sim_attester.h"
#include "base/encoding.h"
#include "crypto/digest.h"
#include "support/process.h"
#include "trust/audit.h"
#include "trust/store.h"

namespace cllm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Bin;
using testing::OnPath;
using testing::Process;
using testing::ReadFile;
using testing::WaitReady;

class TrustStoreAttackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(OnPath("sqlite3")) << "the sqlite3 command-line tool is needed (scripts/install-deps.sh)";
    static int counter = 0;
    dir_ = fs::temp_directory_path() / ("cllm_store_attack_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(counter++));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    state_ = dir_ / "state";
    db_ = state_ / "trust.db";
    ASSERT_EQ(Run({Bin("cllm-trust"), "init", "--state-dir", state_.string()}, "init"), 0);
    ASSERT_TRUE(StartTrust());

    auto platform_key = attestation::sim::GenerateSimPlatformKey().value();
    std::ofstream(dir_ / "policy.json")
        << json{{"version", 1}, {"platforms", {"sim"}}, {"sim", {{"platform_keys", {platform_key.public_key().ToPem()}}}}}
               .dump();
    std::ofstream(dir_ / "model.key") << std::string(64, 'c') << "\n";
    std::ofstream(dir_ / "release.json")
        << json{{"model_digests", {std::string(64, 'a')}}, {"policies", {"default"}}, {"allow_simulated", true}}.dump();
    ASSERT_EQ(Admin({"trust", "policy", "set", "default", (dir_ / "policy.json").string()}, "policy"), 0);
    ASSERT_EQ(Admin({"trust", "key", "register", "k1", "--key-file", (dir_ / "model.key").string(), "--release-policy",
                     (dir_ / "release.json").string()},
                    "register"),
              0);
  }
  void TearDown() override {
    trust_.reset();
    if (!std::getenv("CLLM_KEEP_E2E")) fs::remove_all(dir_);
  }

  int Run(std::vector<std::string> argv, const std::string& tag) {
    Process p(std::move(argv), dir_ / tag);
    return p.Wait();
  }
  std::string Output(const std::string& tag) { return ReadFile(dir_ / (tag + ".out")) + ReadFile(dir_ / (tag + ".err")); }
  int Admin(std::vector<std::string> args, const std::string& tag, const std::string& token_file = "") {
    std::vector<std::string> argv = {Bin("cllm")};
    argv.insert(argv.end(), args.begin(), args.end());
    for (const std::string& a :
         {std::string("--trust"), "https://127.0.0.1:" + std::to_string(port_), std::string("--trust-ca"),
          (state_ / "trust-ca.pem").string(), std::string("--admin-token-file"),
          token_file.empty() ? (state_ / "admin.token").string() : token_file}) {
      argv.push_back(a);
    }
    return Run(std::move(argv), tag);
  }
  bool StartTrust() {
    trust_.reset();
    const fs::path ready = dir_ / ("ready-" + std::to_string(++starts_) + ".json");
    trust_ = std::make_unique<Process>(std::vector<std::string>{Bin("cllm-trust"), "serve", "--state-dir",
                                                                state_.string(), "--listen", "127.0.0.1:0",
                                                                "--ready-file", ready.string(), "--log-level", "warn"},
                                       dir_ / ("trust-" + std::to_string(starts_)));
    json j = WaitReady(*trust_, ready);
    if (j.is_null()) return false;
    port_ = j["port"].get<int>();
    return true;
  }
  // RestartRefused stops the service, starts it again and expects it to
  // exit at once with a message containing `row`.
  void ExpectRestartRefused(const std::string& row) {
    trust_->Stop();
    ASSERT_FALSE(StartTrust()) << "cllm-trust started on a tampered store";
    EXPECT_NE(trust_->Wait(), 0);
    const std::string err = trust_->err();
    EXPECT_NE(err.find("refusing to start"), std::string::npos) << err;
    EXPECT_NE(err.find(row), std::string::npos) << err;
  }
  // Sqlite runs one SQL script on the store with the sqlite3 tool.
  void Sqlite(const std::string& sql) {
    ASSERT_EQ(Run({"/bin/sh", "-c", "exec sqlite3 \"$0\" \"$1\"", db_.string(), sql}, "sqlite3"), 0)
        << Output("sqlite3");
  }

  fs::path dir_, state_, db_;
  std::unique_ptr<Process> trust_;
  int port_ = 0;
  int starts_ = 0;
};

// The same change made by the operator through the API (`cllm trust key
// set-policy`) is authenticated: listed, and the store still opens.
TEST_F(TrustStoreAttackTest, ReleasePolicyChangedByTheOperatorIsNotTampering) {
  std::ofstream(dir_ / "release2.json") << json{{"model_digests", {std::string(64, 'a')}},
                                                {"policies", {"default"}},
                                                {"allow_simulated", true},
                                                {"allow_metrics_keys", true}}
                                               .dump();
  ASSERT_EQ(Admin({"trust", "key", "set-policy", "k1", "--release-policy", (dir_ / "release2.json").string()}, "set"),
            0)
      << Output("set");
  ASSERT_EQ(Admin({"trust", "key", "list"}, "list-set"), 0) << Output("list-set");
  EXPECT_NE(Output("list-set").find("allow_metrics_keys"), std::string::npos) << Output("list-set");
  EXPECT_NE(Admin({"trust", "key", "set-policy", "no-such-key", "--release-policy", (dir_ / "release2.json").string()},
                  "set-unknown"),
            0);
  trust_->Stop();
  ASSERT_TRUE(StartTrust()) << trust_->err();
}

TEST_F(TrustStoreAttackTest, EditedReleasePolicyIsRefusedNamingTheRow) {
  ASSERT_EQ(Admin({"trust", "key", "list"}, "list-ok"), 0) << Output("list-ok");
  // The attacker's model digest in place of the registered one.
  Sqlite("UPDATE model_keys SET release_policy = '{\"allow_simulated\":true,\"model_digests\":[\"" +
         std::string(64, 'e') + "\"],\"policies\":[\"default\"],\"tcb_statuses\":[]}' WHERE key_id = 'k1'");
  EXPECT_NE(Admin({"trust", "key", "list"}, "list-tampered"), 0);
  EXPECT_NE(Output("list-tampered").find("model_keys[\"k1\"]"), std::string::npos) << Output("list-tampered");
  ExpectRestartRefused("model_keys[\"k1\"]");
}

TEST_F(TrustStoreAttackTest, ReplacedAdminTokenDigestIsRefused) {
  // The attacker writes the digest of a token of their own.
  const std::string evil = "cllm-admin-" + std::string(64, 'e');
  std::ofstream(dir_ / "evil.token") << evil << "\n";
  const std::string digest = HexEncode(crypto::Sha256(AsBytes(evil)));
  Sqlite("UPDATE meta SET v = '" + digest + "' WHERE k = 'admin_token_sha256'");
  EXPECT_NE(Admin({"trust", "policy", "list"}, "evil-admin", (dir_ / "evil.token").string()), 0);
  EXPECT_NE(Output("evil-admin").find("unauthorized"), std::string::npos) << Output("evil-admin");
  ExpectRestartRefused("meta[\"admin_token_sha256\"]");
}

TEST_F(TrustStoreAttackTest, RecomputedAuditChainIsCaughtByAuditVerify) {
  ASSERT_EQ(Admin({"trust", "audit", "verify"}, "verify-ok"), 0) << Output("verify-ok");
  EXPECT_NE(Output("verify-ok").find("every signature verified"), std::string::npos) << Output("verify-ok");
  // Rewrite entry 1 (the policy change) and recompute every later hash, as
  // anyone can: the chain itself is unkeyed.
  auto reader = trust::Store::OpenAuditReader(db_).value();
  auto entries = reader->ReadAudit(1, 1000).value();
  reader.reset();
  ASSERT_GE(entries.size(), 2u);
  entries[0].body = R"({"action":"policy_set","name":"default","sha256":"forged"})";
  std::string sql;
  trust::Digest32 prev{};
  for (auto& e : entries) {
    e.prev_hash = prev;
    e.hash = trust::AuditHash(e.seq, e.time, e.kind, e.body, e.prev_hash);
    prev = e.hash;
    std::string body = e.body;
    for (size_t i = body.find('\''); i != std::string::npos; i = body.find('\'', i + 2)) body.insert(i, "'");
    sql += "UPDATE audit SET body = '" + body + "', prev_hash = x'" + HexEncode(e.prev_hash) + "', hash = x'" +
           HexEncode(e.hash) + "' WHERE seq = " + std::to_string(e.seq) + ";";
  }
  Sqlite(sql);
  const std::string key = (state_ / "audit-key.pem").string();
  // Online: the live service's audit key (pinned too).
  EXPECT_EQ(Admin({"trust", "audit", "verify", "--audit-key", key}, "verify-online"), 1) << Output("verify-online");
  EXPECT_NE(Output("verify-online").find("audit entry 1: signature does not verify"), std::string::npos)
      << Output("verify-online");
  // Offline with the kept audit key.
  EXPECT_EQ(Run({Bin("cllm"), "trust", "audit", "verify", "--db", db_.string(), "--audit-key", key}, "verify-offline"),
            1);
  EXPECT_NE(Output("verify-offline").find("signature does not verify"), std::string::npos) << Output("verify-offline");
  // Offline without a key only the chain can be checked, and it says so.
  EXPECT_EQ(Run({Bin("cllm"), "trust", "audit", "verify", "--db", db_.string()}, "verify-nokey"), 0);
  EXPECT_NE(Output("verify-nokey").find("signatures NOT checked"), std::string::npos) << Output("verify-nokey");
  ExpectRestartRefused("store table audit");
}

}  // namespace
}  // namespace cllm
