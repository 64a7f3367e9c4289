// trust_service_fixture.h — the fixture of the TrustService tests
// (trust_service_test.cc, fleet_key_test.cc): a service on a temporary
// SQLite store with an injected clock, the "default" policy pinning a
// simulated TEE, and a node on that TEE that attests and fetches keys.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <optional>
#include <string>
#include <variant>

#include "attestation/sim/sim_attester.h"
#include "base/encoding.h"
#include "channel/payload.h"
#include "channel/ratls.h"
#include "support/fake_writer.h"
#include "trust/jose.h"
#include "trust/service.h"

namespace cllm::trust::test {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Reply = std::variant<json, ApiError>;

inline constexpr uint8_t kModelA = 0xA1;  // the node serves model A
inline constexpr uint8_t kModelB = 0xB2;
inline constexpr uint8_t kBinary = 0x3C;

inline std::string DigestHex(uint8_t fill) { return HexEncode(Bytes(32, fill)); }
inline crypto::PrivateKey NewP256() { return crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value(); }

// Writer captures the one response Handle sends.
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
  std::string code() const { return body_.contains("error") ? body_["error"].value("code", "") : ""; }
};

inline std::string ErrorCode(const Reply& r) {
  const auto* e = std::get_if<ApiError>(&r);
  return e ? e->code : "<ok>";
}
inline std::string Describe(const Reply& r) {
  const auto* e = std::get_if<ApiError>(&r);
  return e ? std::to_string(e->status) + " " + e->code + ": " + e->message : std::get<json>(r).dump();
}

class TrustServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = fs::temp_directory_path() / ("cllm_trust_svc_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    now_ = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();

    // The node: a simulated TEE whose platform key the "default" policy pins.
    platform_key_.emplace(attestation::sim::GenerateSimPlatformKey().value());
    attestation::sim::SimAttesterOptions o;
    o.measurement.emplace();
    o.measurement->fill(0x33);
    attester_ = std::make_shared<attestation::sim::SimAttester>(
        attestation::sim::SimAttester::Create(*platform_key_, o).value());
    channel::ServerClaims claims;
    claims.binary_digest.fill(kBinary);
    claims.model_digest.fill(kModelA);
    claims.model_name = "model-a";
    issuer_.emplace(attester_, claims);
    node_key_.emplace(NewP256());

    StartService();
    auto admin = service_->EnsureAdminToken();
    ASSERT_TRUE(admin.ok() && admin->has_value());
    admin_token_ = **admin;
    ASSERT_EQ(AdminCall("PUT", "/v1/admin/policies/default", SimPolicy({"sim"}).dump()).status_, 200);
    ASSERT_EQ(RegisterKey("key-a", {{"model_digests", {DigestHex(kModelA)}}, {"allow_simulated", true}}), 201);
    ASSERT_EQ(RegisterKey("key-b", {{"model_digests", {DigestHex(kModelB)}}, {"allow_simulated", true}}), 201);
  }
  void TearDown() override {
    service_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // StartService (re)creates the service on the same store file and master key.
  void StartService() {
    service_.reset();
    service_ = OpenService();
  }
  // OpenService opens another service on the same store file and master key
  // (another replica); null, with a test failure, when it cannot.
  std::unique_ptr<TrustService> OpenService() {
    auto box = SecretBox::FromKey(Bytes(32, 0x4B)).value();
    auto store = Store::Open(dir_ / "trust.db", box);
    EXPECT_TRUE(store.ok()) << store.detail();
    if (!store.ok()) return nullptr;
    TrustConfig config = config_;
    config.clock = [this] { return TimePoint(std::chrono::seconds(now_.load())); };
    auto s = TrustService::Create(std::move(store).value(), std::move(box), config);
    EXPECT_TRUE(s.ok()) << s.detail();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  json SimPolicy(std::vector<std::string> platforms) const {
    return {{"policy",
             {{"version", 1},
              {"platforms", platforms},
              {"sim", {{"platform_keys", {platform_key_->public_key().ToPem()}}}}}}};
  }

  Writer AdminCall(const std::string& method, const std::string& target, const std::string& body,
                   std::string token = "") {
    net::Request r;
    r.method = method;
    r.target = target;
    r.body = body;
    r.headers["authorization"] = "Bearer " + (token.empty() ? admin_token_ : token);
    Writer w;
    service_->Handle(r, w);
    return w;
  }
  int RegisterKey(const std::string& key_id, const json& release_policy, uint8_t key_fill = 0) {
    key_fill = key_fill ? key_fill : static_cast<uint8_t>(key_id.back());
    json body = {{"key_id", key_id}, {"key", HexEncode(Bytes(32, key_fill))}, {"release_policy", release_policy}};
    return AdminCall("POST", "/v1/admin/keys", body.dump()).status_;
  }

  // AttestWith runs challenge → evidence for the nonce → attest.
  Reply AttestWith(const std::string& policy = "default") {
    auto ch = service_->Challenge();
    if (!std::holds_alternative<json>(ch)) return ch;
    return AttestNonce(std::get<json>(ch)["nonce"].get<std::string>(), policy);
  }
  Reply AttestNonce(const std::string& nonce_hex, const std::string& policy = "default") {
    auto payload = issuer_->PayloadFor(node_key_->public_key().ToSpkiDer(), HexDecode(nonce_hex).value());
    EXPECT_TRUE(payload.ok()) << payload.detail();
    return service_->Attest({{"nonce", nonce_hex},
                             {"payload", Base64Encode(channel::EncodePayload(*payload))},
                             {"public_key", PublicJwk(node_key_->public_key())},
                             {"policy", policy}});
  }
  std::string Token(const std::string& policy = "default") {
    Reply r = AttestWith(policy);
    EXPECT_TRUE(std::holds_alternative<json>(r)) << Describe(r);
    return std::holds_alternative<json>(r) ? std::get<json>(r)["token"].get<std::string>() : "";
  }

  // Pop is the proof of possession for `key_id`, signed by `signer`, with
  // the ephemeral key `eph`.
  std::string Pop(const crypto::PrivateKey& signer, const std::string& key_id, const crypto::PrivateKey& eph) {
    json body = {{"key_id", key_id}, {"epk", PublicJwk(eph.public_key())}, {"iat", now_.load()}};
    return SignJws(signer, {{"typ", "cllm-key-request+jws"}}, body.dump()).value();
  }
  Reply Release(const std::string& key_id, const std::string& token, const crypto::PrivateKey& eph) {
    return service_->ReleaseKey(key_id, token, {{"pop", Pop(*node_key_, key_id, eph)}});
  }
  // ReleasedKey releases `key_id` and opens the JWE; empty on any failure.
  Bytes ReleasedKey(const std::string& key_id, const std::string& token) {
    auto eph = NewP256();
    Reply r = Release(key_id, token, eph);
    EXPECT_TRUE(std::holds_alternative<json>(r)) << Describe(r);
    if (!std::holds_alternative<json>(r)) return {};
    auto key = DecryptJwe(std::get<json>(r)["jwe"].get<std::string>(), eph);
    EXPECT_TRUE(key.ok()) << key.detail();
    return key.ok() ? Bytes(key->data(), key->data() + key->size()) : Bytes();
  }

  JoseResult<json> VerifyToken(const std::string& token) {
    JwtCheck check;
    check.now = TimePoint(std::chrono::seconds(now_.load()));
    check.expected_issuer = "cllm-trust";
    return VerifyJwt(token, service_->Jwks(), check);
  }

  fs::path dir_;
  TrustConfig config_;  // what OpenService starts services with (its clock is now_)
  std::atomic<int64_t> now_{0};
  std::optional<crypto::PrivateKey> platform_key_;
  std::shared_ptr<attestation::sim::SimAttester> attester_;
  std::optional<channel::RaTlsIssuer> issuer_;
  std::optional<crypto::PrivateKey> node_key_;
  std::unique_ptr<TrustService> service_;
  std::string admin_token_;
};

}  // namespace cllm::trust::test
