// The `cllm` executable as a user runs it: exit codes, the explained
// checklist, JSON output. The simulated TEE flow needs no shared data;
// real-evidence flows are in the attestation library's tests.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "support/shared_data.h"

namespace {

namespace fs = std::filesystem;

struct Run {
  int exit_code;
  std::string out;  // stdout + stderr
};

Run Cllm(const std::string& args) {
  std::string cmd = std::string(CLLM_BINARY) + " " + args + " 2>&1";
  Run r{-1, ""};
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cllm_cli_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string P(const std::string& name) const { return (dir_ / name).string(); }

  // A sim platform key, a report binding `rd`, and a policy pinning the key.
  void MakeSimEvidence(const std::string& rd, const std::string& extra_policy = "", bool debug = false) {
    ASSERT_EQ(Cllm("attest sim-keygen -o " + P("plat.key")).exit_code, 0);
    std::string measurement(96, 'c');
    auto r = Cllm("attest sim-report --key " + P("plat.key") + " --report-data " + rd + " --measurement " +
                  measurement + (debug ? " --debug" : "") + " -o " + P("r.bin"));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    std::ifstream pub(P("plat.key.pub"));
    std::string pem((std::istreambuf_iterator<char>(pub)), {});
    nlohmann::json policy = {{"version", 1}, {"platforms", {"sim"}}, {"sim", {{"platform_keys", {pem}}}}};
    if (!extra_policy.empty()) policy.update(nlohmann::json::parse(extra_policy));
    std::ofstream(P("policy.json")) << policy.dump();
  }

  fs::path dir_;
};

TEST_F(CliTest, VersionAndHelp) {
  auto v = Cllm("--version");
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_NE(v.out.find("cllm"), std::string::npos);
  auto h = Cllm("attest verify --help");
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("--evidence"), std::string::npos);
  EXPECT_NE(Cllm("no-such-command").exit_code, 0);
}

TEST_F(CliTest, SimEvidenceVerifiesOnlyWithAPolicyThatPinsIt) {
  const std::string rd(128, 'a');
  MakeSimEvidence(rd);
  auto no_policy = Cllm("attest verify --evidence " + P("r.bin"));
  EXPECT_EQ(no_policy.exit_code, 1) << no_policy.out;
  EXPECT_NE(no_policy.out.find("NOT VERIFIED"), std::string::npos) << no_policy.out;
  auto ok = Cllm("attest verify --evidence " + P("r.bin") + " --policy " + P("policy.json"));
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_NE(ok.out.find("SIMULATED TEE"), std::string::npos);
  EXPECT_NE(ok.out.find("verdict: OK"), std::string::npos) << ok.out;
}

TEST_F(CliTest, AppraisalFailureExitsThreeWithExpectedVsFound) {
  MakeSimEvidence(std::string(128, 'a'), R"({"report_data": ")" + std::string(128, 'b') + "\"}");
  auto r = Cllm("attest verify --evidence " + P("r.bin") + " --policy " + P("policy.json") + " --json");
  EXPECT_EQ(r.exit_code, 3) << r.out;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["error"]["code"], "report_data_mismatch");
  EXPECT_NE(j["error"]["detail"].get<std::string>().find("expected bbbb"), std::string::npos);
}

TEST_F(CliTest, DebugReportIsRefusedUnlessAllowed) {
  MakeSimEvidence(std::string(128, 'a'), "", /*debug=*/true);
  auto r = Cllm("attest verify --evidence " + P("r.bin") + " --policy " + P("policy.json"));
  EXPECT_EQ(r.exit_code, 3) << r.out;
  EXPECT_NE(r.out.find("debug"), std::string::npos);
}

TEST_F(CliTest, BadInputsAreUsageErrors) {
  EXPECT_EQ(Cllm("attest verify --evidence " + P("missing.bin")).exit_code, 2);
  std::ofstream(P("junk.bin")) << "not evidence";
  EXPECT_EQ(Cllm("attest verify --evidence " + P("junk.bin")).exit_code, 2);
  MakeSimEvidence(std::string(128, 'a'));
  std::ofstream(P("bad_policy.json")) << R"({"version":1,"platforms":["sim"],"alow_debug":true})";
  auto r = Cllm("attest verify --evidence " + P("r.bin") + " --policy " + P("bad_policy.json"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("alow_debug"), std::string::npos) << r.out;
  EXPECT_EQ(Cllm("attest verify --evidence " + P("r.bin") + " --at yesterday").exit_code, 2);
  EXPECT_EQ(Cllm("attest sim-report --key " + P("plat.key") + " --report-data abcd -o " + P("x")).exit_code, 2);
}

TEST_F(CliTest, ApiKeyAddStoresOnlyTheDigest) {
  auto r = Cllm("apikey add --user alice --keys-file " + P("keys.json") + " 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto at = r.out.find("sk-cllm-");
  ASSERT_NE(at, std::string::npos) << r.out;
  std::string key = r.out.substr(at, r.out.find('\n', at) - at);
  EXPECT_EQ(key.rfind("sk-cllm-", 0), 0u) << key;
  std::ifstream in(P("keys.json"));
  std::string file((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(file.find(key), std::string::npos);
  EXPECT_NE(file.find("alice"), std::string::npos);
  EXPECT_EQ(Cllm("apikey add --user alice --keys-file " + P("keys.json")).exit_code, 2);  // duplicate
  EXPECT_EQ(Cllm("apikey add --user bob --keys-file " + P("keys.json") + " 2>/dev/null").exit_code, 0);
  // --prompt-embeds marks the entry (split inference; server/api_keys.h).
  EXPECT_EQ(Cllm("apikey add --user carol --prompt-embeds --keys-file " + P("keys.json") + " 2>/dev/null").exit_code, 0);
  std::ifstream again(P("keys.json"));
  auto doc = nlohmann::json::parse(std::string((std::istreambuf_iterator<char>(again)), {}));
  EXPECT_EQ(doc["keys"][2]["prompt_embeds"], true);
  EXPECT_FALSE(doc["keys"][1].contains("prompt_embeds"));
}

// A real TDX quote (auto-detected) with its collateral, at a time inside the
// collateral window; and one whose platform TCB matches no level. Without a
// policy nothing is pinned: verified and explained, but exit 3.
TEST_F(CliTest, TdxQuoteVerifiesWithCollateral) {
  CLLM_SHARED_PATH(dir, "testdata/attestation/tdx");
  const std::string d = dir.string() + "/";
  const std::string args = "attest verify --evidence " + d + "gotdxguest_v5_td15_quote_fmspc90c06f.dat --collateral " +
                           d + "dcapqvl_collateral_fmspc90c06f_2026-02-18.json --at 2026-03-01T00:00:00Z --json";
  auto unpinned = Cllm(args);
  EXPECT_EQ(unpinned.exit_code, 3) << unpinned.out;
  auto j = nlohmann::json::parse(unpinned.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << unpinned.out;
  EXPECT_EQ(j["verdict"], "not_pinned");
  EXPECT_NE(j["error"]["detail"].get<std::string>().find("TDX RTMR3 is not pinned"), std::string::npos);
  EXPECT_EQ(j["claims"]["tcb_status"], "UpToDate") << unpinned.out;
  auto ok = Cllm(args + " --insecure-accept-unpinned");
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  auto old = Cllm("attest verify --evidence " + d + "gotdxguest_v4_quote_spr_e4_fmspc50806f.dat --collateral " + d +
                  "gotdxguest_collateral_fmspc50806f_2023-06_ASSEMBLED.json --at 2023-07-01T00:00:00Z");
  EXPECT_EQ(old.exit_code, 1) << old.out;
  EXPECT_NE(old.out.find("tcb_unknown"), std::string::npos) << old.out;
}

// `cllm model quantize`, `model synth` and `bench` as a user runs them.
TEST_F(CliTest, SealEmbeddingsPartWritesOnlyTheSealedClientPart) {
  CLLM_SHARED_PATH(model, "models/stories260K-q8_0.gguf");
  ASSERT_EQ(Cllm("model keygen -o " + P("emb.key")).exit_code, 0);
  auto r = Cllm("model seal " + model.string() + " --part embeddings --neighbours 4 -o " + P("emb.cllm") +
                " --key-file " + P("emb.key") + " --key-id m-emb");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("split.neighbours (K = 4)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("must not be the full model's"), std::string::npos) << r.out;
  auto info = Cllm("model sealed-info --json " + P("emb.cllm"));
  ASSERT_EQ(info.exit_code, 0) << info.out;
  auto j = nlohmann::json::parse(info.out);
  EXPECT_EQ(j["key_id"], "m-emb");
  EXPECT_EQ(j["model_name"], "stories260K-q8_0-embeddings");
  EXPECT_LT(j["plaintext_size"].get<uint64_t>(), fs::file_size(model));  // a part, not the model
  for (const auto& e : fs::directory_iterator(dir_)) {                   // no plaintext left behind
    EXPECT_EQ(e.path().string().find(".plain-"), std::string::npos) << e.path();
  }
  EXPECT_EQ(Cllm("model seal " + model.string() + " --neighbours 4 -o " + P("x.cllm") + " --key-file " +
                 P("emb.key")).exit_code, 2);  // --neighbours without --part embeddings
  EXPECT_NE(Cllm("model seal " + model.string() + " --part weights -o " + P("x.cllm") + " --key-file " +
                 P("emb.key")).exit_code, 0);
}

// `cllm chat --split` with a sealed embeddings part: nothing is loaded or sent
// without an attested key release, and the error says what is needed.
TEST_F(CliTest, SplitChatWithSealedEmbeddingsNeedsAnAttestedKeyRelease) {
  CLLM_SHARED_PATH(model, "models/stories260K-q8_0.gguf");
  ASSERT_EQ(Cllm("model keygen -o " + P("emb.key")).exit_code, 0);
  ASSERT_EQ(Cllm("model seal " + model.string() + " --part embeddings -o " + P("emb.cllm") + " --key-file " +
                 P("emb.key") + " --key-id m-emb").exit_code, 0);
  auto r = Cllm("chat https://127.0.0.1:1 -p hi --split --epsilon 1 --split-embeddings " + P("emb.cllm"));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("is sealed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--client-tee"), std::string::npos) << r.out;
}

TEST_F(CliTest, QuantizeSynthAndBenchRunAndRejectBadArguments) {
  CLLM_SHARED_PATH(f32, "models/stories260K-f32.gguf");
  CLLM_SHARED_PATH(vocab, "models/ggml-vocab-qwen3.gguf");
  auto q = Cllm("model quantize " + f32.string() + " " + P("q.gguf") + " q4_k_m");
  ASSERT_EQ(q.exit_code, 0) << q.out;
  EXPECT_NE(q.out.find("q4_k_m"), std::string::npos) << q.out;
  EXPECT_EQ(Cllm("model quantize " + f32.string() + " " + P("x.gguf") + " q3_k").exit_code, 1);
  EXPECT_EQ(Cllm("model quantize " + P("q.gguf") + " " + P("x.gguf") + " q8_0").exit_code, 1);  // requantize

  auto b = Cllm("bench model -m " + P("q.gguf") + " -p 8 -n 4 -r 1 -t 1,2 --batch 2 --json");
  ASSERT_EQ(b.exit_code, 0) << b.out;
  const size_t brace = b.out.find('{');
  ASSERT_NE(brace, std::string::npos) << b.out;
  auto j = nlohmann::json::parse(b.out.substr(brace));
  ASSERT_EQ(j["results"].size(), 6u);  // (pp8, tg4, b2 tg4) × 2 thread counts
  EXPECT_EQ(j["results"][2]["test"], "b2 tg4");
  EXPECT_GT(j["peak_rss_bytes"].get<uint64_t>(), 0u);
  // --profile: one per-op profile per test and thread count; the matmuls are timed.
  auto pr = Cllm("bench model -m " + P("q.gguf") + " -p 8 -n 4 -r 1 -t 1 --batch 2 --json --profile");
  ASSERT_EQ(pr.exit_code, 0) << pr.out;
  auto pj = nlohmann::json::parse(pr.out.substr(pr.out.find('{')));
  ASSERT_EQ(pj["profiles"].size(), 3u);  // pp8, tg4, b2 tg4
  EXPECT_EQ(pj["profiles"][0]["kind"], "pp");
  EXPECT_GT(pj["profiles"][1]["op_ms_per_pass"]["matmul qkv"].get<double>(), 0.0);
  EXPECT_GT(pj["profiles"][2]["ms_per_pass"].get<double>(), 0.0);
  auto pt = Cllm("bench model -m " + P("q.gguf") + " -p 8 -n 4 -r 1 -t 1 --profile");
  ASSERT_EQ(pt.exit_code, 0) << pt.out;
  EXPECT_NE(pt.out.find("profile: decode step"), std::string::npos) << pt.out;
  EXPECT_NE(pt.out.find("| attention"), std::string::npos) << pt.out;
  for (const char* bad : {"-t 1,,2", "-t 0", "-t x", "--batch 2,", "-r 0"}) {
    EXPECT_NE(Cllm("bench model -m " + P("q.gguf") + " " + bad).exit_code, 0) << bad;
  }

  EXPECT_EQ(Cllm("model synth --preset qwen3-8b --vocab " + vocab.string() + " -o " + P("s.gguf")).exit_code, 1);
  EXPECT_EQ(Cllm("model synth --type q2_k --vocab " + vocab.string() + " -o " + P("s.gguf")).exit_code, 1);
  auto s = Cllm("model synth --preset tiny --type q4_0 --seed 3 --vocab " + vocab.string() + " -o " + P("s.gguf"));
  ASSERT_EQ(s.exit_code, 0) << s.out;
  auto g = Cllm("generate -m " + P("s.gguf") + " -p hi -n 2 --greedy --json");
  EXPECT_EQ(g.exit_code, 0) << g.out;
}

// `cllm bench split` (issue 16's evaluation): without noise the server's
// answers are exactly the plain path's and decoding recovers every token;
// with noise tokens are replaced; the seeded noise makes reruns identical.
TEST_F(CliTest, BenchSplitEvaluatesTheMechanism) {
  CLLM_SHARED_PATH(model, "models/stories260K-f32.gguf");
  CLLM_SHARED_PATH(text, "models/text/ppl_story.txt");
  const std::string cmd = "bench split -m " + model.string() + " --text " + text.string() +
                          " --epsilons 1,inf --prompts 3 --prompt-tokens 12 --continuation 8 --generate 8 -r 2 --json";
  auto run = [&] {
    auto r = Cllm(cmd);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    const size_t bracket = r.out.find('[');
    EXPECT_NE(bracket, std::string::npos) << r.out;
    auto j = nlohmann::json::parse(r.out.substr(bracket == std::string::npos ? 0 : bracket), nullptr, false);
    for (auto& row : j) row.erase("client_share"), row.erase("client_ms_per_request"), row.erase("server_ms_per_request");
    return j;
  };
  const auto j = run();
  ASSERT_EQ(j.size(), 2u) << j.dump();
  EXPECT_EQ(j[1]["epsilon"], "inf");
  EXPECT_EQ(j[1]["replaced"].get<double>(), 0.0);
  EXPECT_EQ(j[1]["recovered"].get<double>(), 1.0);
  EXPECT_EQ(j[1]["agree"].get<double>(), 1.0);
  EXPECT_EQ(j[1]["exact"].get<double>(), 1.0);
  EXPECT_GT(j[0]["replaced"].get<double>(), 0.5);  // ε = 1 over k = 20 candidates: close to uniform
  EXPECT_DOUBLE_EQ(j[0]["epsilon_per_prompt"].get<double>(), 12.0);
  EXPECT_EQ(run(), j);  // same seed, same figures
  for (const char* bad : {"--epsilons 0", "--epsilons 1,,2", "--epsilons x", "--k 0", "--mask names"}) {
    EXPECT_NE(Cllm("bench split -m " + model.string() + " --text " + text.string() + " " + bad).exit_code, 0) << bad;
  }
}

// `cllm bench long-prompt` runs and reports every stall factor asked for
// (the figures themselves are in docs/performance.md, not asserted here).
TEST_F(CliTest, BenchLongPromptReportsEachStallFactor) {
  CLLM_SHARED_PATH(model, "models/qwen3-tiny-random-q8_0.gguf");
  auto r = Cllm("bench long-prompt -m " + model.string() +
                " --users 2 --long 300 --warm 1 --idle 4 -t 1 --stall-factors off,2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')), nullptr, false);
  ASSERT_EQ(j["runs"].size(), 2u) << r.out;
  EXPECT_EQ(j["runs"][0]["stall_factor"], "off");
  for (const auto& run : j["runs"]) {
    EXPECT_GE(run["idle_gaps"].get<int>(), 2 * 4) << run.dump();
    EXPECT_GE(run["during_gaps"].get<int>(), 2) << run.dump();
    EXPECT_GT(run["long_ttft_ms"].get<double>(), 0) << run.dump();
    // The control run's gaps at the same token indices: as many as during.
    EXPECT_GT(run["itl_control_p99_ms"].get<double>(), 0) << run.dump();
    EXPECT_NEAR(run["p99_ratio_control"].get<double>(),
                run["itl_during_p99_ms"].get<double>() / run["itl_control_p99_ms"].get<double>(), 1e-9)
        << run.dump();
  }
  for (const char* bad : {"--stall-factors 1", "--stall-factors x", "--stall-factors off,,2", "--users 0"}) {
    EXPECT_NE(Cllm("bench long-prompt -m " + model.string() + " " + bad).exit_code, 0) << bad;
  }
}

}  // namespace
