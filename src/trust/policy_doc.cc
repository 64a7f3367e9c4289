#include "trust/policy_doc.h"

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "base/json_guard.h"
#include "crypto/digest.h"

namespace cllm::trust {

Result<PolicyDoc> ParsePolicyDoc(std::string_view text) {
  if (text.size() > (1 << 20) || !JsonDepthWithin(text)) {
    return MakeError(Errc::kParse, "policy document: too large or nested too deeply");
  }
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return MakeError(Errc::kParse, "policy document: not a JSON object");
  for (const auto& [k, v] : j.items()) {
    if (k != "policy" && k != "replay" && k != "role") {
      return MakeError(Errc::kParse, "policy document: unknown member \"" + k.substr(0, 64) + "\"");
    }
  }
  if (!j.contains("policy") || !j["policy"].is_object()) {
    return MakeError(Errc::kParse, "policy document: \"policy\" (an attestation policy object) is required");
  }
  PolicyDoc doc;
  auto policy = attestation::ParsePolicy(j["policy"].dump());
  if (!policy.ok()) return MakeError(Errc::kParse, "policy: " + policy.detail());
  doc.policy = std::move(policy).value();
  if (j.contains("replay")) {
    const auto& r = j["replay"];
    if (!r.is_object() || r.size() != 1 || !r.contains("evidence_time") || !r["evidence_time"].is_string()) {
      return MakeError(Errc::kParse, "replay: expected {\"evidence_time\": \"<RFC 3339 time>\"}");
    }
    doc.replay_evidence_time = ParseRfc3339(r["evidence_time"].get<std::string>());
    if (!doc.replay_evidence_time) return MakeError(Errc::kParse, "replay.evidence_time: not an RFC 3339 time");
  }
  if (j.contains("role")) {
    const auto& r = j["role"];
    if (!r.is_string() || (r != "server" && r != "client")) {
      return MakeError(Errc::kParse, "role: expected \"server\" or \"client\"");
    }
    doc.client_role = r == "client";
  }
  doc.json = j.dump();
  return doc;
}

std::string PolicyDocDigest(const PolicyDoc& doc) {
  return HexEncode(crypto::Sha256(ByteSpan(reinterpret_cast<const uint8_t*>(doc.json.data()), doc.json.size())));
}

}  // namespace cllm::trust
