// release_cover.cc — CheckReleaseWithinPolicy (release_cover.h).

#include "trust/release_cover.h"

#include <algorithm>
#include <cctype>

#include "attestation/pinning.h"
#include "base/encoding.h"

namespace cllm::trust {
namespace {

using attestation::Platform;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool Contains(const std::vector<Bytes>& list, const Bytes& v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

std::string Names(const std::set<Platform>& ps) {
  std::string out;
  for (Platform p : ps) out += (out.empty() ? "" : ",") + std::string(attestation::PlatformName(p));
  return out.empty() ? "none" : out;
}

std::string Short(const std::string& hex) { return hex.size() > 16 ? hex.substr(0, 16) + "…" : hex; }

}  // namespace

Status<> CheckReleaseWithinPolicy(const ReleasePolicy& r, const attestation::Policy& c) {
  std::vector<std::string> gaps;
  const attestation::Policy ra = r.AttestationPolicy();
  const bool unpinned_ok = c.insecure_accept_unpinned;

  for (Platform p : ra.platforms) {
    if (!c.platforms.count(p)) {
      gaps.push_back(std::string("platforms: the release policy accepts ") + attestation::PlatformName(p) +
                     ", this client policy does not (it allows " + Names(c.platforms) + ")");
    }
  }
  if (ra.platforms.empty()) gaps.push_back("platforms: the release policy accepts no platform");
  // A fleet key released to clients could decrypt every other client's requests.
  if (r.client_audience) gaps.push_back("audience: the release policy releases the key to clients, not only to servers");
  if (r.allow_debug && !c.allow_debug) gaps.push_back("allow_debug: the release policy releases to debuggable TEEs");
  for (auto st : ra.tcb_statuses) {
    if (!c.tcb_statuses.count(st)) {
      gaps.push_back(std::string("tcb_statuses: the release policy accepts ") + attestation::TcbStatusName(st));
    }
  }

  // Measurements: pinned by R, and each one pinned by C for a platform R accepts.
  // The simulated TEE has no launch measurement worth pinning (pinning.h):
  // a release policy accepting only sim needs none.
  bool real_platform = false;
  for (Platform p : ra.platforms) real_platform |= p != Platform::kSim;
  if (r.measurements.empty()) {
    if (real_platform && !unpinned_ok) {
      gaps.push_back("measurements: the release policy pins none (any launch measurement gets the key)");
    }
  } else if (real_platform) {
    for (const auto& hex : r.measurements) {
      auto m = HexDecode(hex);
      bool pinned = false;
      for (Platform p : ra.platforms) {
        auto it = c.per_platform.find(p);
        if (m.ok() && it != c.per_platform.end() && Contains(it->second.measurements, *m)) pinned = true;
      }
      if (!pinned && !unpinned_ok) {
        gaps.push_back("measurements: " + Short(Lower(hex)) + " is released to but not pinned by this client policy");
      }
    }
  }

  // What this client would refuse on a direct connection as not pinned
  // (pinning.h: TDX needs RTMR0-3 besides MRTD, since MRTD covers only the
  // firmware): a node released to must be one it would accept.
  for (Platform p : ra.platforms) {
    if (p == Platform::kSim || unpinned_ok) continue;
    attestation::PinningSubject subject;
    subject.platform = p;
    for (const auto& open : attestation::FindUnpinned(c, subject)) {
      gaps.push_back("pinning: this client policy leaves " + open.name + " open, so it refuses every " +
                     attestation::PlatformName(p) + " server directly (not pinned); a fleet key released on " +
                     attestation::PlatformName(p) + " is not covered");
    }
  }

  // Evidence without a TCB status (SNP, CSV: NotEvaluated) passes a policy
  // with a TCB floor of its own (appraise.cc): R's floor lets it through,
  // so C must accept it too — by a floor of its own or by listing it.
  if (!r.min_tcb.empty() && !c.tcb_statuses.count(attestation::TcbStatus::kNotEvaluated)) {
    for (Platform p : ra.platforms) {
      if (p != Platform::kSnp && p != Platform::kCsv) continue;
      auto it = c.per_platform.find(p);
      if (it == c.per_platform.end() || it->second.min_tcb.empty()) {
        gaps.push_back(std::string("tcb: the release policy's min_tcb accepts ") + attestation::PlatformName(p) +
                       " evidence whose TCB status is NotEvaluated; this client policy does not (no min_tcb of its "
                       "own for it, NotEvaluated not in tcb_statuses)");
      }
    }
  }

  // TCB floors and required fields the client sets for a platform R accepts.
  for (Platform p : ra.platforms) {
    auto it = c.per_platform.find(p);
    if (it == c.per_platform.end()) continue;
    for (const auto& [component, floor] : it->second.min_tcb) {
      auto rf = r.min_tcb.find(component);
      if (rf == r.min_tcb.end() || rf->second < floor) {
        gaps.push_back("min_tcb: this client requires " + component + " >= " + std::to_string(floor) +
                       ", the release policy " +
                       (rf == r.min_tcb.end() ? std::string("sets no floor") : "only >= " + std::to_string(rf->second)));
      }
    }
    if (!it->second.fields.empty()) {
      gaps.push_back(std::string("fields: this client requires field values on ") + attestation::PlatformName(p) +
                     " that a release policy cannot express");
    }
  }

  // What runs inside: model and binary.
  if (r.model_digests.empty() || (c.model_digests.empty() && !unpinned_ok)) {
    gaps.push_back("model_digests: " + std::string(r.model_digests.empty() ? "the release policy pins no model"
                                                                           : "this client policy pins no model"));
  } else if (!c.model_digests.empty()) {
    for (const auto& hex : r.model_digests) {
      auto d = HexDecode(hex);
      if (!d.ok() || !Contains(c.model_digests, *d)) {
        gaps.push_back("model_digests: " + Short(Lower(hex)) + " is released to but not pinned by this client policy");
      }
    }
  }
  if (!c.binary_digests.empty()) {
    if (r.binary_digests.empty()) gaps.push_back("binary_digests: the release policy accepts any server binary");
    for (const auto& hex : r.binary_digests) {
      auto d = HexDecode(hex);
      if (!d.ok() || !Contains(c.binary_digests, *d)) {
        gaps.push_back("binary_digests: " + Short(Lower(hex)) + " is released to but not pinned by this client policy");
      }
    }
  }
  // How it serves: every host template R releases to must be one C accepts.
  for (const auto& hex : r.chat_template_digests) {
    auto d = HexDecode(hex);
    if (!d.ok() || !Contains(c.chat_template_digests, *d)) {
      gaps.push_back("chat_template_digests: the host-supplied chat template " + Short(Lower(hex)) +
                     " is released to but not accepted by this client policy");
    }
  }
  if (r.allow_untrusted_disk_model && !c.allow_untrusted_disk_model) {
    gaps.push_back("allow_untrusted_disk_model: the release policy accepts nodes that map their model from the "
                   "host's disk; this client policy does not");
  }
  if (r.allow_unlocked_memory && !c.allow_unlocked_memory) {
    gaps.push_back("allow_unlocked_memory: the release policy accepts nodes whose memory is not locked; this "
                   "client policy does not");
  }
  if (r.allow_debug_listener && !c.allow_debug_listener) {
    gaps.push_back("allow_debug_listener: the release policy accepts nodes that also serve plain HTTP; this client "
                   "policy does not");
  }
  if (r.allow_metrics_keys && !c.allow_metrics_keys) {
    gaps.push_back("allow_metrics_keys: the release policy accepts nodes that give /metrics to any key holders; "
                   "this client policy does not");
  }
  if (!c.allow_metrics_keys) {
    for (const auto& hex : r.metrics_readers) {
      auto d = HexDecode(hex);
      if (!d.ok() || !Contains(c.metrics_readers, *d)) {
        gaps.push_back("metrics_readers: the key " + Short(Lower(hex)) +
                       " may read /metrics on nodes released to, and not on servers this client policy accepts");
      }
    }
  }
  if (r.min_stream_pad < c.min_stream_pad) {
    gaps.push_back("min_stream_pad: the release policy accepts nodes padding TLS records to " +
                   std::to_string(r.min_stream_pad) + " bytes (0: not at all); this client policy requires " +
                   std::to_string(c.min_stream_pad));
  }
  if (r.min_stream_coalesce_ms < c.min_stream_coalesce_ms) {
    gaps.push_back("min_stream_coalesce_ms: the release policy accepts nodes holding streamed text " +
                   std::to_string(r.min_stream_coalesce_ms) + " ms per event; this client policy requires " +
                   std::to_string(c.min_stream_coalesce_ms));
  }
  if (!c.token_policies.empty()) {
    for (const auto& name : r.policies) {
      if (std::find(c.token_policies.begin(), c.token_policies.end(), name) == c.token_policies.end()) {
        gaps.push_back("policies: the release policy accepts tokens of attestation policy \"" + name +
                       "\", which --token-policy does not list");
      }
    }
  }

  if (gaps.empty()) return OkStatus();
  std::string detail = "the fleet key's release policy is weaker than this client's policy:";
  for (const auto& g : gaps) detail += "\n  " + g;
  return MakeError(Errc::kPermission, detail);
}

std::vector<std::string> ExplainRelease(const ReleasePolicy& r) {
  const attestation::Policy ra = r.AttestationPolicy();
  std::vector<std::string> out;
  out.push_back("released to platforms: " + Names(ra.platforms) + (r.allow_debug ? " (debug allowed)" : ""));
  std::string st;
  for (auto s : ra.tcb_statuses) st += (st.empty() ? "" : ",") + std::string(attestation::TcbStatusName(s));
  out.push_back("TCB statuses: " + (st.empty() ? std::string("none") : st));
  auto list = [](const std::set<std::string>& s) {
    std::string o;
    for (const auto& v : s) o += (o.empty() ? "" : ", ") + Short(Lower(v));
    return o.empty() ? std::string("any") : o;
  };
  out.push_back("measurements: " + list(r.measurements));
  out.push_back("models: " + list(r.model_digests));
  out.push_back("binaries: " + list(r.binary_digests));
  std::string floors;
  for (const auto& [k, v] : r.min_tcb) floors += (floors.empty() ? "" : ", ") + k + " >= " + std::to_string(v);
  if (!floors.empty()) out.push_back("TCB floors: " + floors);
  std::string pol;
  for (const auto& p : r.policies) pol += (pol.empty() ? "" : ", ") + p;
  out.push_back("attestation policies: " + pol);
  if (r.client_audience) out.push_back("audience: split-inference clients (tokens with \"role\": \"client\")");
  if (!r.chat_template_digests.empty()) {
    out.push_back("host-supplied chat templates: " + list(r.chat_template_digests));
  }
  if (r.allow_untrusted_disk_model) out.push_back("nodes whose model is mapped from the host's disk: accepted");
  if (r.allow_unlocked_memory) out.push_back("nodes whose memory is not locked (may be swapped): accepted");
  if (r.allow_debug_listener) out.push_back("nodes that also serve plain HTTP (--debug-listen): accepted");
  if (r.allow_metrics_keys) out.push_back("nodes that give /metrics to any key holders (--metrics-keys): accepted");
  if (!r.metrics_readers.empty()) {
    out.push_back("nodes that give /metrics to these keys only (--metrics-keys): " + list(r.metrics_readers));
  }
  out.push_back("TLS record padding: at least " + std::to_string(r.min_stream_pad) + " bytes" +
                (r.min_stream_pad == 0 ? " (unpadded nodes accepted)" : ""));
  if (r.min_stream_coalesce_ms > 0) {
    out.push_back("stream coalescing: at least " + std::to_string(r.min_stream_coalesce_ms) + " ms per event");
  }
  return out;
}

}  // namespace cllm::trust
