// Attacks on the token path (issue #11 items 3 and 5), in one process: a
// TrustService on a temporary store with an injected clock, nodes on the
// simulated TEE, and clients verifying server certificates by token.
//
//   - a debuggable TEE gets a token under a lax policy ("dev") and asks the
//     broker for a key, or presents the token to a client that forbids debug;
//   - a requester picks the weaker attestation policy to mint its token and
//     asks for a key whose owner meant "prod";
//   - token mode must never be weaker than evidence mode: the same claims
//     get the same verdict from attestation::Appraise on local evidence and
//     from a client verifying a token that carries them;
//   - SNP evidence claims "UpToDate" with no source for it; floors per
//     component must decide instead, in attestation and release policies.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <functional>
#include <string>

#include "support/fake_writer.h"
#include "attestation/internal/verifier_pass.h"  // evidence-mode rows build verified data directly
#include "attestation/policy.h"
#include "attestation/sim/sim_attester.h"
#include "attestation/snp/verify.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/digest.h"
#include "channel/payload.h"
#include "channel/ratls.h"
#include "support/shared_data.h"
#include "trust/jose.h"
#include "trust/service.h"
#include "trust/token_claims.h"
#include "trust/token_verifier.h"

namespace cllm::trust {
namespace {

namespace fs = std::filesystem;
using attestation::AttestErrc;
using attestation::Platform;
using attestation::TcbStatus;
using attestation::VerifiedEvidence;
using json = nlohmann::json;
using Reply = std::variant<json, ApiError>;

constexpr uint8_t kModel = 0xA1;
constexpr uint8_t kBinary = 0x3C;

std::string DigestHex(uint8_t fill) { return HexEncode(Bytes(32, fill)); }
crypto::PrivateKey NewP256() { return crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value(); }
std::string Describe(const Reply& r) {
  const auto* e = std::get_if<ApiError>(&r);
  return e ? std::to_string(e->status) + " " + e->code + ": " + e->message : std::get<json>(r).dump();
}
std::string ErrorCode(const Reply& r) {
  const auto* e = std::get_if<ApiError>(&r);
  return e ? e->code : "<ok>";
}

class Writer : public cllm::testing::FakeWriterBase {
 public:
  void Send(int status, std::string_view, std::string_view) override { status_ = status; }
  bool BeginStream(int, std::string_view) override { return false; }
  bool Write(std::string_view) override { return false; }
  void EndStream() override {}
  int status_ = 0;
};

// A node: a simulated TEE (optionally debuggable) and its RA-TLS issuer.
struct Node {
  std::shared_ptr<attestation::sim::SimAttester> attester;
  std::optional<channel::RaTlsIssuer> issuer;
};

class TokenAttackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = fs::temp_directory_path() / ("cllm_token_attack_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(counter++));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    now_ = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
               .count();
    platform_key_.emplace(attestation::sim::GenerateSimPlatformKey().value());
    node_key_.emplace(NewP256());
    MakeNode(node_, false);
    MakeNode(debug_node_, true);

    auto box = SecretBox::FromKey(Bytes(32, 0x4B)).value();
    auto store = Store::Open(dir_ / "trust.db", box);
    ASSERT_TRUE(store.ok()) << store.detail();
    TrustConfig config;
    config.clock = [this] { return Now(); };
    auto s = TrustService::Create(std::move(store).value(), std::move(box), config);
    ASSERT_TRUE(s.ok()) << s.detail();
    service_ = std::move(s).value();
    admin_ = service_->EnsureAdminToken().value().value();
  }
  void TearDown() override {
    service_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  TimePoint Now() const { return TimePoint(std::chrono::seconds(now_)); }

  void MakeNode(Node& n, bool debug) {
    attestation::sim::SimAttesterOptions o;
    o.measurement.emplace();
    o.measurement->fill(0x33);
    o.debug = debug;
    n.attester = std::make_shared<attestation::sim::SimAttester>(
        attestation::sim::SimAttester::Create(*platform_key_, o).value());
    channel::ServerClaims claims;
    claims.binary_digest.fill(kBinary);
    claims.model_digest.fill(kModel);
    claims.model_name = "model-a";
    n.issuer.emplace(n.attester, claims);
  }

  int AdminCall(const std::string& method, const std::string& target, const json& body) {
    net::Request r;
    r.method = method;
    r.target = target;
    r.body = body.dump();
    r.headers["authorization"] = "Bearer " + admin_;
    Writer w;
    service_->Handle(r, w);
    return w.status_;
  }
  // PutPolicy registers a cllm-trust attestation policy accepting the sim node.
  void PutPolicy(const std::string& name, bool allow_debug) {
    json doc = {{"policy",
                 {{"version", 1},
                  {"platforms", {"sim"}},
                  {"allow_debug", allow_debug},
                  {"sim", {{"platform_keys", {platform_key_->public_key().ToPem()}}}}}}};
    ASSERT_EQ(AdminCall("PUT", "/v1/admin/policies/" + name, doc), 200) << name;
  }
  void RegisterKey(const std::string& key_id, const json& release_policy) {
    json body = {{"key_id", key_id}, {"key", HexEncode(Bytes(32, 0x6B))}, {"release_policy", release_policy}};
    ASSERT_EQ(AdminCall("POST", "/v1/admin/keys", body), 201) << release_policy.dump();
  }

  // Token runs challenge → evidence → attest for `node` under `policy`.
  std::string Token(Node& node, const std::string& policy) {
    const std::string nonce = std::get<json>(service_->Challenge())["nonce"];
    auto payload = node.issuer->PayloadFor(node_key_->public_key().ToSpkiDer(), HexDecode(nonce).value()).value();
    Reply r = service_->Attest({{"nonce", nonce},
                                {"payload", Base64Encode(channel::EncodePayload(payload))},
                                {"public_key", PublicJwk(node_key_->public_key())},
                                {"policy", policy}});
    EXPECT_TRUE(std::holds_alternative<json>(r)) << Describe(r);
    return std::holds_alternative<json>(r) ? std::get<json>(r)["token"].get<std::string>() : "";
  }

  Reply Release(const std::string& key_id, const std::string& token) {
    auto eph = NewP256();
    json body = {{"key_id", key_id}, {"epk", PublicJwk(eph.public_key())}, {"iat", now_}};
    const std::string pop = SignJws(*node_key_, {{"typ", "cllm-key-request+jws"}}, body.dump()).value();
    return service_->ReleaseKey(key_id, token, {{"pop", pop}});
  }

  // ClientVerify is a client checking `node`'s certificate carrying `token`.
  channel::ChannelResult<TokenVerifiedServer> ClientVerify(Node& node, const std::string& token,
                                                           const attestation::Policy& policy) {
    auto cert = node.issuer->IssueWithKey(Now(), *node_key_, token).value().cert;
    return VerifyServerToken(cert, service_->Jwks(), policy, {Now(), "cllm-trust"});
  }
  attestation::Policy SimClientPolicy() const {
    attestation::Policy p = attestation::Policy::Default();
    p.platforms = {Platform::kSim};
    p.model_digests = {Bytes(32, kModel)};
    return p;
  }

  // Bind sets report_data to what the node's evidence binds for cllm-trust's
  // nonce kFreshness: the node key, its digests and model name.
  void Bind(VerifiedEvidence::Data& d) const {
    channel::AttestationPayload bound;
    bound.binary_digest.fill(kBinary);
    bound.model_digest.fill(kModel);
    bound.model_name = "model-a";
    bound.freshness = kFreshness;
    const auto rd = channel::ComputeReportData(node_key_->public_key().ToSpkiDer(), bound);
    d.report_data.assign(rd.begin(), rd.end());
  }

  // SignedToken is a token the service signs over the appraised claims `d`
  // (as its Appraise would have produced them) for the node key, appraised
  // under `policy_name` as stored now (registered here if it is not).
  std::string SignedToken(const VerifiedEvidence::Data& d, const std::string& policy_name) {
    if (!service_->store().GetPolicy(policy_name).value()) PutPolicy(policy_name, false);
    const std::string stored = service_->store().GetPolicy(policy_name).value().value();
    attestation::Policy any;
    any.platforms = {Platform::kSnp, Platform::kTdx, Platform::kCsv, Platform::kTpm, Platform::kSim};
    any.allow_debug = true;
    for (int i = 0; i <= static_cast<int>(TcbStatus::kNotEvaluated); ++i) any.tcb_statuses.insert(TcbStatus(i));
    auto claims = attestation::Appraise(VerifiedEvidence(attestation::VerifierPass::Issue(), d), any);
    EXPECT_TRUE(claims.ok()) << claims.detail();
    json c = AppraisedClaimsJson(*claims);
    c.update({{"iss", "cllm-trust"}, {"sub", "node:n"}, {"iat", now_}, {"nbf", now_}, {"exp", now_ + 300},
              {"jti", "j"}, {"policy", policy_name}, {"replay", false},
              {"policy_digest", HexEncode(crypto::Sha256(ByteSpan(
                                    reinterpret_cast<const uint8_t*>(stored.data()), stored.size())))},
              {"cnf", {{"jwk", PublicJwk(node_key_->public_key())}}}, {"binary_digest", DigestHex(kBinary)},
              {"model_digest", DigestHex(kModel)}, {"model_name", "model-a"},
              {"freshness", HexEncode(kFreshness)}});
    return service_->signing_keys().SignJwt(c).value();
  }

  const Bytes kFreshness = Bytes(32, 0x5A);
  fs::path dir_;
  int64_t now_ = 0;
  std::optional<crypto::PrivateKey> platform_key_, node_key_;
  Node node_, debug_node_;
  std::unique_ptr<TrustService> service_;
  std::string admin_;
};

// ---------------------------------------------------------------------------
// Attack: a debuggable TEE (host can read guest memory) with a valid token
// ---------------------------------------------------------------------------

TEST_F(TokenAttackTest, DebugTokenIsRefusedByTheBrokerAndByAClientThatForbidsDebug) {
  PutPolicy("dev", /*allow_debug=*/true);  // a lax policy mints the token...
  const std::string token = Token(debug_node_, "dev");
  ASSERT_FALSE(token.empty());
  // ...and the token says so.
  JwtCheck check{Now(), "cllm-trust"};
  ASSERT_EQ(VerifyJwt(token, service_->Jwks(), check).value()["debug"], true);

  // The broker: a key whose release policy accepts "dev" tokens but not debug.
  RegisterKey("key-dev", {{"model_digests", {DigestHex(kModel)}}, {"allow_simulated", true}, {"policies", {"dev"}}});
  Reply r = Release("key-dev", token);
  EXPECT_EQ(ErrorCode(r), "release_refused") << Describe(r);
  EXPECT_NE(Describe(r).find("debug"), std::string::npos) << Describe(r);
  // Debug was the only reason: allowing it releases the key.
  ASSERT_EQ(AdminCall("PUT", "/v1/admin/keys/key-dev/release-policy",
                      {{"model_digests", {DigestHex(kModel)}}, {"allow_simulated", true}, {"policies", {"dev"}},
                       {"allow_debug", true}}),
            200);
  EXPECT_TRUE(std::holds_alternative<json>(Release("key-dev", token))) << Describe(Release("key-dev", token));

  // The client with allow_debug false (the default) refuses the server.
  attestation::Policy client = SimClientPolicy();
  auto v = ClientVerify(debug_node_, token, client);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.code(), channel::ChannelErrc::kPolicyNotSatisfied);
  EXPECT_NE(v.detail().find("debug_enabled"), std::string::npos) << v.detail();
  client.allow_debug = true;
  EXPECT_TRUE(ClientVerify(debug_node_, token, client).ok());
}

// ---------------------------------------------------------------------------
// Attack: the requester chooses the weaker attestation policy
// ---------------------------------------------------------------------------

TEST_F(TokenAttackTest, TokenIssuedUnderDevDoesNotReleaseAProdKey) {
  PutPolicy("default", false);
  PutPolicy("prod", false);
  PutPolicy("dev", true);
  RegisterKey("key-prod", {{"model_digests", {DigestHex(kModel)}}, {"allow_simulated", true}, {"policies", {"prod"}}});
  // A key registered without "policies" accepts only the "default" policy's
  // tokens, never whatever policy the requester named.
  RegisterKey("key-plain", {{"model_digests", {DigestHex(kModel)}}, {"allow_simulated", true}});

  const std::string dev = Token(node_, "dev");
  for (const char* key : {"key-prod", "key-plain"}) {
    Reply r = Release(key, dev);
    EXPECT_EQ(ErrorCode(r), "release_refused") << key << ": " << Describe(r);
    EXPECT_NE(Describe(r).find("\"dev\""), std::string::npos) << Describe(r);
  }
  EXPECT_TRUE(std::holds_alternative<json>(Release("key-prod", Token(node_, "prod"))));
  EXPECT_TRUE(std::holds_alternative<json>(Release("key-plain", Token(node_, "default"))));

  // A client can require the policy too (`--token-policy prod`).
  attestation::Policy client = SimClientPolicy();
  client.token_policies = {"prod"};
  auto v = ClientVerify(node_, dev, client);
  ASSERT_FALSE(v.ok()) << "a client requiring \"prod\" accepted a \"dev\" token";
  EXPECT_EQ(v.code(), channel::ChannelErrc::kPolicyNotSatisfied);
  EXPECT_NE(v.detail().find("token_policy"), std::string::npos) << v.detail();
  auto ok = ClientVerify(node_, Token(node_, "prod"), client);
  EXPECT_TRUE(ok.ok()) << ok.detail();
}

// ---------------------------------------------------------------------------
// Token mode is never weaker than evidence mode
// ---------------------------------------------------------------------------

// The same claims appraised from local evidence and from a token that
// carries them, under the same client policy, get the same verdict.
TEST_F(TokenAttackTest, TokenModeAndEvidenceModeGiveTheSameVerdict) {
  // An SNP-like TEE (values of PROVENANCE S2): no TCB status source.
  VerifiedEvidence::Data base;
  base.platform = Platform::kSnp;
  base.simulated = false;
  base.measurement = Bytes(48, 0xA1);
  base.report_data = Bytes(64, 0);
  base.tcb_status = TcbStatus::kNotEvaluated;
  base.tcb = {{"snp.bootloader", 3}, {"snp.tee", 0}, {"snp.snp", 8}, {"snp.microcode", 115}};
  base.fields = {{"policy.smt", "1"}, {"vmpl", "0"}};
  attestation::Policy policy = attestation::Policy::Default();
  policy.platforms = {Platform::kSnp};
  policy.model_digests = {Bytes(32, kModel)};
  policy.per_platform[Platform::kSnp].measurements = {Bytes(48, 0xA1)};
  policy.per_platform[Platform::kSnp].min_tcb = base.tcb;
  policy.per_platform[Platform::kSnp].fields = {{"vmpl", "0"}};

  struct Row {
    const char* name;
    std::function<void(VerifiedEvidence::Data&, attestation::Policy&)> change;
    std::optional<AttestErrc> want;  // nullopt: accepted
  };
  auto floor_above = [](const char* component) {
    return [component](VerifiedEvidence::Data&, attestation::Policy& p) {
      ++p.per_platform[Platform::kSnp].min_tcb[component];
    };
  };
  const std::vector<Row> rows = {
      {"ok", [](auto&, auto&) {}, std::nullopt},
      {"platform not allowed", [](auto&, auto& p) { p.platforms = {Platform::kTdx}; }, AttestErrc::kPolicyViolation},
      {"sim not allowed",
       [](auto& d, auto&) {
         d.platform = Platform::kSim;
         d.simulated = true;
       },
       AttestErrc::kSimulatedNotAllowed},
      {"debug", [](auto& d, auto&) { d.debug = true; }, AttestErrc::kDebugEnabled},
      {"tcb status OutOfDate", [](auto& d, auto&) { d.tcb_status = TcbStatus::kOutOfDate; }, AttestErrc::kTcbTooLow},
      {"tcb status NotEvaluated without floor",
       [](auto&, auto& p) { p.per_platform[Platform::kSnp].min_tcb.clear(); }, AttestErrc::kTcbTooLow},
      {"tcb floor snp.bootloader", floor_above("snp.bootloader"), AttestErrc::kTcbTooLow},
      {"tcb floor snp.tee", floor_above("snp.tee"), AttestErrc::kTcbTooLow},
      {"tcb floor snp.snp", floor_above("snp.snp"), AttestErrc::kTcbTooLow},
      {"tcb floor snp.microcode", floor_above("snp.microcode"), AttestErrc::kTcbTooLow},
      {"tcb floor unreported component", floor_above("snp.fmc"), AttestErrc::kTcbTooLow},
      {"measurement not in list", [](auto& d, auto&) { d.measurement = Bytes(48, 0xEE); },
       AttestErrc::kPolicyViolation},
      {"field mismatch", [](auto& d, auto&) { d.fields["vmpl"] = "1"; }, AttestErrc::kPolicyViolation},
      {"debug allowed", [](auto& d, auto& p) { d.debug = true; p.allow_debug = true; }, std::nullopt},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    VerifiedEvidence::Data d = base;
    attestation::Policy p = policy;
    row.change(d, p);
    Bind(d);
    const std::string token = SignedToken(d, "default");

    // Evidence mode: the appraisal a client runs on locally verified evidence.
    auto evidence = attestation::Appraise(VerifiedEvidence(attestation::VerifierPass::Issue(), d), p);
    // Token mode: the client verifying the server certificate by its token.
    auto by_token = ClientVerify(node_, token, p);

    if (!row.want) {
      EXPECT_TRUE(evidence.ok()) << evidence.detail();
      EXPECT_TRUE(by_token.ok()) << by_token.detail();
      if (by_token.ok()) {
        EXPECT_EQ(by_token->appraised.source(), attestation::ClaimsSource::kTrustToken);
      }
      continue;
    }
    if (evidence.ok() || by_token.ok()) {
      ADD_FAILURE() << "accepted: evidence mode " << evidence.ok() << ", token mode " << by_token.ok();
      continue;
    }
    EXPECT_EQ(evidence.code(), *row.want) << evidence.detail();
    EXPECT_EQ(by_token.code(), channel::ChannelErrc::kPolicyNotSatisfied);
    // The token refusal is the very appraisal failure, same code, same detail.
    EXPECT_EQ(by_token.detail(), std::string(attestation::AttestErrcName(*row.want)) + ": " + evidence.detail());
  }
}

// ---------------------------------------------------------------------------
// Attack: "UpToDate" without a source (item 5), on real SNP evidence
// ---------------------------------------------------------------------------

crypto::TimePoint At(int year, int month, int day) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

// PROVENANCE S2 (trustee Milan v2): reported_tcb bl=3 tee=0 snp=8 ucode=115;
// VCEK valid 2023-01-24..2030-01-24.
TEST_F(TokenAttackTest, RealSnpEvidenceIsNotUpToDateAndFloorsDecideInAttestationAndReleasePolicies) {
  CLLM_SHARED_PATH(report, "testdata/attestation/snp/trustee_milan_v2_report.bin");
  CLLM_SHARED_PATH(vcek, "testdata/attestation/snp/trustee_milan_v2_vcek.der");
  CLLM_SHARED_PATH(chain, "testdata/attestation/snp/amd_milan_ask_ark_vcek_chain.pem");
  const Bytes report_bytes = ReadFile(report.string(), 1 << 20).value();
  attestation::EvidenceInput in;
  in.evidence = report_bytes;
  in.cert_files = {ReadFile(vcek.string(), 1 << 20).value(), ReadFile(chain.string(), 1 << 20).value()};
  in.at = At(2026, 11, 23);
  auto verified = attestation::snp::VerifySnpEvidence(in);
  ASSERT_TRUE(verified.ok()) << verified.detail();
  const auto& d = verified->data();
  EXPECT_EQ(d.tcb_status, TcbStatus::kNotEvaluated);  // was UpToDate with no source
  EXPECT_EQ(d.tcb.at("snp.microcode"), 115u);
  EXPECT_EQ(d.tcb.at("snp.committed_tcb.microcode"), 115u);

  // Attestation policy: default refuses, a floor accepts, a floor above refuses.
  auto refusal = [&](const attestation::Policy& p) -> std::optional<AttestErrc> {
    auto r = attestation::Appraise(*verified, p);
    return r.ok() ? std::nullopt : std::optional<AttestErrc>(r.code());
  };
  attestation::Policy policy = attestation::Policy::Default();
  EXPECT_EQ(refusal(policy), AttestErrc::kTcbTooLow);
  policy.per_platform[Platform::kSnp].min_tcb = {
      {"snp.bootloader", 3}, {"snp.tee", 0}, {"snp.snp", 8}, {"snp.microcode", 115}};
  EXPECT_EQ(refusal(policy), std::nullopt);
  policy.per_platform[Platform::kSnp].min_tcb["snp.microcode"] = 116;
  EXPECT_EQ(refusal(policy), AttestErrc::kTcbTooLow);

  // Release policy: a token carrying these claims gets the key only over a
  // pinned floor it meets.
  const std::string token = SignedToken(d, "default");
  auto release_with = [&](const json& extra) {
    json rp = {{"model_digests", {DigestHex(kModel)}}, {"platforms", {"snp"}}};
    rp.update(extra);
    EXPECT_EQ(AdminCall("PUT", "/v1/admin/keys/key-snp/release-policy", rp), 200) << rp.dump();
    return Release("key-snp", token);
  };
  RegisterKey("key-snp", {{"model_digests", {DigestHex(kModel)}}, {"platforms", {"snp"}}});
  Reply no_floor = Release("key-snp", token);
  EXPECT_EQ(ErrorCode(no_floor), "release_refused");
  EXPECT_NE(Describe(no_floor).find("NotEvaluated"), std::string::npos) << Describe(no_floor);
  Reply above = release_with({{"min_tcb", {{"snp.microcode", 116}}}});
  EXPECT_EQ(ErrorCode(above), "release_refused");
  EXPECT_NE(Describe(above).find("snp.microcode"), std::string::npos) << Describe(above);
  Reply met = release_with({{"min_tcb", {{"snp.bootloader", 3}, {"snp.snp", 8}, {"snp.microcode", 115}}}});
  EXPECT_TRUE(std::holds_alternative<json>(met)) << Describe(met);
  // Measurements are the release policy's own check as well.
  Reply other = release_with({{"min_tcb", {{"snp.microcode", 115}}}, {"measurements", {std::string(96, 'e')}}});
  EXPECT_EQ(ErrorCode(other), "release_refused");
  EXPECT_NE(Describe(other).find("measurement"), std::string::npos) << Describe(other);
}

}  // namespace
}  // namespace cllm::trust
