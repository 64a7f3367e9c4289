#include "channel/ratls.h"

#include "attestation/verify.h"
#include "base/encoding.h"
#include "base/utf8.h"
#include "crypto/cert_builder.h"
#include "crypto/digest.h"

namespace cllm::channel {

using attestation::AttestErrc;

const char* ChannelErrcName(ChannelErrc code) {
  switch (code) {
    case ChannelErrc::kNoEvidence: return "no_evidence";
    case ChannelErrc::kMalformed: return "malformed";
    case ChannelErrc::kCertEvidenceMismatch: return "cert_evidence_mismatch";
    case ChannelErrc::kPlatformChainInvalid: return "platform_chain_invalid";
    case ChannelErrc::kPolicyNotSatisfied: return "policy_not_satisfied";
    case ChannelErrc::kStale: return "stale";
    case ChannelErrc::kAttesterFailed: return "attester_failed";
    case ChannelErrc::kInternal: return "internal";
  }
  return "unknown";
}

Bytes TimestampFreshness(crypto::TimePoint t) {
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  Bytes out(8);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(static_cast<uint64_t>(secs) >> (56 - 8 * i));
  return out;
}

namespace {

std::optional<crypto::TimePoint> ParseTimestampFreshness(ByteSpan b) {
  if (b.size() != 8) return std::nullopt;
  uint64_t v = 0;
  for (uint8_t x : b) v = (v << 8) | x;
  // Past 2^33 s (year 2242) is no issue time, and far below where seconds
  // as nanoseconds would overflow the clock.
  if (v > (uint64_t{1} << 33)) return std::nullopt;
  return crypto::TimePoint(std::chrono::seconds(static_cast<int64_t>(v)));
}

std::string Hex(ByteSpan b) { return HexEncode(b); }

}  // namespace

// ---------------------------------------------------------------------------
// Server side
// ---------------------------------------------------------------------------

RaTlsIssuer::RaTlsIssuer(std::shared_ptr<attestation::Attester> attester, ServerClaims claims,
                         IssuerOptions options)
    : attester_(std::move(attester)), claims_(std::move(claims)), options_(std::move(options)) {}

void RaTlsIssuer::SetE2eKeyDigests(std::vector<std::array<uint8_t, kDigestSize>> digests) {
  CLLM_CHECK(digests.size() <= kMaxE2eKeys);
  std::lock_guard<std::mutex> lock(mu_);
  claims_.e2e_key_digests = std::move(digests);
}

ServerClaims RaTlsIssuer::claims() const {
  std::lock_guard<std::mutex> lock(mu_);
  return claims_;
}

ChannelResult<AttestationPayload> RaTlsIssuer::PayloadFor(ByteSpan spki_der, ByteSpan freshness,
                                                          bool with_e2e_keys) {
  if (freshness.size() > kMaxFreshnessSize) {
    return MakeError(ChannelErrc::kMalformed, "freshness longer than " + std::to_string(kMaxFreshnessSize) + " bytes");
  }
  AttestationPayload p;
  std::lock_guard<std::mutex> lock(mu_);
  p.platform = attestation::PlatformName(attester_->platform());
  p.binary_digest = claims_.binary_digest;
  p.model_digest = claims_.model_digest;
  p.model_name = claims_.model_name;
  if (with_e2e_keys) p.e2e_key_digests = claims_.e2e_key_digests;
  p.serving = claims_.serving;
  p.freshness.assign(freshness.begin(), freshness.end());
  p.endorsements = options_.endorsements;
  auto report_data = ComputeReportData(spki_der, p);
  auto evidence = attester_->GetEvidence(report_data);
  if (!evidence.ok()) {
    return MakeError(ChannelErrc::kAttesterFailed, std::string("TEE evidence (") + attester_->name() +
                                                       "): " + attestation::AttestErrcName(evidence.code()) +
                                                       ": " + evidence.detail());
  }
  p.evidence = std::move(evidence).value();
  return p;
}

ChannelResult<crypto::TlsIdentity> RaTlsIssuer::Issue(crypto::TimePoint now) {
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256);
  if (!key.ok()) return MakeError(ChannelErrc::kInternal, "key generation: " + key.detail());
  return IssueWithKey(now, std::move(key).value(), std::nullopt);
}

ChannelResult<crypto::TlsIdentity> RaTlsIssuer::IssueWithKey(crypto::TimePoint now, crypto::PrivateKey key,
                                                             std::optional<std::string> token,
                                                             std::optional<crypto::TimePoint> not_after) {
  if (token && token->size() > kMaxTokenSize) return MakeError(ChannelErrc::kMalformed, "token too large");
  Bytes spki = key.public_key().ToSpkiDer();
  CLLM_ASSIGN_OR_RETURN(AttestationPayload payload, PayloadFor(spki, TimestampFreshness(now)));
  payload.token = std::move(token);
  crypto::CertSpec spec;
  // At most 32 bytes of the name, never half a UTF-8 character.
  size_t cut = std::min<size_t>(payload.model_name.size(), 32);
  while (cut > 0 && cut < payload.model_name.size() && (payload.model_name[cut] & 0xC0) == 0x80) --cut;
  spec.common_name = "cllm RA-TLS " + payload.model_name.substr(0, cut);
  // A minute of back-dating tolerates client clocks slightly behind ours.
  spec.not_before = now - std::chrono::seconds(60);
  spec.not_after = now + options_.validity;
  if (not_after && *not_after < spec.not_after) spec.not_after = *not_after;
  spec.dns_names = {"localhost"};
  spec.extensions.push_back({kAttestationExtensionOid, false, EncodePayload(payload)});
  auto cert = crypto::IssueCertificate(spec, key.public_key(), key, nullptr);
  if (!cert.ok()) return MakeError(ChannelErrc::kInternal, "certificate: " + cert.detail());
  return crypto::TlsIdentity{std::move(key), std::move(cert).value()};
}

// ---------------------------------------------------------------------------
// Client side
// ---------------------------------------------------------------------------

ChannelResult<VerifiedServer> VerifyPayloadForKey(const AttestationPayload& payload, ByteSpan spki_der,
                                                  const attestation::Policy& policy, const VerifyOptions& options) {
  auto platform = attestation::ParsePlatformName(payload.platform);
  if (!platform) {
    return MakeError(ChannelErrc::kMalformed, "unknown platform \"" + EscapeForDisplay(payload.platform) + "\"");
  }

  // A simulated server is refused up front when the policy does not allow
  // sim at all: that is the real reason, not the missing platform key.
  if (*platform == attestation::Platform::kSim && !policy.platforms.count(attestation::Platform::kSim)) {
    return MakeError(ChannelErrc::kPolicyNotSatisfied,
                     "simulated_not_allowed: the server runs on the SIMULATED TEE (no hardware protection) and the "
                     "policy does not list \"sim\" in \"platforms\"");
  }

  // A client's certificate makes no serving claims. Checked before the
  // evidence: a peer replaying a server's public certificate as its own
  // (no key needed: the check runs on the Certificate message) costs the
  // server no vendor-chain and signature verification (found by review).
  if (options.peer == PeerRole::kClient) CLLM_RETURN_IF_ERROR(CheckServing(payload.serving, policy, options.peer));

  // The binding, read before anything is verified: evidence whose
  // report_data is not this key's and these claims' (another machine's
  // genuine evidence, replayed) is refused without the vendor-chain and
  // signature checks it would cost — in mutual mode, on the server's I/O
  // thread. Only a refusal is taken from the unverified bytes: a match is
  // checked again on the verified evidence (2. below), and evidence that does
  // not parse goes on to VerifyEvidence, which says why.
  auto want = ComputeReportData(spki_der, payload);
  auto mismatch = [&](ByteSpan found) {
    return MakeError(ChannelErrc::kCertEvidenceMismatch,
                     "the evidence's report_data does not bind this TLS key and these claims (expected " +
                         Hex(want).substr(0, 32) + "…, found " + Hex(found).substr(0, 32) +
                         "…): relayed or replayed evidence");
  };
  if (auto peeked = attestation::PeekReportData(*platform, payload.evidence);
      peeked.ok() && !ConstantTimeEqual(want, *peeked)) {
    return mismatch(*peeked);
  }

  // 1. The evidence itself: vendor chain, signatures, collateral.
  attestation::EvidenceInput in;
  in.evidence = payload.evidence;
  if (payload.endorsements) in.cert_files.push_back(*payload.endorsements);
  in.at = options.at;
  in.sim_platform_keys = policy.sim_platform_keys;
  auto verified = attestation::VerifyEvidence(*platform, in);
  if (!verified.ok()) {
    return MakeError(ChannelErrc::kPlatformChainInvalid, std::string(payload.platform) + " evidence: " +
                                                             attestation::AttestErrcName(verified.code()) + ": " +
                                                             verified.detail());
  }

  // 2. The binding: this key, these digests, this name, this freshness.
  if (!ConstantTimeEqual(want, verified->data().report_data)) return mismatch(verified->data().report_data);

  // 3. Freshness.
  if (options.expected_freshness) {
    if (!ConstantTimeEqual(*options.expected_freshness, payload.freshness)) {
      return MakeError(ChannelErrc::kStale, "freshness is not our nonce (expected " +
                                                Hex(*options.expected_freshness) + ", found " +
                                                Hex(payload.freshness) + ")");
    }
  } else {
    auto issued = ParseTimestampFreshness(payload.freshness);
    if (!issued) return MakeError(ChannelErrc::kStale, "freshness is not an 8-byte timestamp");
    if (*issued > options.at + options.clock_skew || *issued + options.max_cert_age < options.at) {
      return MakeError(ChannelErrc::kStale, "evidence issued at " + std::to_string(
                                                std::chrono::duration_cast<std::chrono::seconds>(
                                                    issued->time_since_epoch()).count()) +
                                                " (unix) is outside the accepted age");
    }
  }

  // 4. Appraisal: platform, measurements, TCB, debug — then the digests.
  auto claims = attestation::Appraise(*verified, policy);
  if (!claims.ok()) {
    return MakeError(ChannelErrc::kPolicyNotSatisfied,
                     std::string(attestation::AttestErrcName(claims.code())) + ": " + claims.detail());
  }
  auto allowed = [](const std::vector<Bytes>& list, ByteSpan d) {
    if (list.empty()) return true;  // not pinned
    for (const auto& b : list) {
      if (ConstantTimeEqual(b, d)) return true;
    }
    return false;
  };
  auto join = [](const std::vector<Bytes>& list) {
    std::string s;
    for (const auto& b : list) s += (s.empty() ? "" : " | ") + Hex(b);
    return s;
  };
  if (!allowed(policy.binary_digests, payload.binary_digest)) {
    return MakeError(ChannelErrc::kPolicyNotSatisfied, "field binary_digest: expected one of [" +
                                                           join(policy.binary_digests) + "], found " +
                                                           Hex(payload.binary_digest));
  }
  if (!allowed(policy.model_digests, payload.model_digest)) {
    return MakeError(ChannelErrc::kPolicyNotSatisfied, "field model_digest: expected one of [" +
                                                           join(policy.model_digests) + "], found " +
                                                           Hex(payload.model_digest));
  }
  CLLM_RETURN_IF_ERROR(CheckServing(payload.serving, policy, options.peer));
  auto spki_hash = crypto::Sha256(spki_der);
  return VerifiedServer{std::move(claims).value(), payload, Bytes(spki_hash.begin(), spki_hash.end())};
}

ChannelResult<Ok> CheckServing(const ServingClaims& serving, const attestation::Policy& policy, PeerRole peer) {
  if (peer == PeerRole::kClient) {
    if (serving.is_default()) return OkStatus();
    return MakeError(ChannelErrc::kPolicyNotSatisfied,
                     "field serving: a client's evidence makes serving claims (a template, model loading, memory, "
                     "padding or listeners are a server's)");
  }
  if (policy.explain_serving) return OkStatus();  // appraised by the caller afterwards
  if (serving.chat_template_digest) {
    const ByteSpan seen(*serving.chat_template_digest);
    bool listed = false;
    for (const Bytes& d : policy.chat_template_digests) listed = listed || ConstantTimeEqual(d, seen);
    if (!listed) {
      return MakeError(ChannelErrc::kPolicyNotSatisfied,
                       "field chat_template_digest: the server renders prompts with a chat template the host "
                       "supplied (--chat-template), not its model's own; SHA-256 " + Hex(seen) +
                           " is not in the policy's \"chat_template_digests\" (pin a template you have read with "
                           "`cllm policy pin --chat-template FILE`)");
    }
  }
  if (serving.model_from_untrusted_disk && !policy.allow_untrusted_disk_model) {
    return MakeError(ChannelErrc::kPolicyNotSatisfied,
                     "field model_loading: the server maps its model from a disk the host controls "
                     "(--mmap-untrusted-disk), so the model digest does not prove the bytes it computes with; "
                     "the policy does not set \"allow_untrusted_disk_model\"");
  }
  if (serving.memory_unlocked && !policy.allow_unlocked_memory) {
    return MakeError(ChannelErrc::kPolicyNotSatisfied,
                     "field memory_locked: the server runs with its memory unlocked (--allow-unlocked-memory), so "
                     "prompts, answers and the KV cache may be swapped to a disk the host reads; the policy does "
                     "not set \"allow_unlocked_memory\"");
  }
  if (serving.stream_pad < policy.min_stream_pad) {
    return MakeError(ChannelErrc::kPolicyNotSatisfied,
                     "field stream_pad: the attested peer pads its TLS records " +
                         (serving.stream_pad == 0 ? std::string("not at all (--stream-pad 0)")
                                                  : "to " + std::to_string(serving.stream_pad) + "-byte blocks") +
                         ", so a network observer reads the lengths of streamed tokens more finely than the policy's "
                         "\"min_stream_pad\" of " + std::to_string(policy.min_stream_pad) + " bytes allows");
  }
  if (serving.stream_coalesce_ms < policy.min_stream_coalesce_ms) {
    return MakeError(ChannelErrc::kPolicyNotSatisfied,
                     "field stream_coalesce_ms: the attested peer sends streamed text " +
                         (serving.stream_coalesce_ms == 0
                              ? std::string("token by token (no --stream-coalesce-ms)")
                              : "in events " + std::to_string(serving.stream_coalesce_ms) + " ms apart") +
                         ", so a network observer reads the timing of tokens more finely than the policy's "
                         "\"min_stream_coalesce_ms\" of " + std::to_string(policy.min_stream_coalesce_ms) +
                         " ms allows");
  }
  if (serving.debug_listener && !policy.allow_debug_listener) {
    return MakeError(ChannelErrc::kPolicyNotSatisfied,
                     "field debug_listener: the server also serves plain HTTP (--debug-listen): unattested, "
                     "unencrypted, and with /metrics (every user's token counts) open there unless metrics keys are "
                     "set; the policy does not set \"allow_debug_listener\"");
  }
  if (!serving.metrics_readers.empty() && !policy.allow_metrics_keys) {
    const char* what =
        "field metrics_readers: the server gives /metrics (every user's token counts) to the holders of keys in a file "
        "it was started with (--metrics-keys)";
    if (policy.metrics_readers.empty()) {
      return MakeError(ChannelErrc::kPolicyNotSatisfied,
                       std::string(what) + "; the policy sets neither \"metrics_readers\" nor \"allow_metrics_keys\"");
    }
    for (const auto& reader : serving.metrics_readers) {
      bool listed = false;
      for (const Bytes& d : policy.metrics_readers) listed = listed || ConstantTimeEqual(d, ByteSpan(reader));
      if (!listed) {
        return MakeError(ChannelErrc::kPolicyNotSatisfied,
                         std::string(what) + ", among them the key with SHA-256 " + Hex(ByteSpan(reader)) +
                             ", which is not in the policy's \"metrics_readers\"");
      }
    }
  }
  return OkStatus();
}

ChannelResult<VerifiedServer> VerifyServerCertificate(const crypto::Certificate& leaf,
                                                      const attestation::Policy& policy,
                                                      const VerifyOptions& options) {
  if (options.at < leaf.NotBefore() - options.clock_skew || options.at > leaf.NotAfter()) {
    return MakeError(ChannelErrc::kStale, "the server certificate is not valid at the verification time");
  }
  auto ext = leaf.Extension(kAttestationExtensionOid);
  if (!ext) {
    return MakeError(ChannelErrc::kNoEvidence, std::string("the server certificate has no attestation extension (") +
                                                   kAttestationExtensionOid + "): not an attested cllm server");
  }
  auto payload = DecodePayload(*ext);
  if (!payload.ok()) {
    return MakeError(ChannelErrc::kMalformed, std::string("attestation payload: ") + PayloadErrcName(payload.code()) +
                                                  ": " + payload.detail());
  }
  auto key = leaf.GetPublicKey();
  if (!key.ok()) return MakeError(ChannelErrc::kMalformed, "server public key: " + key.detail());
  return VerifyPayloadForKey(*payload, key->ToSpkiDer(), policy, options);
}

crypto::PeerVerifier MakePeerVerifier(attestation::Policy policy, std::shared_ptr<PeerVerdict> verdict,
                                      std::function<crypto::TimePoint()> clock, PeerRole peer) {
  if (!clock) clock = [] { return std::chrono::system_clock::now(); };
  return [policy = std::move(policy), verdict = std::move(verdict), clock = std::move(clock),
          peer](const std::vector<crypto::Certificate>& chain) -> crypto::CryptoStatus {
    ChannelResult<VerifiedServer> r = MakeError(ChannelErrc::kNoEvidence, "the server sent no certificate");
    if (!chain.empty()) {
      VerifyOptions o;
      o.at = clock();
      o.peer = peer;
      r = VerifyServerCertificate(chain.front(), policy, o);
    }
    std::lock_guard<std::mutex> lock(verdict->mu);
    if (!r.ok()) {
      verdict->error = r.error();
      verdict->server.reset();
      return MakeError(crypto::CryptoErrc::kChainInvalid,
                       std::string(ChannelErrcName(r.code())) + ": " + r.detail());
    }
    verdict->error.reset();
    verdict->server = std::move(r).value();
    return OkStatus();
  };
}

}  // namespace cllm::channel
