// Attacks on cllm-trust's unauthenticated routes (issue #11, item 9): a
// refusal whose text is not UTF-8 must still be audited and answered; a
// flood of challenges or of failed attestations must not grow the store
// without bound (yet every refusal stays accounted for); evidence JSON
// nested a hundred thousand deep is refused by the depth guard.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>

#include "support/fake_writer.h"
#include "attestation/sim/sim_attester.h"
#include "base/encoding.h"
#include "channel/payload.h"
#include "trust/jose.h"
#include "trust/service.h"

namespace cllm::trust {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Reply = std::variant<json, ApiError>;

class Writer : public cllm::testing::FakeWriterBase {
 public:
  void Send(int status, std::string_view, std::string_view body) override {
    status_ = status;
    body_ = json::parse(body, nullptr, false);
  }
  bool BeginStream(int, std::string_view) override { return false; }
  bool Write(std::string_view) override { return false; }
  void EndStream() override {}
  int status_ = 0;
  json body_;
};

class TrustAbuseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = fs::temp_directory_path() /
           ("cllm_trust_abuse_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    now_ = 1'750'000'000;
    Start(TrustConfig{});
  }
  void TearDown() override {
    service_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void Start(TrustConfig config) {
    service_.reset();
    auto box = SecretBox::FromKey(Bytes(32, 0x4B)).value();
    auto store = Store::Open(dir_ / "trust.db", box);
    ASSERT_TRUE(store.ok()) << store.detail();
    config.clock = [this] { return TimePoint(std::chrono::seconds(now_.load())); };
    auto s = TrustService::Create(std::move(store).value(), std::move(box), config);
    ASSERT_TRUE(s.ok()) << s.detail();
    service_ = std::move(s).value();
    auto platform_key = attestation::sim::GenerateSimPlatformKey().value();
    json doc = {{"policy",
                 {{"version", 1},
                  {"platforms", {"sim"}},
                  {"sim", {{"platform_keys", {platform_key.public_key().ToPem()}}}}}}};
    ASSERT_TRUE(service_->store().PutPolicy("default", doc.dump(), now_).ok());
  }

  // AttestRaw posts a payload with this platform name and evidence for a
  // fresh nonce, through the HTTP handler (so the reply is serialised too).
  Writer AttestRaw(const std::string& platform, const std::string& evidence) {
    auto ch = service_->Challenge();
    EXPECT_TRUE(std::holds_alternative<json>(ch));
    const std::string nonce = std::get<json>(ch)["nonce"];
    channel::AttestationPayload p;
    p.platform = platform;
    p.evidence = ToBytes(evidence);
    p.freshness = HexDecode(nonce).value();
    p.model_name = "m";
    net::Request r;
    r.method = "POST";
    r.target = "/v1/attest";
    r.body = json{{"nonce", nonce},
                  {"payload", Base64Encode(channel::EncodePayload(p))},
                  {"public_key", PublicJwk(node_key_.public_key())}}
                 .dump();
    Writer w;
    service_->Handle(r, w);
    return w;
  }
  Reply AttestUnknownNonce() {
    return service_->Attest({{"nonce", std::string(64, '0')},
                             {"payload", Base64Encode(ToBytes("x"))},
                             {"public_key", PublicJwk(node_key_.public_key())}});
  }
  std::vector<AuditEntry> Audit() { return service_->store().ReadAudit(1, 100000).value(); }
  size_t CountKind(const std::string& kind) {
    size_t n = 0;
    for (const auto& e : Audit()) n += e.kind == kind;
    return n;
  }

  fs::path dir_;
  std::atomic<int64_t> now_{0};
  crypto::PrivateKey node_key_ = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  std::unique_ptr<TrustService> service_;
};

// 9a: "unknown platform \"\xff\xfe\"" used to make the audit body's dump
// throw: no audit entry, and a 500 for the caller.
TEST_F(TrustAbuseTest, InvalidUtf8PlatformIsAnAuditedRefusal) {
  Writer w = AttestRaw("\xff\xfe" "evil", "junk");
  EXPECT_EQ(w.status_, 403) << w.body_.dump();
  ASSERT_TRUE(w.body_.contains("error")) << "the reply must be JSON";
  EXPECT_EQ(w.body_["error"]["code"], "malformed");
  auto audit = Audit();
  ASSERT_FALSE(audit.empty());
  EXPECT_EQ(audit.back().kind, "attest_refused");
  EXPECT_NE(audit.back().body.find("unknown platform"), std::string::npos) << audit.back().body;
  EXPECT_TRUE(VerifyAuditChain(audit, service_->store().audit_key()).ok());
}

// 9b: anyone may ask for nonces; each is a row until used or expired.
TEST_F(TrustAbuseTest, ChallengeFloodIsCappedAndRecoversWhenNoncesExpire) {
  TrustConfig config;
  config.max_outstanding_nonces = 50;
  Start(config);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(std::holds_alternative<json>(service_->Challenge())) << i;
  for (int i = 0; i < 20; ++i) {
    Reply r = service_->Challenge();
    ASSERT_TRUE(std::holds_alternative<ApiError>(r));
    EXPECT_EQ(std::get<ApiError>(r).status, 429);
    EXPECT_EQ(std::get<ApiError>(r).code, "too_many_challenges");
  }
  EXPECT_EQ(service_->store().CountNonces(), 50);
  now_ += 121;  // all expired: the next challenge purges them at once
  EXPECT_TRUE(std::holds_alternative<json>(service_->Challenge()));
  EXPECT_EQ(service_->store().CountNonces(), 1);
}

// 9b: failed attestations are audited in full up to a rate; the rest are
// counted in one summary entry per minute, so the log grows by a bounded
// amount per minute whatever the flood.
TEST_F(TrustAbuseTest, RefusalFloodIsAuditedAtABoundedRate) {
  TrustConfig config;
  config.refusal_audit_per_minute = 5;
  Start(config);
  const size_t before = Audit().size();
  for (int i = 0; i < 200; ++i) {
    Reply r = AttestUnknownNonce();
    ASSERT_EQ(std::get<ApiError>(r).code, "nonce_unknown");
  }
  EXPECT_EQ(CountKind("attest_refused"), 5u);
  EXPECT_EQ(Audit().size(), before + 5);
  now_ += 61;  // the next window: the previous one's summary is written first
  (void)AttestUnknownNonce();
  auto audit = Audit();
  ASSERT_EQ(audit.size(), before + 7);
  const AuditEntry& summary = audit[audit.size() - 2];
  EXPECT_EQ(summary.kind, "attest_refused_summary");
  json s = json::parse(summary.body);
  EXPECT_EQ(s["counted_only"], 195);
  EXPECT_EQ(s["codes"]["nonce_unknown"], 195);
  EXPECT_EQ(audit.back().kind, "attest_refused");
  // At shutdown a pending summary is not lost.
  for (int i = 0; i < 10; ++i) (void)AttestUnknownNonce();
  Start(config);
  EXPECT_EQ(Audit()[Audit().size() - 1].kind, "attest_refused_summary");
  EXPECT_TRUE(VerifyAuditChain(Audit(), service_->store().audit_key()).ok());
}

// 9c: TPM and CSV evidence JSON went to nlohmann::json without the depth
// guard (SNP's bundle, TDX collateral and policies had it).
TEST_F(TrustAbuseTest, DeeplyNestedEvidenceJsonIsRefusedByTheDepthGuard) {
  const int kDepth = 100000;
  const std::string nested = std::string(kDepth, '[') + std::string(kDepth, ']');
  for (const std::string platform : {"tpm", "csv"}) {
    const std::string evidence = platform == "tpm"
                                     ? R"({"message":"AA","signature":"AA","pcrs":)" + nested + "}"
                                     : R"({"attestation_report":)" + nested + "}";
    Writer w = AttestRaw(platform, evidence);
    EXPECT_EQ(w.status_, 403) << platform << ": " << w.body_.dump().substr(0, 300);
    EXPECT_NE(w.body_.dump().find("nests too deeply"), std::string::npos)
        << platform << ": " << w.body_.dump().substr(0, 300);
  }
}

}  // namespace
}  // namespace cllm::trust
