// verify.cc — the SEV-SNP verification checklist.
//
// Order (each step appends a trace line; the first failure is returned):
//   1. report structure (report.cc), certificates pooled (certs.cc)
//   2. VCEK/VLEK chosen per KEY_INFO.SIGNING_KEY
//   3. product: report CPUID, VEK productName and VEK issuer agree
//   4. chain VEK → ASK/ASVK → pinned ARK at `at`
//   5. supplied AMD CRLs (revocation)
//   6. VEK TCB extensions == REPORTED_TCB
//   7. VCEK hwID == CHIP_ID
//   8. report signature with the VEK key
// Output fields are assembled by fields.cc.
#include "attestation/snp/verify.h"

#include <algorithm>

#include "attestation/internal/trace.h"
#include "attestation/internal/verifier_pass.h"
#include "attestation/snp/certs.h"
#include "attestation/snp/chain.h"
#include "attestation/snp/fields.h"
#include "attestation/snp/json_bundle.h"
#include "attestation/snp/vek.h"
#include "base/encoding.h"

namespace cllm::attestation::snp {
namespace {

bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

std::string CommonName(std::string_view rfc2253) {
  // Certificate::Issuer() is RFC 2253 ("CN=SEV-Milan,OU=..."); CNs of AMD
  // certificates contain no commas.
  size_t pos = rfc2253.find("CN=");
  while (pos != std::string_view::npos && pos != 0 && rfc2253[pos - 1] != ',') pos = rfc2253.find("CN=", pos + 1);
  if (pos == std::string_view::npos) return "";
  std::string_view rest = rfc2253.substr(pos + 3);
  return std::string(rest.substr(0, rest.find(',')));
}

bool IsEcP384(const crypto::Certificate& c) {
  auto key = c.GetPublicKey();
  return key.ok() && key->type() == crypto::KeyType::kEcP384;
}

// KindOfVek tells a VCEK from a VLEK: the certificate table GUID if it came
// from one, else the subject CN ("SEV-VCEK" / "SEV-VLEK", spec 57230).
CertKind KindOfVek(const PooledCert& p) {
  if (p.table_kind == CertKind::kVcek || p.table_kind == CertKind::kVlek) return p.table_kind;
  std::string cn = p.cert.SubjectCommonName();
  if (cn == "SEV-VCEK") return CertKind::kVcek;
  if (cn == "SEV-VLEK") return CertKind::kVlek;
  return CertKind::kOther;
}

AttestErrc MapChainError(crypto::CryptoErrc e) {
  switch (e) {
    case crypto::CryptoErrc::kExpired: return AttestErrc::kCertExpired;
    case crypto::CryptoErrc::kNotYetValid: return AttestErrc::kCertNotYetValid;
    case crypto::CryptoErrc::kRevoked: return AttestErrc::kRevoked;
    case crypto::CryptoErrc::kBadSignature: return AttestErrc::kBadSignature;
    default: return AttestErrc::kChainInvalid;
  }
}

// --- the verifier, one method per checklist step --------------------------------

class Verifier {
 public:
  explicit Verifier(const EvidenceInput& in) : in_(in) {}

  AttestResult<VerifiedEvidence> Run();

 private:
  AttestStatus ParseEvidence();
  AttestStatus ChooseVek();
  AttestStatus DetermineProduct();
  AttestStatus VerifyVekChain();
  AttestStatus CheckRevocation();
  AttestStatus CheckTcb();
  AttestStatus CheckHwId();
  AttestStatus CheckReportSignature();

  Error<AttestErrc> Fail(const std::string& step, AttestErrc code, std::string detail) {
    return FailStep(in_, step, MakeError(code, std::move(detail)));
  }

  const EvidenceInput& in_;
  Bytes report_bytes_;
  Report report_;
  std::vector<PooledCert> pool_;
  std::vector<crypto::Crl> crls_;
  size_t crls_used_ = 0;  // CRLs by the chain's issuers that were applied
  std::vector<crypto::Certificate> anchors_;        // ARK(s) of the product
  std::vector<crypto::Certificate> intermediates_;  // ASK or ASVK
  const crypto::Certificate* vek_ = nullptr;
  CertKind vek_kind_ = CertKind::kOther;
  VekExtensions ext_;
  Product product_ = Product::kMilan;
  std::string product_source_;
  std::string chain_detail_;
};

AttestStatus Verifier::ParseEvidence() {
  const std::string step = "SNP report structure";
  ByteSpan ev = in_.evidence;
  ByteSpan table;
  if (LooksLikeJsonBundle(ev)) {
    auto bundle = ParseJsonBundle(ev);
    if (!bundle.ok()) return FailStep(in_, step, std::move(bundle).error());
    report_bytes_ = std::move(bundle->report);
    for (auto& c : bundle->certs) pool_.push_back(std::move(c));
  } else if (ev.size() >= kReportSize) {
    report_bytes_.assign(ev.begin(), ev.begin() + kReportSize);
    table = ev.subspan(kReportSize);
  } else {
    return Fail(step, AttestErrc::kMalformed,
                "evidence is " + std::to_string(ev.size()) + " bytes; an SNP report is " +
                    std::to_string(kReportSize));
  }
  auto parsed = ParseReport(report_bytes_);
  if (!parsed.ok()) return FailStep(in_, step, std::move(parsed).error());
  report_ = std::move(parsed).value();
  Step(in_, step,
       "1184 bytes, VERSION " + std::to_string(report_.version) + ", SIGNATURE_ALGO 1 (ECDSA P-384/SHA-384), " +
           "reserved bytes zero");

  if (!table.empty()) {
    auto st = AddCertTable(table, &pool_);
    if (!st.ok()) return FailStep(in_, "extended report certificate table", std::move(st).error());
    Step(in_, "extended report certificate table", std::to_string(table.size()) + " bytes after the report");
  }
  for (size_t i = 0; i < in_.cert_files.size(); ++i) {
    auto st = AddCertFile(in_.cert_files[i], &pool_, &crls_);
    if (!st.ok()) {
      return FailStep(in_, "certificate file " + std::to_string(i + 1), std::move(st).error());
    }
  }
  // SNP has no other collateral: a --collateral file is one more certificate
  // source (e.g. the KDS cert_chain).
  if (in_.collateral) {
    auto st = AddCertFile(*in_.collateral, &pool_, &crls_);
    if (!st.ok()) return FailStep(in_, "collateral file", std::move(st).error());
  }
  return OkStatus();
}

AttestStatus Verifier::ChooseVek() {
  const std::string step = "endorsement key certificate";
  // KEY_INFO.SIGNING_KEY (56860): which key signed the report.
  const uint32_t sk = report_.signing_key();
  if (sk == kSigningKeyNone) {
    return Fail(step, AttestErrc::kBadSignature, "report is unsigned (KEY_INFO.SIGNING_KEY = 7, none)");
  }
  if (report_.mask_chip_key() && sk == kSigningKeyVcek) {
    // MASK_CHIP_KEY: the firmware does not use the VCEK; the signature is zero.
    return Fail(step, AttestErrc::kBadSignature, "KEY_INFO.MASK_CHIP_KEY is set: the VCEK did not sign this report");
  }
  const CertKind want = sk == kSigningKeyVcek ? CertKind::kVcek : CertKind::kVlek;
  std::vector<const crypto::Certificate*> candidates;
  for (const auto& p : pool_) {
    if (KindOfVek(p) == want && IsEcP384(p.cert)) candidates.push_back(&p.cert);
  }
  if (candidates.empty()) {
    return Fail(step, AttestErrc::kCollateralMissing,
                std::string("report is signed by the ") + CertKindName(want) + " (KEY_INFO.SIGNING_KEY = " +
                    std::to_string(sk) + ") but no " + CertKindName(want) +
                    " certificate (P-384, CN SEV-" + CertKindName(want) + ") was supplied");
  }
  // Several VCEKs (e.g. a directory of them): prefer the one for this chip.
  vek_ = candidates.front();
  if (want == CertKind::kVcek && candidates.size() > 1) {
    for (const auto* c : candidates) {
      auto hw = c->Extension(kOidHwId);
      auto id = hw ? DecodeHwId(*hw) : std::nullopt;
      if (id && std::equal(id->begin(), id->end(), report_.chip_id.begin())) vek_ = c;
    }
  }
  vek_kind_ = want;
  auto ext = ParseVekExtensions(*vek_);
  if (!ext.ok()) return FailStep(in_, step, std::move(ext).error());
  ext_ = std::move(ext).value();
  Step(in_, step,
       std::string(CertKindName(want)) + " serial " + vek_->SerialHex() + ", issuer " + vek_->Issuer());
  return OkStatus();
}

AttestStatus Verifier::DetermineProduct() {
  const std::string step = "product line";
  std::optional<Product> from_report;
  // CPUID_FAM_ID/MOD_ID exist from VERSION 3; zero means "not reported".
  if (report_.has_cpuid() && report_.cpuid_fam_id != 0) {
    from_report = ProductFromCpuid(report_.cpuid_fam_id, report_.cpuid_mod_id);
    if (!from_report) {
      return Fail(step, AttestErrc::kUnsupportedVersion,
                  "CPUID family 0x" + HexEncode(ByteSpan(&report_.cpuid_fam_id, 1)) + " model 0x" +
                      HexEncode(ByteSpan(&report_.cpuid_mod_id, 1)) + " is not a known SEV-SNP product");
    }
  }
  std::optional<Product> from_cert;
  if (ext_.product_name) {
    from_cert = ParseProductName(*ext_.product_name);
    if (!from_cert) {
      return Fail(step, AttestErrc::kWrongProduct,
                  "VEK productName \"" + *ext_.product_name + "\" is not Milan, Genoa or Turin");
    }
  }
  if (from_report && from_cert && *from_report != *from_cert) {
    return Fail(step, AttestErrc::kWrongProduct,
                std::string("report CPUID says ") + ProductName(*from_report) + " but the " +
                    CertKindName(vek_kind_) + " productName is \"" + *ext_.product_name + "\"");
  }
  // The issuer names the product: VCEK by "SEV-<Product>" (the ASK), VLEK
  // by "SEV-VLEK-<Product>" (the ASVK) (spec 57230).
  const std::string issuer_cn = CommonName(vek_->Issuer());
  const std::string prefix = vek_kind_ == CertKind::kVlek ? "SEV-VLEK-" : "SEV-";
  std::optional<Product> from_issuer;
  if (StartsWith(issuer_cn, prefix)) from_issuer = ParseProductName(issuer_cn.substr(prefix.size()));
  if (!from_issuer) {
    return Fail(step, AttestErrc::kChainInvalid,
                std::string(CertKindName(vek_kind_)) + " issuer CN \"" + issuer_cn + "\" is not " + prefix +
                    "{Milan,Genoa,Turin}");
  }
  const std::optional<Product> claimed = from_report ? from_report : from_cert;
  if (claimed && *claimed != *from_issuer) {
    return Fail(step, AttestErrc::kWrongProduct,
                std::string(from_report ? "report CPUID" : "VEK productName") + " says " + ProductName(*claimed) +
                    " but the " + CertKindName(vek_kind_) + " is issued by " + issuer_cn);
  }
  product_ = *from_issuer;
  product_source_ = from_report ? "report CPUID, " : "";
  if (from_cert) product_source_ += "productName " + *ext_.product_name + ", ";
  product_source_ += "issuer " + issuer_cn;
  Step(in_, step, std::string(ProductName(product_)) + " (" + product_source_ + ")");
  return OkStatus();
}

AttestStatus Verifier::VerifyVekChain() {
  const std::string step = std::string(CertKindName(vek_kind_)) + " chain to the pinned AMD ARK";
  // --- trust anchors: the pinned ARKs found among the supplied certificates,
  // or EvidenceInput::roots when the caller replaces the pins.
  Anchors anchors = SelectAnchors(pool_, in_.roots, product_);
  if (anchors.certs.empty()) {
    if (!anchors.other_products.empty()) {
      return Fail(step, AttestErrc::kWrongProduct,
                  std::string("the ") + CertKindName(vek_kind_) + " is " + ProductName(product_) +
                      " but the supplied AMD root is for another product line (" + anchors.other_products + ")");
    }
    return Fail(step, anchors.unpinned_root ? AttestErrc::kChainInvalid : AttestErrc::kCollateralMissing,
                anchors.unpinned_root ? std::string("the supplied self-signed root is not a pinned AMD ARK-") +
                                    ProductName(product_)
                              : std::string("no ARK-") + ProductName(product_) +
                                    " certificate supplied (AMD KDS cert_chain)");
  }

  // --- intermediate: ASK for a VCEK, ASVK for a VLEK, named by the VEK's issuer.
  const std::string issuer_cn = CommonName(vek_->Issuer());
  const std::string prefix = vek_kind_ == CertKind::kVlek ? "SEV-VLEK-" : "SEV-";
  std::vector<crypto::Certificate> intermediates;
  std::string other_intermediates;  // same kind (ASK or ASVK), another product
  for (const auto& p : pool_) {
    if (p.cert.IsSelfIssued() || KindOfVek(p) != CertKind::kOther) continue;
    const std::string cn = p.cert.SubjectCommonName();
    if (cn == issuer_cn) {
      intermediates.push_back(p.cert);
    } else if (StartsWith(cn, prefix) && ParseProductName(cn.substr(prefix.size()))) {
      other_intermediates += (other_intermediates.empty() ? "" : ", ") + cn;
    }
  }
  const char* inter_name = vek_kind_ == CertKind::kVlek ? "ASVK" : "ASK";
  if (intermediates.empty()) {
    if (!other_intermediates.empty()) {
      return Fail(step, AttestErrc::kWrongProduct,
                  std::string("the ") + CertKindName(vek_kind_) + " is issued by " + issuer_cn + " but the supplied " +
                      inter_name + " is " + other_intermediates);
    }
    return Fail(step, AttestErrc::kCollateralMissing,
                std::string("no ") + inter_name + " certificate (" + issuer_cn + ") supplied (AMD KDS cert_chain)");
  }

  crypto::ChainOptions opts;
  opts.at = in_.at;
  auto st = crypto::VerifyChain(*vek_, intermediates, anchors.certs, opts);
  if (!st.ok()) return Fail(step, MapChainError(st.code()), st.detail());
  anchors_ = std::move(anchors.certs);
  intermediates_ = std::move(intermediates);
  chain_detail_ = std::string("ARK-") + ProductName(product_) + " → " + issuer_cn + " → " + CertKindName(vek_kind_);
  Step(in_, step, chain_detail_ + (in_.roots.empty() ? " (ARK SHA-256 pinned)" : " (caller-supplied roots)"));
  return OkStatus();
}

AttestStatus Verifier::CheckRevocation() {
  const std::string step = "AMD CRL";
  // AMD KDS publishes one CRL per product, signed by the ARK, listing revoked
  // ASKs/ASVKs and VEKs (spec 57230, "CRL"). Only supplied CRLs are used; the
  // verifier fetches nothing.
  // A CRL by the ASK/ASVK (none is published today) is honoured the same way.
  std::vector<crypto::Certificate> issuers = anchors_;
  issuers.insert(issuers.end(), intermediates_.begin(), intermediates_.end());
  std::vector<crypto::Certificate> subjects = intermediates_;
  subjects.push_back(*vek_);
  auto used = CheckCrls(crls_, issuers, subjects, in_.at);
  if (!used.ok()) return FailStep(in_, step, std::move(used).error());
  if (*used > 0) Step(in_, step, std::to_string(*used) + " CRL(s) by the chain's issuers: nothing revoked");
  crls_used_ = *used;
  return OkStatus();
}

AttestStatus Verifier::CheckTcb() {
  const std::string step = std::string(CertKindName(vek_kind_)) + " TCB == REPORTED_TCB";
  // The VEK is derived from one TCB; it certifies only reports whose
  // REPORTED_TCB is that TCB (spec 57230, "VCEK certificate extensions").
  const TcbVersion tcb = DecodeTcb(report_.reported_tcb, product_);
  struct Item {
    const char* ext;
    const char* field;
    std::optional<uint8_t> cert;
    uint8_t report;
  };
  std::vector<Item> items = {{"blSPL", "boot_loader", ext_.bl_spl, tcb.bootloader},
                             {"teeSPL", "tee", ext_.tee_spl, tcb.tee},
                             {"snpSPL", "snp", ext_.snp_spl, tcb.snp},
                             {"ucodeSPL", "microcode", ext_.ucode_spl, tcb.microcode}};
  if (product_ == Product::kTurin) items.push_back({"fmcSPL", "fmc", ext_.fmc_spl, tcb.fmc.value_or(0)});
  for (const auto& it : items) {
    if (!it.cert) {
      return Fail(step, AttestErrc::kCollateralInvalid,
                  std::string(CertKindName(vek_kind_)) + " has no " + it.ext + " extension");
    }
    if (*it.cert != it.report) {
      return Fail(step, AttestErrc::kTcbMismatch,
                  std::string(CertKindName(vek_kind_)) + " " + it.ext + " extension is " + std::to_string(*it.cert) +
                      " but REPORTED_TCB." + it.field + " is " + std::to_string(it.report) + " (REPORTED_TCB " +
                      TcbHex(report_.reported_tcb) + ")");
    }
  }
  Step(in_, step, "REPORTED_TCB " + TcbHex(report_.reported_tcb));
  return OkStatus();
}

AttestStatus Verifier::CheckHwId() {
  const std::string step = "VCEK hwID == CHIP_ID";
  if (vek_kind_ != CertKind::kVcek) return OkStatus();  // a VLEK is not bound to a chip
  if (!ext_.hw_id) return Fail(step, AttestErrc::kCollateralInvalid, "VCEK has no hwID extension");
  const Bytes& hw = *ext_.hw_id;
  // Turin VCEKs carry the 8-byte chip id; the report's CHIP_ID is then those
  // 8 bytes followed by zeros.
  bool equal = hw.size() <= report_.chip_id.size() &&
               std::equal(hw.begin(), hw.end(), report_.chip_id.begin()) &&
               std::all_of(report_.chip_id.begin() + static_cast<std::ptrdiff_t>(hw.size()), report_.chip_id.end(),
                           [](uint8_t b) { return b == 0; });
  if (!equal) {
    return Fail(step, AttestErrc::kHwIdMismatch,
                "VCEK hwID " + HexEncode(hw) + " != report CHIP_ID " + HexEncode(report_.chip_id) +
                    " (a VCEK of another chip)");
  }
  Step(in_, step, HexEncode(hw).substr(0, 32) + "…");
  return OkStatus();
}

AttestStatus Verifier::CheckReportSignature() {
  const std::string step = "report signature";
  auto key = vek_->GetPublicKey();
  if (!key.ok()) return Fail(step, AttestErrc::kCollateralInvalid, "VEK public key: " + key.detail());
  Bytes raw(report_.sig_r.begin(), report_.sig_r.end());
  raw.insert(raw.end(), report_.sig_s.begin(), report_.sig_s.end());
  auto st = crypto::EcdsaVerify(*key, crypto::HashAlg::kSha384, ByteSpan(report_bytes_).first(kSignedSize), raw,
                                crypto::SigFormat::kRaw);
  if (!st.ok()) {
    return Fail(step, AttestErrc::kBadSignature,
                std::string("ECDSA P-384/SHA-384 over bytes 0x000..0x29F does not verify with the ") +
                    CertKindName(vek_kind_) + " key: " + st.detail());
  }
  Step(in_, step, std::string("ECDSA P-384/SHA-384 by the ") + CertKindName(vek_kind_));
  return OkStatus();
}

AttestResult<VerifiedEvidence> Verifier::Run() {
  CLLM_RETURN_IF_ERROR(ParseEvidence());
  CLLM_RETURN_IF_ERROR(ChooseVek());
  CLLM_RETURN_IF_ERROR(DetermineProduct());
  CLLM_RETURN_IF_ERROR(VerifyVekChain());
  CLLM_RETURN_IF_ERROR(CheckRevocation());
  CLLM_RETURN_IF_ERROR(CheckTcb());
  CLLM_RETURN_IF_ERROR(CheckHwId());
  CLLM_RETURN_IF_ERROR(CheckReportSignature());

  VerifiedEvidence::Data d = BuildData(report_, product_, vek_kind_);
  // Revocation is only as good as the CRLs the evidence came with: a policy
  // that needs it checked pins "revocation": "checked".
  d.fields["revocation"] = crls_used_ > 0 ? "checked" : "unchecked";
  if (in_.trace != nullptr) d.steps = *in_.trace;
  return VerifiedEvidence(VerifierPass::Issue(), std::move(d));
}

}  // namespace

bool LooksLikeSnpEvidence(ByteSpan evidence) {
  return LooksLikeReport(evidence) || LooksLikeJsonBundle(evidence);
}

AttestResult<VerifiedEvidence> VerifySnpEvidence(const EvidenceInput& input) {
  return Verifier(input).Run();
}

}  // namespace cllm::attestation::snp
