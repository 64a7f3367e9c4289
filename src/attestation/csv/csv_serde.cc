// csv_serde.cc — re-encoding csv-rs serde certificates (csv_serde.h).
#include "attestation/csv/csv_serde.h"

#include "attestation/csv/csv_cert.h"
#include "base/byte_reader.h"

namespace cllm::attestation::csv {
namespace {

using nlohmann::json;

// A non-negative JSON integer (parsed text gives unsigned; built values may
// be signed).
bool IsUint(const json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
}

// Writer appends fields in layout order, remembering the first error so the
// encoders read as the struct definitions do.
class Writer {
 public:
  explicit Writer(Bytes& out) : out_(out) {}

  const json& At(const json& j, const char* key) {
    static const json kNull;
    if (!j.is_object() || !j.contains(key)) {
      Fail(std::string("missing \"") + key + "\"");
      return kNull;
    }
    return j[key];
  }
  void Uint(const json& j, const char* key, int bytes) {
    const json& v = At(j, key);
    if (!ok()) return;
    const uint64_t max = bytes == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * bytes)) - 1;
    if (!IsUint(v) || v.get<uint64_t>() > max) return Fail(std::string("\"") + key + "\" is not a u" + std::to_string(8 * bytes));
    const uint64_t x = v.get<uint64_t>();
    for (int i = 0; i < bytes; ++i) out_.push_back(static_cast<uint8_t>(x >> (8 * i)));
  }
  void Array(const json& j, const char* key, size_t n) {
    const json& v = At(j, key);
    if (!ok()) return;
    if (!v.is_array() || v.size() != n) return Fail(std::string("\"") + key + "\" is not " + std::to_string(n) + " bytes");
    for (const auto& b : v) {
      if (!IsUint(b) || b.get<uint64_t>() > 255) return Fail(std::string("\"") + key + "\" holds a non-byte");
      out_.push_back(static_cast<uint8_t>(b.get<uint64_t>()));
    }
  }
  // EcPoint: ecc::PubKey {g (curve id), x[72], y[72]}.
  void EcPoint(const json& j) {
    Uint(j, "g", 4);
    Array(j, "x", kEccFieldSize);
    Array(j, "y", kEccFieldSize);
  }
  void Signature(const json& j) {
    Array(j, "r", kEccFieldSize);
    Array(j, "s", kEccFieldSize);
  }
  void Fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
  }
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  Bytes& out_;
  std::string error_;
};

AttestResult<Bytes> Finish(Writer& w, Bytes out, size_t size, const char* what) {
  if (!w.ok()) return MakeError(AttestErrc::kMalformed, std::string(what) + " (serde form): " + w.error());
  if (out.size() != size) return MakeError(AttestErrc::kMalformed, std::string(what) + " (serde form) has the wrong size");
  return out;
}

}  // namespace

AttestResult<Bytes> CaCertBytesFromSerde(const json& j) {
  Bytes out;
  Writer w(out);
  const json& body = w.At(j, "body");
  const json& preamble = w.At(body, "preamble");
  w.Uint(preamble, "ver", 4);                              // 0x000
  const json& data = w.At(preamble, "data");
  w.Array(data, "kid", 16);                                // 0x004 key_id
  w.Array(data, "sid", 16);                                // 0x014 certifying_id
  w.Uint(data, "usage", 4);                                // 0x024
  w.Array(data, "reserved", 24);                           // 0x028
  if (w.ok()) w.EcPoint(w.At(body, "pubkey"));             // 0x040
  w.Uint(body, "uid_size", 2);                             // 0x0D4
  w.Array(body, "user_id", kUserIdFieldSize - 2);
  w.Array(body, "reserved", 108);                          // 0x1D4
  if (w.ok()) w.Signature(w.At(j, "signature"));           // 0x240
  w.Array(j, "_reserved", 112);                            // 0x2D0
  return Finish(w, std::move(out), kCaCertSize, "HSK/HRK certificate");
}

AttestResult<Bytes> CsvCertBytesFromSerde(const json& j) {
  Bytes out;
  Writer w(out);
  const json& body = w.At(j, "body");
  w.Uint(body, "ver", 4);                                  // 0x000
  const json& data = w.At(body, "data");
  const json& fw = w.At(data, "firmware");
  w.Uint(fw, "major", 1);                                  // 0x004
  w.Uint(fw, "minor", 1);                                  // 0x005
  w.Uint(data, "reserved1", 2);                            // 0x006
  const json& pubkey = w.At(data, "pubkey");
  w.Uint(pubkey, "usage", 4);                              // 0x008
  w.Uint(pubkey, "algo", 4);                               // 0x00C
  if (w.ok()) w.EcPoint(w.At(pubkey, "key"));              // 0x010
  w.Uint(data, "uid_size", 2);                             // 0x0A4
  w.Array(data, "user_id", kUserIdFieldSize - 2);
  w.Array(data, "sid", 16);                                // 0x1A4
  w.Array(data, "reserved2", 608);
  const json& sigs = w.At(j, "sigs");
  if (w.ok() && (!sigs.is_array() || sigs.size() != 2)) w.Fail("\"sigs\" is not two signature slots");
  for (size_t i = 0; w.ok() && i < 2; ++i) {              // 0x414, 0x61C
    w.Uint(sigs[i], "usage", 4);
    w.Uint(sigs[i], "algo", 4);
    if (w.ok()) w.Signature(w.At(sigs[i], "signature"));
    w.Array(sigs[i], "_reserved", 368);
  }
  return Finish(w, std::move(out), kCsvCertSize, "CEK/PEK certificate");
}

}  // namespace cllm::attestation::csv
