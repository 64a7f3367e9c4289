// server_channel.h — the attested identity a server presents, and its life.
//
// A ServerChannel owns everything that makes a listener "this attested
// server": the TLS context the listener serves from, the current key and
// certificate (evidence inside, made by the RaTlsIssuer), the cllm-trust
// token bound to that key when the server runs with cllm-trust, and the
// schedule on which all of it is renewed:
//
//   renewal at half the certificate's remaining lifetime (measured at issue);
//   with cllm-trust: re-attest for a fresh token first (the app's callback —
//     this library does not depend on src/trust), and the certificate ends
//     when that token does;
//   then the renewal hook (e.g. refresh the mutual-mode client verifier's
//     JWKS), a new key and certificate, and TlsContext::SetIdentity: new
//     handshakes get the new identity, established connections keep theirs;
//   a failed renewal keeps the current identity and retries after
//   `retry_interval`.
//
// Both clocks are injected (ChannelClock): wall time for certificate
// validity and evidence freshness, a monotonic "now" for the schedule. Tests
// drive rotation with a fake clock; the server calls RotateIfDue from its
// main loop.
//
// Each connection keeps the identity its handshake presented
// (net::ConnectionInfo::served_spki). PayloadFor makes well-known endpoint
// evidence for that SPKI — the key of the connection asked on, not the
// newest — and only for keys this channel has served.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "channel/ratls.h"
#include "crypto/tls.h"

namespace cllm::channel {

// ChannelClock: `wall` dates certificates and evidence; `monotonic` decides
// when to rotate (immune to wall-clock steps).
struct ChannelClock {
  std::function<crypto::TimePoint()> wall;
  std::function<std::chrono::steady_clock::time_point()> monotonic;
  static ChannelClock System();
};

// AttestedKey is what a re-attestation to cllm-trust yields: a fresh P-256
// node key and the token whose cnf binds it.
struct AttestedKey {
  crypto::PrivateKey key;
  std::string token;             // compact JWS
  crypto::TimePoint expires_at;  // the token's exp: the certificate ends no later
};

// ReattestFn obtains a fresh AttestedKey (cllm-trust: challenge → evidence →
// token). kAttesterFailed (or any code) with a detail on failure.
using ReattestFn = std::function<ChannelResult<AttestedKey>()>;

struct ServerChannelOptions {
  crypto::PeerVerifier client_verifier;     // mutual mode: every client's certificate must pass it
  size_t record_padding = 0;                // crypto::TlsContext::SetRecordPadding; 0: off
  std::chrono::seconds retry_interval{10};  // after a failed renewal
  // OnRenewal runs at each due renewal, after re-attestation succeeded
  // (without cllm-trust: before the new certificate is made). The server
  // refreshes its client verifier's JWKS here; failures are the hook's to
  // report and do not stop the rotation.
  std::function<void()> on_renewal;
};

// ServedIdentity describes one identity the channel has presented.
struct ServedIdentity {
  crypto::Certificate cert;
  Bytes spki_der;             // the certificate's SubjectPublicKeyInfo
  uint64_t generation = 0;    // 1 for the first identity, +1 per rotation
  bool has_token = false;     // carries a cllm-trust token
};

class ServerChannel {
 public:
  // Create issues the first identity and the server TLS context. With
  // `reattest`, the first key and token are `boot_key` when given (the app
  // attested already, e.g. to fetch a sealed model's key), else one call to
  // `reattest`. Errors: the issuer's (kAttesterFailed, kInternal), the
  // callback's, kStale when the token has already expired, kInternal for TLS.
  [[nodiscard]] static ChannelResult<std::unique_ptr<ServerChannel>> Create(
      std::shared_ptr<RaTlsIssuer> issuer, ServerChannelOptions options, ChannelClock clock = ChannelClock::System(),
      ReattestFn reattest = nullptr, std::optional<AttestedKey> boot_key = std::nullopt);
  ServerChannel(const ServerChannel&) = delete;
  ServerChannel& operator=(const ServerChannel&) = delete;

  // tls is the context the RA-TLS listener serves from (it follows rotation).
  std::shared_ptr<crypto::TlsContext> tls() const { return tls_; }
  // Current is the identity new handshakes get.
  ServedIdentity Current() const;
  // NextRotation is when RotateIfDue will next act (monotonic clock).
  std::chrono::steady_clock::time_point NextRotation() const;

  // RotateIfDue renews the identity when NextRotation has come: true when it
  // rotated, false when not due. On failure the current identity stays,
  // the next attempt is `retry_interval` away, and the error says which step
  // failed ("token renewal: …", "certificate: …"). Call it from one thread.
  [[nodiscard]] ChannelResult<bool> RotateIfDue();

  // PayloadFor makes well-known endpoint evidence binding `served_spki` (the
  // SPKI a connection's own handshake presented) and `freshness` (the
  // caller's nonce). kCertEvidenceMismatch for an SPKI this channel never
  // served (or served more than kRememberedKeys rotations ago); the issuer's
  // errors otherwise.
  [[nodiscard]] ChannelResult<AttestationPayload> PayloadFor(ByteSpan served_spki, ByteSpan freshness);
  // How many past keys PayloadFor still answers for (a connection older than
  // this many rotations should reconnect).
  static constexpr size_t kRememberedKeys = 1024;

 private:
  ServerChannel(std::shared_ptr<RaTlsIssuer> issuer, ServerChannelOptions options, ChannelClock clock,
                ReattestFn reattest);
  // Issue makes an identity from a fresh key, or from `attested` (the token
  // inside, the certificate ending when the token does).
  ChannelResult<crypto::TlsIdentity> Issue(std::optional<AttestedKey> attested);
  // Install records `id` as current and schedules the next rotation.
  void Install(const crypto::TlsIdentity& id, bool has_token);
  // RememberLocked adds an SPKI to those PayloadFor answers for (mu_ held).
  void RememberLocked(ByteSpan spki_der);

  std::shared_ptr<RaTlsIssuer> issuer_;
  const ServerChannelOptions options_;
  const ChannelClock clock_;
  const ReattestFn reattest_;
  std::shared_ptr<crypto::TlsContext> tls_;

  mutable std::mutex mu_;  // guards the fields below; never held while the TEE or the network works
  std::optional<ServedIdentity> current_;  // set by Create
  uint64_t generation_ = 0;
  std::chrono::steady_clock::time_point next_rotation_;
  std::deque<Bytes> served_;  // SHA-256 of every served SPKI, oldest first, at most kRememberedKeys
};

}  // namespace cllm::channel
