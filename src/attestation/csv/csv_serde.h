// csv_serde.h — Hygon certificates as trustee/csv-rs write them in JSON.
//
// Trustee's CSV evidence carries certificates as serde structs of csv-rs
// (numbers, and byte arrays as JSON arrays), not as bytes:
//   CA  {"body": {"preamble": {"ver", "data": {"kid"[16], "sid"[16], "usage",
//        "reserved"[24]}}, "pubkey": {"g", "x"[72], "y"[72]}, "uid_size",
//        "user_id"[254], "reserved"[108]}, "signature": {"r"[72], "s"[72]},
//        "_reserved"[112]}
//   CSV {"body": {"ver", "data": {"firmware": {"major", "minor"}, "reserved1",
//        "pubkey": {"usage", "algo", "key": {"g", "x", "y"}}, "uid_size",
//        "user_id"[254], "sid"[16], "reserved2"[608]}},
//        "sigs": [2 × {"usage", "algo", "signature": {"r", "s"}, "_reserved"[368]}]}
// The field order is the binary layout's (csv_cert.h), so re-encoding gives
// back the exact signed bytes.
#pragma once

#include <nlohmann/json.hpp>

#include "attestation/errors.h"
#include "base/bytes.h"

namespace cllm::attestation::csv {

// CaCertBytesFromSerde / CsvCertBytesFromSerde re-encode the serde form as
// the 832- / 2084-byte certificate; kMalformed when a field is missing, not
// a number in range, or an array of the wrong length.
[[nodiscard]] AttestResult<Bytes> CaCertBytesFromSerde(const nlohmann::json& j);
[[nodiscard]] AttestResult<Bytes> CsvCertBytesFromSerde(const nlohmann::json& j);

}  // namespace cllm::attestation::csv
