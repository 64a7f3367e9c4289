// csv_cert.cc — parsing Hygon CA / CSV certificates and checking their SM2
// signatures. Layouts are in csv_cert.h.
#include "attestation/csv/csv_cert.h"

#include <algorithm>

#include "base/byte_reader.h"
#include "base/encoding.h"

namespace cllm::attestation::csv {
namespace {

template <typename T>
AttestResult<T> Read(Result<T> r, const char* what) {
  if (!r.ok()) return MakeError(AttestErrc::kMalformed, std::string(what) + ": " + r.detail());
  return std::move(r).value();
}

bool AllZero(ByteSpan b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; });
}

// A 72-byte little-endian field whose low 32 bytes hold a 256-bit value; the
// rest must be zero for SM2-256 (anything else is not a value we can use).
AttestResult<std::array<uint8_t, 32>> ReadLe256(ByteSpan field, const char* what) {
  if (field.size() != kEccFieldSize) return MakeError(AttestErrc::kMalformed, std::string(what) + " field size");
  if (!AllZero(field.subspan(32))) {
    return MakeError(AttestErrc::kMalformed, std::string(what) + " uses more than 32 bytes (not SM2-256)");
  }
  std::array<uint8_t, 32> be{};
  std::reverse_copy(field.begin(), field.begin() + 32, be.begin());
  return be;
}

void PutLe256(Bytes& out, const std::array<uint8_t, 32>& be) {
  out.insert(out.end(), be.rbegin(), be.rend());
  out.insert(out.end(), kEccFieldSize - 32, 0);
}

std::string UsageName(uint32_t usage) {
  switch (usage) {
    case kUsageHrk: return "HRK";
    case kUsageHsk: return "HSK";
    case kUsageOca: return "OCA";
    case kUsagePek: return "PEK";
    case kUsageCek: return "CEK";
    case kUsageInvalid: return "unused";
    default: return "0x" + HexEncode(Bytes{static_cast<uint8_t>(usage >> 8), static_cast<uint8_t>(usage)});
  }
}

}  // namespace

AttestResult<Sm2PubKey> ReadSm2PubKey(ByteSpan field) {
  ByteReader r(field);
  Sm2PubKey key;
  CLLM_ASSIGN_OR_RETURN(key.curve_id, Read(r.U32Le(), "pubkey.curve_id"));
  if (key.curve_id != kCurveSm2) {
    return MakeError(AttestErrc::kUnsupportedVersion,
                     "pubkey curve_id " + std::to_string(key.curve_id) + ", only 3 (SM2-256) is supported");
  }
  CLLM_ASSIGN_OR_RETURN(ByteSpan qx, Read(r.Bytes(kEccFieldSize), "pubkey.qx"));
  CLLM_ASSIGN_OR_RETURN(ByteSpan qy, Read(r.Bytes(kEccFieldSize), "pubkey.qy"));
  CLLM_ASSIGN_OR_RETURN(key.x, ReadLe256(qx, "pubkey.qx"));
  CLLM_ASSIGN_OR_RETURN(key.y, ReadLe256(qy, "pubkey.qy"));
  CLLM_ASSIGN_OR_RETURN(uint16_t uid_len, Read(r.U16Le(), "pubkey.user_id length"));
  if (uid_len == 0 || uid_len > kUserIdFieldSize - 2) {
    return MakeError(AttestErrc::kMalformed, "pubkey.user_id length " + std::to_string(uid_len) +
                                                 " is outside 1..254");
  }
  CLLM_ASSIGN_OR_RETURN(std::string_view uid, Read(r.String(uid_len), "pubkey.user_id"));
  key.user_id.assign(uid);
  return key;
}

AttestResult<Sm2Sig> ReadSm2Sig(ByteSpan field) {
  if (field.size() != 2 * kEccFieldSize) return MakeError(AttestErrc::kMalformed, "signature field size");
  Sm2Sig sig;
  CLLM_ASSIGN_OR_RETURN(sig.r, ReadLe256(field.first(kEccFieldSize), "signature.r"));
  CLLM_ASSIGN_OR_RETURN(sig.s, ReadLe256(field.subspan(kEccFieldSize), "signature.s"));
  return sig;
}

Bytes SerializeSm2PubKey(const Sm2PubKey& key) {
  Bytes out;
  PutU32Le(out, key.curve_id);
  PutLe256(out, key.x);
  PutLe256(out, key.y);
  PutU16Le(out, static_cast<uint16_t>(key.user_id.size()));
  out.insert(out.end(), key.user_id.begin(), key.user_id.end());
  out.resize(4 + 2 * kEccFieldSize + kUserIdFieldSize, 0);
  return out;
}

Bytes SerializeSm2Sig(const Sm2Sig& sig) {
  Bytes out;
  PutLe256(out, sig.r);
  PutLe256(out, sig.s);
  return out;
}

AttestResult<CaCert> ParseCaCert(ByteSpan bytes) {
  if (bytes.size() != kCaCertSize) {
    return MakeError(AttestErrc::kMalformed, "Hygon CA certificate must be 832 bytes, found " +
                                                 std::to_string(bytes.size()));
  }
  ByteReader r(bytes);
  CaCert c;
  CLLM_ASSIGN_OR_RETURN(c.version, Read(r.U32Le(), "version"));                      // 0x000
  if (c.version != 1) {
    return MakeError(AttestErrc::kUnsupportedVersion,
                     "Hygon CA certificate version " + std::to_string(c.version) + ", only 1 is defined");
  }
  CLLM_ASSIGN_OR_RETURN(c.key_id, Read(r.Array<16>(), "key_id"));                     // 0x004
  CLLM_ASSIGN_OR_RETURN(c.certifying_id, Read(r.Array<16>(), "certifying_id"));       // 0x014
  CLLM_ASSIGN_OR_RETURN(c.key_usage, Read(r.U32Le(), "key_usage"));                   // 0x024
  CLLM_RETURN_IF_ERROR(Read(r.Skip(24), "reserved1"));                                // 0x028
  CLLM_ASSIGN_OR_RETURN(ByteSpan pk, Read(r.Bytes(4 + 2 * kEccFieldSize + kUserIdFieldSize), "pubkey"));
  CLLM_ASSIGN_OR_RETURN(c.pubkey, ReadSm2PubKey(pk));                                 // 0x040
  CLLM_RETURN_IF_ERROR(Read(r.Skip(108), "reserved2"));                               // 0x1D4
  CLLM_ASSIGN_OR_RETURN(ByteSpan sig, Read(r.Bytes(2 * kEccFieldSize), "signature"));  // 0x240
  CLLM_ASSIGN_OR_RETURN(c.signature, ReadSm2Sig(sig));
  c.bytes.assign(bytes.begin(), bytes.end());
  return c;
}

AttestResult<CsvCert> ParseCsvCert(ByteSpan bytes) {
  if (bytes.size() != kCsvCertSize) {
    return MakeError(AttestErrc::kMalformed, "Hygon CSV certificate must be 2084 bytes, found " +
                                                 std::to_string(bytes.size()));
  }
  ByteReader r(bytes);
  CsvCert c;
  CLLM_ASSIGN_OR_RETURN(c.version, Read(r.U32Le(), "version"));                      // 0x000
  // Version 1 (PEKs seen so far) and 2 (the CEK served by Hygon's KDS) share
  // this layout.
  if (c.version != 1 && c.version != 2) {
    return MakeError(AttestErrc::kUnsupportedVersion,
                     "Hygon CSV certificate version " + std::to_string(c.version) + ", only 1 and 2 are known");
  }
  CLLM_ASSIGN_OR_RETURN(c.api_major, Read(r.U8(), "api_major"));                     // 0x004
  CLLM_ASSIGN_OR_RETURN(c.api_minor, Read(r.U8(), "api_minor"));                     // 0x005
  CLLM_RETURN_IF_ERROR(Read(r.Skip(2), "reserved1"));                                 // 0x006
  CLLM_ASSIGN_OR_RETURN(c.pubkey_usage, Read(r.U32Le(), "pubkey_usage"));            // 0x008
  CLLM_ASSIGN_OR_RETURN(c.pubkey_algo, Read(r.U32Le(), "pubkey_algo"));              // 0x00C
  if (c.pubkey_algo != kAlgoSm2Sa) {
    return MakeError(AttestErrc::kUnsupportedVersion,
                     "CSV certificate pubkey_algo " + std::to_string(c.pubkey_algo) + ", only 4 (SM2) is supported");
  }
  CLLM_ASSIGN_OR_RETURN(ByteSpan pk, Read(r.Bytes(4 + 2 * kEccFieldSize + kUserIdFieldSize), "pubkey"));
  CLLM_ASSIGN_OR_RETURN(c.pubkey, ReadSm2PubKey(pk));                                 // 0x010
  CLLM_RETURN_IF_ERROR(Read(r.Skip(624), "reserved3"));                               // 0x1A4
  for (auto& slot : c.sigs) {                                                         // 0x414, 0x61C
    CLLM_ASSIGN_OR_RETURN(slot.usage, Read(r.U32Le(), "sig usage"));
    CLLM_ASSIGN_OR_RETURN(slot.algo, Read(r.U32Le(), "sig algo"));
    CLLM_ASSIGN_OR_RETURN(ByteSpan sig, Read(r.Bytes(2 * kEccFieldSize), "sig"));
    // An unused slot (usage 0x1000) may hold anything; only used slots must
    // carry a decodable SM2 signature.
    if (slot.usage != kUsageInvalid && slot.algo == kAlgoSm2Sa) {
      CLLM_ASSIGN_OR_RETURN(slot.sig, ReadSm2Sig(sig));
    }
    CLLM_RETURN_IF_ERROR(Read(r.Skip(368), "reserved"));
  }
  c.bytes.assign(bytes.begin(), bytes.end());
  return c;
}

AttestResult<crypto::PublicKey> Sm2KeyOf(const Sm2PubKey& key) {
  auto pk = crypto::PublicKey::FromEcPoint(crypto::KeyType::kSm2, key.x, key.y);
  if (!pk.ok()) return MakeError(AttestErrc::kMalformed, "SM2 public key is not on the curve: " + pk.detail());
  return std::move(pk).value();
}

AttestStatus VerifySm2(const Sm2PubKey& signer, ByteSpan msg, const Sm2Sig& sig) {
  CLLM_ASSIGN_OR_RETURN(crypto::PublicKey pk, Sm2KeyOf(signer));
  Bytes raw(sig.r.begin(), sig.r.end());
  raw.insert(raw.end(), sig.s.begin(), sig.s.end());
  auto st = crypto::Sm2Verify(pk, msg, raw, crypto::SigFormat::kRaw, signer.user_id);
  if (!st.ok()) {
    return MakeError(AttestErrc::kBadSignature,
                     "SM2/SM3 signature with id \"" + signer.user_id + "\" does not verify: " + st.detail());
  }
  return OkStatus();
}

AttestStatus VerifyCaCertIssuedBy(const CaCert& cert, const CaCert& issuer) {
  if (cert.certifying_id != issuer.key_id) {
    return MakeError(AttestErrc::kChainInvalid, "certifying_id " + HexEncode(cert.certifying_id) +
                                                    " is not the issuer's key_id " + HexEncode(issuer.key_id));
  }
  auto st = VerifySm2(issuer.pubkey, ByteSpan(cert.bytes).first(kCaCertSignedSize), cert.signature);
  if (!st.ok()) return MakeError(AttestErrc::kChainInvalid, st.detail());
  return OkStatus();
}

AttestStatus VerifyCsvCertIssuedBy(const CsvCert& cert, uint32_t issuer_usage, const Sm2PubKey& issuer_key) {
  for (const auto& slot : cert.sigs) {
    if (slot.usage != issuer_usage) continue;
    if (slot.algo != kAlgoSm2Sa) {
      return MakeError(AttestErrc::kChainInvalid, "signature slot of the " + UsageName(issuer_usage) +
                                                      " uses algo " + std::to_string(slot.algo) + ", not SM2");
    }
    auto st = VerifySm2(issuer_key, ByteSpan(cert.bytes).first(kCsvCertSignedSize), slot.sig);
    if (!st.ok()) return MakeError(AttestErrc::kChainInvalid, st.detail());
    return OkStatus();
  }
  return MakeError(AttestErrc::kChainInvalid, UsageName(cert.pubkey_usage) + " certificate has no signature by the " +
                                                  UsageName(issuer_usage) + " (slots: " +
                                                  UsageName(cert.sigs[0].usage) + ", " +
                                                  UsageName(cert.sigs[1].usage) + ")");
}

}  // namespace cllm::attestation::csv
