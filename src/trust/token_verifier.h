// token_verifier.h — the client's second way to trust a server: its
// cllm-trust token instead of local evidence verification.
//
// A cllm-server that booted through cllm-trust carries its token in the
// RA-TLS payload (channel/payload.h, field "token"). A client that trusts
// cllm-trust checks, during the TLS handshake:
//   1. the certificate is valid now and carries a payload with a token;
//   2. the token's ES256 signature under cllm-trust's JWKS (fetched over a
//      pinned connection), iss, exp/nbf with leeway, claims format "ver": 2
//      (token_claims.h); not a replay token;
//   3. the token's cnf key is this certificate's key (RFC 7638 thumbprints):
//      the token speaks for this TLS session and no other;
//   4. the token's digests, model name and serving claims equal the
//      payload's, and its report_data is the binding of this key, those
//      claims and cllm-trust's nonce ("freshness");
//   5. the token was appraised under one of the client policy's
//      "token_policies" (`--token-policy NAME`), when it lists any;
//   6. the client appraises the token's claims with attestation::Appraise
//      under its own policy — the same code as for local evidence: platform,
//      sim, debug, TCB status and floor, measurements, required fields — then
//      binary_digests and model_digests, and the serving claims
//      (channel::CheckServing).
// Vendor chains and signatures were checked by cllm-trust; full local
// verification (channel/ratls.h) remains the choice of clients that trust no
// one but the hardware vendor.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "attestation/policy.h"
#include "channel/payload.h"
#include "channel/ratls.h"
#include "crypto/tls.h"

namespace cllm::trust {

struct TokenVerifiedServer {
  nlohmann::json claims;  // the verified token's claims
  channel::AttestationPayload payload;
  attestation::Claims appraised;  // the client's appraisal of them (source kTrustToken)
};

struct TokenVerifyOptions {
  crypto::TimePoint at;
  std::string expected_issuer = "cllm-trust";
  channel::PeerRole peer = channel::PeerRole::kServer;  // kClient: a server checking its clients
};

channel::ChannelResult<TokenVerifiedServer> VerifyServerToken(const crypto::Certificate& leaf,
                                                              const nlohmann::json& jwks,
                                                              const attestation::Policy& policy,
                                                              const TokenVerifyOptions& options);

struct TokenVerdict {
  std::mutex mu;
  std::optional<TokenVerifiedServer> server;
  std::optional<Error<channel::ChannelErrc>> error;
};

// JwksSource holds the JWKS a long-running verifier uses; Set replaces it
// (a server refreshes it when cllm-trust rotates its signing key).
class JwksSource {
 public:
  explicit JwksSource(nlohmann::json jwks) : jwks_(std::move(jwks)) {}
  nlohmann::json Get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return jwks_;
  }
  void Set(nlohmann::json jwks) {
    std::lock_guard<std::mutex> lock(mu_);
    jwks_ = std::move(jwks);
  }

 private:
  mutable std::mutex mu_;
  nlohmann::json jwks_;
};

// MakeTokenVerifier returns a TLS peer verifier accepting the peer on its
// token: a client checking a server, or a server in mutual mode checking
// clients (`cllm-server --client-policy F --client-via-token`).
crypto::PeerVerifier MakeTokenVerifier(std::shared_ptr<const JwksSource> jwks, attestation::Policy policy,
                                       std::shared_ptr<TokenVerdict> verdict, std::string expected_issuer = "cllm-trust",
                                       channel::PeerRole peer = channel::PeerRole::kServer);

}  // namespace cllm::trust
