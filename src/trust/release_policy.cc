#include "trust/release_policy.h"

#include <algorithm>

namespace cllm::trust {
namespace {

bool IsHex(const std::string& s, size_t min_len) {
  return s.size() >= min_len && s.size() <= 128 && s.size() % 2 == 0 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Status<> StringSet(const nlohmann::json& j, const char* name, bool hex, std::set<std::string>& out) {
  if (!j.contains(name)) return OkStatus();
  const auto& v = j.at(name);
  if (!v.is_array() || v.size() > 1024) return MakeError(Errc::kParse, std::string(name) + ": expected an array of strings");
  out.clear();
  for (const auto& e : v) {
    if (!e.is_string()) return MakeError(Errc::kParse, std::string(name) + ": expected strings");
    std::string s = hex ? Lower(e.get<std::string>()) : e.get<std::string>();
    if (hex && !IsHex(s, 32)) return MakeError(Errc::kParse, std::string(name) + ": \"" + s.substr(0, 80) + "\" is not hex");
    out.insert(std::move(s));
  }
  return OkStatus();
}

std::string Join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& e : s) out += (out.empty() ? "" : ", ") + e;
  return out;
}

std::string ClaimString(const nlohmann::json& c, const char* name) {
  auto it = c.find(name);
  return it != c.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

nlohmann::json ReleasePolicy::ToJson() const {
  nlohmann::json j = {{"model_digests", model_digests}, {"tcb_statuses", tcb_statuses},
                      {"allow_simulated", allow_simulated}};
  if (!binary_digests.empty()) j["binary_digests"] = binary_digests;
  if (!measurements.empty()) j["measurements"] = measurements;
  if (!platforms.empty()) j["platforms"] = platforms;
  if (!policies.empty()) j["policies"] = policies;
  return j;
}

Result<ReleasePolicy> ParseReleasePolicy(const nlohmann::json& j) {
  if (!j.is_object()) return MakeError(Errc::kParse, "a release policy is a JSON object");
  static const std::set<std::string> kKnown = {"model_digests", "binary_digests", "measurements", "platforms",
                                               "tcb_statuses",  "policies",       "allow_simulated"};
  for (const auto& [k, v] : j.items()) {
    if (!kKnown.count(k)) return MakeError(Errc::kParse, "release policy: unknown member \"" + k.substr(0, 64) + "\"");
  }
  ReleasePolicy p;
  CLLM_RETURN_IF_ERROR(StringSet(j, "model_digests", true, p.model_digests));
  CLLM_RETURN_IF_ERROR(StringSet(j, "binary_digests", true, p.binary_digests));
  CLLM_RETURN_IF_ERROR(StringSet(j, "measurements", true, p.measurements));
  CLLM_RETURN_IF_ERROR(StringSet(j, "platforms", false, p.platforms));
  CLLM_RETURN_IF_ERROR(StringSet(j, "tcb_statuses", false, p.tcb_statuses));
  CLLM_RETURN_IF_ERROR(StringSet(j, "policies", false, p.policies));
  for (const auto& pl : p.platforms) {
    if (pl != "snp" && pl != "tdx" && pl != "csv" && pl != "tpm" && pl != "sim") {
      return MakeError(Errc::kParse, "platforms: unknown platform \"" + pl.substr(0, 32) + "\"");
    }
  }
  if (j.contains("allow_simulated")) {
    if (!j["allow_simulated"].is_boolean()) return MakeError(Errc::kParse, "allow_simulated: expected true or false");
    p.allow_simulated = j["allow_simulated"].get<bool>();
  }
  if (p.model_digests.empty()) {
    return MakeError(Errc::kParse, "release policy: \"model_digests\" must list at least one digest");
  }
  return p;
}

Status<> CheckRelease(const ReleasePolicy& p, const nlohmann::json& c) {
  auto refuse = [](const std::string& why) { return MakeError(Errc::kPermission, why); };
  if (c.value("replay", false)) {
    return refuse("replay: the token was minted from replayed evidence (no fresh key binding); keys are never "
                  "released to such tokens");
  }
  const std::string tee = ClaimString(c, "tee");
  const bool simulated = c.value("simulated", true);
  if (simulated && !p.allow_simulated) {
    return refuse("simulated: the token is for the SIMULATED TEE and this key's release policy does not set "
                  "allow_simulated");
  }
  if (!p.platforms.empty() && !p.platforms.count(tee)) {
    return refuse("tee: expected one of [" + Join(p.platforms) + "], token has \"" + tee + "\"");
  }
  const std::string model = ClaimString(c, "model_digest");
  if (!p.model_digests.count(model)) {
    return refuse("model_digest: expected one of [" + Join(p.model_digests) + "], token has \"" + model + "\"");
  }
  const std::string binary = ClaimString(c, "binary_digest");
  if (!p.binary_digests.empty() && !p.binary_digests.count(binary)) {
    return refuse("binary_digest: expected one of [" + Join(p.binary_digests) + "], token has \"" + binary + "\"");
  }
  const std::string measurement = ClaimString(c, "measurement");
  if (!p.measurements.empty() && !p.measurements.count(measurement)) {
    return refuse("measurement: expected one of [" + Join(p.measurements) + "], token has \"" + measurement + "\"");
  }
  const std::string tcb = ClaimString(c, "tcb_status");
  if (!(simulated && tcb == "NotApplicable") && !p.tcb_statuses.count(tcb)) {
    return refuse("tcb_status: expected one of [" + Join(p.tcb_statuses) + "], token has \"" + tcb + "\"");
  }
  const std::string policy = ClaimString(c, "policy");
  if (!p.policies.empty() && !p.policies.count(policy)) {
    return refuse("policy: expected one of [" + Join(p.policies) + "], token has \"" + policy + "\"");
  }
  return OkStatus();
}

}  // namespace cllm::trust
