// row_mac.h — authentication of cllm-trust's store rows (store.h).
//
// Every row that decides an attestation, a token or a key release carries
//
//   mac = HMAC-SHA256(K_row, "cllm-trust-row-v1" ‖ field(table) ‖ field(row key) ‖
//                     u64be(ver) ‖ field(column 1) ‖ … ‖ field(column n))
//   field(x) = tag[1] ‖ u32be(len x) ‖ x        (tag: 's' text, 'b' bytes, 'i' integer, 'n' null)
//
// with K_row = HKDF-SHA256(master key, info "cllm-trust row-mac v1")
// (SecretBox::DeriveKey), so only a holder of the master key can write a row
// the service accepts. The table name and row key stop a row being copied to
// another row or table; `ver` (incremented on every update of the row) stops
// a stale MAC from validating the row's newer contents. What SQLite alone
// cannot stop — restoring a whole older row, or the whole older file — is
// said in docs/trust.md ("Tamper evidence").
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/secure.h"

namespace cllm::trust {

// MacField is one column's value as the MAC sees it.
class MacField {
 public:
  MacField(std::string_view text) : tag_('s'), data_(text.begin(), text.end()) {}  // NOLINT: implicit by design
  MacField(const std::string& text) : MacField(std::string_view(text)) {}          // NOLINT
  MacField(const char* text) : MacField(std::string_view(text)) {}                 // NOLINT
  MacField(ByteSpan bytes) : tag_('b'), data_(bytes.begin(), bytes.end()) {}       // NOLINT
  MacField(const Bytes& bytes) : MacField(ByteSpan(bytes)) {}                      // NOLINT
  MacField(int64_t v);                                                             // NOLINT
  MacField(std::optional<int64_t> v);                                              // NOLINT
  void AppendTo(Bytes& out) const;

 private:
  char tag_;
  Bytes data_;
};

// RowMac computes a row's MAC under `key` (K_row).
Bytes RowMac(const SecretBytes& key, std::string_view table, std::string_view row_key, int64_t ver,
             std::initializer_list<MacField> columns);

// RowMacOk compares in constant time.
bool RowMacOk(const SecretBytes& key, std::string_view table, std::string_view row_key, int64_t ver,
              std::initializer_list<MacField> columns, ByteSpan mac);

}  // namespace cllm::trust
