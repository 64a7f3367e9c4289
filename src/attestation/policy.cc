// policy.cc — the JSON policy file format (see docs/attestation.md).
//
// The parser is strict on purpose: a typo in a policy key ("alow_debug")
// must not silently fall back to a default, so every unknown key is an error
// that names it.
#include "attestation/policy.h"

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "base/file.h"
#include "base/json_guard.h"

namespace cllm::attestation {
namespace {

using nlohmann::json;

constexpr uint64_t kMaxPolicyBytes = 1 << 20;  // policies are small; refuse huge inputs

Error<AttestErrc> Invalid(const std::string& key, const std::string& why) {
  return MakeError(AttestErrc::kPolicyInvalid, "policy key \"" + key + "\": " + why);
}

AttestResult<Bytes> HexValue(const json& v, const std::string& key, size_t want_len = 0) {
  if (!v.is_string()) return Invalid(key, "expected a hex string");
  auto bytes = HexDecode(v.get<std::string>());
  if (!bytes.ok()) return Invalid(key, "bad hex: " + bytes.detail());
  if (want_len != 0 && bytes->size() != want_len) {
    return Invalid(key, "expected " + std::to_string(want_len) + " bytes, found " +
                            std::to_string(bytes->size()));
  }
  if (bytes->empty()) return Invalid(key, "empty hex string");
  return std::move(bytes).value();
}

AttestResult<std::vector<Bytes>> HexList(const json& v, const std::string& key) {
  if (!v.is_array()) return Invalid(key, "expected an array of hex strings");
  std::vector<Bytes> out;
  for (size_t i = 0; i < v.size(); ++i) {
    CLLM_ASSIGN_OR_RETURN(Bytes b, HexValue(v[i], key + "[" + std::to_string(i) + "]"));
    out.push_back(std::move(b));
  }
  return out;
}

AttestResult<std::vector<std::string>> StringList(const json& v, const std::string& key) {
  if (!v.is_array()) return Invalid(key, "expected an array of strings");
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string()) return Invalid(key + "[" + std::to_string(i) + "]", "expected a string");
    out.push_back(v[i].get<std::string>());
  }
  return out;
}

AttestResult<PlatformPolicy> ParsePlatformSection(const json& v, const std::string& name,
                                                  std::vector<crypto::PublicKey>* sim_keys) {
  if (!v.is_object()) return Invalid(name, "expected an object");
  PlatformPolicy out;
  for (const auto& [key, value] : v.items()) {
    const std::string path = name + "." + key;
    if (key == "measurements") {
      CLLM_ASSIGN_OR_RETURN(out.measurements, HexList(value, path));
    } else if (key == "min_tcb") {
      if (!value.is_object()) return Invalid(path, "expected an object of component → number");
      for (const auto& [comp, n] : value.items()) {
        if (!n.is_number_unsigned()) return Invalid(path + "." + comp, "expected an unsigned number");
        out.min_tcb[comp] = n.get<uint64_t>();
      }
    } else if (key == "fields") {
      if (!value.is_object()) return Invalid(path, "expected an object of field → string");
      for (const auto& [field, want] : value.items()) {
        if (!want.is_string()) return Invalid(path + "." + field, "expected a string value");
        if (name == "csv" && (field == "chip_id" || field == "anonce")) {
          return Invalid(path + "." + field,
                         "not covered by any signature in a CSV v1 report (anyone on the path can change it); "
                         "pin the chip's endorsement key with fields.cek.pubkey_sha256 instead");
        }
        out.fields[field] = want.get<std::string>();
      }
    } else if (key == "platform_keys" && sim_keys != nullptr) {
      CLLM_ASSIGN_OR_RETURN(auto pems, StringList(value, path));
      for (size_t i = 0; i < pems.size(); ++i) {
        auto k = crypto::PublicKey::FromPem(pems[i]);
        if (!k.ok()) return Invalid(path + "[" + std::to_string(i) + "]", "bad PEM public key: " + k.detail());
        if (k->type() != crypto::KeyType::kEcP384) {
          return Invalid(path + "[" + std::to_string(i) + "]", "sim platform keys are ECDSA P-384");
        }
        sim_keys->push_back(std::move(k).value());
      }
    } else {
      return Invalid(path, "unknown key");
    }
  }
  return out;
}

}  // namespace

std::optional<Platform> ParsePlatformName(std::string_view name) {
  for (Platform p : {Platform::kSnp, Platform::kTdx, Platform::kCsv, Platform::kTpm, Platform::kSim}) {
    if (name == PlatformName(p)) return p;
  }
  return std::nullopt;
}

std::optional<TcbStatus> ParseTcbStatusName(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(TcbStatus::kNotEvaluated); ++i) {
    auto s = static_cast<TcbStatus>(i);
    if (name == TcbStatusName(s)) return s;
  }
  return std::nullopt;
}

Policy Policy::Default() {
  Policy p;
  p.platforms = {Platform::kSnp, Platform::kTdx, Platform::kCsv, Platform::kTpm};
  return p;
}

AttestResult<Policy> ParsePolicy(std::string_view json_text) {
  if (json_text.size() > kMaxPolicyBytes) {
    return MakeError(AttestErrc::kPolicyInvalid, "policy larger than 1 MiB");
  }
  if (!JsonDepthWithin(json_text)) {
    return MakeError(AttestErrc::kPolicyInvalid, "policy JSON nests too deeply");
  }
  json doc = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return MakeError(AttestErrc::kPolicyInvalid, "policy is not valid JSON");
  if (!doc.is_object()) return MakeError(AttestErrc::kPolicyInvalid, "policy must be a JSON object");

  Policy policy;
  bool have_version = false;
  for (const auto& [key, value] : doc.items()) {
    if (key == "version") {
      if (!value.is_number_unsigned() || value.get<uint64_t>() != 1) {
        return Invalid(key, "only version 1 is defined");
      }
      have_version = true;
    } else if (key == "platforms") {
      CLLM_ASSIGN_OR_RETURN(auto names, StringList(value, key));
      for (const auto& n : names) {
        auto p = ParsePlatformName(n);
        if (!p) return Invalid(key, "unknown platform \"" + n + "\" (snp, tdx, csv, tpm, sim)");
        policy.platforms.insert(*p);
      }
    } else if (key == "allow_debug") {
      if (!value.is_boolean()) return Invalid(key, "expected true or false");
      policy.allow_debug = value.get<bool>();
    } else if (key == "tcb_statuses") {
      CLLM_ASSIGN_OR_RETURN(auto names, StringList(value, key));
      policy.tcb_statuses.clear();
      for (const auto& n : names) {
        auto s = ParseTcbStatusName(n);
        if (!s) return Invalid(key, "unknown TCB status \"" + n + "\"");
        policy.tcb_statuses.insert(*s);
      }
    } else if (key == "report_data") {
      CLLM_ASSIGN_OR_RETURN(Bytes rd, HexValue(value, key, 64));
      policy.report_data = std::move(rd);
    } else if (key == "binary_digests") {
      CLLM_ASSIGN_OR_RETURN(policy.binary_digests, HexList(value, key));
    } else if (key == "model_digests") {
      CLLM_ASSIGN_OR_RETURN(policy.model_digests, HexList(value, key));
    } else if (key == "chat_template_digests") {
      CLLM_ASSIGN_OR_RETURN(policy.chat_template_digests, HexList(value, key));
      for (const auto& d : policy.chat_template_digests) {
        if (d.size() != 32) return Invalid(key, "SHA-256 digests (64 hex characters) expected");
      }
    } else if (key == "allow_untrusted_disk_model") {
      if (!value.is_boolean()) return Invalid(key, "expected true or false");
      policy.allow_untrusted_disk_model = value.get<bool>();
    } else if (key == "min_stream_pad") {
      if (!value.is_number_unsigned() || value.get<uint64_t>() > 16384) {
        return Invalid(key, "expected a number of bytes from 0 to 16384");
      }
      policy.min_stream_pad = static_cast<uint32_t>(value.get<uint64_t>());
    } else if (key == "min_stream_coalesce_ms") {
      if (!value.is_number_unsigned() || value.get<uint64_t>() > 10000) {
        return Invalid(key, "expected a number of milliseconds from 0 to 10000");
      }
      policy.min_stream_coalesce_ms = static_cast<uint32_t>(value.get<uint64_t>());
    } else if (key == "allow_unlocked_memory") {
      if (!value.is_boolean()) return Invalid(key, "expected true or false");
      policy.allow_unlocked_memory = value.get<bool>();
    } else if (key == "allow_debug_listener") {
      if (!value.is_boolean()) return Invalid(key, "expected true or false");
      policy.allow_debug_listener = value.get<bool>();
    } else if (key == "allow_metrics_keys") {
      if (!value.is_boolean()) return Invalid(key, "expected true or false");
      policy.allow_metrics_keys = value.get<bool>();
    } else if (key == "metrics_readers") {
      CLLM_ASSIGN_OR_RETURN(policy.metrics_readers, HexList(value, key));
      for (const auto& d : policy.metrics_readers) {
        if (d.size() != 32) {
          return Invalid(key, "SHA-256 digests of keys (64 hex characters, as in a keys file) expected");
        }
      }
    } else if (key == "token_policies") {
      CLLM_ASSIGN_OR_RETURN(policy.token_policies, StringList(value, key));
      for (const auto& n : policy.token_policies) {
        if (n.empty() || n.size() > 64) return Invalid(key, "policy names are 1-64 characters");
      }
    } else if (auto p = ParsePlatformName(key)) {
      auto* sim_keys = *p == Platform::kSim ? &policy.sim_platform_keys : nullptr;
      CLLM_ASSIGN_OR_RETURN(policy.per_platform[*p], ParsePlatformSection(value, key, sim_keys));
    } else {
      return Invalid(key, "unknown key");
    }
  }
  if (!have_version) return Invalid("version", "missing (must be 1)");
  if (policy.platforms.empty()) return Invalid("platforms", "missing or empty: nothing would be accepted");
  if (policy.allow_metrics_keys && !policy.metrics_readers.empty()) {
    return Invalid("metrics_readers", "set with allow_metrics_keys, which accepts any reader: keep one of the two");
  }
  return policy;
}

AttestResult<Policy> LoadPolicy(const std::filesystem::path& path) {
  auto text = ReadTextFile(path, kMaxPolicyBytes);
  if (!text.ok()) return MakeError(AttestErrc::kIo, path.string() + ": " + text.detail());
  auto policy = ParsePolicy(*text);
  if (!policy.ok()) return MakeError(policy.code(), path.string() + ": " + policy.detail());
  return policy;
}

}  // namespace cllm::attestation
