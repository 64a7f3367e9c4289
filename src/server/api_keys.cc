#include "server/api_keys.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <set>

#include "base/check.h"
#include "base/encoding.h"
#include "base/file.h"
#include "base/json_guard.h"
#include "channel/payload.h"
#include "crypto/digest.h"

namespace cllm::server {
namespace {

ApiError Bad(std::string m) { return MakeError(ApiErrc::kBadRequest, "api keys: " + std::move(m)); }
ApiError Unauthorized(std::string m) { return MakeError(ApiErrc::kUnauthorized, std::move(m)); }

bool ValidUser(const std::string& u) {
  if (u.empty() || u.size() > 64) return false;
  for (char c : u) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '@')) return false;
  }
  return true;
}

// Limits reads an entry's optional "limits" object (untrusted file contents:
// every field's type and range is checked; unknown fields are refused).
ApiResult<KeyLimits> Limits(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) return Bad(where + ".limits must be an object");
  KeyLimits out;
  for (const auto& [k, v] : j.items()) {
    int64_t lo = 0, hi = 0;
    if (k == "max_active") {
      lo = 1, hi = 4096;
    } else if (k == "max_queued") {
      lo = 0, hi = 100000;
    } else if (k == "tokens_per_minute") {
      lo = 0, hi = int64_t{1} << 40;
    } else {
      return Bad(where + ".limits: unknown field '" + k + "'");
    }
    // is_number_integer is true for unsigned too; a huge unsigned must not wrap.
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi)) ||
        v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
      return Bad(where + ".limits." + k + " must be an integer from " + std::to_string(lo) + " to " +
                 std::to_string(hi));
    }
    const int64_t n = v.get<int64_t>();
    if (k == "max_active") out.max_active = static_cast<int>(n);
    if (k == "max_queued") out.max_queued = static_cast<int>(n);
    if (k == "tokens_per_minute") out.tokens_per_minute = n;
  }
  return out;
}

}  // namespace

std::string ApiKeys::DigestHex(std::string_view key) { return HexEncode(crypto::Sha256(AsBytes(key))); }

std::vector<std::array<uint8_t, 32>> ApiKeys::Digests() const {
  std::vector<std::array<uint8_t, 32>> out;
  for (const Entry& e : entries_) {
    std::array<uint8_t, 32> d{};
    CLLM_CHECK(e.digest.size() == d.size());
    std::copy(e.digest.begin(), e.digest.end(), d.begin());
    out.push_back(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

ApiResult<ApiKeys> ApiKeys::Parse(std::string_view text) {
  if (!JsonDepthWithin(text)) return Bad("nesting too deep");
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Bad("not a JSON object");
  ApiKeys keys;
  std::set<std::string> users, digests;
  for (const auto& [k, v] : j.items()) {
    if (k != "keys") return Bad("unknown field '" + k + "'");
    if (!v.is_array()) return Bad("'keys' must be an array");
    for (size_t i = 0; i < v.size(); ++i) {
      const auto& e = v[i];
      std::string where = "keys[" + std::to_string(i) + "]";
      if (!e.is_object()) return Bad(where + " must be an object");
      KeyLimits limits;
      bool prompt_embeds = false;
      for (const auto& [ek, ev] : e.items()) {
        if (ek == "limits") {
          CLLM_ASSIGN_OR_RETURN(limits, Limits(ev, where));
          continue;
        }
        if (ek == "prompt_embeds") {
          if (!ev.is_boolean()) return Bad(where + ".prompt_embeds must be true or false");
          prompt_embeds = ev.get<bool>();
          continue;
        }
        if (ek != "user" && ek != "sha256") return Bad(where + ": unknown field '" + ek + "'");
        if (!ev.is_string()) return Bad(where + "." + ek + " must be a string");
      }
      if (!e.contains("user") || !e.contains("sha256")) return Bad(where + " needs 'user' and 'sha256'");
      std::string user = e["user"], hex = e["sha256"];
      if (!ValidUser(user)) return Bad(where + ": user ids are 1-64 of [A-Za-z0-9._@-]");
      auto digest = HexDecode(hex);
      if (!digest.ok() || digest->size() != 32) return Bad(where + ": sha256 must be 64 hex characters");
      if (!users.insert(user).second) return Bad(where + ": duplicate user '" + user + "'");
      if (!digests.insert(HexEncode(*digest)).second) return Bad(where + ": duplicate key digest");
      keys.entries_.push_back({ApiUser{user, limits, prompt_embeds}, std::move(digest).value()});
    }
  }
  return keys;
}

ApiResult<ApiKeys> ApiKeys::Load(const std::filesystem::path& path) {
  auto text = ReadTextFile(path, 1 << 20);
  if (!text.ok()) return Bad(text.detail());
  return Parse(*text);
}

ApiResult<ApiKeys> ApiKeys::LoadMetricsKeys(const std::filesystem::path& path) {
  auto keys = Load(path);
  if (!keys.ok()) return keys;
  if (keys->size() == 0 || keys->size() > channel::kMaxMetricsReaders) {
    return Bad(path.string() + ": " + std::to_string(keys->size()) + " keys; /metrics readers are 1 to " +
               std::to_string(channel::kMaxMetricsReaders) + " keys (the evidence names each)");
  }
  return keys;
}

ApiResult<ApiUser> ApiKeys::Authenticate(std::string_view header) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || header.substr(0, kBearer.size()) != kBearer) {
    return Unauthorized("missing API key (send 'Authorization: Bearer <key>')");
  }
  auto digest = crypto::Sha256(AsBytes(header.substr(kBearer.size())));
  const Entry* found = nullptr;
  for (const auto& e : entries_) {
    // No early exit: every digest is compared.
    bool match = ConstantTimeEqual(digest, e.digest);
    if (match) found = &e;
  }
  if (found == nullptr) return Unauthorized("unknown API key");
  return found->user;
}

}  // namespace cllm::server
