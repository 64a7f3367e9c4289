// ratls.h — RA-TLS: server certificates that carry evidence, and the client
// check that ties a TLS session to verified, appraised evidence.
//
// Server side: RaTlsIssuer makes an ephemeral P-256 key, asks the TEE
// (attestation::Attester) for evidence whose report_data binds that key's
// SPKI, the binary digest, the model digest, the model name, a freshness
// value and the serving claims (payload.h), and wraps key + evidence into a
// short-lived self-signed certificate. The server rotates it before it expires.
//
// Client side: VerifyServerCertificate decodes the payload from the leaf it
// actually received, verifies the evidence, recomputes the binding from that
// certificate and appraises the evidence and digests against the client's
// policy. Failures are typed (ChannelErrc) and explained. MakePeerVerifier
// plugs this into crypto::TlsContext so a handshake fails closed, keeping the
// typed error for the caller. The byte format is docs/protocol.md.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "attestation/attester.h"
#include "attestation/claims.h"
#include "attestation/policy.h"
#include "channel/payload.h"
#include "crypto/tls.h"

namespace cllm::channel {

enum class ChannelErrc {
  kNoEvidence = 1,          // the certificate has no attestation extension
  kMalformed,               // the payload does not decode
  kCertEvidenceMismatch,    // evidence does not bind this certificate's key and claims
  kPlatformChainInvalid,    // the evidence itself does not verify (signature, vendor chain, collateral)
  kPolicyNotSatisfied,      // verified, but the policy refuses it (field, expected, found)
  kStale,                   // the certificate or its freshness is outside its validity window
  kAttesterFailed,          // server side: the TEE did not produce evidence
  kInternal,
};
const char* ChannelErrcName(ChannelErrc code);

template <typename T>
using ChannelResult = Result<T, ChannelErrc>;

// What the server claims about itself (bound into every certificate).
struct ServerClaims {
  std::array<uint8_t, kDigestSize> binary_digest{};
  std::array<uint8_t, kDigestSize> model_digest{};
  std::string model_name;
  // Digests of the e2e (HPKE) key configs the server decrypts with.
  std::vector<std::array<uint8_t, kDigestSize>> e2e_key_digests;
  ServingClaims serving;  // a host-supplied chat template, a model mapped from disk, unlocked memory
};

struct IssuerOptions {
  std::chrono::seconds validity{600};          // certificate lifetime
  std::optional<Bytes> endorsements;           // e.g. a VCEK chain for SNP
};

// RaTlsIssuer makes attested identities. Thread-safe (the attester is used
// under a lock).
class RaTlsIssuer {
 public:
  RaTlsIssuer(std::shared_ptr<attestation::Attester> attester, ServerClaims claims, IssuerOptions options = {});
  // Issue makes a fresh key and certificate valid from `now`.
  [[nodiscard]] ChannelResult<crypto::TlsIdentity> Issue(crypto::TimePoint now);
  // IssueWithKey makes the certificate for an existing P-256 key, carrying a
  // cllm-trust token (whose cnf is this key) in the payload, valid until
  // `not_after` at the latest (the token's expiry).
  [[nodiscard]] ChannelResult<crypto::TlsIdentity> IssueWithKey(crypto::TimePoint now, crypto::PrivateKey key,
                                                                std::optional<std::string> token,
                                                                std::optional<crypto::TimePoint> not_after = {});
  // PayloadFor makes a payload for an existing TLS key with a caller's
  // freshness (the /.well-known/cllm-attestation?nonce=… endpoint). The
  // evidence sent to cllm-trust leaves the e2e key digests out
  // (`with_e2e_keys` false): tokens never cover them, since the fleet key is
  // released only after the first token.
  [[nodiscard]] ChannelResult<AttestationPayload> PayloadFor(ByteSpan spki_der, ByteSpan freshness,
                                                             bool with_e2e_keys = true);
  // SetE2eKeyDigests changes the e2e key digests bound into identities
  // issued from now on (the fleet key arrives after the node's attestation).
  void SetE2eKeyDigests(std::vector<std::array<uint8_t, kDigestSize>> digests);
  ServerClaims claims() const;
  const IssuerOptions& options() const { return options_; }
  attestation::Platform platform() const { return attester_->platform(); }

 private:
  std::shared_ptr<attestation::Attester> attester_;
  ServerClaims claims_;
  IssuerOptions options_;
  mutable std::mutex mu_;
};

// A server the client has verified: what it is, as the policy saw it.
struct VerifiedServer {
  attestation::Claims claims;
  AttestationPayload payload;
  Bytes spki_sha256;
};

// PeerRole: whom the evidence speaks for. Serving claims (payload.h) are a
// server's; a client's evidence (mutual mode, split-inference clients) makes
// none, and a policy's serving keys (min_stream_pad, allow_*) do not apply
// to it.
enum class PeerRole { kServer, kClient };

struct VerifyOptions {
  crypto::TimePoint at;                      // the verification time
  PeerRole peer = PeerRole::kServer;
  std::optional<Bytes> expected_freshness;   // nonce mode: the freshness must equal this
  std::chrono::seconds max_cert_age{3600};   // timestamp mode: issuance no older than this
  std::chrono::seconds clock_skew{300};
};

// VerifyServerCertificate checks the leaf of a server chain (see top).
[[nodiscard]] ChannelResult<VerifiedServer> VerifyServerCertificate(const crypto::Certificate& leaf,
                                                                    const attestation::Policy& policy,
                                                                    const VerifyOptions& options);
// VerifyPayloadForKey checks a payload obtained out of band (the well-known
// endpoint) against the SPKI of the TLS key the client is talking to.
[[nodiscard]] ChannelResult<VerifiedServer> VerifyPayloadForKey(const AttestationPayload& payload,
                                                                ByteSpan spki_der, const attestation::Policy& policy,
                                                                const VerifyOptions& options);

// CheckServing appraises a payload's serving claims (payload.h) against the
// policy, fail closed: a chat template override must be listed in
// policy.chat_template_digests, a model mapped from an untrusted disk needs
// policy.allow_untrusted_disk_model, unlocked memory policy.allow_unlocked_memory,
// TLS record padding at least policy.min_stream_pad, a plain listener
// policy.allow_debug_listener, metrics reader keys policy.allow_metrics_keys
// or each of them in policy.metrics_readers. VerifyPayloadForKey runs it; the token
// path (trust/token_verifier.h) runs it on the certificate's payload. For a
// client (PeerRole::kClient) any serving claim is refused and the policy's
// serving keys are not applied.
[[nodiscard]] ChannelResult<Ok> CheckServing(const ServingClaims& serving, const attestation::Policy& policy,
                                             PeerRole peer = PeerRole::kServer);

// Where MakePeerVerifier leaves its result: the verified server on success,
// the typed error when the handshake was refused.
struct PeerVerdict {
  std::mutex mu;
  std::optional<VerifiedServer> server;
  std::optional<Error<ChannelErrc>> error;
};

// MakePeerVerifier returns a TLS peer verifier enforcing `policy` at the
// current time (clock injectable for tests); `peer` kClient on a server
// verifying its clients (mutual mode).
crypto::PeerVerifier MakePeerVerifier(attestation::Policy policy, std::shared_ptr<PeerVerdict> verdict,
                                      std::function<crypto::TimePoint()> clock = nullptr,
                                      PeerRole peer = PeerRole::kServer);

// Freshness of certificate payloads: issuance time, 8 bytes big-endian unix seconds.
Bytes TimestampFreshness(crypto::TimePoint t);

}  // namespace cllm::channel
