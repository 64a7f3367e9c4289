// pck.cc — a minimal DER walker for the PCK certificate's SGX extensions.
//
// The certificate's signature has been checked before these values are
// trusted, but the parser still treats them as hostile: definite lengths
// only, every length bounded by its parent.
#include "attestation/tdx/pck.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "base/byte_reader.h"

namespace cllm::attestation::tdx {
namespace {

constexpr uint8_t kTagInteger = 0x02;
constexpr uint8_t kTagOctetString = 0x04;
constexpr uint8_t kTagOid = 0x06;
constexpr uint8_t kTagEnumerated = 0x0A;
constexpr uint8_t kTagSequence = 0x30;

// DER content octets of OID 1.2.840.113741.1.13.1.
constexpr uint8_t kSgxOidPrefix[] = {0x2A, 0x86, 0x48, 0x86, 0xF8, 0x4D, 0x01, 0x0D, 0x01};

Error<AttestErrc> Bad(const std::string& what) {
  return MakeError(AttestErrc::kMalformed, "PCK SGX extension: " + what);
}

struct Tlv {
  uint8_t tag = 0;
  ByteSpan value;
};

// Reads one TLV (single-byte tag, definite length up to 4 length bytes).
AttestResult<Tlv> ReadTlv(ByteReader& r) {
  auto tag = r.U8();
  auto len0 = tag.ok() ? r.U8() : Result<uint8_t>(tag.error());
  if (!len0.ok()) return Bad("truncated TLV header");
  uint64_t len = *len0;
  if (len & 0x80) {
    const int n = len & 0x7F;
    if (n == 0 || n > 4) return Bad("unsupported length encoding");
    len = 0;
    for (int i = 0; i < n; ++i) {
      auto b = r.U8();
      if (!b.ok()) return Bad("truncated length");
      len = (len << 8) | *b;
    }
  }
  auto value = r.Bytes(len);
  if (!value.ok()) return Bad("value runs past its container: " + value.detail());
  return Tlv{*tag, *value};
}

AttestResult<Tlv> Expect(ByteReader& r, uint8_t tag, const char* what) {
  CLLM_ASSIGN_OR_RETURN(Tlv t, ReadTlv(r));
  if (t.tag != tag) return Bad(std::string(what) + ": unexpected tag " + std::to_string(t.tag));
  return t;
}

// Small non-negative INTEGER (SVNs are 0..65535).
AttestResult<uint32_t> SmallInt(ByteSpan v, const char* what) {
  if (v.empty() || v.size() > 3 || (v[0] & 0x80)) return Bad(std::string(what) + ": not a small unsigned INTEGER");
  uint32_t x = 0;
  for (uint8_t b : v) x = (x << 8) | b;
  return x;
}

// Returns the arc after the SGX prefix: {1} for .1, {2,5} for .2.5; empty if
// the OID is not under the prefix or an arc is multi-byte.
std::vector<uint8_t> ArcsAfterPrefix(ByteSpan oid) {
  if (oid.size() <= sizeof(kSgxOidPrefix) ||
      std::memcmp(oid.data(), kSgxOidPrefix, sizeof(kSgxOidPrefix)) != 0) {
    return {};
  }
  std::vector<uint8_t> arcs(oid.begin() + sizeof(kSgxOidPrefix), oid.end());
  if (std::any_of(arcs.begin(), arcs.end(), [](uint8_t a) { return (a & 0x80) != 0; })) return {};
  return arcs;
}

template <size_t N>
AttestStatus Fixed(ByteSpan v, std::array<uint8_t, N>& out, const char* what) {
  if (v.size() != N) return Bad(std::string(what) + " must be " + std::to_string(N) + " bytes");
  std::memcpy(out.data(), v.data(), N);
  return OkStatus();
}

AttestStatus ParseTcb(ByteSpan der, PckExtensions& out) {
  ByteReader r(der);
  uint32_t seen = 0;  // bit i set when component i (1..18) was present
  while (!r.empty()) {
    CLLM_ASSIGN_OR_RETURN(Tlv entry, Expect(r, kTagSequence, "TCB entry"));
    ByteReader e(entry.value);
    CLLM_ASSIGN_OR_RETURN(Tlv oid, Expect(e, kTagOid, "TCB entry OID"));
    CLLM_ASSIGN_OR_RETURN(Tlv val, ReadTlv(e));
    auto arcs = ArcsAfterPrefix(oid.value);
    if (arcs.size() != 2 || arcs[0] != 2 || arcs[1] < 1 || arcs[1] > 18) continue;  // unknown: ignore
    const uint8_t n = arcs[1];
    if (seen & (1u << n)) return Bad("duplicate TCB component " + std::to_string(n));
    seen |= 1u << n;
    if (n <= 16) {
      if (val.tag != kTagInteger) return Bad("TCB component is not an INTEGER");
      CLLM_ASSIGN_OR_RETURN(uint32_t svn, SmallInt(val.value, "TCB component"));
      if (svn > 255) return Bad("TCB component SVN above 255");
      out.sgx_tcb_comp_svn[n - 1] = static_cast<uint8_t>(svn);
    } else if (n == 17) {
      if (val.tag != kTagInteger) return Bad("PCESVN is not an INTEGER");
      CLLM_ASSIGN_OR_RETURN(uint32_t svn, SmallInt(val.value, "PCESVN"));
      if (svn > 0xFFFF) return Bad("PCESVN above 65535");
      out.pce_svn = static_cast<uint16_t>(svn);
    } else {
      if (val.tag != kTagOctetString) return Bad("CPUSVN is not an OCTET STRING");
      CLLM_RETURN_IF_ERROR(Fixed(val.value, out.cpu_svn, "CPUSVN"));
    }
  }
  if (seen != 0x7FFFEu) return Bad("TCB does not carry all 16 components, PCESVN and CPUSVN");
  return OkStatus();
}

}  // namespace

AttestResult<PckExtensions> ParsePckExtensions(ByteSpan der) {
  ByteReader outer(der);
  CLLM_ASSIGN_OR_RETURN(Tlv top, Expect(outer, kTagSequence, "extension value"));
  if (!outer.empty()) return Bad("trailing bytes after the extension SEQUENCE");
  PckExtensions out;
  bool have_tcb = false, have_pceid = false, have_fmspc = false;
  ByteReader r(top.value);
  while (!r.empty()) {
    CLLM_ASSIGN_OR_RETURN(Tlv entry, Expect(r, kTagSequence, "entry"));
    ByteReader e(entry.value);
    CLLM_ASSIGN_OR_RETURN(Tlv oid, Expect(e, kTagOid, "entry OID"));
    CLLM_ASSIGN_OR_RETURN(Tlv val, ReadTlv(e));
    auto arcs = ArcsAfterPrefix(oid.value);
    if (arcs.size() != 1) continue;
    switch (arcs[0]) {
      case 2:
        if (have_tcb || val.tag != kTagSequence) return Bad("TCB must appear once, as a SEQUENCE");
        CLLM_RETURN_IF_ERROR(ParseTcb(val.value, out));
        have_tcb = true;
        break;
      case 3:
        if (have_pceid || val.tag != kTagOctetString) return Bad("PCE-ID must appear once, as an OCTET STRING");
        CLLM_RETURN_IF_ERROR(Fixed(val.value, out.pce_id, "PCE-ID"));
        have_pceid = true;
        break;
      case 4:
        if (have_fmspc || val.tag != kTagOctetString) return Bad("FMSPC must appear once, as an OCTET STRING");
        CLLM_RETURN_IF_ERROR(Fixed(val.value, out.fmspc, "FMSPC"));
        have_fmspc = true;
        break;
      case 5:
        if (val.tag != kTagEnumerated) return Bad("SGX Type is not ENUMERATED");
        break;
      default:
        break;  // PPID, PlatformInstanceID, Configuration: not used
    }
  }
  if (!have_tcb || !have_pceid || !have_fmspc) return Bad("TCB, PCE-ID or FMSPC missing");
  return out;
}

AttestResult<PckExtensions> PckExtensionsOf(const crypto::Certificate& pck) {
  auto ext = pck.Extension(kSgxExtensionsOid);
  if (!ext) return Bad("PCK certificate has no extension " + std::string(kSgxExtensionsOid));
  return ParsePckExtensions(*ext);
}

}  // namespace cllm::attestation::tdx
