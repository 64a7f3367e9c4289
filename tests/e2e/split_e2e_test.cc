// Split inference end to end with real processes (issue 16): `cllm chat
// --split` embeds the user's text on the client and cllm-server (on the
// simulated TEE, `--prompt-embeds api-key`) answers from the rows. Without
// noise the answer is the plain chat's, word for word; with noise it is an
// answer; a key the server does not allow to send rows gets the server's 403.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "support/process.h"
#include "support/shared_data.h"
#include "support/sim_server.h"

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

}  // namespace
}  // namespace cllm
