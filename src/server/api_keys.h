// api_keys.h — who is calling: API keys → user identities.
//
// The keys file stores only SHA-256 digests of keys, so a leaked file does
// not leak credentials:
//   {"keys": [{"user": "alice", "sha256": "<64 hex>"},
//             {"user": "batch", "sha256": "<64 hex>",
//              "limits": {"max_active": 2, "max_queued": 32, "tokens_per_minute": 100000}},
//             {"user": "split", "sha256": "<64 hex>", "prompt_embeds": true}]}
// `limits` and each of its fields are optional (files without them stay
// valid); an absent field takes the server's default (--user-max-active,
// --user-max-queued, --user-tokens-per-minute). `cllm-server` authenticates
// every request with "Authorization: Bearer <key>"; the user id it yields
// is who the scheduler is fair between and whom the limits count against.
// "prompt_embeds": true lets the key send prompts as embedding rows when the
// server runs with --prompt-embeds api-key or mutual (prompt_embeds.h).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "server/openai_api.h"

namespace cllm::server {

// KeyLimits are one key's own limits; an unset field takes the server's default.
struct KeyLimits {
  std::optional<int> max_active;              // sequences generated at once, 1..4096
  std::optional<int> max_queued;              // requests waiting beyond those, 0..100000
  std::optional<int64_t> tokens_per_minute;   // prompt + completion tokens; 0: unlimited
};

// ApiUser is who a key belongs to.
struct ApiUser {
  std::string id;
  KeyLimits limits;
  bool prompt_embeds = false;  // the keys file allows this key prompt_embeds
};

class ApiKeys {
 public:
  // Parse reads the JSON form above (untrusted file contents): kBadRequest
  // names the problem (bad hex, duplicate user or digest, unknown field).
  static ApiResult<ApiKeys> Parse(std::string_view json_text);
  static ApiResult<ApiKeys> Load(const std::filesystem::path& path);
  // LoadMetricsKeys loads a --metrics-keys file: Load, and 1 to
  // channel::kMaxMetricsReaders keys (a server's evidence names each).
  static ApiResult<ApiKeys> LoadMetricsKeys(const std::filesystem::path& path);

  // Authenticate maps an Authorization header value to its user (id and
  // limits); kUnauthorized for a missing, malformed or unknown key. Every
  // entry is compared (in constant time) so timing reveals nothing about
  // which digests exist.
  ApiResult<ApiUser> Authenticate(std::string_view authorization_header) const;

  // DigestHex is the keys-file form of `key` (used by `cllm apikey add`).
  static std::string DigestHex(std::string_view key);
  // Digests lists every key's SHA-256 in ascending order (no two are equal:
  // Parse refuses repeats): what a server names as its /metrics readers.
  std::vector<std::array<uint8_t, 32>> Digests() const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    ApiUser user;
    std::vector<uint8_t> digest;  // SHA-256 of the key
  };
  std::vector<Entry> entries_;
};

}  // namespace cllm::server
