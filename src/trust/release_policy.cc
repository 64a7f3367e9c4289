// release_policy.cc — parsing and evaluation of release policies
// (release_policy.h). The TEE part of the decision is attestation::Appraise
// on the token's claims; only what is specific to keys (replay, attestation
// policy name, model and binary digests) is checked here.
#include "trust/release_policy.h"

#include <algorithm>
#include <cctype>

#include "base/encoding.h"
#include "channel/payload.h"
#include "trust/token_claims.h"

namespace cllm::trust {
namespace {

using attestation::Platform;

bool IsHex(const std::string& s, size_t min_len) {
  return s.size() >= min_len && s.size() <= 128 && s.size() % 2 == 0 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool IsPolicyName(const std::string& s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
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

Status<> Flag(const nlohmann::json& j, const char* name, bool& out) {
  if (!j.contains(name)) return OkStatus();
  if (!j[name].is_boolean()) return MakeError(Errc::kParse, std::string(name) + ": expected true or false");
  out = j[name].get<bool>();
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

bool ClaimFlag(const nlohmann::json& c, const char* name, bool missing) {
  auto it = c.find(name);
  return it != c.end() && it->is_boolean() ? it->get<bool>() : missing;
}

}  // namespace

nlohmann::json ReleasePolicy::ToJson() const {
  nlohmann::json j = {{"model_digests", model_digests}, {"policies", policies}, {"tcb_statuses", tcb_statuses},
                      {"allow_debug", allow_debug}, {"allow_simulated", allow_simulated}};
  if (!binary_digests.empty()) j["binary_digests"] = binary_digests;
  if (!measurements.empty()) j["measurements"] = measurements;
  if (!platforms.empty()) j["platforms"] = platforms;
  if (!min_tcb.empty()) j["min_tcb"] = min_tcb;
  if (client_audience) j["audience"] = kClientRole;  // absent: "server", so older records read unchanged
  // Serving claims: absent when default, so older records read (and sign) unchanged.
  if (!chat_template_digests.empty()) j["chat_template_digests"] = chat_template_digests;
  if (allow_untrusted_disk_model) j["allow_untrusted_disk_model"] = true;
  if (allow_unlocked_memory) j["allow_unlocked_memory"] = true;
  if (allow_debug_listener) j["allow_debug_listener"] = true;
  if (allow_metrics_keys) j["allow_metrics_keys"] = true;
  if (!metrics_readers.empty()) j["metrics_readers"] = metrics_readers;
  if (min_stream_pad != 512) j["min_stream_pad"] = min_stream_pad;
  if (min_stream_coalesce_ms != 0) j["min_stream_coalesce_ms"] = min_stream_coalesce_ms;
  return j;
}

attestation::Policy ReleasePolicy::AttestationPolicy() const {
  attestation::Policy p;
  if (platforms.empty()) {
    p.platforms = {Platform::kSnp, Platform::kTdx, Platform::kCsv, Platform::kTpm};
    if (allow_simulated) p.platforms.insert(Platform::kSim);
  } else {
    for (const auto& name : platforms) {
      auto pl = attestation::ParsePlatformName(name);
      if (pl && (*pl != Platform::kSim || allow_simulated)) p.platforms.insert(*pl);
    }
  }
  p.allow_debug = allow_debug;
  p.tcb_statuses.clear();
  for (const auto& s : tcb_statuses) {
    if (auto st = attestation::ParseTcbStatusName(s)) p.tcb_statuses.insert(*st);
  }
  std::vector<Bytes> pinned;
  for (const auto& m : measurements) pinned.push_back(HexDecode(m).value());  // validated hex at parse
  for (Platform pl : p.platforms) {
    p.per_platform[pl].measurements = pinned;
    p.per_platform[pl].min_tcb = min_tcb;
  }
  return p;
}

Result<ReleasePolicy> ParseReleasePolicy(const nlohmann::json& j) {
  if (!j.is_object()) return MakeError(Errc::kParse, "a release policy is a JSON object");
  static const std::set<std::string> kKnown = {"model_digests", "binary_digests", "measurements", "platforms",
                                               "tcb_statuses",  "policies",       "min_tcb",      "allow_debug",
                                               "allow_simulated", "audience", "chat_template_digests",
                                               "allow_untrusted_disk_model", "allow_unlocked_memory",
                                               "allow_debug_listener", "allow_metrics_keys", "metrics_readers",
                                               "min_stream_pad", "min_stream_coalesce_ms"};
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
  CLLM_RETURN_IF_ERROR(Flag(j, "allow_debug", p.allow_debug));
  CLLM_RETURN_IF_ERROR(Flag(j, "allow_simulated", p.allow_simulated));
  CLLM_RETURN_IF_ERROR(StringSet(j, "chat_template_digests", true, p.chat_template_digests));
  for (const auto& d : p.chat_template_digests) {
    if (d.size() != 64) {
      return MakeError(Errc::kParse, "chat_template_digests: \"" + d.substr(0, 80) + "\" is not a SHA-256 (64 hex digits)");
    }
  }
  CLLM_RETURN_IF_ERROR(Flag(j, "allow_untrusted_disk_model", p.allow_untrusted_disk_model));
  CLLM_RETURN_IF_ERROR(Flag(j, "allow_unlocked_memory", p.allow_unlocked_memory));
  CLLM_RETURN_IF_ERROR(Flag(j, "allow_debug_listener", p.allow_debug_listener));
  CLLM_RETURN_IF_ERROR(Flag(j, "allow_metrics_keys", p.allow_metrics_keys));
  CLLM_RETURN_IF_ERROR(StringSet(j, "metrics_readers", true, p.metrics_readers));
  for (const auto& d : p.metrics_readers) {
    if (d.size() != 64) {
      return MakeError(Errc::kParse, "metrics_readers: \"" + d.substr(0, 80) + "\" is not a SHA-256 (64 hex digits)");
    }
  }
  auto number = [&](const char* name, uint64_t max, uint32_t& out) -> Status<> {
    if (!j.contains(name)) return OkStatus();
    const auto& v = j[name];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || static_cast<uint64_t>(v.get<int64_t>()) > max) {
      return MakeError(Errc::kParse, std::string(name) + ": expected a number from 0 to " + std::to_string(max));
    }
    out = static_cast<uint32_t>(v.get<int64_t>());
    return OkStatus();
  };
  CLLM_RETURN_IF_ERROR(number("min_stream_pad", channel::kMaxStreamPad, p.min_stream_pad));
  CLLM_RETURN_IF_ERROR(number("min_stream_coalesce_ms", channel::kMaxStreamCoalesceMs, p.min_stream_coalesce_ms));
  if (p.allow_metrics_keys && !p.metrics_readers.empty()) {
    return MakeError(Errc::kParse, "metrics_readers: set with allow_metrics_keys, which accepts any reader: keep one "
                                   "of the two");
  }
  if (j.contains("audience")) {
    const auto& a = j["audience"];
    if (!a.is_string() || (a != "server" && a != kClientRole)) {
      return MakeError(Errc::kParse, "audience: expected \"server\" or \"client\"");
    }
    p.client_audience = a == kClientRole;
  }
  for (const auto& pl : p.platforms) {
    if (!attestation::ParsePlatformName(pl)) {
      return MakeError(Errc::kParse, "platforms: unknown platform \"" + pl.substr(0, 32) + "\"");
    }
  }
  for (const auto& s : p.tcb_statuses) {
    if (!attestation::ParseTcbStatusName(s)) {
      return MakeError(Errc::kParse, "tcb_statuses: unknown TCB status \"" + s.substr(0, 48) + "\"");
    }
  }
  if (p.policies.empty()) {
    return MakeError(Errc::kParse, "policies: name at least one attestation policy whose tokens may get this key");
  }
  for (const auto& n : p.policies) {
    if (!IsPolicyName(n)) return MakeError(Errc::kParse, "policies: \"" + n.substr(0, 64) + "\" is not a policy name");
  }
  if (j.contains("min_tcb")) {
    const auto& m = j["min_tcb"];
    if (!m.is_object() || m.size() > 64) return MakeError(Errc::kParse, "min_tcb: expected an object of component → number");
    for (const auto& [comp, n] : m.items()) {
      if (!n.is_number_unsigned() || comp.empty() || comp.size() > 128) {
        return MakeError(Errc::kParse, "min_tcb." + comp.substr(0, 64) + ": expected an unsigned number");
      }
      p.min_tcb[comp] = n.get<uint64_t>();
    }
  }
  if (p.model_digests.empty()) {
    return MakeError(Errc::kParse, "release policy: \"model_digests\" must list at least one digest");
  }
  return p;
}

Status<> CheckRelease(const ReleasePolicy& p, const nlohmann::json& c, const attestation::AppraisalInput& appraised) {
  auto refuse = [](const std::string& why) { return MakeError(Errc::kPermission, why); };
  if (ClaimFlag(c, "replay", true)) {
    return refuse("replay: the token was minted from replayed evidence (no fresh key binding); keys are never "
                  "released to such tokens");
  }
  const std::string policy = ClaimString(c, "policy");
  // Who the key is for, before anything else about the TEE: the role comes
  // from the attestation policy the token was minted under, which only the
  // admin sets (policy_doc.h).
  const bool client_token = ClaimString(c, kRoleClaim) == kClientRole;
  if (client_token && !p.client_audience) {
    return refuse("audience: the token is a split-inference client's (attestation policy \"" + policy.substr(0, 64) +
                  "\" has \"role\": \"client\"); this key is for servers and is never released to clients");
  }
  if (!client_token && p.client_audience) {
    return refuse("audience: this key is for split-inference clients; the token was minted under attestation "
                  "policy \"" + policy.substr(0, 64) + "\", which is not a client policy (\"role\": \"client\")");
  }
  // The requester named the attestation policy; the key's owner decides
  // which names count.
  if (!p.policies.count(policy)) {
    return refuse("policy: the token was appraised under attestation policy \"" + policy.substr(0, 64) +
                  "\"; this key's release policy accepts [" + Join(p.policies) + "]");
  }
  const auto& d = appraised.data();
  if ((d.simulated || d.platform == Platform::kSim) && !p.allow_simulated) {
    return refuse("simulated: the token is for the SIMULATED TEE and this key's release policy does not set "
                  "allow_simulated");
  }
  // The TEE itself: the same appraisal as local evidence (debug, TCB status
  // and floor, platform, measurement) on the token's claims.
  auto tee = attestation::Appraise(appraised, p.AttestationPolicy());
  if (!tee.ok()) return refuse(std::string(attestation::AttestErrcName(tee.code())) + ": " + tee.detail());

  const std::string model = ClaimString(c, "model_digest");
  if (!p.model_digests.count(model)) {
    return refuse("model_digest: expected one of [" + Join(p.model_digests) + "], token has \"" + model + "\"");
  }
  const std::string binary = ClaimString(c, "binary_digest");
  if (!p.binary_digests.empty() && !p.binary_digests.count(binary)) {
    return refuse("binary_digest: expected one of [" + Join(p.binary_digests) + "], token has \"" + binary + "\"");
  }
  return CheckReleaseServing(p, c);
}

Status<> CheckReleaseServing(const ReleasePolicy& p, const nlohmann::json& c) {
  auto refuse = [](const std::string& why) { return MakeError(Errc::kPermission, why); };
  // How the node serves (channel/payload.h ServingClaims, in the token only
  // when not the default). A claim of the wrong type counts as present.
  if (auto t = c.find("chat_template_digest"); t != c.end()) {
    const std::string templ = t->is_string() ? Lower(t->get<std::string>()) : std::string("(not a string)");
    if (!p.chat_template_digests.count(templ)) {
      return refuse("chat_template_digest: the node renders prompts with a host-supplied chat template \"" +
                    templ.substr(0, 64) + "\"; this key's release policy accepts [" + Join(p.chat_template_digests) +
                    "]");
    }
  }
  auto claimed = [&](const char* name) {  // present and not exactly false
    auto it = c.find(name);
    return it != c.end() && !(it->is_boolean() && !it->get<bool>());
  };
  if (claimed("model_from_untrusted_disk") && !p.allow_untrusted_disk_model) {
    return refuse("model_from_untrusted_disk: the node maps its model from the host's disk; this key's release "
                  "policy does not set allow_untrusted_disk_model");
  }
  if (claimed("memory_unlocked") && !p.allow_unlocked_memory) {
    return refuse("memory_unlocked: the node runs with its memory unlocked (it may be swapped to the host's disk); "
                  "this key's release policy does not set allow_unlocked_memory");
  }
  if (claimed("debug_listener") && !p.allow_debug_listener) {
    return refuse("debug_listener: the node also serves plain HTTP (--debug-listen), unattested; this key's release "
                  "policy does not set allow_debug_listener");
  }
  if (auto m = c.find("metrics_readers"); m != c.end() && !p.allow_metrics_keys) {
    const char* what = "metrics_readers: the node gives /metrics to the holders of keys it was started with "
                       "(--metrics-keys)";
    if (!m->is_array()) return refuse(std::string(what) + "; the claim is not a list");
    for (const auto& reader : *m) {
      const std::string hex = reader.is_string() ? Lower(reader.get<std::string>()) : std::string("(not a string)");
      if (!p.metrics_readers.count(hex)) {
        return refuse(std::string(what) + ", among them \"" + hex.substr(0, 64) +
                      "\"; this key's release policy sets neither allow_metrics_keys nor that key in "
                      "metrics_readers");
      }
    }
  }
  // Tokens of a cllm-trust before readers were named said only that some exist.
  if (claimed("metrics_keys") && !p.allow_metrics_keys) {
    return refuse("metrics_keys: the node gives /metrics to the holders of keys it does not name; this key's "
                  "release policy does not set allow_metrics_keys");
  }
  // What the network sees of the node's answers: absent is the default; a
  // claim that is not a number in range is no value at all.
  const int64_t pad = NumberClaim(c, "stream_pad", channel::kDefaultStreamPad, channel::kMaxStreamPad);
  if (pad < p.min_stream_pad) {
    return refuse("stream_pad: the node pads its TLS records to " + std::to_string(pad) +
                  "-byte blocks (0: not at all); this key's release policy requires at least min_stream_pad " +
                  std::to_string(p.min_stream_pad));
  }
  const int64_t coalesce = NumberClaim(c, "stream_coalesce_ms", 0, channel::kMaxStreamCoalesceMs);
  if (coalesce < p.min_stream_coalesce_ms) {
    return refuse("stream_coalesce_ms: the node holds streamed text " + std::to_string(coalesce) +
                  " ms per event; this key's release policy requires at least min_stream_coalesce_ms " +
                  std::to_string(p.min_stream_coalesce_ms));
  }
  return OkStatus();
}

}  // namespace cllm::trust
