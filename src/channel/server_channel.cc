#include "channel/server_channel.h"

#include <algorithm>

#include "base/check.h"
#include "base/time.h"
#include "crypto/digest.h"

namespace cllm::channel {
namespace {

using SteadyDuration = std::chrono::steady_clock::duration;

// A certificate whose lifetime is almost over (a token about to expire) is
// still renewed no sooner than this: the schedule never spins.
constexpr std::chrono::seconds kMinRotationDelay{1};

Bytes SpkiHash(ByteSpan spki_der) {
  auto h = crypto::Sha256(spki_der);
  return Bytes(h.begin(), h.end());
}

}  // namespace

ChannelClock ChannelClock::System() {
  return ChannelClock{[] { return std::chrono::system_clock::now(); },
                      [] { return std::chrono::steady_clock::now(); }};
}

ServerChannel::ServerChannel(std::shared_ptr<RaTlsIssuer> issuer, ServerChannelOptions options, ChannelClock clock,
                             ReattestFn reattest)
    : issuer_(std::move(issuer)),
      options_(std::move(options)),
      clock_(std::move(clock)),
      reattest_(std::move(reattest)) {}

ChannelResult<std::unique_ptr<ServerChannel>> ServerChannel::Create(std::shared_ptr<RaTlsIssuer> issuer,
                                                                    ServerChannelOptions options, ChannelClock clock,
                                                                    ReattestFn reattest,
                                                                    std::optional<AttestedKey> boot_key) {
  CLLM_CHECK(issuer != nullptr);
  CLLM_CHECK(clock.wall && clock.monotonic);
  // A boot key without a way to renew it would lose its token at the first
  // rotation: the caller's mistake, not an outside failure.
  CLLM_CHECK_MSG(!boot_key || reattest, "a boot key needs a re-attestation callback");
  const size_t padding = options.record_padding;
  crypto::PeerVerifier client_verifier = options.client_verifier;
  std::unique_ptr<ServerChannel> ch(
      new ServerChannel(std::move(issuer), std::move(options), std::move(clock), std::move(reattest)));

  std::optional<AttestedKey> first = std::move(boot_key);
  if (ch->reattest_ && !first) {
    auto k = ch->reattest_();
    if (!k.ok()) return MakeError(k.code(), "token: " + k.detail());
    first = std::move(k).value();
  }
  const bool has_token = first.has_value();
  CLLM_ASSIGN_OR_RETURN(crypto::TlsIdentity id, ch->Issue(std::move(first)));

  auto tls = crypto::TlsContext::Server(id, std::move(client_verifier));
  if (!tls.ok()) return MakeError(ChannelErrc::kInternal, "TLS: " + tls.detail());
  if (auto st = (*tls)->SetRecordPadding(padding); !st.ok()) {
    return MakeError(ChannelErrc::kInternal, "TLS record padding: " + st.detail());
  }
  ch->tls_ = std::move(tls).value();
  ch->Install(id, has_token);
  return ch;
}

ChannelResult<crypto::TlsIdentity> ServerChannel::Issue(std::optional<AttestedKey> attested) {
  const crypto::TimePoint now = clock_.wall();
  if (!attested) return issuer_->Issue(now);
  // A certificate must not outlive the token it carries: a client checking
  // the token would refuse it, and the server would look alive but fail.
  if (attested->expires_at <= now) {
    return MakeError(ChannelErrc::kStale, "the cllm-trust token expired at " + FormatUtcTime(attested->expires_at) +
                                              " (now " + FormatUtcTime(now) + ")");
  }
  return issuer_->IssueWithKey(now, std::move(attested->key), std::move(attested->token), attested->expires_at);
}

void ServerChannel::Install(const crypto::TlsIdentity& id, bool has_token) {
  Bytes spki = id.key.public_key().ToSpkiDer();
  // Renew at half the lifetime left, so a failed renewal has the other half
  // to succeed in before clients see an expired certificate.
  auto half = std::chrono::duration_cast<SteadyDuration>((id.cert.NotAfter() - clock_.wall()) / 2);
  half = std::max<SteadyDuration>(half, kMinRotationDelay);
  std::lock_guard<std::mutex> lock(mu_);
  RememberLocked(spki);
  current_ = ServedIdentity{id.cert, std::move(spki), ++generation_, has_token};
  next_rotation_ = clock_.monotonic() + half;
}

void ServerChannel::RememberLocked(ByteSpan spki_der) {
  Bytes hash = SpkiHash(spki_der);
  if (std::find(served_.begin(), served_.end(), hash) != served_.end()) return;
  served_.push_back(std::move(hash));
  if (served_.size() > kRememberedKeys) served_.pop_front();
}

ServedIdentity ServerChannel::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return *current_;
}

std::chrono::steady_clock::time_point ServerChannel::NextRotation() const {
  std::lock_guard<std::mutex> lock(mu_);
  return next_rotation_;
}

ChannelResult<bool> ServerChannel::RotateIfDue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (clock_.monotonic() < next_rotation_) return false;
  }
  // Every failure below keeps the identity being served and tries again
  // after the retry interval.
  auto fail = [&](ChannelErrc code, std::string detail) -> ChannelResult<bool> {
    std::lock_guard<std::mutex> lock(mu_);
    next_rotation_ = clock_.monotonic() + options_.retry_interval;
    return MakeError(code, std::move(detail));
  };

  std::optional<AttestedKey> renewed;
  if (reattest_) {
    auto k = reattest_();
    if (!k.ok()) return fail(k.code(), "token renewal: " + k.detail());
    renewed = std::move(k).value();
  }
  if (options_.on_renewal) options_.on_renewal();
  const bool has_token = renewed.has_value();
  auto id = Issue(std::move(renewed));
  if (!id.ok()) return fail(id.code(), "certificate: " + id.detail());

  // Remember the new key before the first handshake can present it, so its
  // connection's well-known request never finds it unknown.
  {
    std::lock_guard<std::mutex> lock(mu_);
    RememberLocked(id->key.public_key().ToSpkiDer());
  }
  if (auto st = tls_->SetIdentity(*id); !st.ok()) return fail(ChannelErrc::kInternal, "TLS: " + st.detail());
  Install(*id, has_token);
  return true;
}

ChannelResult<AttestationPayload> ServerChannel::PayloadFor(ByteSpan served_spki, ByteSpan freshness) {
  const Bytes hash = SpkiHash(served_spki);
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Evidence is only ever made for keys this TEE generated and served:
    // binding any other SPKI would let a relay borrow our attestation.
    if (std::find(served_.begin(), served_.end(), hash) == served_.end()) {
      return MakeError(ChannelErrc::kCertEvidenceMismatch,
                       "not a key this server serves or served within the last " + std::to_string(kRememberedKeys) +
                           " rotations");
    }
  }
  return issuer_->PayloadFor(served_spki, freshness);
}

}  // namespace cllm::channel
