// verify.cc — the TDX DCAP quote verification checklist.
//
// Order follows Intel's QVL (sgxAttestationVerifyQuote): collateral chains and
// CRLs, PCK chain, QE report signature, QE report binding, quote signature,
// TCB Info / QE Identity, TCB status. Each check records a trace step.
#include "attestation/tdx/verify.h"

#include <algorithm>
#include <cstring>

#include "attestation/internal/trace.h"
#include "attestation/internal/verifier_pass.h"
#include "attestation/tdx/collateral.h"
#include "attestation/tdx/tcb.h"
#include "base/encoding.h"
#include "crypto/digest.h"

namespace cllm::attestation::tdx {
namespace {

constexpr char kPckLeafCn[] = "Intel SGX PCK Certificate";
constexpr char kTcbSigningCn[] = "Intel SGX TCB Signing";

AttestErrc MapChainError(crypto::CryptoErrc e) {
  switch (e) {
    case crypto::CryptoErrc::kExpired: return AttestErrc::kCertExpired;
    case crypto::CryptoErrc::kNotYetValid: return AttestErrc::kCertNotYetValid;
    case crypto::CryptoErrc::kRevoked: return AttestErrc::kRevoked;
    default: return AttestErrc::kChainInvalid;
  }
}

std::string TimeText(crypto::TimePoint t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

AttestResult<std::vector<crypto::Certificate>> ParsePckChain(const Quote& quote) {
  std::string_view pem(reinterpret_cast<const char*>(quote.pck_chain_pem.data()), quote.pck_chain_pem.size());
  // The QE appends a NUL terminator to the PEM text.
  while (!pem.empty() && pem.back() == '\0') pem.remove_suffix(1);
  auto certs = crypto::Certificate::ParsePemBundle(pem);
  if (!certs.ok()) return MakeError(AttestErrc::kMalformed, "PCK certificate chain: " + certs.detail());
  if (certs->size() < 2) {
    return MakeError(AttestErrc::kChainInvalid, "PCK certificate chain has " + std::to_string(certs->size()) +
                                                    " certificate(s), expected PCK, CA and root");
  }
  return std::move(certs).value();
}

// Intel QVL "isExpired": collateral is valid from issueDate to nextUpdate.
AttestStatus CheckWindow(crypto::TimePoint from, crypto::TimePoint to, crypto::TimePoint at, const std::string& what) {
  if (at < from || at > to) {
    return MakeError(AttestErrc::kCollateralExpired, what + " is valid " + TimeText(from) + " .. " + TimeText(to) +
                                                         ", verification time is " + TimeText(at));
  }
  return OkStatus();
}

AttestStatus CheckCrl(const crypto::Crl& crl, const crypto::Certificate& issuer, crypto::TimePoint at,
                      const std::string& what) {
  auto next = crl.NextUpdate();
  if (!next) return MakeError(AttestErrc::kCollateralInvalid, what + " has no nextUpdate");
  // OpenSSL treats a CRL as expired from nextUpdate on; agree with it here so
  // the chain check never reports the same fact as a certificate error.
  CLLM_RETURN_IF_ERROR(CheckWindow(crl.ThisUpdate(), *next - std::chrono::seconds(1), at, what));
  auto key = issuer.GetPublicKey();
  if (!key.ok()) return MakeError(AttestErrc::kChainInvalid, what + " issuer key: " + key.detail());
  auto sig = crl.VerifySignedBy(*key);
  if (!sig.ok()) {
    return MakeError(AttestErrc::kBadSignature, what + " is not signed by " + issuer.Subject() + ": " + sig.detail());
  }
  return OkStatus();
}

AttestStatus VerifySignedJson(const SignedJson& doc, const crypto::Certificate& signer, const char* what) {
  auto key = signer.GetPublicKey();
  if (!key.ok()) return MakeError(AttestErrc::kChainInvalid, std::string(what) + " signer key: " + key.detail());
  auto ok = crypto::EcdsaVerify(*key, crypto::HashAlg::kSha256, AsBytes(doc.body), doc.signature,
                                crypto::SigFormat::kRaw);
  if (!ok.ok()) {
    return MakeError(AttestErrc::kBadSignature,
                     std::string(what) + " signature by " + signer.SubjectCommonName() + " does not verify");
  }
  return OkStatus();
}

template <size_t N>
std::string Hex(const std::array<uint8_t, N>& a) {
  return HexEncode(a);
}

VerifiedEvidence::Data MakeData(const Quote& q, const QuoteCheck& qc, const TcbEvaluation& ev,
                                const TcbInfo& info, const QeIdentity& qe) {
  const TdReportBody& b = q.body;
  VerifiedEvidence::Data d;
  d.platform = Platform::kTdx;
  d.simulated = false;
  d.measurement.assign(b.mr_td.begin(), b.mr_td.end());
  d.report_data.assign(b.report_data.begin(), b.report_data.end());
  d.debug = (b.td_attributes[0] & 0x01) != 0;  // TUD.DEBUG: the host VMM can read and alter TD memory
  d.tcb_status = ev.status;
  d.advisory_ids = ev.advisory_ids;
  for (size_t i = 0; i < 16; ++i) {
    d.tcb["tdx.tee_tcb_svn[" + std::to_string(i) + "]"] = b.tee_tcb_svn[i];
    d.tcb["tdx.sgx_tcb_comp_svn[" + std::to_string(i) + "]"] = qc.pck_ext.sgx_tcb_comp_svn[i];
  }
  d.tcb["tdx.pce_svn"] = qc.pck_ext.pce_svn;
  d.tcb["tdx.qe_svn"] = q.qe_report.isv_svn;
  // Which edition of Intel's TCB evaluation the status came from. The
  // evidence's supplier chooses among collateral that is still within its
  // window, so an older edition (before an advisory moved this platform to
  // OutOfDate) can still say UpToDate; a floor on these numbers in min_tcb
  // refuses editions older than the one the policy names.
  d.tcb["tdx.tcb_evaluation_data_number"] = info.tcb_evaluation_data_number;
  d.tcb["tdx.qe_identity.tcb_evaluation_data_number"] = qe.tcb_evaluation_data_number;
  auto& f = d.fields;
  f["quote_version"] = std::to_string(q.header.version);
  f["body_type"] = std::to_string(q.body_type);
  f["qe_vendor_id"] = Hex(q.header.qe_vendor_id);
  f["tee_tcb_svn"] = Hex(b.tee_tcb_svn);
  f["mr_seam"] = Hex(b.mr_seam);
  f["mr_signer_seam"] = Hex(b.mr_signer_seam);
  f["seam_attributes"] = Hex(b.seam_attributes);
  f["td_attributes"] = Hex(b.td_attributes);
  f["xfam"] = Hex(b.xfam);
  f["mr_td"] = Hex(b.mr_td);
  f["mr_config_id"] = Hex(b.mr_config_id);
  f["mr_owner"] = Hex(b.mr_owner);
  f["mr_owner_config"] = Hex(b.mr_owner_config);
  for (size_t i = 0; i < 4; ++i) f["rtmr" + std::to_string(i)] = Hex(b.rtmr[i]);
  f["report_data"] = Hex(b.report_data);
  if (q.body_type == kBodyTypeTd15) {
    f["tee_tcb_svn_2"] = Hex(b.tee_tcb_svn_2);
    f["mr_servicetd"] = Hex(b.mr_servicetd);
  }
  f["fmspc"] = Hex(qc.pck_ext.fmspc);
  f["pce_id"] = Hex(qc.pck_ext.pce_id);
  f["cpu_svn"] = Hex(qc.pck_ext.cpu_svn);
  f["pck_serial"] = qc.pck.SerialHex();
  f["qe_isvsvn"] = std::to_string(q.qe_report.isv_svn);
  f["tcb_date"] = ev.tcb_date;
  f["tcb_status.platform"] = ev.platform_status;
  f["tcb_status.qe"] = ev.qe_status;
  if (!ev.module_id.empty()) {
    f["tdx_module.id"] = ev.module_id;
    f["tdx_module.tcb_status"] = ev.module_status;
  }
  f["tcb_evaluation_data_number"] = std::to_string(info.tcb_evaluation_data_number);
  return d;
}

}  // namespace

std::vector<crypto::Certificate> TrustedRoots(const EvidenceInput& input,
                                              const std::vector<crypto::Certificate>& candidates) {
  if (!input.roots.empty()) return input.roots;
  std::vector<crypto::Certificate> out;
  for (const auto& c : candidates) {
    if (HexEncode(crypto::Sha256(c.Der())) == kIntelSgxRootCaSha256 &&
        std::find(out.begin(), out.end(), c) == out.end()) {
      out.push_back(c);
    }
  }
  return out;
}

AttestResult<QuoteCheck> VerifyQuoteSignatures(const Quote& q, const EvidenceInput& in,
                                               const std::vector<crypto::Crl>& crls) {
  // --- QE vendor --------------------------------------------------------------
  // Only Intel's QE is described by Intel's QE identity and PCK hierarchy.
  if (std::memcmp(q.header.qe_vendor_id.data(), kIntelQeVendorId, 16) != 0) {
    return FailStep(in, "QE vendor is Intel",
                    MakeError(AttestErrc::kWrongProduct, "qe_vendor_id " + Hex(q.header.qe_vendor_id)));
  }

  // --- PCK chain (PCK Cert & CRL Profile; QVL verifyPckCertChain) -----------------
  auto chain = ParsePckChain(q);
  if (!chain.ok()) return FailStep(in, "PCK certificate chain", std::move(chain).error());
  QuoteCheck qc{(*chain)[0], std::move(*chain), {}};
  if (qc.pck.SubjectCommonName() != kPckLeafCn) {
    return FailStep(in, "PCK certificate chain",
                    MakeError(AttestErrc::kWrongProduct, "leaf CN \"" + qc.pck.SubjectCommonName() +
                                                             "\" is not \"" + kPckLeafCn + "\""));
  }
  std::vector<crypto::Certificate> roots = TrustedRoots(in, qc.chain);
  if (roots.empty()) {
    return FailStep(in, "PCK certificate chain",
                    MakeError(AttestErrc::kChainInvalid,
                              "no certificate in the quote is the pinned Intel SGX Root CA (SHA-256 " +
                                  std::string(kIntelSgxRootCaSha256).substr(0, 16) + "...)"));
  }
  std::vector<crypto::Certificate> intermediates(qc.chain.begin() + 1, qc.chain.end());
  crypto::ChainOptions opts{in.at, crls, false};
  if (auto ok = crypto::VerifyChain(qc.pck, intermediates, roots, opts); !ok.ok()) {
    return FailStep(in, "PCK certificate chain", MakeError(MapChainError(ok.code()), "PCK chain: " + ok.detail()));
  }
  Step(in, "PCK certificate chain", "PCK " + qc.pck.SerialHex() + " → " + qc.pck.Issuer() +
                                        " → pinned Intel SGX Root CA at " + TimeText(in.at) +
                                        (crls.empty() ? " (no CRLs)" : " with " + std::to_string(crls.size()) + " CRLs"));

  // --- QE report signature (Quote format, QE Report Certification Data) -------------
  auto pck_key = qc.pck.GetPublicKey();
  if (!pck_key.ok()) {
    return FailStep(in, "QE report signature", MakeError(AttestErrc::kChainInvalid, "PCK key: " + pck_key.detail()));
  }
  if (auto ok = crypto::EcdsaVerify(*pck_key, crypto::HashAlg::kSha256, q.qe_report_bytes, q.qe_report_signature,
                                    crypto::SigFormat::kRaw);
      !ok.ok()) {
    return FailStep(in, "QE report signature",
                    MakeError(AttestErrc::kBadSignature, "QE report is not signed by the PCK key: " + ok.detail()));
  }
  Step(in, "QE report signature", "ECDSA P-256/SHA-256 by the PCK key");

  // --- QE report binds the attestation key ---------------------------------------
  // REPORTDATA = SHA-256(attestation key ‖ QE auth data) ‖ 32 zero bytes: the
  // QE vouches for exactly this attestation key.
  crypto::Hasher h(crypto::HashAlg::kSha256);
  h.Update(q.attestation_key);
  h.Update(q.qe_auth_data);
  Bytes expect = h.Finish();
  const auto& rd = q.qe_report.report_data;
  const bool tail_zero = std::all_of(rd.begin() + 32, rd.end(), [](uint8_t x) { return x == 0; });
  if (!std::equal(expect.begin(), expect.end(), rd.begin()) || !tail_zero) {
    return FailStep(in, "QE report binds the attestation key",
                    MakeError(AttestErrc::kBindingMismatch,
                              "QE report_data " + Hex(rd) + " is not SHA-256(attestation key ‖ QE auth data) " +
                                  HexEncode(expect) + " ‖ 32 zero bytes"));
  }
  Step(in, "QE report binds the attestation key", "report_data = SHA-256(attestation key ‖ QE auth data) ‖ 0");

  // --- quote signature ------------------------------------------------------------
  auto ak = crypto::PublicKey::FromEcPoint(crypto::KeyType::kEcP256, ByteSpan(q.attestation_key).first(32),
                                           ByteSpan(q.attestation_key).subspan(32));
  if (!ak.ok()) {
    return FailStep(in, "quote signature",
                    MakeError(AttestErrc::kBadSignature, "attestation key is not a P-256 point: " + ak.detail()));
  }
  if (auto ok = crypto::EcdsaVerify(*ak, crypto::HashAlg::kSha256, q.signed_bytes, q.signature,
                                    crypto::SigFormat::kRaw);
      !ok.ok()) {
    return FailStep(in, "quote signature",
                    MakeError(AttestErrc::kBadSignature, "quote signature over header and TD report (" +
                                                             std::to_string(q.signed_bytes.size()) +
                                                             " bytes) does not verify: " + ok.detail()));
  }
  Step(in, "quote signature", "ECDSA P-256/SHA-256 by the attestation key over " +
                                  std::to_string(q.signed_bytes.size()) + " bytes");

  // --- PCK SGX extensions -----------------------------------------------------------
  auto ext = PckExtensionsOf(qc.pck);
  if (!ext.ok()) return FailStep(in, "PCK SGX extensions", std::move(ext).error());
  qc.pck_ext = *ext;
  Step(in, "PCK SGX extensions", "FMSPC " + Hex(qc.pck_ext.fmspc) + ", PCE-ID " + Hex(qc.pck_ext.pce_id) +
                                     ", PCESVN " + std::to_string(qc.pck_ext.pce_svn));
  return qc;
}

AttestResult<VerifiedEvidence> VerifyTdxEvidence(const EvidenceInput& in) {
  // --- parse ----------------------------------------------------------------------
  auto parsed = ParseQuote(in.evidence);
  if (!parsed.ok()) return FailStep(in, "TDX quote structure", std::move(parsed).error());
  const Quote& q = *parsed;
  Step(in, "TDX quote structure", "version " + std::to_string(q.header.version) + ", body type " +
                                      std::to_string(q.body_type) + ", " + std::to_string(q.quote_size) + " bytes");

  // --- collateral pieces -------------------------------------------------------------
  auto raw = LoadCollateral(in.collateral, in.cert_files);
  if (!raw.ok()) return FailStep(in, "collateral", std::move(raw).error());
  auto chain = ParsePckChain(q);
  if (!chain.ok()) return FailStep(in, "PCK certificate chain", std::move(chain).error());
  std::vector<crypto::Certificate> pool = *chain;
  pool.insert(pool.end(), raw->certs.begin(), raw->certs.end());
  std::vector<crypto::Certificate> roots = TrustedRoots(in, pool);
  const crypto::Certificate& pck = (*chain)[0];
  const crypto::Crl* root_crl = nullptr;
  const crypto::Crl* pck_crl = nullptr;
  for (const auto& crl : raw->crls) {
    for (const auto& root : roots) {
      if (crl.Issuer() == root.Subject()) root_crl = &crl;
    }
    if (crl.Issuer() == pck.Issuer()) pck_crl = &crl;
  }
  std::string missing;
  if (!raw->tcb_info) missing += " TCB Info;";
  if (!raw->qe_identity) missing += " QE Identity;";
  if (!root_crl) missing += " Intel SGX Root CA CRL;";
  if (!pck_crl) missing += " CRL of " + pck.Issuer() + ";";
  if (!missing.empty() || roots.empty()) {
    if (roots.empty()) missing += " the pinned Intel SGX Root CA;";
    return FailStep(in, "collateral", MakeError(AttestErrc::kCollateralMissing, "missing:" + missing));
  }
  Step(in, "collateral", "TCB Info, QE Identity, root CA CRL, PCK CRL present");

  // --- CRLs (validity window and issuer signature) -----------------------------------
  const crypto::Certificate* pck_issuer = nullptr;
  for (const auto& c : *chain) {
    if (c.Subject() == pck.Issuer()) pck_issuer = &c;
  }
  auto root_it = std::find_if(roots.begin(), roots.end(),
                              [&](const crypto::Certificate& r) { return r.Subject() == root_crl->Issuer(); });
  if (auto ok = CheckCrl(*root_crl, *root_it, in.at, "Intel SGX Root CA CRL"); !ok.ok()) {
    return FailStep(in, "CRLs", std::move(ok).error());
  }
  if (pck_issuer == nullptr) {
    return FailStep(in, "CRLs", MakeError(AttestErrc::kChainInvalid, "PCK issuer is not in the quote's chain"));
  }
  if (auto ok = CheckCrl(*pck_crl, *pck_issuer, in.at, "PCK CRL"); !ok.ok()) {
    return FailStep(in, "CRLs", std::move(ok).error());
  }
  Step(in, "CRLs", "root CA CRL and PCK CRL signed and current at " + TimeText(in.at));

  // --- quote, PCK chain with revocation --------------------------------------------------
  auto qc = VerifyQuoteSignatures(q, in, {*root_crl, *pck_crl});
  if (!qc.ok()) return std::move(qc).error();

  // --- TCB signing chain and collateral signatures ------------------------------------
  std::optional<Error<AttestErrc>> signer_error;
  const crypto::Certificate* signer = nullptr;
  for (const auto& c : raw->certs) {
    if (c.SubjectCommonName() != kTcbSigningCn) continue;
    auto ok = crypto::VerifyChain(c, {}, roots, crypto::ChainOptions{in.at, {*root_crl}, false});
    if (ok.ok()) {
      signer = &c;
      break;
    }
    if (!signer_error) signer_error = MakeError(MapChainError(ok.code()), "TCB signing chain: " + ok.detail());
  }
  if (signer == nullptr) {
    return FailStep(in, "TCB signing chain",
                    signer_error ? *signer_error
                                 : MakeError(AttestErrc::kCollateralMissing, "no Intel SGX TCB Signing certificate"));
  }
  Step(in, "TCB signing chain", signer->SubjectCommonName() + " → pinned Intel SGX Root CA with root CA CRL");
  if (auto ok = VerifySignedJson(*raw->tcb_info, *signer, "TCB Info"); !ok.ok()) {
    return FailStep(in, "TCB Info signature", std::move(ok).error());
  }
  if (auto ok = VerifySignedJson(*raw->qe_identity, *signer, "QE Identity"); !ok.ok()) {
    return FailStep(in, "QE Identity signature", std::move(ok).error());
  }
  Step(in, "TCB Info and QE Identity signatures", "ECDSA P-256/SHA-256 over the exact JSON bytes");

  auto info = ParseTcbInfo(raw->tcb_info->body);
  if (!info.ok()) return FailStep(in, "TCB Info", std::move(info).error());
  auto qe = ParseQeIdentity(raw->qe_identity->body);
  if (!qe.ok()) return FailStep(in, "QE Identity", std::move(qe).error());
  if (auto ok = CheckWindow(info->issue_date, info->next_update, in.at, "TCB Info"); !ok.ok()) {
    return FailStep(in, "collateral validity", std::move(ok).error());
  }
  if (auto ok = CheckWindow(qe->issue_date, qe->next_update, in.at, "QE Identity"); !ok.ok()) {
    return FailStep(in, "collateral validity", std::move(ok).error());
  }
  Step(in, "collateral validity", "TCB Info and QE Identity current at " + TimeText(in.at));

  // --- TCB status --------------------------------------------------------------------
  auto ev = EvaluateTcb(q, qc->pck_ext, *info, *qe);
  if (!ev.ok()) return FailStep(in, "TCB status", std::move(ev).error());
  if (ev->status == TcbStatus::kRevoked) {
    return FailStep(in, "TCB status", MakeError(AttestErrc::kTcbRevoked, "TCB level " + ev->tcb_date + " is Revoked"));
  }
  Step(in, "TCB status", std::string(TcbStatusName(ev->status)) + " (level " + ev->tcb_date + ", QE " +
                             ev->qe_status + (ev->module_id.empty() ? "" : ", " + ev->module_id + " " + ev->module_status) +
                             ")");

  VerifiedEvidence::Data d = MakeData(q, *qc, *ev, *info, *qe);
  if (in.trace != nullptr) d.steps = *in.trace;
  return VerifiedEvidence(VerifierPass::Issue(), std::move(d));
}

}  // namespace cllm::attestation::tdx
