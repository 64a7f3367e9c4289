// release_cover_test.cc — a fleet key's release policy against client policies.

#include "trust/release_cover.h"

#include <gtest/gtest.h>

namespace cllm::trust {
namespace {

const std::string kModel(64, 'a');
const std::string kOtherModel(64, 'b');
const std::string kMeas(96, 'c');
const std::string kOtherMeas(96, 'd');
const std::string kBin(64, 'e');

ReleasePolicy Release(const nlohmann::json& j) {
  auto r = ParseReleasePolicy(j);
  EXPECT_TRUE(r.ok()) << r.detail();
  return *r;
}

attestation::Policy Client(const std::string& json) {
  auto p = attestation::ParsePolicy(json);
  EXPECT_TRUE(p.ok()) << p.detail();
  return *p;
}

std::string SnpClient(const std::string& extra = "") {
  return R"({"version": 1, "platforms": ["snp"], "model_digests": [")" + kModel + R"("],
             "snp": {"measurements": [")" + kMeas + R"("], "min_tcb": {"snp.microcode": 115}})" + extra + "}";
}

nlohmann::json SnpRelease() {
  return {{"model_digests", {kModel}}, {"platforms", {"snp"}}, {"measurements", {kMeas}},
          {"min_tcb", {{"snp.microcode", 115u}}}};
}

std::string Gaps(const ReleasePolicy& r, const attestation::Policy& c) {
  auto st = CheckReleaseWithinPolicy(r, c);
  return st.ok() ? "" : st.detail();
}

TEST(ReleaseCoverTest, EqualPoliciesCover) {
  EXPECT_EQ(Gaps(Release(SnpRelease()), Client(SnpClient())), "");
}

TEST(ReleaseCoverTest, EachWeakerMemberIsNamed) {
  struct Row {
    const char* what;
    nlohmann::json change;  // merged into SnpRelease()
    const char* expect;
  };
  const Row rows[] = {
      {"another platform", {{"platforms", {"snp", "tdx"}}}, "platforms: the release policy accepts tdx"},
      {"every platform", {{"platforms", nlohmann::json::array()}}, "accepts csv"},
      {"debug", {{"allow_debug", true}}, "allow_debug"},
      {"tcb status", {{"tcb_statuses", {"UpToDate", "OutOfDate"}}}, "tcb_statuses: the release policy accepts OutOfDate"},
      {"no measurement", {{"measurements", nlohmann::json::array()}}, "measurements: the release policy pins none"},
      {"other measurement", {{"measurements", {kMeas, kOtherMeas}}}, "dddddddddddddddd… is released to"},
      {"lower floor", {{"min_tcb", {{"snp.microcode", 100u}}}}, "snp.microcode >= 115, the release policy only >= 100"},
      {"no floor", {{"min_tcb", nlohmann::json::object()}}, "sets no floor"},
      {"other model", {{"model_digests", {kModel, kOtherModel}}}, "model_digests: bbbbbbbbbbbbbbbb…"},
  };
  for (const auto& row : rows) {
    nlohmann::json j = SnpRelease();
    for (const auto& [k, v] : row.change.items()) {
      if (v.is_array() && v.empty()) {
        j.erase(k);
      } else if (v.is_object() && v.empty()) {
        j.erase(k);
      } else {
        j[k] = v;
      }
    }
    const std::string gaps = Gaps(Release(j), Client(SnpClient()));
    EXPECT_NE(gaps.find(row.expect), std::string::npos) << row.what << ": " << gaps;
  }
}

TEST(ReleaseCoverTest, StricterReleaseCovers) {
  auto j = SnpRelease();
  j["min_tcb"] = {{"snp.microcode", 200u}, {"snp.snp", 8u}};
  EXPECT_EQ(Gaps(Release(j), Client(SnpClient())), "");
}

TEST(ReleaseCoverTest, BinaryAndTokenPolicyPins) {
  // The client pins binaries and token policies: the release policy must too.
  const auto c = Client(SnpClient(R"(, "binary_digests": [")" + kBin + R"("], "token_policies": ["prod"])"));
  auto j = SnpRelease();
  std::string gaps = Gaps(Release(j), c);
  EXPECT_NE(gaps.find("binary_digests: the release policy accepts any server binary"), std::string::npos) << gaps;
  EXPECT_NE(gaps.find("attestation policy \"default\""), std::string::npos) << gaps;
  j["binary_digests"] = {kBin};
  j["policies"] = {"prod"};
  EXPECT_EQ(Gaps(Release(j), c), "");
}

TEST(ReleaseCoverTest, ServingClaimsMustBeAcceptedByTheClient) {
  const std::string templ(64, 'f');
  auto j = SnpRelease();
  j["chat_template_digests"] = {templ};
  j["allow_untrusted_disk_model"] = true;
  j["allow_unlocked_memory"] = true;
  j["allow_debug_listener"] = true;
  j["allow_metrics_keys"] = true;
  const ReleasePolicy r = Release(j);
  EXPECT_EQ(ParseReleasePolicy(r.ToJson()).value().chat_template_digests, r.chat_template_digests);  // round trip
  std::string gaps = Gaps(r, Client(SnpClient()));
  EXPECT_NE(gaps.find("chat_template_digests: the host-supplied chat template ffffffffffffffff…"), std::string::npos)
      << gaps;
  EXPECT_NE(gaps.find("allow_untrusted_disk_model"), std::string::npos) << gaps;
  EXPECT_NE(gaps.find("allow_unlocked_memory"), std::string::npos) << gaps;
  EXPECT_NE(gaps.find("allow_debug_listener"), std::string::npos) << gaps;
  EXPECT_NE(gaps.find("allow_metrics_keys"), std::string::npos) << gaps;
  EXPECT_EQ(Gaps(r, Client(SnpClient(R"(, "chat_template_digests": [")" + templ +
                                     R"("], "allow_untrusted_disk_model": true, "allow_unlocked_memory": true, )"
                                     R"("allow_debug_listener": true, "allow_metrics_keys": true)"))),
            "");
  EXPECT_TRUE(ParseReleasePolicy(r.ToJson()).value().allow_unlocked_memory);
  EXPECT_TRUE(ParseReleasePolicy(r.ToJson()).value().allow_debug_listener);
  EXPECT_TRUE(ParseReleasePolicy(r.ToJson()).value().allow_metrics_keys);
  // One consent missing on the client's side is one gap.
  gaps = Gaps(r, Client(SnpClient(R"(, "chat_template_digests": [")" + templ +
                                  R"("], "allow_untrusted_disk_model": true, "allow_unlocked_memory": true, )"
                                  R"("allow_debug_listener": true)")));
  EXPECT_NE(gaps.find("allow_metrics_keys"), std::string::npos) << gaps;
  EXPECT_EQ(gaps.find("allow_debug_listener"), std::string::npos) << gaps;
  // Defaults are not written: older release policies read and sign unchanged.
  EXPECT_FALSE(Release(SnpRelease()).ToJson().contains("chat_template_digests"));
  EXPECT_FALSE(Release(SnpRelease()).ToJson().contains("allow_untrusted_disk_model"));
  EXPECT_FALSE(Release(SnpRelease()).ToJson().contains("allow_unlocked_memory"));
  EXPECT_FALSE(Release(SnpRelease()).ToJson().contains("allow_debug_listener"));
  EXPECT_FALSE(Release(SnpRelease()).ToJson().contains("allow_metrics_keys"));
  j["chat_template_digests"] = {"zz"};
  EXPECT_FALSE(ParseReleasePolicy(j).ok());
  j["chat_template_digests"] = {std::string(40, 'a')};  // hex, but not a SHA-256
  EXPECT_FALSE(ParseReleasePolicy(j).ok());
  j = SnpRelease();
  for (const char* flag : {"allow_debug_listener", "allow_metrics_keys", "allow_unlocked_memory"}) {
    for (const nlohmann::json& wrong : {nlohmann::json("yes"), nlohmann::json(1), nlohmann::json(nullptr)}) {
      auto bad = j;
      bad[flag] = wrong;
      EXPECT_FALSE(ParseReleasePolicy(bad).ok()) << flag << " = " << wrong;
    }
  }
}

// Metrics readers pinned key by key: every key a release policy lets read
// /metrics must be one the client accepts (or the client accepts any).
TEST(ReleaseCoverTest, MetricsReadersAreCoveredKeyByKey) {
  const std::string a(64, 'a'), b(64, 'b');
  auto j = SnpRelease();
  j["metrics_readers"] = {a, b};
  const ReleasePolicy r = Release(j);
  EXPECT_EQ(ParseReleasePolicy(r.ToJson()).value().metrics_readers, r.metrics_readers);  // round trip
  std::string gaps = Gaps(r, Client(SnpClient()));
  EXPECT_NE(gaps.find("metrics_readers: the key aaaaaaaaaaaaaaaa…"), std::string::npos) << gaps;
  EXPECT_NE(gaps.find("metrics_readers: the key bbbbbbbbbbbbbbbb…"), std::string::npos) << gaps;
  gaps = Gaps(r, Client(SnpClient(R"(, "metrics_readers": [")" + a + R"("])")));
  EXPECT_EQ(gaps.find("aaaaaaaaaaaaaaaa"), std::string::npos) << gaps;
  EXPECT_NE(gaps.find("metrics_readers: the key bbbbbbbbbbbbbbbb…"), std::string::npos) << gaps;
  EXPECT_EQ(Gaps(r, Client(SnpClient(R"(, "metrics_readers": [")" + b + R"(", ")" + a + R"("])"))), "");
  EXPECT_EQ(Gaps(r, Client(SnpClient(R"(, "allow_metrics_keys": true)"))), "");
  // A release policy accepting any reader is not covered by pinned readers.
  auto any = SnpRelease();
  any["allow_metrics_keys"] = true;
  const std::string pinned_a = Gaps(Release(any), Client(SnpClient(R"(, "metrics_readers": [")" + a + R"("])")));
  EXPECT_NE(pinned_a.find("allow_metrics_keys"), std::string::npos) << pinned_a;
  EXPECT_FALSE(Release(SnpRelease()).ToJson().contains("metrics_readers"));
  j["allow_metrics_keys"] = true;  // both at once: ambiguous, refused
  EXPECT_FALSE(ParseReleasePolicy(j).ok());
  j = SnpRelease();
  j["metrics_readers"] = {std::string(40, 'a')};
  EXPECT_FALSE(ParseReleasePolicy(j).ok());
  j["metrics_readers"] = "aa";
  EXPECT_FALSE(ParseReleasePolicy(j).ok());
}

// The key broker's view of a token's readers: each must be listed (or any
// allowed); a claim of the wrong shape, and the bare "metrics_keys" of
// tokens that did not name readers, count as unknown readers.
TEST(ReleaseCoverTest, BrokerChecksMetricsReadersKeyByKey) {
  const std::string a(64, 'a'), b(64, 'b');
  auto j = SnpRelease();
  j["metrics_readers"] = {a};
  const ReleasePolicy pinned = Release(j);
  auto check = [](const ReleasePolicy& r, const nlohmann::json& claims) { return CheckReleaseServing(r, claims); };
  EXPECT_TRUE(check(pinned, nlohmann::json::object()).ok());
  EXPECT_TRUE(check(pinned, {{"metrics_readers", {a}}}).ok());
  EXPECT_TRUE(check(pinned, {{"metrics_readers", {std::string(64, 'A')}}}).ok());  // hex compares in any case
  for (const nlohmann::json& claims :
       {nlohmann::json{{"metrics_readers", {a, b}}}, nlohmann::json{{"metrics_readers", a}},
        nlohmann::json{{"metrics_readers", nullptr}}, nlohmann::json{{"metrics_readers", {1}}},
        nlohmann::json{{"metrics_readers", {{{"x", a}}}}}, nlohmann::json{{"metrics_keys", true}},
        nlohmann::json{{"metrics_keys", "yes"}}}) {
    auto st = check(pinned, claims);
    ASSERT_FALSE(st.ok()) << claims;
    EXPECT_EQ(st.code(), Errc::kPermission) << claims;
  }
  EXPECT_NE(check(pinned, {{"metrics_readers", {a, b}}}).detail().find(b), std::string::npos);
  EXPECT_TRUE(check(pinned, {{"metrics_keys", false}}).ok());
  auto any = SnpRelease();
  any["allow_metrics_keys"] = true;
  EXPECT_TRUE(check(Release(any), {{"metrics_readers", {a, b}}}).ok());
  EXPECT_TRUE(check(Release(any), {{"metrics_keys", true}}).ok());
  EXPECT_FALSE(check(Release(SnpRelease()), {{"metrics_readers", {a}}}).ok());
}

// What the network sees of a node's answers (found by review: the broker
// checked every serving claim but the record padding, so a fleet key went to
// unpadded replicas whatever the client's min_stream_pad): the token's
// stream_pad and stream_coalesce_ms against the release policy's floors, and
// the floors against the client's.
TEST(ReleaseCoverTest, PaddingAndCoalescingFloorsAreCheckedAndCovered) {
  auto check = [](const ReleasePolicy& r, const nlohmann::json& claims) { return CheckReleaseServing(r, claims); };
  const ReleasePolicy defaults = Release(SnpRelease());
  EXPECT_EQ(defaults.min_stream_pad, 512u);
  EXPECT_TRUE(check(defaults, nlohmann::json::object()).ok());  // absent: the default 512, no coalescing
  EXPECT_TRUE(check(defaults, {{"stream_pad", 1024}}).ok());
  for (const nlohmann::json& pad : {nlohmann::json(0), nlohmann::json(256), nlohmann::json("1024"), nlohmann::json(-1),
                                    nlohmann::json(20000)}) {
    auto st = check(defaults, {{"stream_pad", pad}});
    ASSERT_FALSE(st.ok()) << pad;
    EXPECT_NE(st.detail().find("min_stream_pad"), std::string::npos) << st.detail();
  }
  auto j = SnpRelease();
  j["min_stream_pad"] = 0;
  j["min_stream_coalesce_ms"] = 100;
  const ReleasePolicy lax_pad = Release(j);
  EXPECT_TRUE(check(lax_pad, {{"stream_pad", 0}, {"stream_coalesce_ms", 100}}).ok());
  EXPECT_NE(check(lax_pad, {{"stream_pad", 0}}).detail().find("min_stream_coalesce_ms"), std::string::npos);
  EXPECT_FALSE(check(lax_pad, {{"stream_pad", 0}, {"stream_coalesce_ms", 99}}).ok());
  EXPECT_EQ(ParseReleasePolicy(lax_pad.ToJson()).value().min_stream_pad, 0u);  // round trip
  EXPECT_EQ(ParseReleasePolicy(lax_pad.ToJson()).value().min_stream_coalesce_ms, 100u);
  EXPECT_FALSE(defaults.ToJson().contains("min_stream_pad"));  // defaults unwritten: older records sign unchanged
  EXPECT_FALSE(defaults.ToJson().contains("min_stream_coalesce_ms"));
  // Covered only when the floors are at least the client's.
  std::string gaps = Gaps(lax_pad, Client(SnpClient()));
  EXPECT_NE(gaps.find("min_stream_pad: the release policy accepts nodes padding TLS records to 0 bytes"),
            std::string::npos) << gaps;
  EXPECT_EQ(Gaps(lax_pad, Client(SnpClient(R"(, "min_stream_pad": 0)"))), "");
  EXPECT_NE(Gaps(lax_pad, Client(SnpClient(R"(, "min_stream_pad": 0, "min_stream_coalesce_ms": 200)")))
                .find("min_stream_coalesce_ms"),
            std::string::npos);
  for (const char* bad : {R"({"min_stream_pad": 16385})", R"({"min_stream_pad": "512"})",
                          R"({"min_stream_coalesce_ms": 10001})", R"({"min_stream_coalesce_ms": -1})"}) {
    auto b = SnpRelease();
    b.update(nlohmann::json::parse(bad));
    EXPECT_FALSE(ParseReleasePolicy(b).ok()) << bad;
  }
}

TEST(ReleaseCoverTest, RequiredFieldsCannotBeExpressed) {
  const auto c = Client(R"({"version": 1, "platforms": ["tdx"], "model_digests": [")" + kModel +
                        R"("], "tdx": {"measurements": [")" + kMeas + R"("], "fields": {"rtmr0": ")" + kOtherMeas +
                        R"("}}})");
  auto j = SnpRelease();
  j["platforms"] = {"tdx"};
  j.erase("min_tcb");
  EXPECT_NE(Gaps(Release(j), c).find("fields: this client requires field values on tdx"), std::string::npos);
}

// A client pinning only TDX's MRTD refuses every TDX server directly (any
// kernel boots on a pinned firmware: RTMR0-3 must be pinned too), so no
// fleet key released on TDX covers it: the e2e path is no way around A2.
TEST(ReleaseCoverTest, AClientThatPinsOnlyTheTdxFirmwareIsNotCovered) {
  const auto c = Client(R"({"version": 1, "platforms": ["tdx"], "model_digests": [")" + kModel +
                        R"("], "tdx": {"measurements": [")" + kMeas + R"("]}})");
  auto j = SnpRelease();
  j["platforms"] = {"tdx"};
  j.erase("min_tcb");
  const std::string gaps = Gaps(Release(j), c);
  EXPECT_NE(gaps.find("pinning: this client policy leaves TDX RTMR0 open"), std::string::npos) << gaps;
  EXPECT_NE(gaps.find("TDX RTMR3"), std::string::npos) << gaps;
  auto unpinned = c;
  unpinned.insecure_accept_unpinned = true;
  EXPECT_EQ(Gaps(Release(j), unpinned).find("pinning:"), std::string::npos) << "the client's own opt-out";
}

// A release policy with a TCB floor accepts SNP evidence whose status is
// NotEvaluated (its floor is the statement); a client without a floor of
// its own, and with tcb_statuses [UpToDate], refuses such a server.
TEST(ReleaseCoverTest, AReleaseFloorThatAcceptsNotEvaluatedMustBeTheClientsToo) {
  const std::string no_floor = R"({"version": 1, "platforms": ["snp"], "model_digests": [")" + kModel +
                               R"("], "snp": {"measurements": [")" + kMeas + R"("]}})";
  std::string gaps = Gaps(Release(SnpRelease()), Client(no_floor));
  EXPECT_NE(gaps.find("tcb: the release policy's min_tcb accepts snp evidence whose TCB status is NotEvaluated"),
            std::string::npos)
      << gaps;
  const std::string listed = R"({"version": 1, "platforms": ["snp"], "model_digests": [")" + kModel +
                             R"("], "tcb_statuses": ["UpToDate", "NotEvaluated"], "snp": {"measurements": [")" + kMeas +
                             R"("]}})";
  EXPECT_EQ(Gaps(Release(SnpRelease()), Client(listed)), "");
  EXPECT_EQ(Gaps(Release(SnpRelease()), Client(SnpClient())), "") << "the client's own floor";
}

TEST(ReleaseCoverTest, SimulatedTeeNeedsTheClientsOptIn) {
  nlohmann::json j = {{"model_digests", {kModel}}, {"platforms", {"sim"}}, {"allow_simulated", true}};
  const std::string sim_client = R"({"version": 1, "platforms": ["sim"], "model_digests": [")" + kModel + R"("]})";
  EXPECT_EQ(Gaps(Release(j), Client(sim_client)), "");  // no measurement needed for sim
  EXPECT_NE(Gaps(Release(j), Client(SnpClient())).find("accepts sim"), std::string::npos);
  // A release policy naming sim without allow_simulated accepts nothing.
  j.erase("allow_simulated");
  EXPECT_NE(Gaps(Release(j), Client(sim_client)).find("accepts no platform"), std::string::npos);
}

TEST(ReleaseCoverTest, UnpinnedClientOnlyWithItsFlag) {
  auto j = SnpRelease();
  j.erase("measurements");
  auto c = Client(SnpClient());
  EXPECT_NE(Gaps(Release(j), c), "");
  c.insecure_accept_unpinned = true;
  EXPECT_EQ(Gaps(Release(j), c), "");
}

TEST(ReleaseCoverTest, ExplainNamesWhatIsPinned) {
  auto lines = ExplainRelease(Release(SnpRelease()));
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  EXPECT_NE(all.find("released to platforms: snp"), std::string::npos) << all;
  EXPECT_NE(all.find("snp.microcode >= 115"), std::string::npos) << all;
  EXPECT_NE(all.find("binaries: any"), std::string::npos) << all;
}

}  // namespace
}  // namespace cllm::trust
