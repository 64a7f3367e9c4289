// report.cc — parse the SEV-SNP ATTESTATION_REPORT (layout in report.h).
//
// Every byte of the report is accounted for: a field, or a reserved range
// that must be zero (56860: "Reserved ... MBZ"). Reserved ranges depend on the
// version: v2 reserves the CPUID bytes, v2/v3 reserve the mitigation vectors.
#include "attestation/snp/report.h"

#include <cstdio>

#include "base/byte_reader.h"

namespace cllm::attestation::snp {
namespace {

// Hex prints "0x" and at least `width` upper-case hex digits.
std::string Hex(uint64_t v, int width = 3) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%0*llX", width, static_cast<unsigned long long>(v));
  return buf;
}

// Read turns a ByteReader error into kMalformed (cannot happen after the size
// check, but the reader's contract is a Result and we never assume).
template <typename T>
AttestResult<T> Read(Result<T> r, const char* what) {
  if (!r.ok()) return MakeError(AttestErrc::kMalformed, std::string(what) + ": " + r.detail());
  return std::move(r).value();
}

template <size_t N>
AttestResult<std::array<uint8_t, N>> ReadArray(ByteReader& r, const char* what) {
  return Read(r.Array<N>(), what);
}

// Reserved consumes `n` bytes that must be zero; the error names the first
// non-zero byte's offset.
AttestStatus Reserved(ByteReader& r, size_t n) {
  const size_t start = r.offset();
  CLLM_ASSIGN_OR_RETURN(ByteSpan b, Read(r.Bytes(n), "reserved"));
  for (size_t i = 0; i < b.size(); ++i) {
    if (b[i] != 0) {
      return MakeError(AttestErrc::kReservedNonZero,
                       "reserved byte at offset " + Hex(start + i) + " (range " + Hex(start) + ".." +
                           Hex(start + n - 1) + ") is " + Hex(b[i], 2) + ", must be zero");
    }
  }
  return OkStatus();
}

// ReadSigComponent reads one 72-byte little-endian R or S: the low 48 bytes
// are the P-384 integer, the high 24 are zero (56860 table "ECDSA P-384 with
// SHA-384 Signature"). Returns the 48 bytes big-endian.
AttestResult<std::array<uint8_t, 48>> ReadSigComponent(ByteReader& r, const char* what) {
  CLLM_ASSIGN_OR_RETURN(auto le, ReadArray<48>(r, what));
  CLLM_RETURN_IF_ERROR(Reserved(r, 24));
  std::array<uint8_t, 48> be;
  for (size_t i = 0; i < 48; ++i) be[i] = le[47 - i];
  return be;
}

}  // namespace

const char* ProductName(Product p) {
  switch (p) {
    case Product::kMilan: return "Milan";
    case Product::kGenoa: return "Genoa";
    case Product::kTurin: return "Turin";
  }
  return "?";
}

std::optional<Product> ParseProductName(std::string_view name) {
  // KDS productName values are "<Product>" or "<Product>-<stepping>".
  std::string_view base = name.substr(0, name.find('-'));
  if (base == "Milan") return Product::kMilan;
  if (base == "Genoa") return Product::kGenoa;
  if (base == "Turin") return Product::kTurin;
  return std::nullopt;
}

std::optional<Product> ProductFromCpuid(uint8_t family, uint8_t model) {
  if (family == 0x19) {
    if (model <= 0x0F) return Product::kMilan;
    if (model <= 0x1F || (model >= 0xA0 && model <= 0xAF)) return Product::kGenoa;  // Genoa, Bergamo/Siena
  }
  if (family == 0x1A && model <= 0x1F) return Product::kTurin;
  return std::nullopt;
}

TcbVersion DecodeTcb(uint64_t raw, Product product) {
  auto byte = [raw](int i) { return static_cast<uint8_t>(raw >> (8 * i)); };
  TcbVersion t;
  t.raw = raw;
  if (product == Product::kTurin) {
    t.fmc = byte(0);
    t.bootloader = byte(1);
    t.tee = byte(2);
    t.snp = byte(3);
  } else {
    t.bootloader = byte(0);
    t.tee = byte(1);
    t.snp = byte(6);
  }
  t.microcode = byte(7);
  return t;
}

std::string TcbHex(uint64_t raw) {
  std::string out;
  char buf[3];
  for (int i = 0; i < 8; ++i) {
    std::snprintf(buf, sizeof(buf), "%02x", static_cast<unsigned>((raw >> (8 * i)) & 0xFF));
    out += buf;
  }
  return out;
}

AttestResult<Report> ParseReport(ByteSpan bytes) {
  if (bytes.size() != kReportSize) {
    return MakeError(AttestErrc::kMalformed, "SNP ATTESTATION_REPORT must be " + std::to_string(kReportSize) +
                                                 " bytes, found " + std::to_string(bytes.size()));
  }
  ByteReader r(bytes);
  Report rep;
  CLLM_ASSIGN_OR_RETURN(rep.version, Read(r.U32Le(), "VERSION"));                       // 0x000
  if (rep.version != 2 && rep.version != 3 && rep.version != 5) {
    return MakeError(AttestErrc::kUnsupportedVersion,
                     "ATTESTATION_REPORT VERSION is " + std::to_string(rep.version) + ", accepted: 2, 3, 5");
  }
  CLLM_ASSIGN_OR_RETURN(rep.guest_svn, Read(r.U32Le(), "GUEST_SVN"));                   // 0x004
  CLLM_ASSIGN_OR_RETURN(rep.policy, Read(r.U64Le(), "POLICY"));                         // 0x008
  CLLM_ASSIGN_OR_RETURN(rep.family_id, ReadArray<16>(r, "FAMILY_ID"));                  // 0x010
  CLLM_ASSIGN_OR_RETURN(rep.image_id, ReadArray<16>(r, "IMAGE_ID"));                    // 0x020
  CLLM_ASSIGN_OR_RETURN(rep.vmpl, Read(r.U32Le(), "VMPL"));                             // 0x030
  CLLM_ASSIGN_OR_RETURN(rep.signature_algo, Read(r.U32Le(), "SIGNATURE_ALGO"));         // 0x034
  if (rep.signature_algo != kSigAlgoEcdsaP384Sha384) {
    return MakeError(AttestErrc::kUnsupportedVersion, "SIGNATURE_ALGO is " + std::to_string(rep.signature_algo) +
                                                          ", only 1 (ECDSA P-384 with SHA-384) is defined");
  }
  CLLM_ASSIGN_OR_RETURN(rep.current_tcb, Read(r.U64Le(), "CURRENT_TCB"));               // 0x038
  CLLM_ASSIGN_OR_RETURN(rep.platform_info, Read(r.U64Le(), "PLATFORM_INFO"));           // 0x040
  CLLM_ASSIGN_OR_RETURN(rep.key_info, Read(r.U32Le(), "KEY_INFO"));                     // 0x048
  if ((rep.key_info >> 5) != 0) {
    return MakeError(AttestErrc::kReservedNonZero,
                     "reserved KEY_INFO bits 31:5 at offset 0x048 are not zero (KEY_INFO " +
                         Hex(rep.key_info, 8) + ")");
  }
  const uint32_t signing_key = rep.signing_key();
  if (signing_key != kSigningKeyVcek && signing_key != kSigningKeyVlek && signing_key != kSigningKeyNone) {
    return MakeError(AttestErrc::kUnsupportedVersion,
                     "KEY_INFO.SIGNING_KEY is " + std::to_string(signing_key) + " (reserved; 0 VCEK, 1 VLEK, 7 none)");
  }
  CLLM_RETURN_IF_ERROR(Reserved(r, 4));                                                 // 0x04C
  CLLM_ASSIGN_OR_RETURN(rep.report_data, ReadArray<64>(r, "REPORT_DATA"));              // 0x050
  CLLM_ASSIGN_OR_RETURN(rep.measurement, ReadArray<48>(r, "MEASUREMENT"));              // 0x090
  CLLM_ASSIGN_OR_RETURN(rep.host_data, ReadArray<32>(r, "HOST_DATA"));                  // 0x0C0
  CLLM_ASSIGN_OR_RETURN(rep.id_key_digest, ReadArray<48>(r, "ID_KEY_DIGEST"));          // 0x0E0
  CLLM_ASSIGN_OR_RETURN(rep.author_key_digest, ReadArray<48>(r, "AUTHOR_KEY_DIGEST"));  // 0x110
  CLLM_ASSIGN_OR_RETURN(rep.report_id, ReadArray<32>(r, "REPORT_ID"));                  // 0x140
  CLLM_ASSIGN_OR_RETURN(rep.report_id_ma, ReadArray<32>(r, "REPORT_ID_MA"));            // 0x160
  CLLM_ASSIGN_OR_RETURN(rep.reported_tcb, Read(r.U64Le(), "REPORTED_TCB"));             // 0x180
  if (rep.has_cpuid()) {
    CLLM_ASSIGN_OR_RETURN(rep.cpuid_fam_id, Read(r.U8(), "CPUID_FAM_ID"));              // 0x188
    CLLM_ASSIGN_OR_RETURN(rep.cpuid_mod_id, Read(r.U8(), "CPUID_MOD_ID"));              // 0x189
    CLLM_ASSIGN_OR_RETURN(rep.cpuid_step, Read(r.U8(), "CPUID_STEP"));                  // 0x18A
    CLLM_RETURN_IF_ERROR(Reserved(r, 0x1A0 - 0x18B));                                   // 0x18B
  } else {
    CLLM_RETURN_IF_ERROR(Reserved(r, 0x1A0 - 0x188));                                   // 0x188
  }
  CLLM_ASSIGN_OR_RETURN(rep.chip_id, ReadArray<64>(r, "CHIP_ID"));                      // 0x1A0
  CLLM_ASSIGN_OR_RETURN(rep.committed_tcb, Read(r.U64Le(), "COMMITTED_TCB"));           // 0x1E0
  CLLM_ASSIGN_OR_RETURN(rep.current_build, Read(r.U8(), "CURRENT_BUILD"));              // 0x1E8
  CLLM_ASSIGN_OR_RETURN(rep.current_minor, Read(r.U8(), "CURRENT_MINOR"));              // 0x1E9
  CLLM_ASSIGN_OR_RETURN(rep.current_major, Read(r.U8(), "CURRENT_MAJOR"));              // 0x1EA
  CLLM_RETURN_IF_ERROR(Reserved(r, 1));                                                 // 0x1EB
  CLLM_ASSIGN_OR_RETURN(rep.committed_build, Read(r.U8(), "COMMITTED_BUILD"));          // 0x1EC
  CLLM_ASSIGN_OR_RETURN(rep.committed_minor, Read(r.U8(), "COMMITTED_MINOR"));          // 0x1ED
  CLLM_ASSIGN_OR_RETURN(rep.committed_major, Read(r.U8(), "COMMITTED_MAJOR"));          // 0x1EE
  CLLM_RETURN_IF_ERROR(Reserved(r, 1));                                                 // 0x1EF
  CLLM_ASSIGN_OR_RETURN(rep.launch_tcb, Read(r.U64Le(), "LAUNCH_TCB"));                 // 0x1F0
  if (rep.version >= 5) {
    CLLM_ASSIGN_OR_RETURN(rep.launch_mit_vector, Read(r.U64Le(), "LAUNCH_MIT_VECTOR"));   // 0x1F8
    CLLM_ASSIGN_OR_RETURN(rep.current_mit_vector, Read(r.U64Le(), "CURRENT_MIT_VECTOR")); // 0x200
  }
  CLLM_RETURN_IF_ERROR(Reserved(r, kSignedSize - r.offset()));                          // 0x1F8 / 0x208
  CLLM_ASSIGN_OR_RETURN(rep.sig_r, ReadSigComponent(r, "SIGNATURE.R"));                 // 0x2A0
  CLLM_ASSIGN_OR_RETURN(rep.sig_s, ReadSigComponent(r, "SIGNATURE.S"));                 // 0x2E8
  CLLM_RETURN_IF_ERROR(Reserved(r, kReportSize - r.offset()));                          // 0x330
  return rep;
}

Bytes SerializeReport(const Report& r) {
  Bytes out;
  out.reserve(kReportSize);
  auto put = [&out](const auto& a) { out.insert(out.end(), a.begin(), a.end()); };
  auto zeros = [&out](size_t until) { out.resize(until, 0); };
  PutU32Le(out, r.version);
  PutU32Le(out, r.guest_svn);
  PutU64Le(out, r.policy);
  put(r.family_id);
  put(r.image_id);
  PutU32Le(out, r.vmpl);
  PutU32Le(out, r.signature_algo);
  PutU64Le(out, r.current_tcb);
  PutU64Le(out, r.platform_info);
  PutU32Le(out, r.key_info);
  zeros(0x050);
  put(r.report_data);
  put(r.measurement);
  put(r.host_data);
  put(r.id_key_digest);
  put(r.author_key_digest);
  put(r.report_id);
  put(r.report_id_ma);
  PutU64Le(out, r.reported_tcb);
  if (r.has_cpuid()) {
    out.push_back(r.cpuid_fam_id);
    out.push_back(r.cpuid_mod_id);
    out.push_back(r.cpuid_step);
  }
  zeros(0x1A0);
  put(r.chip_id);
  PutU64Le(out, r.committed_tcb);
  out.insert(out.end(), {r.current_build, r.current_minor, r.current_major, 0});
  out.insert(out.end(), {r.committed_build, r.committed_minor, r.committed_major, 0});
  PutU64Le(out, r.launch_tcb);
  if (r.version >= 5) {
    PutU64Le(out, r.launch_mit_vector);
    PutU64Le(out, r.current_mit_vector);
  }
  zeros(kSignedSize);
  out.insert(out.end(), r.sig_r.rbegin(), r.sig_r.rend());  // big-endian → little-endian
  zeros(kSignedSize + 72);
  out.insert(out.end(), r.sig_s.rbegin(), r.sig_s.rend());
  zeros(kReportSize);
  return out;
}

bool LooksLikeReport(ByteSpan bytes) {
  if (bytes.size() < kReportSize) return false;
  ByteReader r(bytes);
  auto version = r.U32Le();
  if (!version.ok() || (*version != 2 && *version != 3 && *version != 5)) return false;
  if (!r.SeekTo(0x034).ok()) return false;
  auto algo = r.U32Le();
  if (!algo.ok() || *algo != kSigAlgoEcdsaP384Sha384) return false;
  if (!r.SeekTo(0x04C).ok()) return false;
  auto reserved = r.U32Le();
  return reserved.ok() && *reserved == 0;
}

}  // namespace cllm::attestation::snp
