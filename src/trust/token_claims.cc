// token_claims.cc — the token's appraised-claims members (token_claims.h).
//
// Decoding is the trust layer's privilege: only here, after VerifyJwt
// accepted the signature, does a claim set become appraisal input (the
// TokenPass below). Every member is checked for type and size; untrusted
// JSON never reaches nlohmann's throwing accessors.
#include "trust/token_claims.h"

#include "attestation/internal/token_pass.h"
#include "attestation/policy.h"
#include "base/encoding.h"

namespace cllm::trust {
namespace {

using attestation::VerifiedEvidence;
using nlohmann::json;

constexpr size_t kMaxEntries = 512;    // fields / tcb components / advisories
constexpr size_t kMaxString = 1024;    // one field value
constexpr size_t kMaxHexBytes = 1024;  // measurement (SNP 48, TPM PCR digest)

Error<JoseErrc> Bad(const std::string& member, const std::string& why) {
  return MakeError(JoseErrc::kClaimMismatch, "token claim \"" + member + "\": " + why);
}

JoseResult<const json*> Member(const json& c, const char* name) {
  auto it = c.find(name);
  if (it == c.end()) return Bad(name, "missing (a token from an older cllm-trust? this client needs \"ver\": 2)");
  return &*it;
}

JoseResult<std::string> String(const json& c, const char* name, size_t max = kMaxString) {
  CLLM_ASSIGN_OR_RETURN(const json* v, Member(c, name));
  if (!v->is_string() || v->get_ref<const std::string&>().size() > max) return Bad(name, "expected a short string");
  return v->get<std::string>();
}

JoseResult<bool> Bool(const json& c, const char* name) {
  CLLM_ASSIGN_OR_RETURN(const json* v, Member(c, name));
  if (!v->is_boolean()) return Bad(name, "expected true or false");
  return v->get<bool>();
}

JoseResult<Bytes> Hex(const json& c, const char* name, size_t want_len = 0) {
  CLLM_ASSIGN_OR_RETURN(std::string s, String(c, name, 2 * kMaxHexBytes));
  auto b = HexDecode(s);
  if (!b.ok()) return Bad(name, "not hex");
  if (want_len != 0 && b->size() != want_len) return Bad(name, "expected " + std::to_string(want_len) + " bytes");
  return std::move(b).value();
}

}  // namespace

json AppraisedClaimsJson(const attestation::Claims& claims) {
  return {{"ver", kTokenClaimsVersion},
          {"tee", attestation::PlatformName(claims.platform())},
          {"simulated", claims.simulated()},
          {"measurement", HexEncode(claims.measurement())},
          {"report_data", HexEncode(claims.report_data())},
          {"debug", claims.debug()},
          {"tcb_status", attestation::TcbStatusName(claims.tcb_status())},
          {"tcb", claims.tcb()},
          {"advisory_ids", claims.advisory_ids()},
          {"fields", claims.fields()}};
}

bool DigestListed(const std::vector<Bytes>& list, const std::string& hex) {
  if (list.empty()) return true;
  for (const Bytes& b : list) {
    if (HexEncode(b) == hex) return true;
  }
  return false;
}

int64_t NumberClaim(const json& c, const char* name, int64_t absent, int64_t max) {
  auto it = c.find(name);
  if (it == c.end()) return absent;
  return it->is_number_integer() && it->get<int64_t>() >= 0 && it->get<int64_t>() <= max ? it->get<int64_t>() : -1;
}

json MetricsReadersClaim(const channel::ServingClaims& serving) {
  json out = json::array();
  for (const auto& d : serving.metrics_readers) out.push_back(HexEncode(d));
  return out;
}

JoseResult<VerifiedToken> VerifyToken(std::string_view token, const json& jwks, const JwtCheck& check) {
  CLLM_ASSIGN_OR_RETURN(json c, VerifyJwt(token, jwks, check));
  // VerifyJwt returns an object; everything below is the appraised claims.
  CLLM_ASSIGN_OR_RETURN(const json* ver, Member(c, "ver"));
  if (!ver->is_number_integer() || ver->get<int64_t>() != kTokenClaimsVersion) {
    return Bad("ver", "this client understands token claims version " + std::to_string(kTokenClaimsVersion));
  }
  VerifiedEvidence::Data d;
  CLLM_ASSIGN_OR_RETURN(std::string tee, String(c, "tee", 16));
  auto platform = attestation::ParsePlatformName(tee);
  if (!platform) return Bad("tee", "unknown platform \"" + tee + "\"");
  d.platform = *platform;
  CLLM_ASSIGN_OR_RETURN(d.simulated, Bool(c, "simulated"));
  CLLM_ASSIGN_OR_RETURN(d.measurement, Hex(c, "measurement"));
  CLLM_ASSIGN_OR_RETURN(d.report_data, Hex(c, "report_data", 64));
  CLLM_ASSIGN_OR_RETURN(d.debug, Bool(c, "debug"));
  CLLM_ASSIGN_OR_RETURN(std::string status, String(c, "tcb_status", 64));
  auto tcb_status = attestation::ParseTcbStatusName(status);
  if (!tcb_status) return Bad("tcb_status", "unknown status \"" + status + "\"");
  d.tcb_status = *tcb_status;

  CLLM_ASSIGN_OR_RETURN(const json* tcb, Member(c, "tcb"));
  if (!tcb->is_object() || tcb->size() > kMaxEntries) return Bad("tcb", "expected an object of component → number");
  for (const auto& [k, v] : tcb->items()) {
    if (!v.is_number_unsigned() || k.size() > 128) return Bad("tcb", "component \"" + k.substr(0, 64) + "\" is not a number");
    d.tcb[k] = v.get<uint64_t>();
  }
  CLLM_ASSIGN_OR_RETURN(const json* adv, Member(c, "advisory_ids"));
  if (!adv->is_array() || adv->size() > kMaxEntries) return Bad("advisory_ids", "expected an array of strings");
  for (const auto& a : *adv) {
    if (!a.is_string() || a.get_ref<const std::string&>().size() > 128) return Bad("advisory_ids", "expected strings");
    d.advisory_ids.push_back(a.get<std::string>());
  }
  CLLM_ASSIGN_OR_RETURN(const json* fields, Member(c, "fields"));
  if (!fields->is_object() || fields->size() > kMaxEntries) return Bad("fields", "expected an object of name → string");
  for (const auto& [k, v] : fields->items()) {
    if (!v.is_string() || k.size() > 128 || v.get_ref<const std::string&>().size() > kMaxString) {
      return Bad("fields", "field \"" + k.substr(0, 64) + "\" is not a short string");
    }
    d.fields[k] = v.get<std::string>();
  }
  attestation::AppraisalInput input(attestation::TokenPass::Issue(), std::move(d));
  return VerifiedToken{std::move(c), std::move(input)};
}

}  // namespace cllm::trust
