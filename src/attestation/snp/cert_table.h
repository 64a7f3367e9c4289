// cert_table.h — the certificate table of an SEV-SNP extended report.
//
// SNP_GET_EXT_REPORT (/dev/sev-guest) and the configfs-tsm `auxblob` return
// the host-provided certificates as a table (GHCB specification 56421,
// section "SNP Extended Guest Request", table "Certificate table entry"):
//
//   entry[i]  0x00 16 GUID, bytes in canonical text order (as uuid_parse(3)
//                      and AMD's tools write them; no mixed-endian swapping)
//             0x10  4 offset (u32, from the start of the table)
//             0x14  4 length (u32)
//   ...       an all-zero entry ends the table; certificate data follows.
//
// Known GUIDs: VCEK 63da758d-e664-4564-adc5-f4b93be8accd, VLEK
// a8074bc2-a25a-483e-aae6-39c045a0b8a1, ASK 4ab7b379-bbac-4fe4-a02f-05aef327c782,
// ARK c0b406a4-a803-4952-9743-3fb6014cd0ae. Certificates are DER.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "attestation/errors.h"
#include "base/bytes.h"

namespace cllm::attestation::snp {

using Guid = std::array<uint8_t, 16>;

enum class CertKind { kVcek, kVlek, kAsk, kArk, kOther };
const char* CertKindName(CertKind kind);  // "VCEK", "VLEK", "ASK", "ARK", "other"

struct CertTableEntry {
  Guid guid{};
  CertKind kind = CertKind::kOther;
  Bytes data;  // the certificate (DER), copied out of the table
};

// GuidToString prints the canonical 8-4-4-4-12 form.
std::string GuidToString(const Guid& guid);
// GuidFor returns the table GUID of `kind` (kOther has none: all zero).
Guid GuidFor(CertKind kind);

inline constexpr size_t kCertTableEntrySize = 24;
inline constexpr size_t kMaxCertTableEntries = 64;

// ParseCertTable decodes a certificate table. Every entry's [offset,
// offset+length) must lie inside `table` and after the entry array (its
// terminator included); lengths must be non-zero. kMalformed on a missing
// terminator, an out-of-bounds or overlapping-the-header entry, or more than
// kMaxCertTableEntries entries.
[[nodiscard]] AttestResult<std::vector<CertTableEntry>> ParseCertTable(ByteSpan table);

// LooksLikeCertTable is true when `bytes` start with a known GUID (used to
// tell a table apart from PEM/DER certificate files).
bool LooksLikeCertTable(ByteSpan bytes);

// BuildCertTable serialises entries (tests, fuzz seeds, tools).
Bytes BuildCertTable(const std::vector<CertTableEntry>& entries);

}  // namespace cllm::attestation::snp
