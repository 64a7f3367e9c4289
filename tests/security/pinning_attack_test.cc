// Attack (issue #11 item 1): "clients accept any genuine CVM by default".
//
// The attacker runs a genuine TEE — real hardware, valid signatures — but
// boots their own image or serves their own model. Every signature check
// passes; the binary and model digests bound into report_data are computed
// by the attacker's server itself. Only pinned reference values (launch
// measurement, model digest) tell the client which code and model answer.
//
// Stopped by attestation/pinning.h, enforced in client::Connect,
// client::FetchAttestation, trust::ConnectViaToken and `cllm attest verify`:
// a policy that does not pin them is refused with a message naming each
// open value, the value seen, and how to pin it; `--insecure-accept-unpinned`
// is the only way past, and it warns on every use.
//
// Real processes: cllm-server on the simulated TEE (the policy lists "sim"
// with its platform key but pins no model digest), the `cllm` client, and
// real AMD SEV-SNP evidence for `cllm attest verify`. (Token mode:
// tests/e2e/trust_e2e_test.cc TokenModeRefusesAServerWhoseModelIsNotPinned.)
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "attestation/sim/sim_attester.h"
#include "base/encoding.h"
#include "client/client.h"
#include "support/process.h"
#include "support/shared_data.h"

namespace cllm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Bin;
using testing::Outcome;
using testing::Process;
using testing::ReadFile;

constexpr char kModel[] = "models/stories260K-f16.gguf";
constexpr char kSnpDir[] = "testdata/attestation/snp/";

class PinningAttackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = testing::SharedDir() / kModel;
    if (!fs::exists(model_)) return;
    dir_ = fs::temp_directory_path() / ("cllm_pinning_attack_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    auto key = attestation::sim::GenerateSimPlatformKey().value();
    std::ofstream(dir_ / "plat.key") << key.ToPem();
    std::ofstream(dir_ / "plat.key.pub") << key.public_key().ToPem();
    // The attacker's view of a careless client: sim accepted with its key,
    // nothing else pinned — any model would be served.
    const json sim = {{"platform_keys", {key.public_key().ToPem()}}};
    std::ofstream(dir_ / "unpinned.json") << json{{"version", 1}, {"platforms", {"sim"}}, {"sim", sim}}.dump();
    server_ = new Process({Bin("cllm-server"), "-m", model_.string(), "--tee", "sim", "--sim-key",
                           (dir_ / "plat.key").string(), "--listen", "127.0.0.1:0", "--allow-anonymous",
                           "--ready-file", (dir_ / "ready.json").string(), "--log-level", "warn"},
                          dir_ / "server");
    ready_ = testing::WaitReady(*server_, dir_ / "ready.json");
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    if (!dir_.empty() && !std::getenv("CLLM_KEEP_E2E")) fs::remove_all(dir_);
  }
  void SetUp() override {
    CLLM_SHARED_PATH(model, kModel);
    ASSERT_FALSE(ready_.is_null()) << "cllm-server did not start: " << (server_ ? server_->err() : "");
  }

  static Outcome Run(std::vector<std::string> args, const std::string& tag) {
    args.insert(args.begin(), Bin("cllm"));
    return testing::RunToEnd(std::move(args), dir_ / tag);
  }
  static std::string Url() { return "https://127.0.0.1:" + std::to_string(ready_["port"].get<int>()); }
  static std::string ModelDigest() { return ready_["model_digest"].get<std::string>(); }
  static std::string Path(const std::string& name) { return (dir_ / name).string(); }

  static inline fs::path model_, dir_;
  static inline Process* server_ = nullptr;
  static inline json ready_;
};

bool Has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The client library refuses before sending a request; the detail names the
// open value, what the server reported and how to pin it.
TEST_F(PinningAttackTest, LibraryConnectRefusesUnpinnedModel) {
  auto policy = attestation::LoadPolicy(dir_ / "unpinned.json");
  ASSERT_TRUE(policy.ok()) << policy.detail();
  client::Url url{true, "127.0.0.1", ready_["port"].get<uint16_t>(), ""};
  auto conn = client::Connect(url, *policy);
  ASSERT_FALSE(conn.ok()) << "a server whose model the policy does not pin was accepted";
  EXPECT_EQ(conn.code(), client::ClientErrc::kAttestation);
  EXPECT_TRUE(Has(conn.detail(), "not_pinned: model digest is not pinned: the server reported " + ModelDigest()))
      << conn.detail();
  EXPECT_TRUE(Has(conn.detail(), "cllm policy pin --model FILE")) << conn.detail();

  // The explicit opt-out is the only way past.
  policy->insecure_accept_unpinned = true;
  auto accepted = client::Connect(url, *policy);
  ASSERT_TRUE(accepted.ok()) << accepted.detail();
  EXPECT_TRUE(client::FetchAttestation(**accepted, *policy).ok());
  policy->insecure_accept_unpinned = false;
  auto fresh = client::FetchAttestation(**accepted, *policy);
  EXPECT_EQ(fresh.code(), client::ClientErrc::kAttestation) << "the nonce check must require pinning too";
}

TEST_F(PinningAttackTest, ChatRefusesUnpinnedServer) {
  Outcome r = Run({"chat", Url(), "--policy", Path("unpinned.json"), "-p", "Once upon a time", "-n", "4"}, "chat");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_TRUE(Has(r.err, "model digest is not pinned: the server reported " + ModelDigest())) << r.err;
  EXPECT_FALSE(Has(r.err, "connected to")) << "nothing may be sent to an unpinned server";
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST_F(PinningAttackTest, AttestUrlExplainsThenRefusesUnpinnedServer) {
  Outcome r = Run({"attest", Url(), "--policy", Path("unpinned.json")}, "attest");
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_TRUE(Has(r.out, "model digest   " + ModelDigest())) << r.out;  // still explained
  EXPECT_TRUE(Has(r.out, "✗ model digest is not pinned: the server reported " + ModelDigest())) << r.out;
  EXPECT_TRUE(Has(r.out, "verdict: REFUSED (not pinned")) << r.out;

  Outcome j = Run({"attest", Url(), "--policy", Path("unpinned.json"), "--json"}, "attest-json");
  EXPECT_EQ(j.code, 1);
  auto doc = json::parse(j.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << j.out;
  EXPECT_EQ(doc["verdict"], "refused");
  EXPECT_EQ(doc["error"]["code"], "not_pinned");
}

// The honest way: `cllm policy pin` computes the model digest as the server
// does, from the user's own copy of the model; the pinned policy is accepted.
TEST_F(PinningAttackTest, PolicyPinFromLocalFilesIsAccepted) {
  Outcome pin = Run({"policy", "pin", "-o", Path("pinned.json"), "--sim-platform-key", Path("plat.key.pub"),
                     "--model", model_.string()},
                    "pin");
  ASSERT_EQ(pin.code, 0) << pin.err;
  EXPECT_TRUE(Has(pin.out, "model digest " + ModelDigest())) << pin.out;
  Outcome chat = Run({"chat", Url(), "--policy", Path("pinned.json"), "-p", "Once upon a time", "-n", "4",
                      "--temperature", "0"},
                     "chat-pinned");
  EXPECT_EQ(chat.code, 0) << chat.err;
  EXPECT_TRUE(Has(chat.err, "[SIMULATED TEE")) << chat.err;
  EXPECT_FALSE(chat.out.empty());
  Outcome attest = Run({"attest", Url(), "--policy", Path("pinned.json")}, "attest-pinned");
  EXPECT_EQ(attest.code, 0) << attest.out << attest.err;
}

TEST_F(PinningAttackTest, OptOutFlagAcceptsAndWarnsLoudly) {
  Outcome r = Run({"chat", Url(), "--policy", Path("unpinned.json"), "--insecure-accept-unpinned", "-p", "Once",
                   "-n", "2", "--temperature", "0"},
                  "chat-optout");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(Has(r.err, "WARNING: --insecure-accept-unpinned")) << r.err;
  EXPECT_FALSE(Has(r.err, "TEE verified")) << r.err;
}

// Real AMD SEV-SNP evidence: genuine, but the default policy pins nothing.
// (SNP has no TCB status source either: the default policy refuses it for
// its TCB first; with a TCB floor pinned, the pinning verdict follows.)
TEST_F(PinningAttackTest, AttestVerifyWithoutPolicyIsNotSatisfied) {
  CLLM_SHARED_PATH(report, std::string(kSnpDir) + "trustee_genoa_v3_report.bin");
  CLLM_SHARED_PATH(vcek, std::string(kSnpDir) + "trustee_genoa_v3_vcek.der");
  CLLM_SHARED_PATH(chain, std::string(kSnpDir) + "amd_genoa_ask_ark_vcek_chain.pem");
  const std::vector<std::string> base = {"attest", "verify", "--evidence", report.string(), "--platform", "snp",
                                         "--certs", vcek.string(), "--certs", chain.string(), "--at",
                                         "2026-01-01T00:00:00Z"};
  // No policy at all: every verified field is still explained, the TCB
  // refusal (SNP has no TCB status source) is shown, and the verdict is
  // "nothing pinned".
  Outcome r = Run(base, "verify-default");
  EXPECT_EQ(r.code, 3) << r.out << r.err;
  EXPECT_TRUE(Has(r.out, "tcb_too_low")) << r.out;
  EXPECT_TRUE(Has(r.out, "not satisfied: nothing pinned")) << r.out;
  EXPECT_TRUE(Has(r.out, "measurement  ")) << "the verified fields are explained: " << r.out;
  EXPECT_TRUE(Has(r.out, "tcb snp.microcode")) << r.out;

  // A TCB floor (PROVENANCE S4: reported_tcb bl=10 tee=0 snp=23 ucode=25),
  // nothing else: genuine hardware at an acceptable TCB, unknown code.
  const std::vector<std::string> floor = {"--min-tcb", "snp.bootloader=10", "--min-tcb", "snp.tee=0",
                                          "--min-tcb", "snp.snp=23",        "--min-tcb", "snp.microcode=25"};
  for (const char* file : {"floor.json", "snp.json"}) {
    std::vector<std::string> pin = {"policy", "pin", "-o", Path(file)};
    pin.insert(pin.end(), floor.begin(), floor.end());
    ASSERT_EQ(Run(pin, std::string("pin-floor-") + file).code, 0);
  }
  auto floored = base;
  floored.insert(floored.end(), {"--policy", Path("floor.json")});
  Outcome nothing = Run(floored, "verify-floor");
  EXPECT_EQ(nothing.code, 3) << nothing.out << nothing.err;
  EXPECT_TRUE(Has(nothing.out, "not satisfied: nothing pinned")) << nothing.out;
  EXPECT_TRUE(Has(nothing.out, "✗ SNP MEASUREMENT is not pinned: the evidence reports ")) << nothing.out;
  EXPECT_TRUE(Has(nothing.out, "measurement  ")) << "the claims are still explained: " << nothing.out;

  // Pinning the published measurement satisfies it; the value comes from
  // the sample's own report here (a test, not a trust decision).
  auto as_json = floored;
  as_json.push_back("--json");
  auto v = json::parse(Run(as_json, "verify-json").out, nullptr, false);
  ASSERT_FALSE(v.is_discarded());
  EXPECT_EQ(v["verdict"], "not_pinned");
  EXPECT_EQ(v["error"]["code"], "not_pinned");
  ASSERT_TRUE(v["claims"]["measurement"].is_string()) << v.dump();
  const std::string measurement = v["claims"]["measurement"].get<std::string>();
  ASSERT_EQ(Run({"policy", "pin", "-o", Path("snp.json"), "--snp-measurement", measurement}, "pin-snp").code, 0);
  auto pinned = base;
  pinned.insert(pinned.end(), {"--policy", Path("snp.json")});
  Outcome ok = Run(pinned, "verify-pinned");
  EXPECT_EQ(ok.code, 0) << ok.out << ok.err;

  auto optout = floored;
  optout.push_back("--insecure-accept-unpinned");
  Outcome o = Run(optout, "verify-optout");
  EXPECT_EQ(o.code, 0) << o.out << o.err;
  EXPECT_TRUE(Has(o.err, "WARNING: --insecure-accept-unpinned")) << o.err;
  EXPECT_TRUE(Has(o.out, "UNPINNED (INSECURE)")) << o.out;
}

}  // namespace
}  // namespace cllm
