// Two real `cllm-trust serve` replicas on one real PostgreSQL server
// (tests/support/postgres.h) serving one fleet: `cllm-trust init --db` on
// replica A's state dir, the state dir copied to replica B, both serving the
// same database. One node flow crosses them — challenge at A, attestation at
// B, key release at A — with the simulated TEE; the nonce stays single-use
// across them; admin changes at one are live at the other; the audit log the
// two wrote is ONE chain whose every signature verifies; and B keeps serving
// the whole flow when A is stopped.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attestation/sim/sim_attester.h"
#include "base/encoding.h"
#include "base/file.h"
#include "channel/payload.h"
#include "support/postgres.h"
#include "support/process.h"
#include "trust/audit.h"
#include "trust/jose.h"
#include "trust/trust_client.h"

namespace cllm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Bin;
using testing::PostgresServer;
using testing::Process;
using testing::ReadFile;
using testing::WaitReady;

constexpr uint8_t kModel = 0x6d;

class TrustPgE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cllm_trust_pg_e2e_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::string why;
    pg_ = PostgresServer::Start(dir_ / "pg", &why);
    if (!pg_) GTEST_SKIP() << why;
    ASSERT_TRUE(pg_->CreateDatabase("trust", &why)) << why;
    db_ = pg_->Url("trust");
  }
  void TearDown() override {
    for (auto& r : replicas_) r.reset();
    pg_.reset();
    if (!std::getenv("CLLM_KEEP_E2E")) fs::remove_all(dir_);
  }

  int Run(std::vector<std::string> argv, const std::string& tag) {
    Process p(std::move(argv), dir_ / tag);
    int rc = p.Wait();
    last_output_ = p.out() + p.err();
    return rc;
  }
  // StartReplica serves `state` on the shared database; its port, or 0.
  int StartReplica(int i, const fs::path& state) {
    const fs::path ready = dir_ / ("ready-" + std::to_string(i) + ".json");
    replicas_[i] = std::make_unique<Process>(
        std::vector<std::string>{Bin("cllm-trust"), "serve", "--state-dir", state.string(), "--db", db_, "--listen",
                                 "127.0.0.1:0", "--ready-file", ready.string(), "--log-level", "warn"},
        dir_ / ("replica-" + std::to_string(i)));
    json j = WaitReady(*replicas_[i], ready);
    return j.is_null() ? 0 : j["port"].get<int>();
  }
  trust::TrustEndpoint Endpoint(int port) {
    auto ep = trust::LoadTrustEndpoint("https://127.0.0.1:" + std::to_string(port), dir_ / "a" / "trust-ca.pem");
    EXPECT_TRUE(ep.ok()) << ep.detail();
    return std::move(ep).value();
  }
  trust::TrustReply Call(int port, const std::string& method, const std::string& target,
                         const std::optional<json>& body = std::nullopt, const std::string& bearer = "") {
    auto r = trust::TrustCallOnce(Endpoint(port), method, target, body, bearer);
    EXPECT_TRUE(r.ok()) << r.detail();
    return r.ok() ? std::move(r).value() : trust::TrustReply{};
  }

  fs::path dir_;
  std::unique_ptr<PostgresServer> pg_;
  std::string db_, last_output_;
  std::unique_ptr<Process> replicas_[2];
};

TEST_F(TrustPgE2eTest, TwoReplicasOnOneDatabaseServeOneFlow) {
  const fs::path a = dir_ / "a", b = dir_ / "b";
  ASSERT_EQ(Run({Bin("cllm-trust"), "init", "--state-dir", a.string(), "--db", db_}, "init"), 0) << last_output_;
  EXPECT_NE(last_output_.find("PostgreSQL host=127.0.0.1"), std::string::npos) << last_output_;
  // A second init against the same database is refused.
  EXPECT_NE(Run({Bin("cllm-trust"), "init", "--state-dir", (dir_ / "c").string(), "--db", db_}, "init-again"), 0);
  EXPECT_NE(last_output_.find("already holds a cllm-trust store"), std::string::npos) << last_output_;
  // Replica B: the same master key, certificate and admin token.
  fs::copy(a, b, fs::copy_options::recursive);
  const int pa = StartReplica(0, a), pb = StartReplica(1, b);
  ASSERT_GT(pa, 0) << replicas_[0]->err();
  ASSERT_GT(pb, 0) << replicas_[1]->err();
  std::string admin = ReadFile(a / "admin.token");
  while (!admin.empty() && admin.back() == '\n') admin.pop_back();

  // Admin at A: the policy accepting the simulated node; the model key at B.
  auto platform_key = attestation::sim::GenerateSimPlatformKey().value();
  const json policy = {{"version", 1}, {"platforms", {"sim"}}, {"sim", {{"platform_keys", {platform_key.public_key().ToPem()}}}}};
  auto put = Call(pa, "PUT", "/v1/admin/policies/default", json{{"policy", policy}}, admin);
  ASSERT_EQ(put.status, 200) << put.body.dump();
  const std::string model_key(64, 'c');
  const json key = {{"key_id", "k1"}, {"key", model_key},
                    {"release_policy", {{"model_digests", {HexEncode(Bytes(32, kModel))}}, {"policies", {"default"}},
                                        {"allow_simulated", true}}}};
  auto reg = Call(pb, "POST", "/v1/admin/keys", key, admin);
  ASSERT_EQ(reg.status, 201) << reg.body.dump();
  // Both replicas answer with the same signing keys.
  EXPECT_EQ(Call(pa, "GET", "/.well-known/jwks.json").body, Call(pb, "GET", "/.well-known/jwks.json").body);

  // The node: a simulated TEE and its RA-TLS issuer.
  attestation::sim::SimAttesterOptions o;
  o.measurement.emplace();
  o.measurement->fill(0x33);
  auto attester = std::make_shared<attestation::sim::SimAttester>(
      attestation::sim::SimAttester::Create(platform_key, o).value());
  channel::ServerClaims claims;
  claims.binary_digest.fill(0x62);
  claims.model_digest.fill(kModel);
  claims.model_name = "model-a";
  channel::RaTlsIssuer issuer(attester, claims);
  auto node_key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();

  // Challenge at A, evidence for that nonce attested at B.
  auto ch = Call(pa, "POST", "/v1/challenge", json::object());
  ASSERT_EQ(ch.status, 200) << ch.body.dump();
  const std::string nonce = ch.body["nonce"].get<std::string>();
  auto payload = issuer.PayloadFor(node_key.public_key().ToSpkiDer(), HexDecode(nonce).value());
  ASSERT_TRUE(payload.ok()) << payload.detail();
  const json attest = {{"nonce", nonce},
                       {"payload", Base64Encode(channel::EncodePayload(*payload))},
                       {"public_key", trust::PublicJwk(node_key.public_key())}};
  auto at = Call(pb, "POST", "/v1/attest", attest);
  ASSERT_EQ(at.status, 200) << at.body.dump();
  trust::Token token;
  token.jwt = at.body["token"].get<std::string>();
  // The same nonce again, at either replica: single-use across both.
  for (int port : {pa, pb}) {
    auto replay = Call(port, "POST", "/v1/attest", attest);
    EXPECT_EQ(replay.status, 401) << replay.body.dump();
    EXPECT_EQ(replay.body["error"]["code"], "nonce_unknown") << replay.body.dump();
  }

  // The token from B releases the key (registered at B) at A.
  {
    auto ep = Endpoint(pa);
    auto conn = client::ConnectPinned(ep.url, ep.ca);
    ASSERT_TRUE(conn.ok()) << conn.detail();
    auto released = trust::FetchModelKey(**conn, token, node_key, "k1");
    ASSERT_TRUE(released.ok()) << released.detail();
    EXPECT_EQ(HexEncode(released->span()), model_key);
  }

  // B alone keeps serving the whole flow when A stops.
  replicas_[0]->Stop();
  auto ch2 = Call(pb, "POST", "/v1/challenge", json::object());
  ASSERT_EQ(ch2.status, 200);
  auto payload2 = issuer.PayloadFor(node_key.public_key().ToSpkiDer(), HexDecode(ch2.body["nonce"].get<std::string>()).value());
  auto at2 = Call(pb, "POST", "/v1/attest",
                  json{{"nonce", ch2.body["nonce"]}, {"payload", Base64Encode(channel::EncodePayload(*payload2))},
                       {"public_key", trust::PublicJwk(node_key.public_key())}});
  EXPECT_EQ(at2.status, 200) << at2.body.dump();

  // What both wrote is one audit chain; every signature verifies under the
  // audit key init recorded; offline verification reads the database too.
  auto audit = Call(pb, "GET", "/v1/admin/audit?from=1&limit=1000", std::nullopt, admin);
  ASSERT_EQ(audit.status, 200);
  std::vector<trust::AuditEntry> entries;
  for (const json& e : audit.body["entries"]) {
    trust::AuditEntry x;
    x.seq = e["seq"].get<uint64_t>();
    x.time = e["time"].get<int64_t>();
    x.kind = e["kind"].get<std::string>();
    x.body = e["body"].get<std::string>();
    auto copy = [](const json& hex, trust::Digest32& out) {
      Bytes raw = HexDecode(hex.get<std::string>()).value();
      if (raw.size() == out.size()) std::copy(raw.begin(), raw.end(), out.begin());
    };
    copy(e["prev_hash"], x.prev_hash);
    copy(e["hash"], x.hash);
    x.sig = HexDecode(e["sig"].get<std::string>()).value();
    entries.push_back(std::move(x));
  }
  auto audit_key = crypto::PublicKey::FromPem(ReadFile(a / "audit-key.pem"));
  ASSERT_TRUE(audit_key.ok());
  auto head = trust::VerifyAuditChain(entries, &*audit_key);
  ASSERT_TRUE(head.ok()) << head.detail();
  int attests = 0;
  for (const auto& e : entries) attests += e.kind == "attest";
  EXPECT_EQ(attests, 2);
  EXPECT_GE(entries.size(), 6u);  // policy, key, attest, 2 refusals, attest (+ key release)
}

}  // namespace
}  // namespace cllm
