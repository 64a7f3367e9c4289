// e2e_common.cc — client setup for encrypted bodies (e2e_common.h).

#include "apps/cllm/e2e_common.h"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>

#include "apps/common/tee.h"
#include "base/log.h"
#include "channel/ratls.h"
#include "crypto/digest.h"
#include "trust/e2e_client.h"
#include "trust/e2e_keys.h"
#include "trust/release_cover.h"
#include "trust/release_policy.h"
#include "trust/trust_client.h"

namespace cllm::app {
namespace {

namespace e2e = channel::e2e;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// FetchVerifiedKeys is steps 2–3: the key list from an upstream, each entry
// verified under cllm-trust's JWKS (fetched again when cllm-trust rotated
// its signing key) and its release policy checked against `policy`.
Result<client::E2eKeyList> FetchVerifiedKeys(const std::vector<client::Url>& upstreams,
                                                      const std::vector<crypto::Certificate>& roots,
                                                      trust::RenewingJwks& jwks, const attestation::Policy& policy,
                                                      const net::ClientOptions& http,
                                                      std::vector<std::string>* explanation) {
  std::string last_error = "no upstream";
  for (const auto& url : upstreams) {
    auto conn = ConnectE2eUpstream(url, roots, http);
    if (!conn.ok()) {
      last_error = client::UrlText(url) + ": " + conn.detail();
      continue;
    }
    auto r = (*conn)->Request("GET", "/v1/e2e/keys");
    if (!r.ok() || r->status != 200) {
      last_error = client::UrlText(url) + " GET /v1/e2e/keys: " +
                   (r.ok() ? std::to_string(r->status) + " " + r->body.substr(0, 200) : r.detail());
      continue;
    }
    auto reply = nlohmann::json::parse(r->body, nullptr, false);
    if (reply.is_discarded()) return MakeError(Errc::kParse, "GET /v1/e2e/keys: not JSON");
    trust::E2eKeyCheck check;
    check.now = std::chrono::system_clock::now();
    auto keys = jwks.Verify(reply, check);
    if (!keys.ok()) {
      return MakeError(Errc::kPermission, std::string("the fleet key list was refused: ") +
                                              trust::E2eKeyErrcName(keys.code()) + ": " + keys.detail());
    }
    std::vector<e2e::KeyConfig> usable;
    int64_t oldest = INT64_MAX;  // the earliest statement among the usable keys
    std::string refusals;
    for (const auto& k : *keys) {
      const std::string name = "key " + std::to_string(k.config.key_id) + " (" +
                               crypto::hpke::SuiteName(k.config.suite) + ", config " +
                               k.config_digest.substr(0, 16) + "…)";
      auto rp = trust::ParseReleasePolicy(k.release_policy);
      Status<> within = rp.ok() ? trust::CheckReleaseWithinPolicy(*rp, policy)
                                : Status<>(MakeError(Errc::kParse, rp.detail()));
      if (!within.ok()) {
        refusals += "\n  " + name + ": " + within.detail();
        continue;
      }
      if (explanation) {
        explanation->push_back(name + ": statement by cllm-trust key " + k.kid + " verified; release policy:");
        for (const auto& line : trust::ExplainRelease(*rp)) explanation->push_back("    " + line);
      }
      usable.push_back(k.config);
      oldest = std::min(oldest, k.iat);
    }
    if (usable.empty()) {
      return MakeError(Errc::kPermission, "no fleet key may be used with this client policy:" + refusals);
    }
    return client::E2eKeyList{std::move(usable),
                              std::chrono::system_clock::time_point(std::chrono::seconds(oldest))};
  }
  return MakeError(Errc::kIo, "the fleet key list could not be fetched: " + last_error);
}

// ClientCredentials is the client's side of mutual mode: a token from
// cllm-trust for evidence of this client's TEE (binding a fresh P-256 key,
// the token's cnf), an HPKE key pair of the suite, and the statement binding
// that key to the token, signed with the cnf key. The statement is re-signed
// every 60 s (servers accept ±120 s) and the token renewed 60 s before it
// expires (with a new key pair).
class ClientCredentials {
 public:
  ClientCredentials(trust::TrustEndpoint ep, std::shared_ptr<attestation::Attester> attester, std::string policy,
                    crypto::hpke::Suite suite)
      : ep_(std::move(ep)), policy_(std::move(policy)), suite_(suite) {
    auto exe = crypto::Sha256File("/proc/self/exe");
    channel::ServerClaims claims;
    if (exe.ok()) claims.binary_digest = *exe;
    claims.model_name = "cllm-client";
    issuer_ = std::make_shared<channel::RaTlsIssuer>(std::move(attester), claims);
  }

  Result<std::shared_ptr<const channel::e2e::ClientIdentity>> Get() {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
    if (!token_ || token_->expires_at - now < 60) {
      auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256);
      if (!key.ok()) return MakeError(Errc::kCrypto, key.detail());
      auto conn = client::ConnectPinned(ep_.url, ep_.ca);
      if (!conn.ok()) return MakeError(Errc::kIo, "cllm-trust: " + conn.detail());
      auto token = trust::ObtainToken(**conn, *issuer_, *key, policy_);
      if (!token.ok()) {
        return MakeError(Errc::kPermission, std::string("this client's attestation to cllm-trust was refused: ") +
                                                client::ClientErrcName(token.code()) + ": " + token.detail());
      }
      auto kp = crypto::hpke::GenerateKeyPair(suite_.kem);
      if (!kp.ok()) return MakeError(Errc::kCrypto, kp.detail());
      node_key_ = std::move(key).value();
      token_ = std::move(token).value();
      kp_ = std::move(kp).value();
      signed_at_ = 0;
    }
    if (now - signed_at_ >= 60 || !identity_) {
      auto jws = trust::SignE2eClientKey(*node_key_, kp_->pk, suite_, now);
      if (!jws.ok()) return MakeError(Errc::kCrypto, std::string("client key statement: ") + jws.detail());
      auto id = std::make_shared<channel::e2e::ClientIdentity>();
      id->token = token_->jwt;
      id->key_jws = std::move(jws).value();
      id->sk = kp_->sk.Clone();
      identity_ = std::move(id);
      signed_at_ = now;
    }
    return identity_;
  }

 private:
  trust::TrustEndpoint ep_;
  std::string policy_;
  crypto::hpke::Suite suite_;
  std::shared_ptr<channel::RaTlsIssuer> issuer_;
  std::mutex mu_;
  std::optional<crypto::PrivateKey> node_key_;
  std::optional<trust::Token> token_;
  std::optional<crypto::hpke::KeyPair> kp_;
  int64_t signed_at_ = 0;
  std::shared_ptr<const channel::e2e::ClientIdentity> identity_;
};

}  // namespace

void AddE2eClientFlags(CLI::App* cmd, E2eArgs* a) {
  cmd->add_option("--client-tee", a->client_tee,
                  "--e2e mutual mode: this client runs in a TEE (sim, snp, tdx, csv, auto); it attests to cllm-trust "
                  "and seals in HPKE auth mode with a key its token binds");
  cmd->add_option("--client-sim-key", a->client_sim_key, "--client-tee sim: the simulated platform key file");
  cmd->add_option("--client-token-policy", a->client_token_policy,
                  "--client-tee: the cllm-trust attestation policy to attest under")
      ->capture_default_str();
}

void AddE2eFlags(CLI::App* cmd, E2eArgs* a, bool with_trust) {
  cmd->add_flag("--e2e", a->enabled,
                "Encrypted bodies: seal every request with HPKE to the fleet key cllm-trust releases only to attested "
                "replicas, so TLS may end in any proxy on the way (needs --trust, --trust-ca)");
  cmd->add_option("--suite", a->suite, "--e2e cipher suite: x25519 (HPKE X25519/HKDF-SHA256/AES-256-GCM) or gmt "
                                       "(SM2/SM3/SM4)")
      ->check(CLI::IsMember({"x25519", "gmt"}))
      ->capture_default_str();
  if (with_trust) {
    cmd->add_option("--trust", a->trust_url, "--e2e: the cllm-trust whose signed statements the fleet keys carry");
    cmd->add_option("--trust-ca", a->trust_ca, "--e2e: cllm-trust's certificate (pinned)");
  }
  cmd->add_option("--upstream-ca", a->upstream_ca,
                  "--e2e: PEM roots of an https:// gateway's certificate (its name must match the URL's host)");
  AddE2eClientFlags(cmd, a);
}

client::ClientResult<std::unique_ptr<client::Connection>> ConnectE2eUpstream(
    const client::Url& url, const std::vector<crypto::Certificate>& roots, const net::ClientOptions& http) {
  if (!url.tls) return client::ConnectPlain(url, http);
  const std::string host = url.host;
  return client::ConnectWithVerifier(
      url,
      [roots, host](const std::vector<crypto::Certificate>& chain) {
        return client::VerifyWebServer(chain, roots, {host});
      },
      http);
}

OrExit<E2eSetup> MakeE2e(const E2eArgs& a, const attestation::Policy& policy, const std::vector<client::Url>& upstreams,
                         const net::ClientOptions& http) {
  if (a.trust_url.empty() || a.trust_ca.empty()) {
    return ExitWith(Fail("--e2e needs --trust URL and --trust-ca FILE: the fleet keys are trusted only through "
                         "cllm-trust's signature",
                         2));
  }
  auto suite = crypto::hpke::ParseSuite(a.suite);
  if (!suite.ok()) return ExitWith(Fail("--suite: " + suite.detail(), 2));
  E2eSetup setup;
  bool any_tls = false;
  for (const auto& u : upstreams) any_tls |= u.tls;
  if (any_tls) {
    if (a.upstream_ca.empty()) {
      return ExitWith(Fail("--e2e with an https:// upstream needs --upstream-ca FILE (the gateway's roots)", 2));
    }
    auto roots = crypto::Certificate::ParsePemBundle(ReadAll(a.upstream_ca));
    if (!roots.ok()) return ExitWith(Fail("--upstream-ca " + a.upstream_ca + ": " + roots.detail(), 2));
    setup.upstream_roots = std::move(roots).value();
  }
  auto ep = trust::LoadTrustEndpoint(a.trust_url, a.trust_ca);
  if (!ep.ok()) return ExitWith(Fail(ep.detail(), 2));
  auto first_jwks = trust::FetchJwks(*ep);
  if (!first_jwks.ok()) return ExitWith(Fail("cllm-trust JWKS: " + first_jwks.detail(), 2));
  // Fetched again when a key list is signed by a key it lacks (cllm-trust
  // rotated its signing key), over the same pinned connection.
  auto jwks = std::make_shared<trust::RenewingJwks>(
      std::move(first_jwks).value(), [ep = *ep]() -> Result<nlohmann::json> {
        auto j = trust::FetchJwks(ep);
        if (!j.ok()) return MakeError(Errc::kIo, "cllm-trust JWKS: " + j.detail());
        return std::move(j).value();
      });

  auto explanation = std::make_shared<std::vector<std::string>>();
  const auto roots = setup.upstream_roots;
  client::E2eKeyFetch fetch = [upstreams, roots, jwks, policy, http, explanation]() {
    explanation->clear();
    return FetchVerifiedKeys(upstreams, roots, *jwks, policy, http, explanation.get());
  };
  client::E2eClientProvider client_id;
  if (!a.client_tee.empty()) {
    auto attester = OpenAttester(a.client_tee, a.client_sim_key);
    if (!attester.ok()) return ExitWith(Fail("--client-tee: " + attester.detail(), 2));
    auto creds = std::make_shared<ClientCredentials>(*ep, std::move(attester).value(), a.client_token_policy, *suite);
    auto first = creds->Get();  // attest now: a refused client fails at start-up
    if (!first.ok()) return ExitWith(Fail(first.detail(), first.code() == Errc::kPermission ? 1 : 2));
    client_id = [creds] { return creds->Get(); };
    setup.mutual = true;
  }
  auto session = client::E2eSession::Create(std::move(fetch), *suite, std::move(client_id));
  if (!session.ok()) {
    return ExitWith(Fail("--e2e: " + session.detail(), session.code() == Errc::kPermission ? 1 : 2));
  }
  setup.session = std::move(session).value();
  setup.explanation = *explanation;  // before the timer's fetches rewrite it
  // A rotated fleet key becomes the preferred one 60 s after it is made and
  // the old one is retired after the rotation's overlap (at least 120 s):
  // fetching every minute moves this client over in between.
  setup.session->StartAutoRefresh(std::chrono::seconds(60));
  return setup;
}

}  // namespace cllm::app
