// fields.cc — map a verified ATTESTATION_REPORT to VerifiedEvidence::Data.
//
// Names are the spec's field names in snake_case; numbers are decimal,
// bit fields and identifiers hex ("0x30000"), byte strings lowercase hex,
// TCB_VERSION values the 8 bytes in memory order ("0300000000000873").
#include "attestation/snp/fields.h"

#include <cstdio>

#include "base/encoding.h"

namespace cllm::attestation::snp {
namespace {

std::string HexNum(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

const char* Bit(uint64_t v, uint64_t mask) { return (v & mask) != 0 ? "1" : "0"; }

std::string Version(uint8_t major, uint8_t minor, uint8_t build) {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(build);
}

}  // namespace

VerifiedEvidence::Data BuildData(const Report& r, Product product, CertKind signing_key) {
  VerifiedEvidence::Data d;
  d.platform = Platform::kSnp;
  d.simulated = false;
  d.measurement.assign(r.measurement.begin(), r.measurement.end());
  d.report_data.assign(r.report_data.begin(), r.report_data.end());
  // POLICY.DEBUG lets the hypervisor decrypt guest memory (SNP_DBG_DECRYPT).
  d.debug = (r.policy & kPolicyDebug) != 0;
  // SNP has no signed TCB status (AMD publishes no TCB-info collateral): the
  // report says which SVNs the firmware runs, not whether they are current.
  // Never UpToDate without a source; policies pin floors with min_tcb.
  d.tcb_status = TcbStatus::kNotEvaluated;

  // The VEK certifies REPORTED_TCB (checked equal), so floors apply to it
  // under the short names. COMMITTED_TCB (the anti-rollback floor the
  // firmware will not go below) and LAUNCH_TCB (at guest launch) are signed
  // in the same report and exposed for floors under their own prefixes.
  auto add = [&](const std::string& prefix, uint64_t raw) {
    const TcbVersion tcb = DecodeTcb(raw, product);
    d.tcb[prefix + "bootloader"] = tcb.bootloader;
    d.tcb[prefix + "tee"] = tcb.tee;
    d.tcb[prefix + "snp"] = tcb.snp;
    d.tcb[prefix + "microcode"] = tcb.microcode;
    if (tcb.fmc) d.tcb[prefix + "fmc"] = *tcb.fmc;
  };
  add("snp.", r.reported_tcb);
  add("snp.committed_tcb.", r.committed_tcb);
  add("snp.launch_tcb.", r.launch_tcb);

  auto& f = d.fields;
  f["version"] = std::to_string(r.version);
  f["guest_svn"] = std::to_string(r.guest_svn);
  f["policy"] = HexNum(r.policy);
  f["policy.abi_minor"] = std::to_string(r.policy & 0xFF);
  f["policy.abi_major"] = std::to_string((r.policy >> 8) & 0xFF);
  f["policy.smt"] = Bit(r.policy, kPolicySmt);
  f["policy.migrate_ma"] = Bit(r.policy, kPolicyMigrateMa);
  f["policy.debug"] = Bit(r.policy, kPolicyDebug);
  f["policy.single_socket"] = Bit(r.policy, kPolicySingleSocket);
  f["policy.cxl_allow"] = Bit(r.policy, kPolicyCxlAllow);
  f["policy.mem_aes_256_xts"] = Bit(r.policy, kPolicyMemAes256Xts);
  f["policy.rapl_dis"] = Bit(r.policy, kPolicyRaplDis);
  f["policy.ciphertext_hiding"] = Bit(r.policy, kPolicyCiphertextHiding);
  f["policy.page_swap_disable"] = Bit(r.policy, kPolicyPageSwapDisable);
  f["family_id"] = HexEncode(r.family_id);
  f["image_id"] = HexEncode(r.image_id);
  f["vmpl"] = std::to_string(r.vmpl);
  f["signature_algo"] = std::to_string(r.signature_algo);
  f["current_tcb"] = TcbHex(r.current_tcb);
  f["reported_tcb"] = TcbHex(r.reported_tcb);
  f["committed_tcb"] = TcbHex(r.committed_tcb);
  f["launch_tcb"] = TcbHex(r.launch_tcb);
  // PLATFORM_INFO (56860 table "PLATFORM_INFO Field").
  f["platform_info"] = HexNum(r.platform_info);
  f["platform_info.smt_en"] = Bit(r.platform_info, 1u << 0);
  f["platform_info.tsme_en"] = Bit(r.platform_info, 1u << 1);
  f["platform_info.ecc_en"] = Bit(r.platform_info, 1u << 2);
  f["platform_info.rapl_dis"] = Bit(r.platform_info, 1u << 3);
  f["platform_info.ciphertext_hiding_en"] = Bit(r.platform_info, 1u << 4);
  f["platform_info.alias_check_complete"] = Bit(r.platform_info, 1u << 5);
  f["author_key_en"] = r.author_key_en() ? "1" : "0";
  f["mask_chip_key"] = r.mask_chip_key() ? "1" : "0";
  f["signing_key"] = signing_key == CertKind::kVlek ? "vlek" : "vcek";
  f["measurement"] = HexEncode(r.measurement);
  f["report_data"] = HexEncode(r.report_data);
  f["host_data"] = HexEncode(r.host_data);
  f["id_key_digest"] = HexEncode(r.id_key_digest);
  f["author_key_digest"] = HexEncode(r.author_key_digest);
  f["report_id"] = HexEncode(r.report_id);
  f["report_id_ma"] = HexEncode(r.report_id_ma);
  f["chip_id"] = HexEncode(r.chip_id);
  f["current_version"] = Version(r.current_major, r.current_minor, r.current_build);
  f["committed_version"] = Version(r.committed_major, r.committed_minor, r.committed_build);
  f["product"] = ProductName(product);
  if (r.has_cpuid()) {
    f["cpuid_fam_id"] = HexNum(r.cpuid_fam_id);
    f["cpuid_mod_id"] = HexNum(r.cpuid_mod_id);
    f["cpuid_step"] = std::to_string(r.cpuid_step);
  }
  if (r.version >= 5) {
    f["launch_mit_vector"] = HexNum(r.launch_mit_vector);
    f["current_mit_vector"] = HexNum(r.current_mit_vector);
  }
  return d;
}

}  // namespace cllm::attestation::snp
