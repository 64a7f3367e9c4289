// vek.cc — decode the AMD extensions of VCEK / VLEK certificates (spec 57230).
#include "attestation/snp/vek.h"

namespace cllm::attestation::snp {
namespace {

// DecodeIa5 parses a short-form DER IA5String (tag 0x16) of printable ASCII.
std::optional<std::string> DecodeIa5(ByteSpan der) {
  if (der.size() < 2 || der[0] != 0x16 || der[1] >= 0x80 || der[1] != der.size() - 2) return std::nullopt;
  std::string out;
  for (size_t i = 2; i < der.size(); ++i) {
    if (der[i] < 0x20 || der[i] > 0x7E) return std::nullopt;
    out.push_back(static_cast<char>(der[i]));
  }
  return out;
}

AttestStatus Spl(const crypto::Certificate& cert, const char* oid, const char* name,
                 std::optional<uint8_t>* out) {
  auto ext = cert.Extension(oid);
  if (!ext) return OkStatus();
  *out = DecodeSplInteger(*ext);
  if (!*out) {
    return MakeError(AttestErrc::kCollateralInvalid,
                     std::string("VEK certificate extension ") + name + " (" + oid +
                         ") is not a DER INTEGER in 0..255");
  }
  return OkStatus();
}

}  // namespace

std::optional<uint8_t> DecodeSplInteger(ByteSpan der) {
  // INTEGER 0..127: 02 01 vv; 128..255 needs a leading zero: 02 02 00 vv.
  if (der.size() == 3 && der[0] == 0x02 && der[1] == 0x01 && der[2] < 0x80) return der[2];
  if (der.size() == 4 && der[0] == 0x02 && der[1] == 0x02 && der[2] == 0x00 && der[3] >= 0x80) return der[3];
  return std::nullopt;
}

std::optional<Bytes> DecodeHwId(ByteSpan value) {
  // KDS has issued both encodings: the raw chip id as the extnValue contents
  // (64 bytes; 8 on Turin), and the same bytes wrapped in an OCTET STRING.
  auto raw_size_ok = [](size_t n) { return n == 64 || n == 8; };
  if (raw_size_ok(value.size())) return Bytes(value.begin(), value.end());
  if (value.size() >= 2 && value[0] == 0x04 && value[1] < 0x80 && value[1] == value.size() - 2 &&
      raw_size_ok(value[1])) {
    return Bytes(value.begin() + 2, value.end());
  }
  return std::nullopt;
}

AttestResult<VekExtensions> ParseVekExtensions(const crypto::Certificate& cert) {
  VekExtensions v;
  if (auto ext = cert.Extension(kOidProductName)) {
    v.product_name = DecodeIa5(*ext);
    if (!v.product_name) {
      return MakeError(AttestErrc::kCollateralInvalid, "VEK certificate productName is not an IA5String");
    }
  }
  CLLM_RETURN_IF_ERROR(Spl(cert, kOidBlSpl, "blSPL", &v.bl_spl));
  CLLM_RETURN_IF_ERROR(Spl(cert, kOidTeeSpl, "teeSPL", &v.tee_spl));
  CLLM_RETURN_IF_ERROR(Spl(cert, kOidSnpSpl, "snpSPL", &v.snp_spl));
  CLLM_RETURN_IF_ERROR(Spl(cert, kOidUcodeSpl, "ucodeSPL", &v.ucode_spl));
  CLLM_RETURN_IF_ERROR(Spl(cert, kOidFmcSpl, "fmcSPL", &v.fmc_spl));
  if (auto ext = cert.Extension(kOidHwId)) {
    v.hw_id = DecodeHwId(*ext);
    if (!v.hw_id) {
      return MakeError(AttestErrc::kCollateralInvalid,
                       "VEK certificate hwID is " + std::to_string(ext->size()) +
                           " bytes: neither a raw 64/8-byte chip id nor an OCTET STRING of one");
    }
  }
  if (auto ext = cert.Extension(kOidCspId)) v.csp_id = DecodeIa5(*ext);
  return v;
}

}  // namespace cllm::attestation::snp
