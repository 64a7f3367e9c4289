// api_keys.h — who is calling: API keys → user identities.
//
// The keys file stores only SHA-256 digests of keys, so a leaked file does
// not leak credentials:
//   {"keys": [{"user": "alice", "sha256": "<64 hex>"}, ...]}
// `cllm-server` authenticates every request with "Authorization: Bearer <key>";
// the user id it yields partitions sessions, KV cache and rate limits.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "server/openai_api.h"

namespace cllm::server {

class ApiKeys {
 public:
  // Parse reads the JSON form above (untrusted file contents): kBadRequest
  // names the problem (bad hex, duplicate user or digest, unknown field).
  static ApiResult<ApiKeys> Parse(std::string_view json_text);
  static ApiResult<ApiKeys> Load(const std::filesystem::path& path);

  // Authenticate maps an Authorization header value to a user id; kUnauthorized
  // for a missing, malformed or unknown key. Every entry is compared (in
  // constant time) so timing reveals nothing about which digests exist.
  ApiResult<std::string> Authenticate(std::string_view authorization_header) const;

  // DigestHex is the keys-file form of `key` (used by `cllm apikey add`).
  static std::string DigestHex(std::string_view key);
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string user;
    std::vector<uint8_t> digest;  // SHA-256 of the key
  };
  std::vector<Entry> entries_;
};

}  // namespace cllm::server
