#include "trust/row_mac.h"

#include "crypto/kdf.h"

namespace cllm::trust {
namespace {

void PutBe(Bytes& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

}  // namespace

MacField::MacField(int64_t v) : tag_('i') { PutBe(data_, static_cast<uint64_t>(v), 8); }

MacField::MacField(std::optional<int64_t> v) : tag_(v ? 'i' : 'n') {
  if (v) PutBe(data_, static_cast<uint64_t>(*v), 8);
}

void MacField::AppendTo(Bytes& out) const {
  out.push_back(static_cast<uint8_t>(tag_));
  PutBe(out, data_.size(), 4);
  out.insert(out.end(), data_.begin(), data_.end());
}

Bytes RowMac(const SecretBytes& key, std::string_view table, std::string_view row_key, int64_t ver,
             std::initializer_list<MacField> columns) {
  static constexpr char kDomain[] = "cllm-trust-row-v1";
  Bytes m(kDomain, kDomain + sizeof(kDomain) - 1);
  MacField(table).AppendTo(m);
  MacField(row_key).AppendTo(m);
  PutBe(m, static_cast<uint64_t>(ver), 8);
  for (const MacField& c : columns) c.AppendTo(m);
  return crypto::Hmac(crypto::HashAlg::kSha256, key.span(), m);
}

bool RowMacOk(const SecretBytes& key, std::string_view table, std::string_view row_key, int64_t ver,
              std::initializer_list<MacField> columns, ByteSpan mac) {
  return ConstantTimeEqual(RowMac(key, table, row_key, ver, columns), mac);
}

}  // namespace cllm::trust
