// Policy file parsing and appraisal: strict parsing (a typo must not relax a
// check), and each appraisal check failing with its own code and a detail
// that says expected vs found.
#include "attestation/policy.h"

#include <gtest/gtest.h>

#include "attestation/internal/verifier_pass.h"  // tests build evidence directly

namespace cllm::attestation {
namespace {

VerifiedEvidence Evidence(Platform platform = Platform::kSnp) {
  VerifiedEvidence::Data d;
  d.platform = platform;
  d.simulated = platform == Platform::kSim;
  d.measurement = Bytes(48, 0x11);
  d.report_data = Bytes(64, 0x22);
  d.tcb_status = TcbStatus::kUpToDate;
  d.tcb = {{"snp.microcode", 0xd5}, {"snp.snp", 22}};
  d.fields = {{"policy.smt", "1"}, {"host_data", "AABB"}};
  return VerifiedEvidence(VerifierPass::Issue(), d);
}

Policy Parse(const std::string& json) {
  auto p = ParsePolicy(json);
  EXPECT_TRUE(p.ok()) << p.detail();
  return p.ok() ? std::move(p).value() : Policy{};
}

TEST(PolicyTest, ParsesTheDocumentedFormat) {
  Policy p = Parse(R"({
    "version": 1,
    "platforms": ["snp", "tdx", "sim"],
    "allow_debug": false,
    "tcb_statuses": ["UpToDate", "SWHardeningNeeded"],
    "report_data": ")" + std::string(128, 'a') + R"(",
    "binary_digests": ["0011"],
    "model_digests": ["2233", "4455"],
    "chat_template_digests": [")" + std::string(64, 'c') + R"("],
    "allow_untrusted_disk_model": true,
    "allow_unlocked_memory": true,
    "min_stream_pad": 0,
    "min_stream_coalesce_ms": 250,
    "allow_debug_listener": true,
    "allow_metrics_keys": true,
    "snp": {"measurements": [")" + std::string(96, '1') + R"("],
            "min_tcb": {"snp.microcode": 200},
            "fields": {"policy.smt": "0"}}
  })");
  EXPECT_EQ(p.platforms.size(), 3u);
  EXPECT_TRUE(p.platforms.count(Platform::kSim));
  EXPECT_EQ(p.tcb_statuses.size(), 2u);
  ASSERT_TRUE(p.report_data.has_value());
  EXPECT_EQ(p.report_data->size(), 64u);
  EXPECT_EQ(p.model_digests.size(), 2u);
  EXPECT_EQ(p.chat_template_digests, std::vector<Bytes>{Bytes(32, 0xcc)});
  EXPECT_TRUE(p.allow_untrusted_disk_model);
  EXPECT_TRUE(p.allow_unlocked_memory);
  EXPECT_FALSE(Policy::Default().allow_unlocked_memory);
  EXPECT_EQ(p.min_stream_pad, 0u);
  EXPECT_EQ(Policy::Default().min_stream_pad, 512u);
  EXPECT_EQ(p.min_stream_coalesce_ms, 250u);
  EXPECT_EQ(Policy::Default().min_stream_coalesce_ms, 0u);
  EXPECT_TRUE(p.allow_debug_listener);
  EXPECT_TRUE(p.allow_metrics_keys);
  EXPECT_FALSE(Policy::Default().allow_debug_listener);
  EXPECT_FALSE(Policy::Default().allow_metrics_keys);
  EXPECT_TRUE(Policy::Default().metrics_readers.empty());
  auto readers = ParsePolicy(R"({"version": 1, "platforms": ["snp"], "metrics_readers": [")" + std::string(64, 'A') +
                             R"(", ")" + std::string(64, '0') + R"("]})");
  ASSERT_TRUE(readers.ok()) << readers.detail();
  EXPECT_EQ(readers->metrics_readers, (std::vector<Bytes>{Bytes(32, 0xaa), Bytes(32, 0)}));
  EXPECT_FALSE(readers->allow_metrics_keys);
  EXPECT_FALSE(Policy::Default().allow_untrusted_disk_model);
  EXPECT_TRUE(Policy::Default().chat_template_digests.empty());
  const auto& snp = p.per_platform.at(Platform::kSnp);
  EXPECT_EQ(snp.measurements.at(0), Bytes(48, 0x11));
  EXPECT_EQ(snp.min_tcb.at("snp.microcode"), 200u);
  EXPECT_EQ(snp.fields.at("policy.smt"), "0");
}

TEST(PolicyTest, RejectsEveryMistakeNamingTheKey) {
  struct Case {
    const char* json;
    const char* names;
  };
  for (Case c : {Case{R"({"platforms":["snp"]})", "version"},
                 Case{R"({"version":2,"platforms":["snp"]})", "version"},
                 Case{R"({"version":1})", "platforms"},
                 Case{R"({"version":1,"platforms":[]})", "platforms"},
                 Case{R"({"version":1,"platforms":["sgx"]})", "sgx"},
                 Case{R"({"version":1,"platforms":["snp"],"alow_debug":true})", "alow_debug"},
                 Case{R"({"version":1,"platforms":["snp"],"allow_debug":"yes"})", "allow_debug"},
                 Case{R"({"version":1,"platforms":["snp"],"report_data":"abcd"})", "report_data"},
                 Case{R"({"version":1,"platforms":["snp"],"tcb_statuses":["Fine"]})", "Fine"},
                 Case{R"({"version":1,"platforms":["snp"],"snp":{"measurement":["00"]}})", "snp.measurement"},
                 Case{R"({"version":1,"platforms":["snp"],"snp":{"measurements":["zz"]}})", "snp.measurements[0]"},
                 Case{R"({"version":1,"platforms":["snp"],"snp":{"min_tcb":{"snp.snp":-1}}})", "snp.min_tcb.snp.snp"},
                 Case{R"({"version":1,"platforms":["snp"],"snp":{"platform_keys":[]}})", "snp.platform_keys"},
                 Case{R"({"version":1,"platforms":["sim"],"sim":{"platform_keys":["nope"]}})", "sim.platform_keys[0]"},
                 Case{R"({"version":1,"platforms":["snp"],"chat_template_digests":["00ff"]})", "chat_template_digests"},
                 Case{R"({"version":1,"platforms":["snp"],"chat_template_digests":"ab"})", "chat_template_digests"},
                 Case{R"({"version":1,"platforms":["snp"],"allow_untrusted_disk_model":1})", "allow_untrusted_disk_model"},
                 Case{R"({"version":1,"platforms":["snp"],"allow_unlocked_memory":"yes"})", "allow_unlocked_memory"},
                 Case{R"({"version":1,"platforms":["snp"],"min_stream_pad":-1})", "min_stream_pad"},
                 Case{R"({"version":1,"platforms":["snp"],"allow_debug_listener":null})", "allow_debug_listener"},
                 Case{R"({"version":1,"platforms":["snp"],"allow_metrics_keys":0})", "allow_metrics_keys"},
                 Case{R"({"version":1,"platforms":["snp"],"metrics_readers":["abcd"]})", "metrics_readers"},
                 Case{R"({"version":1,"platforms":["snp"],"metrics_readers":"00"})", "metrics_readers"},
                 Case{R"({"version":1,"platforms":["snp"],"allow_metrics_keys":true,"metrics_readers":[")"
                      R"(aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]})",
                      "metrics_readers"},
                 Case{R"({"version":1,"platforms":["snp"],"min_stream_pad":20000})", "min_stream_pad"},
                 Case{R"([1,2])", "object"},
                 Case{R"({"version":1,)", "JSON"}}) {
    auto p = ParsePolicy(c.json);
    ASSERT_FALSE(p.ok()) << c.json;
    EXPECT_EQ(p.code(), AttestErrc::kPolicyInvalid) << c.json;
    EXPECT_NE(p.detail().find(c.names), std::string::npos) << c.json << " → " << p.detail();
  }
  EXPECT_EQ(ParsePolicy(std::string(10000, '[')).code(), AttestErrc::kPolicyInvalid);
}

TEST(PolicyTest, DefaultAcceptsUpToDateHardwareWithoutDebug) {
  auto claims = Appraise(Evidence(), Policy::Default());
  ASSERT_TRUE(claims.ok()) << claims.detail();
  EXPECT_EQ(claims->platform(), Platform::kSnp);
  EXPECT_FALSE(claims->simulated());
  EXPECT_EQ(claims->measurement(), Bytes(48, 0x11));
  EXPECT_EQ(claims->tcb().at("snp.snp"), 22u);
  EXPECT_EQ(claims->fields().at("host_data"), "AABB");
}

TEST(PolicyTest, EachCheckFailsWithItsOwnCode) {
  auto base = R"("version":1,"platforms":["snp"])";
  auto with = [&](const std::string& extra) { return Parse("{" + std::string(base) + extra + "}"); };
  struct Case {
    Policy policy;
    AttestErrc want;
    const char* detail;
  };
  std::vector<Case> cases = {
      {Parse(R"({"version":1,"platforms":["tdx"]})"), AttestErrc::kPolicyViolation, "platform"},
      {with(R"(,"tcb_statuses":["OutOfDate"])"), AttestErrc::kTcbTooLow, "UpToDate"},
      {with(R"(,"snp":{"min_tcb":{"snp.microcode":214}})"), AttestErrc::kTcbTooLow, ">= 214, found 213"},
      {with(R"(,"snp":{"min_tcb":{"snp.fmc":1}})"), AttestErrc::kTcbTooLow, "not reported"},
      {with(R"(,"snp":{"measurements":[")" + std::string(96, '2') + R"("]})"), AttestErrc::kPolicyViolation,
       "measurement"},
      {with(R"(,"snp":{"fields":{"policy.smt":"0"}})"), AttestErrc::kPolicyViolation, "expected \"0\", found \"1\""},
      {with(R"(,"snp":{"fields":{"no.such":"0"}})"), AttestErrc::kPolicyViolation, "not present"},
      {with(R"(,"report_data":")" + std::string(128, '3') + "\""), AttestErrc::kReportDataMismatch, "report_data"},
  };
  for (const auto& c : cases) {
    auto r = Appraise(Evidence(), c.policy);
    ASSERT_FALSE(r.ok()) << c.detail;
    EXPECT_EQ(r.code(), c.want) << r.detail();
    EXPECT_NE(r.detail().find(c.detail), std::string::npos) << r.detail();
  }
}

TEST(PolicyTest, FieldValuesCompareHexCaseInsensitivelyAndTcbAsDecimal) {
  Policy p = Parse(R"({"version":1,"platforms":["snp"],
      "snp":{"fields":{"host_data":"aabb","snp.microcode":"213"},"measurements":[")" +
                   std::string(96, '1') + R"("]}})");
  EXPECT_TRUE(Appraise(Evidence(), p).ok());
}

TEST(PolicyTest, DebugNeedsExplicitPermission) {
  VerifiedEvidence::Data d = Evidence().data();
  d.debug = true;
  VerifiedEvidence dbg(VerifierPass::Issue(), d);
  EXPECT_EQ(Appraise(dbg, Policy::Default()).code(), AttestErrc::kDebugEnabled);
  Policy p = Policy::Default();
  p.allow_debug = true;
  EXPECT_TRUE(Appraise(dbg, p).ok());
}

TEST(PolicyTest, TpmAndSimHaveNoTcbStatusButOthersMust) {
  VerifiedEvidence::Data d = Evidence(Platform::kTpm).data();
  d.tcb_status = TcbStatus::kNotApplicable;
  EXPECT_TRUE(Appraise(VerifiedEvidence(VerifierPass::Issue(), d), Policy::Default()).ok());
  d.platform = Platform::kSnp;  // a hardware verifier that forgot its status is refused
  EXPECT_EQ(Appraise(VerifiedEvidence(VerifierPass::Issue(), d), Policy::Default()).code(), AttestErrc::kTcbTooLow);
}

TEST(PolicyTest, SimulatedFlagCannotHideBehindAnotherPlatform) {
  VerifiedEvidence::Data d = Evidence().data();
  d.simulated = true;  // e.g. a sim verifier labelling its output "snp"
  EXPECT_EQ(Appraise(VerifiedEvidence(VerifierPass::Issue(), d), Policy::Default()).code(),
            AttestErrc::kSimulatedNotAllowed);
}

// Issue #11 item 5: SNP/CSV evidence has no TCB status source. The default
// policy refuses it (naming the components to pin); a floor per component or
// an explicit "NotEvaluated" accepts it; the floor is then enforced.
TEST(PolicyTest, NotEvaluatedTcbNeedsAFloorOrExplicitConsent) {
  VerifiedEvidence::Data d = Evidence().data();
  d.tcb_status = TcbStatus::kNotEvaluated;
  const VerifiedEvidence ev(VerifierPass::Issue(), d);
  auto refused = Appraise(ev, Policy::Default());
  EXPECT_EQ(refused.code(), AttestErrc::kTcbTooLow);
  EXPECT_NE(refused.detail().find("snp.microcode=213"), std::string::npos) << refused.detail();
  EXPECT_NE(refused.detail().find("min_tcb"), std::string::npos) << refused.detail();

  Policy floor = Policy::Default();
  floor.per_platform[Platform::kSnp].min_tcb = {{"snp.microcode", 213}, {"snp.snp", 22}};
  auto ok = Appraise(ev, floor);
  ASSERT_TRUE(ok.ok()) << ok.detail();
  EXPECT_EQ(ok->tcb_status(), TcbStatus::kNotEvaluated);  // reported as is, never UpToDate
  floor.per_platform[Platform::kSnp].min_tcb["snp.snp"] = 23;
  EXPECT_EQ(Appraise(ev, floor).code(), AttestErrc::kTcbTooLow);
  // A floor for another platform does not count.
  Policy other = Policy::Default();
  other.per_platform[Platform::kTdx].min_tcb = {{"tdx.tee_tcb_svn[0]", 1}};
  EXPECT_EQ(Appraise(ev, other).code(), AttestErrc::kTcbTooLow);

  Policy consent = Parse(R"({"version":1,"platforms":["snp"],"tcb_statuses":["UpToDate","NotEvaluated"]})");
  EXPECT_TRUE(Appraise(ev, consent).ok());
}

TEST(PolicyTest, TokenPoliciesParseAndDoNotAffectEvidenceAppraisal) {
  Policy p = Parse(R"({"version":1,"platforms":["snp"],"token_policies":["prod","prod-eu"]})");
  EXPECT_EQ(p.token_policies, (std::vector<std::string>{"prod", "prod-eu"}));
  EXPECT_TRUE(Appraise(Evidence(), p).ok());
  EXPECT_EQ(ParsePolicy(R"({"version":1,"platforms":["snp"],"token_policies":[""]})").code(),
            AttestErrc::kPolicyInvalid);
  EXPECT_EQ(ParsePolicy(R"({"version":1,"platforms":["snp"],"token_policies":"prod"})").code(),
            AttestErrc::kPolicyInvalid);
}

}  // namespace
}  // namespace cllm::attestation
