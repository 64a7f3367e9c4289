// Split inference end to end with real processes (issue 16): `cllm chat
// --split` embeds the user's text on the client and cllm-server (on the
// simulated TEE, `--prompt-embeds api-key`) answers from the rows. Without
// noise the answer is the plain chat's, word for word; with noise it is an
// answer; a key the server does not allow to send rows gets the server's 403.
// With the table sealed, the key comes from a real cllm-trust and only to an
// attested client.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "attestation/sim/sim_attester.h"
#include "base/encoding.h"
#include "crypto/digest.h"
#include "support/process.h"
#include "support/shared_data.h"
#include "support/sim_server.h"
#include "support/trust_process.h"

namespace cllm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Process;

class SplitE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(testing::SharedDir() / testing::SimServer::kModel)) return;
    dir_ = fs::temp_directory_path() / ("cllm_split_e2e_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    server_ = testing::SimServer::Start(dir_, "server", {"--prompt-embeds", "api-key"});
    if (!server_) return;
    json pj = {{"version", 1},
               {"platforms", {"sim"}},
               {"sim", {{"platform_keys", {server_->platform_key().public_key().ToPem()}}}},
               {"model_digests", {server_->ready()["model_digest"]}},
               {"allow_debug_listener", true}};  // SimServer has one
    std::ofstream(dir_ / "policy.json") << pj.dump();
  }
  static void TearDownTestSuite() {
    server_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void SetUp() override {
    CLLM_SHARED_PATH(model, testing::SimServer::kModel);
    ASSERT_TRUE(server_) << "cllm-server did not start";
  }

  struct Run {
    int code;
    std::string out, err;
  };
  // Chat runs `cllm chat` for one greedy message, with `extra` flags.
  static Run Chat(const char* key, std::vector<std::string> extra) {
    std::vector<std::string> argv = {testing::Bin("cllm"), "chat", "https://127.0.0.1:" + std::to_string(server_->port()),
                                     "--policy", (dir_ / "policy.json").string(), "--api-key", key, "-p",
                                     "Once upon a time, a little girl named Lily", "-n", "16", "--temperature", "0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const fs::path log = dir_ / ("chat" + std::to_string(++runs_));
    Process p(argv, log);
    const int code = p.Wait(std::chrono::seconds(60));
    return {code, p.out(), p.err()};
  }
  static std::vector<std::string> Split(const std::string& epsilon) {
    return {"--split", "--epsilon", epsilon, "--split-embeddings",
            (testing::SharedDir() / testing::SimServer::kModel).string()};
  }
  // Reply is the last non-empty line of stdout: the answer (the banner and
  // the privacy accounting go before it or to stderr).
  static std::string Reply(const std::string& out) {
    std::string last, line;
    std::stringstream ss(out);
    while (std::getline(ss, line)) {
      if (!line.empty()) last = line;
    }
    return last;
  }

  static inline fs::path dir_;
  static inline std::unique_ptr<testing::SimServer> server_;
  static inline int runs_ = 0;
};

TEST_F(SplitE2eTest, WithoutNoiseTheAnswerIsThePlainChats) {
  const Run plain = Chat(testing::kKeyAlice, {});
  ASSERT_EQ(plain.code, 0) << plain.out << plain.err;
  const Run split = Chat(testing::kKeyAlice, Split("inf"));
  ASSERT_EQ(split.code, 0) << split.out << split.err;
  EXPECT_FALSE(Reply(plain.out).empty()) << plain.out;
  EXPECT_EQ(Reply(split.out), Reply(plain.out)) << "plain:\n" << plain.out << "\nsplit:\n" << split.out;
}

TEST_F(SplitE2eTest, WithNoiseTheServerAnswersAndThePrivacySpentIsShown) {
  const Run split = Chat(testing::kKeyAlice, Split("1"));
  ASSERT_EQ(split.code, 0) << split.out << split.err;
  EXPECT_FALSE(Reply(split.out).empty()) << split.out;
  EXPECT_NE((split.out + split.err).find("ε"), std::string::npos) << split.out << split.err;
}

TEST_F(SplitE2eTest, AKeyNotAllowedToSendRowsGetsTheServersRefusal) {
  const Run split = Chat(testing::kKeyBob, Split("1"));
  EXPECT_NE(split.code, 0) << split.out;
  const std::string said = split.out + split.err;
  EXPECT_NE(said.find("403"), std::string::npos) << said;
  EXPECT_NE(said.find("may not send prompt_embeds"), std::string::npos) << said;
}

// Sealed embeddings through a real cllm-trust (issue 16 item 1, the network
// path): the model owner seals the table (`cllm model seal --part embeddings
// --register`); a client in a (simulated) TEE attests under the client
// policy, gets the key and unseals in memory — `cllm split fetch-embeddings`
// prints and writes the table, `cllm chat --split` answers at ε = ∞ exactly
// as the plain chat does. A client attesting under a server policy (the key
// is for clients only), or from a platform the client policy does not trust,
// gets no key: exit 1, nothing written, no chat.
TEST_F(SplitE2eTest, SealedEmbeddingsAreReleasedOnlyToAnAttestedClient) {
  std::string error;
  auto trust = testing::TrustProcess::Start(dir_, &error);
  ASSERT_TRUE(trust) << error;
  const auto client = attestation::sim::GenerateSimPlatformKey().value();
  const auto stranger = attestation::sim::GenerateSimPlatformKey().value();
  std::ofstream(dir_ / "client.plat.key") << client.ToPem();
  std::ofstream(dir_ / "stranger.plat.key") << stranger.ToPem();
  std::ofstream(dir_ / "clients.json") << json{{"version", 1},
                                               {"platforms", {"sim"}},
                                               {"sim", {{"platform_keys", {client.public_key().ToPem()}}}}}
                                              .dump();
  ASSERT_EQ(trust->Admin({"trust", "policy", "set", "client", (dir_ / "clients.json").string(), "--client-role"},
                         "policy-client"),
            0);
  ASSERT_EQ(trust->Admin({"trust", "policy", "set", "nodes", (dir_ / "clients.json").string()}, "policy-nodes"), 0);
  const fs::path sealed = dir_ / "emb.cllm";
  ASSERT_EQ(trust->Admin({"model", "seal", (testing::SharedDir() / testing::SimServer::kModel).string(), "--part",
                          "embeddings", "--neighbours", "20", "-o", sealed.string(), "--register", "--key-id",
                          "stories-emb", "--allow-simulated"},
                         "seal-emb"),
            0);

  auto fetch = [&](const char* plat, const char* policy, const std::string& tag) {
    std::vector<std::string> argv = {testing::Bin("cllm"), "split", "fetch-embeddings", sealed.string(),
                                     "--client-tee", "sim", "--client-sim-key", (dir_ / plat).string(),
                                     "--client-token-policy", policy, "-o", (dir_ / (tag + ".gguf")).string()};
    for (const std::string& f : trust->TrustFlags()) argv.push_back(f);
    Process p(argv, dir_ / tag);
    const int code = p.Wait(std::chrono::seconds(60));
    return Run{code, p.out(), p.err()};
  };
  const Run fetched = fetch("client.plat.key", "client", "fetch");
  ASSERT_EQ(fetched.code, 0) << fetched.out << fetched.err;
  EXPECT_NE(fetched.out.find("token_embd.weight"), std::string::npos) << fetched.out;
  EXPECT_NE(fetched.out.find("split.neighbours"), std::string::npos) << fetched.out;
  const auto digest = crypto::Sha256File(dir_ / "fetch.gguf");
  ASSERT_TRUE(digest.ok()) << digest.detail();
  EXPECT_NE(fetched.out.find("plaintext sha256 " + HexEncode(*digest)), std::string::npos) << fetched.out;
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "fetch.gguf").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  const Run as_node = fetch("client.plat.key", "nodes", "fetch-node");
  EXPECT_EQ(as_node.code, 1) << as_node.out << as_node.err;
  EXPECT_NE(as_node.err.find("release_refused"), std::string::npos) << as_node.err;
  EXPECT_FALSE(fs::exists(dir_ / "fetch-node.gguf"));
  const Run unknown = fetch("stranger.plat.key", "client", "fetch-stranger");
  EXPECT_EQ(unknown.code, 1) << unknown.out << unknown.err;
  EXPECT_FALSE(fs::exists(dir_ / "fetch-stranger.gguf"));

  auto sealed_split = [&](const char* plat) {
    std::vector<std::string> flags = {"--split", "--epsilon", "inf", "--split-embeddings", sealed.string(),
                                      "--client-tee", "sim", "--client-sim-key", (dir_ / plat).string()};
    for (const std::string& f : trust->TrustFlags()) flags.push_back(f);
    return flags;
  };
  const Run plain = Chat(testing::kKeyAlice, {});
  ASSERT_EQ(plain.code, 0) << plain.out << plain.err;
  ASSERT_FALSE(Reply(plain.out).empty()) << plain.out;
  const Run split = Chat(testing::kKeyAlice, sealed_split("client.plat.key"));
  ASSERT_EQ(split.code, 0) << split.out << split.err;
  EXPECT_NE((split.out + split.err).find("sealed, key released by " + trust->url()), std::string::npos)
      << split.out << split.err;
  EXPECT_EQ(Reply(split.out), Reply(plain.out)) << "plain:\n" << plain.out << "\nsplit:\n" << split.out;
  const Run refused = Chat(testing::kKeyAlice, sealed_split("stranger.plat.key"));
  EXPECT_EQ(refused.code, 1) << refused.out << refused.err;
  EXPECT_EQ(Reply(refused.out), "") << refused.out;
}

}  // namespace
}  // namespace cllm
