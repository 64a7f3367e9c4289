#include "channel/payload.h"

#include <cstring>

#include "base/byte_reader.h"
#include "base/encoding.h"
#include "crypto/digest.h"

namespace cllm::channel {
namespace {

// Wire format (all integers big-endian):
//   magic "CLLMRATLS" (9) | version u8 = 1 | count u8 | field*
//   field = tag u8 | length u32 | value
// Tags appear at most once, in any order; unknown tags are rejected so that a
// field a verifier does not understand can never be silently ignored.
constexpr char kMagic[] = "CLLMRATLS";
constexpr size_t kMagicLen = sizeof(kMagic) - 1;
constexpr uint8_t kVersion = 1;

enum Tag : uint8_t {
  kPlatform = 1,
  kEvidence = 2,
  kBinaryDigest = 3,
  kModelDigest = 4,
  kModelName = 5,
  kFreshness = 6,
  kToken = 7,
  kEndorsements = 8,
  kE2eKeys = 9,  // n × 32-byte key config digests
  // u8 flags [‖ 32-byte chat template digest if flags & 1] [‖ u16be stream pad if flags & 8]
  // [‖ u8 n ‖ n × 32-byte metrics reader digests if flags & 32] [‖ u16be coalesce ms if flags & 64];
  // flags 2, 4, 16 bare
  kServing = 10,
  kMaxTag = 10,
};

// ServingClaims flags; any other bit is refused (a claim this code does not
// understand must not be dropped).
constexpr uint8_t kServingTemplate = 1;
constexpr uint8_t kServingUntrustedDisk = 2;
constexpr uint8_t kServingUnlockedMemory = 4;
constexpr uint8_t kServingStreamPad = 8;  // not the default block
constexpr uint8_t kServingDebugListener = 16;
constexpr uint8_t kServingMetricsKeys = 32;
constexpr uint8_t kServingCoalesce = 64;  // streamed text held and sent in timed events
constexpr uint8_t kServingKnownFlags = kServingTemplate | kServingUntrustedDisk | kServingUnlockedMemory |
                                       kServingStreamPad | kServingDebugListener | kServingMetricsKeys |
                                       kServingCoalesce;

// ServingBytes is the kServing value, also what report_data binds after
// "serving".
Bytes ServingBytes(const ServingClaims& s) {
  Bytes out;
  out.push_back(static_cast<uint8_t>((s.chat_template_digest ? kServingTemplate : 0) |
                                     (s.model_from_untrusted_disk ? kServingUntrustedDisk : 0) |
                                     (s.memory_unlocked ? kServingUnlockedMemory : 0) |
                                     (s.stream_pad != kDefaultStreamPad ? kServingStreamPad : 0) |
                                     (s.debug_listener ? kServingDebugListener : 0) |
                                     (!s.metrics_readers.empty() ? kServingMetricsKeys : 0) |
                                     (s.stream_coalesce_ms != 0 ? kServingCoalesce : 0)));
  if (s.chat_template_digest) out.insert(out.end(), s.chat_template_digest->begin(), s.chat_template_digest->end());
  if (s.stream_pad != kDefaultStreamPad) {
    CLLM_CHECK(s.stream_pad <= kMaxStreamPad);
    out.push_back(static_cast<uint8_t>(s.stream_pad >> 8));
    out.push_back(static_cast<uint8_t>(s.stream_pad));
  }
  if (!s.metrics_readers.empty()) {
    CLLM_CHECK(s.metrics_readers.size() <= kMaxMetricsReaders);
    out.push_back(static_cast<uint8_t>(s.metrics_readers.size()));
    for (size_t i = 0; i < s.metrics_readers.size(); ++i) {
      CLLM_CHECK(i == 0 || s.metrics_readers[i - 1] < s.metrics_readers[i]);  // canonical: one encoding per set
      out.insert(out.end(), s.metrics_readers[i].begin(), s.metrics_readers[i].end());
    }
  }
  if (s.stream_coalesce_ms != 0) {
    CLLM_CHECK(s.stream_coalesce_ms <= kMaxStreamCoalesceMs);
    out.push_back(static_cast<uint8_t>(s.stream_coalesce_ms >> 8));
    out.push_back(static_cast<uint8_t>(s.stream_coalesce_ms));
  }
  return out;
}

void PutField(Bytes& out, uint8_t tag, ByteSpan value) {
  out.push_back(tag);
  PutU32Be(out, static_cast<uint32_t>(value.size()));
  out.insert(out.end(), value.begin(), value.end());
}

Error<PayloadErrc> Malformed(const std::string& what) {
  return MakeError(PayloadErrc::kMalformed, "attestation payload: " + what);
}

size_t Limit(uint8_t tag) {
  switch (tag) {
    case kPlatform: return 16;
    case kEvidence: return kMaxEvidenceSize;
    case kBinaryDigest:
    case kModelDigest: return kDigestSize;
    case kModelName: return kMaxModelNameSize;
    case kFreshness: return kMaxFreshnessSize;
    case kToken: return kMaxTokenSize;
    case kEndorsements: return kMaxEvidenceSize;
    case kE2eKeys: return kMaxE2eKeys * kDigestSize;
    case kServing: return 1 + kDigestSize + 2 + 1 + kMaxMetricsReaders * kDigestSize + 2;
  }
  return 0;
}

}  // namespace

const char* PayloadErrcName(PayloadErrc code) {
  switch (code) {
    case PayloadErrc::kMalformed: return "malformed";
    case PayloadErrc::kUnsupportedVersion: return "unsupported_version";
    case PayloadErrc::kTooLarge: return "too_large";
  }
  return "unknown";
}

Bytes EncodePayload(const AttestationPayload& p) {
  CLLM_CHECK(p.platform.size() <= Limit(kPlatform) && p.evidence.size() <= kMaxEvidenceSize);
  CLLM_CHECK(p.model_name.size() <= kMaxModelNameSize && p.freshness.size() <= kMaxFreshnessSize);
  CLLM_CHECK(!p.token || p.token->size() <= kMaxTokenSize);
  CLLM_CHECK(!p.endorsements || p.endorsements->size() <= kMaxEvidenceSize);
  CLLM_CHECK(p.e2e_key_digests.size() <= kMaxE2eKeys);
  Bytes out(kMagic, kMagic + kMagicLen);
  out.push_back(kVersion);
  out.push_back(static_cast<uint8_t>(6 + (p.token ? 1 : 0) + (p.endorsements ? 1 : 0) +
                                     (p.e2e_key_digests.empty() ? 0 : 1) + (p.serving.is_default() ? 0 : 1)));
  PutField(out, kPlatform, AsBytes(p.platform));
  PutField(out, kEvidence, p.evidence);
  PutField(out, kBinaryDigest, p.binary_digest);
  PutField(out, kModelDigest, p.model_digest);
  PutField(out, kModelName, AsBytes(p.model_name));
  PutField(out, kFreshness, p.freshness);
  if (p.token) PutField(out, kToken, AsBytes(*p.token));
  if (p.endorsements) PutField(out, kEndorsements, *p.endorsements);
  if (!p.e2e_key_digests.empty()) {
    Bytes digests;
    for (const auto& d : p.e2e_key_digests) digests.insert(digests.end(), d.begin(), d.end());
    PutField(out, kE2eKeys, digests);
  }
  if (!p.serving.is_default()) PutField(out, kServing, ServingBytes(p.serving));
  return out;
}

namespace {

// DecodeServing parses the kServing value (ServingBytes' format): every
// length checked before it is read, a value that is not the one encoding of
// its claims refused.
PayloadResult<ServingClaims> DecodeServing(ByteSpan value) {
  if (value.empty()) return Malformed("serving claims: empty");
  const uint8_t flags = value[0];
  if ((flags & ~kServingKnownFlags) != 0) {
    return Malformed("serving claims: unknown flags 0x" + HexEncode(ByteSpan(&flags, 1)));
  }
  if (flags == 0) return Malformed("serving claims: present but empty (the default is encoded as no field)");
  size_t at = 1;
  auto take = [&](size_t n, const char* what) -> PayloadResult<ByteSpan> {
    if (value.size() - at < n) {
      return Malformed(std::string("serving claims: truncated ") + what + " (flags 0x" +
                       HexEncode(ByteSpan(&flags, 1)) + ")");
    }
    ByteSpan out = value.subspan(at, n);
    at += n;
    return out;
  };
  ServingClaims s;
  if ((flags & kServingTemplate) != 0) {
    CLLM_ASSIGN_OR_RETURN(ByteSpan d, take(kDigestSize, "chat template digest"));
    s.chat_template_digest.emplace();
    std::memcpy(s.chat_template_digest->data(), d.data(), kDigestSize);
  }
  s.model_from_untrusted_disk = (flags & kServingUntrustedDisk) != 0;
  s.memory_unlocked = (flags & kServingUnlockedMemory) != 0;
  s.debug_listener = (flags & kServingDebugListener) != 0;
  if ((flags & kServingStreamPad) != 0) {
    CLLM_ASSIGN_OR_RETURN(ByteSpan b, take(2, "stream pad"));
    const uint32_t pad = (uint32_t{b[0]} << 8) | b[1];
    if (pad == kDefaultStreamPad || pad > kMaxStreamPad || (pad > 0 && pad < kMinStreamPad)) {
      return Malformed("serving claims: stream pad " + std::to_string(pad) +
                       (pad == kDefaultStreamPad ? " is the default (encoded as no flag)"
                                                 : " is not 0 or 32 to 16384"));
    }
    s.stream_pad = pad;
  }
  if ((flags & kServingMetricsKeys) != 0) {
    CLLM_ASSIGN_OR_RETURN(ByteSpan n, take(1, "metrics reader count"));
    if (n[0] == 0 || n[0] > kMaxMetricsReaders) {
      return Malformed("serving claims: " + std::to_string(n[0]) + " metrics readers (1 to " +
                       std::to_string(kMaxMetricsReaders) + ")");
    }
    for (int i = 0; i < n[0]; ++i) {
      CLLM_ASSIGN_OR_RETURN(ByteSpan d, take(kDigestSize, "metrics reader digest"));
      std::array<uint8_t, kDigestSize> reader;
      std::memcpy(reader.data(), d.data(), kDigestSize);
      if (!s.metrics_readers.empty() && !(s.metrics_readers.back() < reader)) {
        return Malformed("serving claims: metrics readers not in ascending order without repeats");
      }
      s.metrics_readers.push_back(reader);
    }
  }
  if ((flags & kServingCoalesce) != 0) {
    CLLM_ASSIGN_OR_RETURN(ByteSpan b, take(2, "stream coalesce"));
    const uint32_t ms = (uint32_t{b[0]} << 8) | b[1];
    if (ms == 0 || ms > kMaxStreamCoalesceMs) {
      return Malformed("serving claims: stream coalescing of " + std::to_string(ms) + " ms is not 1 to " +
                       std::to_string(kMaxStreamCoalesceMs) + " (0 is encoded as no flag)");
    }
    s.stream_coalesce_ms = ms;
  }
  if (at != value.size()) {
    return Malformed("serving claims: " + std::to_string(value.size() - at) + " bytes past the claims of flags 0x" +
                     HexEncode(ByteSpan(&flags, 1)));
  }
  return s;
}

}  // namespace

PayloadResult<AttestationPayload> DecodePayload(ByteSpan data) {
  ByteReader r(data);
  auto magic = r.Bytes(kMagicLen);
  if (!magic.ok() || std::memcmp(magic->data(), kMagic, kMagicLen) != 0) return Malformed("bad magic");
  auto version = r.U8();
  if (!version.ok()) return Malformed("truncated header");
  if (*version != kVersion) {
    return MakeError(PayloadErrc::kUnsupportedVersion,
                     "attestation payload version " + std::to_string(*version) + " (expected 1)");
  }
  auto count = r.U8();
  if (!count.ok()) return Malformed("truncated header");

  AttestationPayload p;
  bool seen[kMaxTag + 1] = {};
  for (unsigned i = 0; i < *count; ++i) {
    auto tag = r.U8();
    auto len = r.U32Be();
    if (!tag.ok() || !len.ok()) return Malformed("truncated field header");
    if (*tag == 0 || *tag > kMaxTag) return Malformed("unknown field tag " + std::to_string(*tag));
    if (seen[*tag]) return Malformed("duplicate field tag " + std::to_string(*tag));
    seen[*tag] = true;
    if (*len > Limit(*tag)) {
      return MakeError(PayloadErrc::kTooLarge, "attestation payload: field " + std::to_string(*tag) +
                                                   " is " + std::to_string(*len) + " bytes, limit " +
                                                   std::to_string(Limit(*tag)));
    }
    auto value = r.Bytes(*len);
    if (!value.ok()) return Malformed("field " + std::to_string(*tag) + ": " + value.detail());
    switch (*tag) {
      case kPlatform: p.platform.assign(AsChars(*value)); break;
      case kEvidence: p.evidence.assign(value->begin(), value->end()); break;
      case kBinaryDigest:
      case kModelDigest:
        if (value->size() != kDigestSize) return Malformed("digest field must be 32 bytes");
        std::memcpy(*tag == kBinaryDigest ? p.binary_digest.data() : p.model_digest.data(),
                    value->data(), kDigestSize);
        break;
      case kModelName: p.model_name.assign(AsChars(*value)); break;
      case kFreshness: p.freshness.assign(value->begin(), value->end()); break;
      case kToken: p.token = std::string(AsChars(*value)); break;
      case kEndorsements: p.endorsements = Bytes(value->begin(), value->end()); break;
      case kE2eKeys:
        if (value->empty() || value->size() % kDigestSize != 0) {
          return Malformed("e2e key digests must be a non-empty multiple of 32 bytes");
        }
        for (size_t off = 0; off < value->size(); off += kDigestSize) {
          std::array<uint8_t, kDigestSize> d;
          std::memcpy(d.data(), value->data() + off, kDigestSize);
          p.e2e_key_digests.push_back(d);
        }
        break;
      case kServing: {
        auto serving = DecodeServing(*value);
        if (!serving.ok()) return std::move(serving).error();
        p.serving = std::move(serving).value();
        break;
      }
    }
  }
  if (!r.empty()) return Malformed(std::to_string(r.remaining()) + " trailing bytes");
  for (uint8_t required : {kPlatform, kEvidence, kBinaryDigest, kModelDigest, kModelName, kFreshness}) {
    if (!seen[required]) return Malformed("missing field " + std::to_string(required));
  }
  return p;
}

std::array<uint8_t, 64> ComputeReportData(ByteSpan spki_der, const AttestationPayload& p) {
  CLLM_CHECK(p.model_name.size() <= 0xffff && p.freshness.size() <= 0xffff);
  crypto::Hasher h(crypto::HashAlg::kSha512);
  h.Update(AsBytes(kBindingDomain));
  h.Update(crypto::Sha256(spki_der));
  h.Update(p.binary_digest);
  h.Update(p.model_digest);
  // Length prefixes keep the variable-length fields unambiguous.
  const uint8_t name_len[2] = {static_cast<uint8_t>(p.model_name.size() >> 8),
                               static_cast<uint8_t>(p.model_name.size())};
  h.Update(name_len);
  h.Update(AsBytes(p.model_name));
  const uint8_t fresh_len[2] = {static_cast<uint8_t>(p.freshness.size() >> 8),
                                static_cast<uint8_t>(p.freshness.size())};
  h.Update(fresh_len);
  h.Update(p.freshness);
  if (!p.serving.is_default()) {
    h.Update(AsBytes("serving"));
    h.Update(ServingBytes(p.serving));
  }
  if (!p.e2e_key_digests.empty()) {
    CLLM_CHECK(p.e2e_key_digests.size() <= kMaxE2eKeys);
    h.Update(AsBytes("e2e"));
    const uint8_t n = static_cast<uint8_t>(p.e2e_key_digests.size());
    h.Update(ByteSpan(&n, 1));
    for (const auto& d : p.e2e_key_digests) h.Update(d);
  }
  Bytes digest = h.Finish();
  std::array<uint8_t, 64> out;
  std::memcpy(out.data(), digest.data(), out.size());
  return out;
}

}  // namespace cllm::channel
