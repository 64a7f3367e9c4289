// tpm_quote.cc — TPMS_ATTEST / TPMT_SIGNATURE decoding, quote signature and
// PCR digest checks. Structures in tpm_quote.h.
#include "attestation/tpm/tpm_quote.h"

#include "base/byte_reader.h"
#include "base/encoding.h"

namespace cllm::attestation::tpm {
namespace {

template <typename T>
AttestResult<T> Read(Result<T> r, const char* what) {
  if (!r.ok()) return MakeError(AttestErrc::kMalformed, std::string(what) + ": " + r.detail());
  return std::move(r).value();
}

// A TPM2B: u16 size then that many bytes, at most `max` (the size of the
// union it carries, Part 2 §10.4).
AttestResult<Bytes> ReadTpm2b(ByteReader& r, size_t max, const char* what) {
  CLLM_ASSIGN_OR_RETURN(uint16_t size, Read(r.U16Be(), what));
  if (size > max) {
    return MakeError(AttestErrc::kMalformed, std::string(what) + " size " + std::to_string(size) +
                                                 " exceeds its maximum " + std::to_string(max));
  }
  CLLM_ASSIGN_OR_RETURN(ByteSpan b, Read(r.Bytes(size), what));
  return Bytes(b.begin(), b.end());
}

// Digest size of a PCR bank; SHA-1 banks are readable even though we never
// accept SHA-1 as a signature hash.
AttestResult<size_t> BankSize(uint16_t alg) {
  switch (alg) {
    case kAlgSha1: return size_t{20};
    case kAlgSha256: return size_t{32};
    case kAlgSha384: return size_t{48};
    case kAlgSha512: return size_t{64};
    default: return MakeError(AttestErrc::kUnsupportedVersion, "PCR bank hash alg " + std::to_string(alg));
  }
}

constexpr size_t kMaxName = 2 + 64;        // TPMU_NAME: TPMT_HA with SHA-512
constexpr size_t kMaxData = 64;            // TPM2B_DATA: sizeof(TPMU_HA)
constexpr size_t kMaxDigest = 64;          // TPM2B_DIGEST
constexpr uint32_t kMaxBanks = 16;         // HASH_COUNT bound, generous
constexpr uint8_t kMaxSizeofSelect = 32;   // PCR_SELECT_MAX for up to 256 PCRs

AttestResult<crypto::HashAlg> VerifyRsa(const crypto::PublicKey& ak, uint16_t scheme, crypto::HashAlg hash,
                                        ByteSpan msg, ByteSpan sig) {
  if (ak.type() != crypto::KeyType::kRsa) {
    return MakeError(AttestErrc::kBindingMismatch, "RSA signature scheme but the AK is not an RSA key");
  }
  if (sig.size() * 8 != static_cast<size_t>(ak.Bits())) {
    return MakeError(AttestErrc::kBadSignature, "RSA signature of " + std::to_string(sig.size()) +
                                                    " bytes for a " + std::to_string(ak.Bits()) + "-bit AK");
  }
  if (scheme == kAlgRsassa) {
    if (auto st = crypto::RsaPkcs1Verify(ak, hash, msg, sig); !st.ok()) {
      return MakeError(AttestErrc::kBadSignature, "RSASSA-PKCS1-v1_5: " + st.detail());
    }
    return hash;
  }
  // RSAPSS: TPMs use a salt of the digest size (FIPS mode) or the largest
  // that fits (Part 1 §B.7); accept either.
  const int max_salt = static_cast<int>(sig.size() - crypto::DigestSize(hash) - 2);
  if (crypto::RsaPssVerify(ak, hash, msg, sig, -1).ok() || crypto::RsaPssVerify(ak, hash, msg, sig, max_salt).ok()) {
    return hash;
  }
  return MakeError(AttestErrc::kBadSignature, "RSASSA-PSS does not verify");
}

}  // namespace

AttestResult<crypto::HashAlg> HashOfAlg(uint16_t alg) {
  switch (alg) {
    case kAlgSha256: return crypto::HashAlg::kSha256;
    case kAlgSha384: return crypto::HashAlg::kSha384;
    case kAlgSha512: return crypto::HashAlg::kSha512;
    case kAlgSha1:
      return MakeError(AttestErrc::kUnsupportedVersion, "SHA-1 signatures are not accepted");
    default:
      return MakeError(AttestErrc::kUnsupportedVersion, "hash alg 0x" + HexEncode(Bytes{static_cast<uint8_t>(alg >> 8),
                                                                                       static_cast<uint8_t>(alg)}));
  }
}

AttestResult<TpmsAttest> ParseTpmsAttest(ByteSpan bytes) {
  ByteReader r(bytes);
  TpmsAttest a;
  CLLM_ASSIGN_OR_RETURN(a.magic, Read(r.U32Be(), "magic"));
  // TPM_GENERATED_VALUE marks structures the TPM itself built; a quote over
  // anything else could be an external message signed with the AK.
  if (a.magic != kTpmGeneratedValue) {
    return MakeError(AttestErrc::kMalformed, "TPMS_ATTEST magic is not TPM_GENERATED_VALUE 0xff544347");
  }
  CLLM_ASSIGN_OR_RETURN(a.type, Read(r.U16Be(), "type"));
  if (a.type != kTpmStAttestQuote) {
    return MakeError(AttestErrc::kUnsupportedVersion,
                     "TPMS_ATTEST type " + std::to_string(a.type) + " is not TPM_ST_ATTEST_QUOTE (0x8018)");
  }
  CLLM_ASSIGN_OR_RETURN(a.qualified_signer, ReadTpm2b(r, kMaxName, "qualifiedSigner"));
  CLLM_ASSIGN_OR_RETURN(a.extra_data, ReadTpm2b(r, kMaxData, "extraData"));
  CLLM_ASSIGN_OR_RETURN(a.clock, Read(r.U64Be(), "clockInfo.clock"));
  CLLM_ASSIGN_OR_RETURN(a.reset_count, Read(r.U32Be(), "clockInfo.resetCount"));
  CLLM_ASSIGN_OR_RETURN(a.restart_count, Read(r.U32Be(), "clockInfo.restartCount"));
  CLLM_ASSIGN_OR_RETURN(a.safe, Read(r.U8(), "clockInfo.safe"));
  if (a.safe > 1) return MakeError(AttestErrc::kMalformed, "clockInfo.safe is not a TPMI_YES_NO");
  CLLM_ASSIGN_OR_RETURN(a.firmware_version, Read(r.U64Be(), "firmwareVersion"));
  CLLM_ASSIGN_OR_RETURN(uint32_t count, Read(r.U32Be(), "pcrSelect.count"));
  if (count == 0 || count > kMaxBanks) {
    return MakeError(AttestErrc::kMalformed, "pcrSelect.count " + std::to_string(count) + " is outside 1..16");
  }
  for (uint32_t i = 0; i < count; ++i) {
    PcrSelection sel;
    CLLM_ASSIGN_OR_RETURN(sel.hash, Read(r.U16Be(), "pcrSelections.hash"));
    CLLM_ASSIGN_OR_RETURN(uint8_t n, Read(r.U8(), "pcrSelections.sizeofSelect"));
    if (n > kMaxSizeofSelect) return MakeError(AttestErrc::kMalformed, "pcrSelections.sizeofSelect too large");
    CLLM_ASSIGN_OR_RETURN(ByteSpan bm, Read(r.Bytes(n), "pcrSelections.pcrSelect"));
    sel.bitmap.assign(bm.begin(), bm.end());
    a.pcr_select.push_back(std::move(sel));
  }
  CLLM_ASSIGN_OR_RETURN(a.pcr_digest, ReadTpm2b(r, kMaxDigest, "pcrDigest"));
  if (!r.empty()) {
    return MakeError(AttestErrc::kMalformed, std::to_string(r.remaining()) + " bytes after TPMS_QUOTE_INFO");
  }
  return a;
}

AttestResult<std::vector<unsigned>> SelectedPcrs(const TpmsAttest& attest) {
  std::vector<unsigned> out;
  const PcrSelection* bank = nullptr;
  for (const auto& sel : attest.pcr_select) {
    bool any = false;
    for (uint8_t b : sel.bitmap) any = any || b != 0;
    if (!any) continue;
    if (bank != nullptr) {
      return MakeError(AttestErrc::kUnsupportedVersion, "quote selects PCRs of more than one bank");
    }
    bank = &sel;
  }
  if (bank == nullptr) return MakeError(AttestErrc::kMalformed, "quote selects no PCR");
  for (size_t i = 0; i < bank->bitmap.size(); ++i) {
    for (unsigned j = 0; j < 8; ++j) {
      if (bank->bitmap[i] & (1u << j)) out.push_back(static_cast<unsigned>(8 * i + j));
    }
  }
  return out;
}

AttestStatus CheckPcrDigest(const TpmsAttest& attest, const std::vector<Bytes>& pcrs, crypto::HashAlg digest_alg) {
  CLLM_ASSIGN_OR_RETURN(std::vector<unsigned> selected, SelectedPcrs(attest));
  uint16_t bank = 0;
  for (const auto& sel : attest.pcr_select) {
    for (uint8_t b : sel.bitmap) {
      if (b != 0) bank = sel.hash;
    }
  }
  CLLM_ASSIGN_OR_RETURN(size_t value_size, BankSize(bank));
  crypto::Hasher h(digest_alg);
  for (unsigned idx : selected) {
    if (idx >= pcrs.size()) {
      return MakeError(AttestErrc::kMalformed, "PCR " + std::to_string(idx) + " is selected but its value is missing");
    }
    if (pcrs[idx].size() != value_size) {
      return MakeError(AttestErrc::kMalformed, "PCR " + std::to_string(idx) + " value is " +
                                                   std::to_string(pcrs[idx].size()) + " bytes, bank digest is " +
                                                   std::to_string(value_size));
    }
    h.Update(pcrs[idx]);
  }
  const Bytes digest = h.Finish();
  if (digest != attest.pcr_digest) {
    return MakeError(AttestErrc::kBindingMismatch, "pcrDigest " + HexEncode(attest.pcr_digest) +
                                                       " but the supplied PCR values hash to " + HexEncode(digest));
  }
  return OkStatus();
}

AttestResult<crypto::HashAlg> VerifyQuoteSignature(ByteSpan attest_bytes, ByteSpan signature,
                                                   const crypto::PublicKey& ak, std::string* out_scheme) {
  // Azure's tooling stores only the RSASSA bytes: exactly the modulus size.
  if (ak.type() == crypto::KeyType::kRsa && signature.size() * 8 == static_cast<size_t>(ak.Bits())) {
    if (out_scheme != nullptr) *out_scheme = "RSASSA-PKCS1-v1_5/SHA-256 (bare signature)";
    return VerifyRsa(ak, kAlgRsassa, crypto::HashAlg::kSha256, attest_bytes, signature);
  }
  ByteReader r(signature);
  CLLM_ASSIGN_OR_RETURN(uint16_t sig_alg, Read(r.U16Be(), "TPMT_SIGNATURE.sigAlg"));
  CLLM_ASSIGN_OR_RETURN(uint16_t hash_alg, Read(r.U16Be(), "TPMT_SIGNATURE.hash"));
  CLLM_ASSIGN_OR_RETURN(crypto::HashAlg hash, HashOfAlg(hash_alg));
  const std::string hash_name = crypto::HashAlgName(hash);
  if (sig_alg == kAlgRsassa || sig_alg == kAlgRsapss) {
    CLLM_ASSIGN_OR_RETURN(Bytes sig, ReadTpm2b(r, 512, "TPMT_SIGNATURE.signature"));
    if (!r.empty()) return MakeError(AttestErrc::kMalformed, "bytes after TPMT_SIGNATURE");
    if (out_scheme != nullptr) *out_scheme = (sig_alg == kAlgRsassa ? "RSASSA-PKCS1-v1_5/" : "RSASSA-PSS/") + hash_name;
    return VerifyRsa(ak, sig_alg, hash, attest_bytes, sig);
  }
  if (sig_alg == kAlgEcdsa) {
    CLLM_ASSIGN_OR_RETURN(Bytes sig_r, ReadTpm2b(r, 66, "TPMT_SIGNATURE.signatureR"));
    CLLM_ASSIGN_OR_RETURN(Bytes sig_s, ReadTpm2b(r, 66, "TPMT_SIGNATURE.signatureS"));
    if (!r.empty()) return MakeError(AttestErrc::kMalformed, "bytes after TPMT_SIGNATURE");
    if (ak.type() != crypto::KeyType::kEcP256 && ak.type() != crypto::KeyType::kEcP384) {
      return MakeError(AttestErrc::kBindingMismatch, "ECDSA signature scheme but the AK is not a P-256/P-384 key");
    }
    const size_t half = ak.type() == crypto::KeyType::kEcP256 ? 32 : 48;
    if (sig_r.size() > half || sig_s.size() > half) {
      return MakeError(AttestErrc::kBadSignature, "ECDSA r or s longer than the curve");
    }
    // TPM2B_ECC_PARAMETER may drop leading zeros; left-pad to the raw form.
    Bytes raw(2 * half, 0);
    std::copy(sig_r.begin(), sig_r.end(), raw.begin() + static_cast<std::ptrdiff_t>(half - sig_r.size()));
    std::copy(sig_s.begin(), sig_s.end(), raw.begin() + static_cast<std::ptrdiff_t>(2 * half - sig_s.size()));
    if (out_scheme != nullptr) *out_scheme = "ECDSA/" + hash_name;
    if (auto st = crypto::EcdsaVerify(ak, hash, attest_bytes, raw, crypto::SigFormat::kRaw); !st.ok()) {
      return MakeError(AttestErrc::kBadSignature, "ECDSA: " + st.detail());
    }
    return hash;
  }
  return MakeError(AttestErrc::kUnsupportedVersion, "TPMT_SIGNATURE.sigAlg " + std::to_string(sig_alg) +
                                                        " (only RSASSA, RSAPSS, ECDSA)");
}

}  // namespace cllm::attestation::tpm
