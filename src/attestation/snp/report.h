// report.h — the SEV-SNP ATTESTATION_REPORT: layout, parsing, TCB decoding.
//
// AMD SEV-SNP Firmware ABI specification (56860), table "ATTESTATION_REPORT
// Structure" (rev 1.55+: versions 2 and 3; rev 1.57+: version 5). All
// integers are little-endian. The report is 0x4A0 = 1184 bytes:
//
//   0x000  4 VERSION (2, 3 or 5)      0x0E0 48 ID_KEY_DIGEST
//   0x004  4 GUEST_SVN                0x110 48 AUTHOR_KEY_DIGEST
//   0x008  8 POLICY                   0x140 32 REPORT_ID
//   0x010 16 FAMILY_ID                0x160 32 REPORT_ID_MA
//   0x020 16 IMAGE_ID                 0x180  8 REPORTED_TCB
//   0x030  4 VMPL                     0x188  1 CPUID_FAM_ID   (v3+; reserved in v2)
//   0x034  4 SIGNATURE_ALGO (1)       0x189  1 CPUID_MOD_ID   (v3+)
//   0x038  8 CURRENT_TCB              0x18A  1 CPUID_STEP     (v3+)
//   0x040  8 PLATFORM_INFO            0x18B 21 reserved
//   0x048  4 KEY_INFO: bit 0 AUTHOR_KEY_EN, bit 1 MASK_CHIP_KEY,
//                      bits 4:2 SIGNING_KEY (0 VCEK, 1 VLEK, 7 none), 31:5 reserved
//   0x04C  4 reserved                 0x1A0 64 CHIP_ID
//   0x050 64 REPORT_DATA              0x1E0  8 COMMITTED_TCB
//   0x090 48 MEASUREMENT              0x1E8  3 CURRENT_BUILD/MINOR/MAJOR, 0x1EB reserved
//   0x0C0 32 HOST_DATA                0x1EC  3 COMMITTED_BUILD/MINOR/MAJOR, 0x1EF reserved
//                                     0x1F0  8 LAUNCH_TCB
//                                     0x1F8  8 LAUNCH_MIT_VECTOR  (v5; reserved before)
//                                     0x200  8 CURRENT_MIT_VECTOR (v5; reserved before)
//                                     0x208 .. 0x29F reserved
//   0x2A0 512 SIGNATURE: R 72 bytes, S 72 bytes (little-endian, zero-extended
//             from 48), 0x330 .. 0x49F reserved
//
// The signature is ECDSA P-384 with SHA-384 over bytes [0x000, 0x2A0).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "attestation/errors.h"
#include "base/bytes.h"

namespace cllm::attestation::snp {

inline constexpr size_t kReportSize = 0x4A0;
inline constexpr size_t kSignedSize = 0x2A0;   // bytes covered by the signature
inline constexpr uint32_t kSigAlgoEcdsaP384Sha384 = 1;

// KEY_INFO.SIGNING_KEY values.
inline constexpr uint32_t kSigningKeyVcek = 0;
inline constexpr uint32_t kSigningKeyVlek = 1;
inline constexpr uint32_t kSigningKeyNone = 7;

// GUEST_POLICY bits (56860 table "Guest Policy Structure").
inline constexpr uint64_t kPolicySmt = 1ull << 16;
inline constexpr uint64_t kPolicyMigrateMa = 1ull << 18;
inline constexpr uint64_t kPolicyDebug = 1ull << 19;
inline constexpr uint64_t kPolicySingleSocket = 1ull << 20;
inline constexpr uint64_t kPolicyCxlAllow = 1ull << 21;
inline constexpr uint64_t kPolicyMemAes256Xts = 1ull << 22;
inline constexpr uint64_t kPolicyRaplDis = 1ull << 23;
inline constexpr uint64_t kPolicyCiphertextHiding = 1ull << 24;
inline constexpr uint64_t kPolicyPageSwapDisable = 1ull << 25;

// The processor generations with an AMD root (ARK) of their own.
enum class Product { kMilan, kGenoa, kTurin };
const char* ProductName(Product p);  // "Milan", "Genoa", "Turin"
// ParseProductName accepts "Milan", "Genoa", "Turin" and stepping-suffixed
// forms from the VCEK productName extension ("Milan-B0").
std::optional<Product> ParseProductName(std::string_view name);
// ProductFromCpuid maps CPUID family/model (report v3+) to a product:
// family 0x19 models 0x00-0x0F Milan, 0x10-0x1F and 0xA0-0xAF Genoa;
// family 0x1A models 0x00-0x1F Turin. nullopt for anything else.
std::optional<Product> ProductFromCpuid(uint8_t family, uint8_t model);

// TcbVersion is one decoded TCB_VERSION (56860 table "TCB_VERSION").
// Milan/Genoa: byte 0 BOOT_LOADER, 1 TEE, 2..5 reserved, 6 SNP, 7 MICROCODE.
// Turin:       byte 0 FMC, 1 BOOT_LOADER, 2 TEE, 3 SNP, 4..6 reserved, 7 MICROCODE.
struct TcbVersion {
  uint64_t raw = 0;
  std::optional<uint8_t> fmc;  // Turin only
  uint8_t bootloader = 0;
  uint8_t tee = 0;
  uint8_t snp = 0;
  uint8_t microcode = 0;
};
TcbVersion DecodeTcb(uint64_t raw, Product product);
// TcbHex prints the 8 bytes of a TCB_VERSION in memory order ("0200000000000544").
std::string TcbHex(uint64_t raw);

struct Report {
  uint32_t version = 0;
  uint32_t guest_svn = 0;
  uint64_t policy = 0;
  std::array<uint8_t, 16> family_id{};
  std::array<uint8_t, 16> image_id{};
  uint32_t vmpl = 0;
  uint32_t signature_algo = 0;
  uint64_t current_tcb = 0;
  uint64_t platform_info = 0;
  uint32_t key_info = 0;
  std::array<uint8_t, 64> report_data{};
  std::array<uint8_t, 48> measurement{};
  std::array<uint8_t, 32> host_data{};
  std::array<uint8_t, 48> id_key_digest{};
  std::array<uint8_t, 48> author_key_digest{};
  std::array<uint8_t, 32> report_id{};
  std::array<uint8_t, 32> report_id_ma{};
  uint64_t reported_tcb = 0;
  uint8_t cpuid_fam_id = 0;  // v3+
  uint8_t cpuid_mod_id = 0;  // v3+
  uint8_t cpuid_step = 0;    // v3+
  std::array<uint8_t, 64> chip_id{};
  uint64_t committed_tcb = 0;
  uint8_t current_build = 0, current_minor = 0, current_major = 0;
  uint8_t committed_build = 0, committed_minor = 0, committed_major = 0;
  uint64_t launch_tcb = 0;
  uint64_t launch_mit_vector = 0;   // v5
  uint64_t current_mit_vector = 0;  // v5
  // The significant 48 bytes of R and S, converted to big-endian.
  std::array<uint8_t, 48> sig_r{};
  std::array<uint8_t, 48> sig_s{};

  bool author_key_en() const { return (key_info & 1u) != 0; }
  bool mask_chip_key() const { return (key_info & 2u) != 0; }
  uint32_t signing_key() const { return (key_info >> 2) & 7u; }
  bool has_cpuid() const { return version >= 3; }
};

// ParseReport decodes exactly one 1184-byte report. Errors: kMalformed (size),
// kUnsupportedVersion (VERSION not 2/3/5, SIGNATURE_ALGO not 1, SIGNING_KEY
// not VCEK/VLEK/none), kReservedNonZero (any reserved byte, KEY_INFO bit or
// the high 24 bytes of R or S not zero; the detail names the offset).
[[nodiscard]] AttestResult<Report> ParseReport(ByteSpan bytes);

// SerializeReport encodes `report` in the layout above, reserved bytes zero
// (tests, fuzz seeds and the JSON bundle reader; the signature is the
// stored R and S, not recomputed).
Bytes SerializeReport(const Report& report);

// LooksLikeReport is the conservative sniff for `--platform auto`: at least
// 1184 bytes, VERSION 2/3/5, SIGNATURE_ALGO 1, the reserved word at 0x04C zero.
bool LooksLikeReport(ByteSpan bytes);

}  // namespace cllm::attestation::snp
