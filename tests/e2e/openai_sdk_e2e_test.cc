// The official OpenAI Node SDK (npm package `openai`, pinned by
// tests/sdk/package-lock.json) through `cllm proxy` in front of cllm-server
// on the simulated TEE: chat, streaming chat and a refused key, as an
// application written for OpenAI makes them. The package is installed with
// `npm ci` into the build tree (once; later runs reuse it). Without node and
// npm, or when the registry cannot be reached, the test is SKIPPED with a
// loud message.
//
// A second test runs the script's --all checks (tools, structured output)
// on a model whose template renders tools.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/openai_sdk.h"
#include "support/process.h"
#include "support/sim_server.h"
#include "support/shared_data.h"

namespace cllm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Process;

uint16_t FreePort() {
  int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(probe);
  return ntohs(a.sin_port);
}

bool Accepts(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// RunSdk runs the SDK script against a server on `model_rel`; `all` adds
// its tool-call and structured-output checks.
void RunSdk(const std::string& model_rel, bool all) {
  CLLM_SHARED_PATH(model, model_rel);
  const testing::OpenAiSdk node_sdk =
      testing::EnsureOpenAiSdk(fs::path(CLLM_SDK_DIR), fs::path(CLLM_SOURCE_DIR) / "tests/sdk");
  if (!node_sdk.skip.empty()) GTEST_SKIP() << node_sdk.skip;
  ASSERT_EQ(node_sdk.error, "");

  // --- cllm-server on the simulated TEE, cllm proxy in front ---------------------------
  const fs::path run = fs::temp_directory_path() / ("cllm_sdk_" + std::to_string(::getpid()));
  fs::create_directories(run);
  auto server = testing::SimServer::Start(run, "server", {"--access-log", (run / "access.log").string()}, model_rel);
  ASSERT_TRUE(server) << testing::ReadFile(run / "server.err");
  const std::string policy = (run / "policy.json").string();
  std::ofstream(policy) << json{{"version", 1},
                                {"platforms", {"sim"}},
                                {"sim", {{"platform_keys", {server->platform_key().public_key().ToPem()}}}},
                                {"model_digests", {server->ready()["model_digest"]}},
                                {"allow_debug_listener", true}}  // SimServer has one
                               .dump();
  const uint16_t port = FreePort();
  Process proxy({testing::Bin("cllm"), "proxy", "--listen", "127.0.0.1:" + std::to_string(port), "--upstream",
                 "https://127.0.0.1:" + std::to_string(server->port()), "--policy", policy},
                run / "proxy");
  const std::string base = "http://127.0.0.1:" + std::to_string(port) + "/v1";

  // --- the SDK's calls -------------------------------------------------------------------
  std::vector<std::string> argv = {node_sdk.node, node_sdk.script.string(), "--base-url", base, "--api-key",
                                   testing::kKeyAlice, "--model", server->ready()["model_name"]};
  if (all) argv.push_back("--all");
  bool listening = false;
  for (int i = 0; i < 200 && proxy.running() && !listening; ++i) {
    listening = Accepts(port);
    if (!listening) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_TRUE(listening) << "cllm proxy did not listen:\n" << proxy.err();
  Process sdk(argv, run / "sdk");
  const int rc = sdk.Wait(std::chrono::seconds(60));
  const std::string out = sdk.out(), err = sdk.err();
  std::printf("%s", out.c_str());  // one line per check, in the test's log
  EXPECT_EQ(rc, 0) << out << err << "\nproxy:\n" << proxy.err() << "\nserver:\n" << server->process().err();
  EXPECT_NE(out.find("ok - chat"), std::string::npos);
  EXPECT_NE(out.find("ok - streaming chat"), std::string::npos);
  EXPECT_NE(out.find("ok - bad key"), std::string::npos);
  proxy.Stop();
  server.reset();  // a drained server has written every access-log line

  // The server's access log: one line per request of the SDK, none with
  // the script's prompt (tests/sdk/openai_sdk_test.mjs) or answers.
  std::ifstream log(run / "access.log");
  int completions = 0, refused = 0;
  for (std::string line; std::getline(log, line);) {
    EXPECT_EQ(line.find("little dog"), std::string::npos) << line;
    auto j = json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    if (j["route"] == "/v1/chat/completions" && j["status"] == 200) {
      ++completions;
      EXPECT_EQ(j["user"], "alice");
      EXPECT_GT(j["completion_tokens"].get<int>(), 0);
    }
    if (j["status"] == 401) ++refused;
  }
  EXPECT_GE(completions, 4);  // chat twice, streaming chat and its non-streaming twin (--all: more)
  EXPECT_EQ(refused, 1);      // the bad key
  fs::remove_all(run);
}

TEST(OpenAiSdkTest, ChatStreamingAndErrorsThroughTheProxy) { RunSdk(testing::SimServer::kModel, false); }

// Tools (a named tool_choice, then the tool's result; tool_choice
// "required" streamed) and structured output (json_schema, json_object) on
// a random-weight model whose template renders tools: the grammar makes
// even random weights produce a valid call and valid JSON.
TEST(OpenAiSdkTest, ToolsAndStructuredOutputThroughTheProxy) { RunSdk(testing::SimServer::kToolModel, true); }

}  // namespace
}  // namespace cllm
