// cert_table.cc — parse and build the SNP extended-report certificate table.
#include "attestation/snp/cert_table.h"

#include <algorithm>
#include <cstdio>

#include "base/byte_reader.h"

namespace cllm::attestation::snp {
namespace {

// GHCB specification 56421, "SNP Extended Guest Request": the GUIDs AMD
// assigns to each certificate kind, in canonical byte order.
constexpr Guid kVcekGuid = {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64,
                            0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd};
constexpr Guid kVlekGuid = {0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e,
                            0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1};
constexpr Guid kAskGuid = {0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4,
                           0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82};
constexpr Guid kArkGuid = {0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52,
                           0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae};

CertKind KindOf(const Guid& g) {
  if (g == kVcekGuid) return CertKind::kVcek;
  if (g == kVlekGuid) return CertKind::kVlek;
  if (g == kAskGuid) return CertKind::kAsk;
  if (g == kArkGuid) return CertKind::kArk;
  return CertKind::kOther;
}

template <typename T>
AttestResult<T> Read(Result<T> r, const std::string& what) {
  if (!r.ok()) return MakeError(AttestErrc::kMalformed, "certificate table " + what + ": " + r.detail());
  return std::move(r).value();
}

}  // namespace

const char* CertKindName(CertKind kind) {
  switch (kind) {
    case CertKind::kVcek: return "VCEK";
    case CertKind::kVlek: return "VLEK";
    case CertKind::kAsk: return "ASK";
    case CertKind::kArk: return "ARK";
    case CertKind::kOther: return "other";
  }
  return "?";
}

std::string GuidToString(const Guid& g) {
  char buf[40];
  std::snprintf(buf, sizeof(buf),
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", g[0], g[1], g[2],
                g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
  return buf;
}

Guid GuidFor(CertKind kind) {
  switch (kind) {
    case CertKind::kVcek: return kVcekGuid;
    case CertKind::kVlek: return kVlekGuid;
    case CertKind::kAsk: return kAskGuid;
    case CertKind::kArk: return kArkGuid;
    case CertKind::kOther: break;
  }
  return Guid{};
}

AttestResult<std::vector<CertTableEntry>> ParseCertTable(ByteSpan table) {
  struct Raw {
    Guid guid;
    uint32_t offset;
    uint32_t length;
  };
  std::vector<Raw> raws;
  ByteReader r(table);
  // --- entry array, up to and including the all-zero terminator -------------
  for (;;) {
    const std::string at = "entry " + std::to_string(raws.size());
    CLLM_ASSIGN_OR_RETURN(Guid guid, Read(r.Array<16>(), at + " GUID (no all-zero terminator entry?)"));
    CLLM_ASSIGN_OR_RETURN(uint32_t offset, Read(r.U32Le(), at + " offset"));
    CLLM_ASSIGN_OR_RETURN(uint32_t length, Read(r.U32Le(), at + " length"));
    if (guid == Guid{} && offset == 0 && length == 0) break;
    if (raws.size() == kMaxCertTableEntries) {
      return MakeError(AttestErrc::kMalformed,
                       "certificate table has more than " + std::to_string(kMaxCertTableEntries) + " entries");
    }
    raws.push_back({guid, offset, length});
  }
  const uint64_t header_end = r.offset();  // certificate data starts after the terminator

  // --- certificate data ---------------------------------------------------------
  std::vector<CertTableEntry> out;
  for (size_t i = 0; i < raws.size(); ++i) {
    const Raw& e = raws[i];
    uint64_t end = 0;
    if (e.length == 0 || e.offset < header_end || !CheckedAdd(e.offset, e.length, &end) || end > table.size()) {
      return MakeError(AttestErrc::kMalformed,
                       "certificate table entry " + std::to_string(i) + " (" + GuidToString(e.guid) + ") data [" +
                           std::to_string(e.offset) + ", +" + std::to_string(e.length) + ") is not inside [" +
                           std::to_string(header_end) + ", " + std::to_string(table.size()) + ")");
    }
    CertTableEntry entry;
    entry.guid = e.guid;
    entry.kind = KindOf(e.guid);
    entry.data.assign(table.begin() + static_cast<std::ptrdiff_t>(e.offset),
                      table.begin() + static_cast<std::ptrdiff_t>(end));
    out.push_back(std::move(entry));
  }
  return out;
}

bool LooksLikeCertTable(ByteSpan bytes) {
  if (bytes.size() < kCertTableEntrySize) return false;
  Guid g;
  std::copy(bytes.begin(), bytes.begin() + 16, g.begin());
  return KindOf(g) != CertKind::kOther;
}

Bytes BuildCertTable(const std::vector<CertTableEntry>& entries) {
  const size_t header = (entries.size() + 1) * kCertTableEntrySize;
  Bytes out;
  size_t offset = header;
  for (const auto& e : entries) {
    out.insert(out.end(), e.guid.begin(), e.guid.end());
    PutU32Le(out, static_cast<uint32_t>(offset));
    PutU32Le(out, static_cast<uint32_t>(e.data.size()));
    offset += e.data.size();
  }
  out.insert(out.end(), kCertTableEntrySize, 0);
  for (const auto& e : entries) out.insert(out.end(), e.data.begin(), e.data.end());
  return out;
}

}  // namespace cllm::attestation::snp
