// tcb_json.cc — decoding TCB Info v3 and QE Identity v2 bodies (Intel PCS
// API v4, "Get TDX TCB Info" / "Get TD QE Identity" response schemas).
//
// Called only on bodies whose signature already verified; still strict:
// every field the evaluation uses must be present with the right type.
#include <nlohmann/json.hpp>

#include <cstring>

#include "attestation/tdx/collateral.h"
#include "base/encoding.h"
#include "base/json_guard.h"

namespace cllm::attestation::tdx {
namespace {

using nlohmann::json;

Error<AttestErrc> Invalid(const std::string& what) {
  return MakeError(AttestErrc::kCollateralInvalid, what);
}

AttestResult<json> ParseObject(std::string_view body, const char* what) {
  if (!JsonDepthWithin(body)) return Invalid(std::string(what) + " nests too deeply");
  json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return Invalid(std::string(what) + " is not a JSON object");
  return doc;
}

AttestResult<const json*> Member(const json& obj, const char* key, const char* where) {
  auto it = obj.find(key);
  if (it == obj.end()) return Invalid(std::string(where) + "." + key + " missing");
  return &*it;
}

AttestResult<std::string> Str(const json& obj, const char* key, const char* where) {
  CLLM_ASSIGN_OR_RETURN(const json* v, Member(obj, key, where));
  if (!v->is_string()) return Invalid(std::string(where) + "." + key + " is not a string");
  return v->get<std::string>();
}

AttestResult<uint64_t> UInt(const json& obj, const char* key, const char* where, uint64_t max) {
  CLLM_ASSIGN_OR_RETURN(const json* v, Member(obj, key, where));
  if (!v->is_number_unsigned() || v->get<uint64_t>() > max) {
    return Invalid(std::string(where) + "." + key + " is not an integer in 0.." + std::to_string(max));
  }
  return v->get<uint64_t>();
}

AttestResult<Bytes> Hex(const json& obj, const char* key, const char* where, size_t len) {
  CLLM_ASSIGN_OR_RETURN(std::string s, Str(obj, key, where));
  auto b = HexDecode(s);
  if (!b.ok() || b->size() != len) {
    return Invalid(std::string(where) + "." + key + " must be " + std::to_string(len) + " bytes of hex");
  }
  return std::move(b).value();
}

template <size_t N>
AttestStatus HexInto(const json& obj, const char* key, const char* where, std::array<uint8_t, N>& out) {
  CLLM_ASSIGN_OR_RETURN(Bytes b, Hex(obj, key, where, N));
  std::memcpy(out.data(), b.data(), N);
  return OkStatus();
}

AttestResult<crypto::TimePoint> Time(const json& obj, const char* key, const char* where) {
  CLLM_ASSIGN_OR_RETURN(std::string s, Str(obj, key, where));
  auto t = ParseUtcTime(s);
  if (!t) return Invalid(std::string(where) + "." + key + " is not a UTC time: " + s);
  return *t;
}

AttestResult<std::vector<std::string>> Advisories(const json& level) {
  std::vector<std::string> out;
  auto it = level.find("advisoryIDs");
  if (it == level.end()) return out;
  if (!it->is_array()) return Invalid("advisoryIDs is not an array");
  for (const auto& a : *it) {
    if (!a.is_string()) return Invalid("advisoryIDs entry is not a string");
    out.push_back(a.get<std::string>());
  }
  return out;
}

AttestResult<std::vector<IsvTcbLevel>> IsvLevels(const json& obj, const char* where) {
  CLLM_ASSIGN_OR_RETURN(const json* levels, Member(obj, "tcbLevels", where));
  if (!levels->is_array() || levels->empty()) return Invalid(std::string(where) + ".tcbLevels is empty");
  std::vector<IsvTcbLevel> out;
  for (const auto& l : *levels) {
    if (!l.is_object()) return Invalid(std::string(where) + ".tcbLevels entry is not an object");
    IsvTcbLevel lv;
    CLLM_ASSIGN_OR_RETURN(const json* tcb, Member(l, "tcb", where));
    if (!tcb->is_object()) return Invalid(std::string(where) + " tcb is not an object");
    CLLM_ASSIGN_OR_RETURN(uint64_t svn, UInt(*tcb, "isvsvn", where, 0xFFFF));
    lv.isvsvn = static_cast<uint16_t>(svn);
    CLLM_ASSIGN_OR_RETURN(lv.tcb_date, Str(l, "tcbDate", where));
    CLLM_ASSIGN_OR_RETURN(lv.tcb_status, Str(l, "tcbStatus", where));
    CLLM_ASSIGN_OR_RETURN(lv.advisory_ids, Advisories(l));
    out.push_back(std::move(lv));
  }
  return out;
}

AttestResult<std::array<uint8_t, 16>> Components(const json& tcb, const char* key) {
  std::array<uint8_t, 16> out{};
  CLLM_ASSIGN_OR_RETURN(const json* comps, Member(tcb, key, "tcbLevels.tcb"));
  if (!comps->is_array() || comps->size() != 16) return Invalid(std::string(key) + " must list 16 components");
  for (size_t i = 0; i < 16; ++i) {
    if (!(*comps)[i].is_object()) return Invalid(std::string(key) + " entry is not an object");
    CLLM_ASSIGN_OR_RETURN(uint64_t svn, UInt((*comps)[i], "svn", key, 255));
    out[i] = static_cast<uint8_t>(svn);
  }
  return out;
}

AttestResult<TdxModuleIdentity> ModuleIdentity(const json& m, bool with_levels) {
  TdxModuleIdentity id;
  if (!m.is_object()) return Invalid("tdxModule entry is not an object");
  if (with_levels) {
    CLLM_ASSIGN_OR_RETURN(id.id, Str(m, "id", "tdxModuleIdentities"));
  }
  CLLM_ASSIGN_OR_RETURN(id.mrsigner, Hex(m, "mrsigner", "tdxModule", 48));
  CLLM_ASSIGN_OR_RETURN(id.attributes, Hex(m, "attributes", "tdxModule", 8));
  CLLM_ASSIGN_OR_RETURN(id.attributes_mask, Hex(m, "attributesMask", "tdxModule", 8));
  if (with_levels) {
    CLLM_ASSIGN_OR_RETURN(id.tcb_levels, IsvLevels(m, "tdxModuleIdentities"));
  }
  return id;
}

}  // namespace

AttestResult<TcbInfo> ParseTcbInfo(std::string_view body) {
  CLLM_ASSIGN_OR_RETURN(json doc, ParseObject(body, "tcbInfo"));
  TcbInfo info;
  const char* w = "tcbInfo";
  CLLM_ASSIGN_OR_RETURN(info.id, Str(doc, "id", w));
  CLLM_ASSIGN_OR_RETURN(uint64_t version, UInt(doc, "version", w, 1000));
  info.version = static_cast<int>(version);
  if (info.version != 3) {
    return Invalid("tcbInfo version " + std::to_string(version) + ", only version 3 is supported");
  }
  CLLM_ASSIGN_OR_RETURN(info.issue_date, Time(doc, "issueDate", w));
  CLLM_ASSIGN_OR_RETURN(info.next_update, Time(doc, "nextUpdate", w));
  CLLM_RETURN_IF_ERROR(HexInto(doc, "fmspc", w, info.fmspc));
  CLLM_RETURN_IF_ERROR(HexInto(doc, "pceId", w, info.pce_id));
  CLLM_ASSIGN_OR_RETURN(uint64_t tcb_type, UInt(doc, "tcbType", w, 1000));
  if (tcb_type != 0) return Invalid("tcbInfo tcbType " + std::to_string(tcb_type) + ", only 0 is defined");
  CLLM_ASSIGN_OR_RETURN(uint64_t eval, UInt(doc, "tcbEvaluationDataNumber", w, 0xFFFFFFFF));
  info.tcb_evaluation_data_number = static_cast<uint32_t>(eval);
  const bool tdx = info.id == "TDX";
  if (auto it = doc.find("tdxModule"); it != doc.end()) {
    CLLM_ASSIGN_OR_RETURN(info.tdx_module, ModuleIdentity(*it, false));
  }
  if (auto it = doc.find("tdxModuleIdentities"); it != doc.end()) {
    if (!it->is_array()) return Invalid("tdxModuleIdentities is not an array");
    for (const auto& m : *it) {
      CLLM_ASSIGN_OR_RETURN(TdxModuleIdentity id, ModuleIdentity(m, true));
      info.tdx_module_identities.push_back(std::move(id));
    }
  }
  CLLM_ASSIGN_OR_RETURN(const json* levels, Member(doc, "tcbLevels", w));
  if (!levels->is_array() || levels->empty()) return Invalid("tcbInfo.tcbLevels is empty");
  for (const auto& l : *levels) {
    if (!l.is_object()) return Invalid("tcbLevels entry is not an object");
    TcbLevel lv;
    CLLM_ASSIGN_OR_RETURN(const json* tcb, Member(l, "tcb", "tcbLevels"));
    if (!tcb->is_object()) return Invalid("tcbLevels.tcb is not an object");
    CLLM_ASSIGN_OR_RETURN(lv.sgx_components, Components(*tcb, "sgxtcbcomponents"));
    if (tdx) {
      CLLM_ASSIGN_OR_RETURN(lv.tdx_components, Components(*tcb, "tdxtcbcomponents"));
    }
    CLLM_ASSIGN_OR_RETURN(uint64_t pcesvn, UInt(*tcb, "pcesvn", "tcbLevels.tcb", 0xFFFF));
    lv.pce_svn = static_cast<uint16_t>(pcesvn);
    CLLM_ASSIGN_OR_RETURN(lv.tcb_date, Str(l, "tcbDate", "tcbLevels"));
    CLLM_ASSIGN_OR_RETURN(lv.tcb_status, Str(l, "tcbStatus", "tcbLevels"));
    CLLM_ASSIGN_OR_RETURN(lv.advisory_ids, Advisories(l));
    info.tcb_levels.push_back(std::move(lv));
  }
  return info;
}

AttestResult<QeIdentity> ParseQeIdentity(std::string_view body) {
  CLLM_ASSIGN_OR_RETURN(json doc, ParseObject(body, "enclaveIdentity"));
  QeIdentity qe;
  const char* w = "enclaveIdentity";
  CLLM_ASSIGN_OR_RETURN(qe.id, Str(doc, "id", w));
  CLLM_ASSIGN_OR_RETURN(uint64_t version, UInt(doc, "version", w, 1000));
  qe.version = static_cast<int>(version);
  if (qe.version != 2) {
    return Invalid("enclaveIdentity version " + std::to_string(version) + ", only version 2 is supported");
  }
  CLLM_ASSIGN_OR_RETURN(qe.issue_date, Time(doc, "issueDate", w));
  CLLM_ASSIGN_OR_RETURN(qe.next_update, Time(doc, "nextUpdate", w));
  CLLM_ASSIGN_OR_RETURN(uint64_t eval, UInt(doc, "tcbEvaluationDataNumber", w, 0xFFFFFFFF));
  qe.tcb_evaluation_data_number = static_cast<uint32_t>(eval);
  std::array<uint8_t, 4> misc{}, misc_mask{};
  CLLM_RETURN_IF_ERROR(HexInto(doc, "miscselect", w, misc));
  CLLM_RETURN_IF_ERROR(HexInto(doc, "miscselectMask", w, misc_mask));
  // The JSON hex is the big-endian value of the 32-bit MISCSELECT.
  qe.miscselect = (uint32_t{misc[0]} << 24) | (uint32_t{misc[1]} << 16) | (uint32_t{misc[2]} << 8) | misc[3];
  qe.miscselect_mask = (uint32_t{misc_mask[0]} << 24) | (uint32_t{misc_mask[1]} << 16) |
                       (uint32_t{misc_mask[2]} << 8) | misc_mask[3];
  CLLM_RETURN_IF_ERROR(HexInto(doc, "attributes", w, qe.attributes));
  CLLM_RETURN_IF_ERROR(HexInto(doc, "attributesMask", w, qe.attributes_mask));
  CLLM_RETURN_IF_ERROR(HexInto(doc, "mrsigner", w, qe.mrsigner));
  CLLM_ASSIGN_OR_RETURN(uint64_t prod, UInt(doc, "isvprodid", w, 0xFFFF));
  qe.isvprodid = static_cast<uint16_t>(prod);
  CLLM_ASSIGN_OR_RETURN(qe.tcb_levels, IsvLevels(doc, w));
  return qe;
}

}  // namespace cllm::attestation::tdx
