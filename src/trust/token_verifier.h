// token_verifier.h — the client's second way to trust a server: its
// cllm-trust token instead of local evidence verification.
//
// A cllm-server that booted through cllm-trust carries its token in the
// RA-TLS payload (channel/payload.h, field "token"). A client that trusts
// cllm-trust checks, during the TLS handshake:
//   1. the certificate is valid now and carries a payload with a token;
//   2. the token's ES256 signature under cllm-trust's JWKS (fetched over a
//      pinned connection), iss, exp/nbf with leeway; not a replay token;
//   3. the token's cnf key is this certificate's key (RFC 7638 thumbprints):
//      the token speaks for this TLS session and no other;
//   4. the token's binary and model digests equal the payload's, and the
//      client's policy accepts them: platforms (sim only when listed),
//      TCB status, binary_digests and model_digests when listed.
// Measurements and vendor chains were checked by cllm-trust under its own
// reference values; full local verification (channel/ratls.h) remains the
// choice of clients that trust no one but the hardware vendor.
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
};

struct TokenVerifyOptions {
  crypto::TimePoint at;
  std::string expected_issuer = "cllm-trust";
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
                                       std::shared_ptr<TokenVerdict> verdict, std::string expected_issuer = "cllm-trust");

}  // namespace cllm::trust
