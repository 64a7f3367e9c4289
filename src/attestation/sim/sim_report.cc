// sim_report.cc — parse, sign and verify simulated TEE reports.
//
// Written as the hardware verifiers are: untrusted bytes through ByteReader,
// reserved bytes must be zero, every check appends a trace step.
#include "attestation/sim/sim_report.h"

#include <cstring>

#include "attestation/internal/trace.h"
#include "attestation/internal/verifier_pass.h"
#include "base/byte_reader.h"
#include "base/encoding.h"
#include "crypto/digest.h"

namespace cllm::attestation::sim {
namespace {

constexpr char kMagic[4] = {'C', 'L', 'S', 'M'};

void PutU32(Bytes& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void PutU64(Bytes& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
template <size_t N>
void PutArray(Bytes& out, const std::array<uint8_t, N>& a) {
  out.insert(out.end(), a.begin(), a.end());
}
void PutZeros(Bytes& out, size_t n) { out.insert(out.end(), n, 0); }

bool AllZero(ByteSpan b) {
  for (uint8_t x : b) {
    if (x != 0) return false;
  }
  return true;
}

// Wraps a ByteReader error (cannot happen after the size check, but the
// reader's contract is a Result and we never assume).
template <typename T>
AttestResult<T> Read(Result<T> r, const char* what) {
  if (!r.ok()) return MakeError(AttestErrc::kMalformed, std::string(what) + ": " + r.detail());
  return std::move(r).value();
}

AttestStatus Reserved(ByteReader& r, size_t n, const char* where) {
  CLLM_ASSIGN_OR_RETURN(ByteSpan b, Read(r.Bytes(n), where));
  if (!AllZero(b)) {
    return MakeError(AttestErrc::kReservedNonZero,
                     std::string("reserved bytes ") + where + " are not zero");
  }
  return OkStatus();
}

template <size_t N>
AttestResult<std::array<uint8_t, N>> ReadArray(ByteReader& r, const char* what) {
  return Read(r.Array<N>(), what);
}

}  // namespace

bool LooksLikeSimReport(ByteSpan evidence) {
  return evidence.size() >= sizeof(kMagic) && std::memcmp(evidence.data(), kMagic, sizeof(kMagic)) == 0;
}

AttestResult<SimReport> ParseSimReport(ByteSpan evidence) {
  if (evidence.size() != kSimReportSize) {
    return MakeError(AttestErrc::kMalformed, "sim report must be " + std::to_string(kSimReportSize) +
                                                 " bytes, found " + std::to_string(evidence.size()));
  }
  if (!LooksLikeSimReport(evidence)) {
    return MakeError(AttestErrc::kMalformed, "sim report magic is not \"CLSM\"");
  }
  ByteReader r(evidence);
  SimReport rep;
  CLLM_RETURN_IF_ERROR(Read(r.Bytes(4), "magic"));                                     // 0x000
  CLLM_ASSIGN_OR_RETURN(rep.version, Read(r.U32Le(), "version"));                      // 0x004
  if (rep.version != kSimReportVersion) {
    return MakeError(AttestErrc::kUnsupportedVersion,
                     "sim report version " + std::to_string(rep.version) + ", only 1 is defined");
  }
  CLLM_ASSIGN_OR_RETURN(rep.policy, Read(r.U64Le(), "policy"));                        // 0x008
  if ((rep.policy & ~kSimPolicyDebug) != 0) {
    return MakeError(AttestErrc::kReservedNonZero, "sim policy has reserved bits set");
  }
  CLLM_ASSIGN_OR_RETURN(rep.tcb.bootloader, Read(r.U8(), "tcb.bootloader"));           // 0x010
  CLLM_ASSIGN_OR_RETURN(rep.tcb.tee, Read(r.U8(), "tcb.tee"));
  CLLM_ASSIGN_OR_RETURN(rep.tcb.fw, Read(r.U8(), "tcb.fw"));
  CLLM_ASSIGN_OR_RETURN(rep.tcb.microcode, Read(r.U8(), "tcb.microcode"));
  CLLM_RETURN_IF_ERROR(Reserved(r, 12, "0x014..0x01F"));                               // 0x014
  CLLM_ASSIGN_OR_RETURN(rep.measurement, ReadArray<48>(r, "measurement"));              // 0x020
  CLLM_ASSIGN_OR_RETURN(rep.report_data, ReadArray<64>(r, "report_data"));              // 0x050
  CLLM_ASSIGN_OR_RETURN(rep.host_data, ReadArray<32>(r, "host_data"));                  // 0x090
  CLLM_ASSIGN_OR_RETURN(rep.platform_id, ReadArray<64>(r, "platform_id"));              // 0x0B0
  CLLM_RETURN_IF_ERROR(Reserved(r, 16, "0x0F0..0x0FF"));                               // 0x0F0
  CLLM_ASSIGN_OR_RETURN(rep.signature_algo, Read(r.U32Le(), "signature_algo"));        // 0x100
  if (rep.signature_algo != kSimSigAlgoEcdsaP384Sha384) {
    return MakeError(AttestErrc::kUnsupportedVersion,
                     "sim signature_algo " + std::to_string(rep.signature_algo) + ", only 1 is defined");
  }
  CLLM_RETURN_IF_ERROR(Reserved(r, 12, "0x104..0x10F"));                               // 0x104
  CLLM_ASSIGN_OR_RETURN(rep.signature, ReadArray<96>(r, "signature"));                  // 0x110
  return rep;
}

Bytes SerializeSimReport(const SimReport& rep) {
  Bytes out;
  out.reserve(kSimReportSize);
  out.insert(out.end(), kMagic, kMagic + sizeof(kMagic));
  PutU32(out, rep.version);
  PutU64(out, rep.policy);
  out.push_back(rep.tcb.bootloader);
  out.push_back(rep.tcb.tee);
  out.push_back(rep.tcb.fw);
  out.push_back(rep.tcb.microcode);
  PutZeros(out, 12);
  PutArray(out, rep.measurement);
  PutArray(out, rep.report_data);
  PutArray(out, rep.host_data);
  PutArray(out, rep.platform_id);
  PutZeros(out, 16);
  PutU32(out, rep.signature_algo);
  PutZeros(out, 12);
  PutArray(out, rep.signature);
  CLLM_CHECK(out.size() == kSimReportSize);
  return out;
}

std::array<uint8_t, 64> PlatformId(const crypto::PublicKey& platform_key) {
  return crypto::Sha512(platform_key.ToSpkiDer());
}

AttestResult<Bytes> SignSimReport(SimReport report, const crypto::PrivateKey& platform_key) {
  if (platform_key.type() != crypto::KeyType::kEcP384) {
    return MakeError(AttestErrc::kInternal, "sim platform key must be ECDSA P-384");
  }
  report.platform_id = PlatformId(platform_key.public_key());
  report.signature_algo = kSimSigAlgoEcdsaP384Sha384;
  Bytes bytes = SerializeSimReport(report);
  auto sig = crypto::EcdsaSign(platform_key, crypto::HashAlg::kSha384,
                               ByteSpan(bytes).first(kSimSignedSize), crypto::SigFormat::kRaw);
  if (!sig.ok()) return MakeError(AttestErrc::kInternal, "signing sim report: " + sig.detail());
  if (sig->size() != 96) return MakeError(AttestErrc::kInternal, "P-384 raw signature is not 96 bytes");
  std::memcpy(bytes.data() + kSimSignedSize, sig->data(), 96);
  return bytes;
}

AttestResult<VerifiedEvidence> VerifySimEvidence(const EvidenceInput& input) {
  // --- parse -----------------------------------------------------------------
  auto parsed = ParseSimReport(input.evidence);
  if (!parsed.ok()) return FailStep(input, "sim report structure", std::move(parsed).error());
  const SimReport& rep = *parsed;
  Step(input, "sim report structure", "368 bytes, version 1, reserved bytes zero [SIMULATED TEE]");

  // --- platform key ------------------------------------------------------------
  // The only trust anchor of the simulated TEE is a key the policy pins; the
  // report's platform_id selects which one.
  const crypto::PublicKey* key = nullptr;
  for (const auto& k : input.sim_platform_keys) {
    if (PlatformId(k) == rep.platform_id) key = &k;
  }
  if (key == nullptr) {
    std::string why = input.sim_platform_keys.empty()
                          ? "no sim platform key is pinned (policy \"sim\": {\"platform_keys\": [...]})"
                          : "platform_id " + HexEncode(rep.platform_id).substr(0, 32) +
                                "… matches none of the " + std::to_string(input.sim_platform_keys.size()) +
                                " pinned sim platform keys";
    return FailStep(input, "sim platform key pinned by policy", MakeError(AttestErrc::kChainInvalid, why));
  }
  Step(input, "sim platform key pinned by policy",
       "platform_id " + HexEncode(rep.platform_id).substr(0, 32) + "… [SIMULATED TEE]");

  // --- signature -----------------------------------------------------------
  auto sig = crypto::EcdsaVerify(*key, crypto::HashAlg::kSha384, input.evidence.first(kSimSignedSize),
                                 rep.signature, crypto::SigFormat::kRaw);
  if (!sig.ok()) {
    return FailStep(input, "sim report signature",
                    MakeError(AttestErrc::kBadSignature,
                              "ECDSA P-384/SHA-384 over bytes 0x000..0x10F does not verify: " + sig.detail()));
  }
  Step(input, "sim report signature", "ECDSA P-384/SHA-384 by the pinned platform key [SIMULATED TEE]");

  VerifiedEvidence::Data d;
  d.platform = Platform::kSim;
  d.simulated = true;
  d.measurement.assign(rep.measurement.begin(), rep.measurement.end());
  d.report_data.assign(rep.report_data.begin(), rep.report_data.end());
  d.debug = (rep.policy & kSimPolicyDebug) != 0;
  d.tcb_status = TcbStatus::kNotApplicable;
  d.tcb = {{"sim.bootloader", rep.tcb.bootloader},
           {"sim.tee", rep.tcb.tee},
           {"sim.fw", rep.tcb.fw},
           {"sim.microcode", rep.tcb.microcode}};
  d.fields = {{"version", std::to_string(rep.version)},
              {"policy", std::to_string(rep.policy)},
              {"policy.debug", d.debug ? "1" : "0"},
              {"measurement", HexEncode(rep.measurement)},
              {"report_data", HexEncode(rep.report_data)},
              {"host_data", HexEncode(rep.host_data)},
              {"platform_id", HexEncode(rep.platform_id)}};
  if (input.trace != nullptr) d.steps = *input.trace;
  return VerifiedEvidence(VerifierPass::Issue(), std::move(d));
}

}  // namespace cllm::attestation::sim
