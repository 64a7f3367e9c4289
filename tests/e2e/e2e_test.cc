// End to end with real processes on loopback: cllm-server on the simulated
// TEE, the client library, `cllm proxy`, a passive relay that records the
// traffic and an active man-in-the-middle.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "attestation/sim/sim_attester.h"
#include "base/encoding.h"
#include "client/client.h"
#include "crypto/cert_builder.h"
#include "crypto/digest.h"
#include "support/process.h"
#include "support/relay.h"
#include "support/sim_server.h"
#include "support/shared_data.h"

namespace cllm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using testing::kKeyAlice;
using testing::kKeyBob;

using testing::Process;
using testing::Relay;

class E2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(testing::SharedDir() / testing::SimServer::kModel)) return;
    dir_ = fs::temp_directory_path() / ("cllm_e2e_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    server_ = testing::SimServer::Start(dir_, "server", {});
  }
  static void TearDownTestSuite() {
    server_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void SetUp() override {
    CLLM_SHARED_PATH(model, "models/stories260K-f16.gguf");
    ASSERT_TRUE(server_) << "cllm-server did not start";
  }

  static attestation::Policy SimPolicy() { return server_->Policy(); }
  static uint16_t Port() { return server_->port(); }
  static uint16_t DebugPort() { return server_->debug_port(); }
  static client::Url Url(uint16_t port, bool tls = true) {
    return client::Url{tls, "127.0.0.1", port, ""};
  }
  static std::string Chat(const std::string& content, int max_tokens = 16, bool stream = false) {
    return json{{"messages", {{{"role", "user"}, {"content", content}}}},
                {"max_tokens", max_tokens},
                {"temperature", 0},
                {"stream", stream}}
        .dump();
  }
  static std::map<std::string, std::string> Auth(const char* key) { return {{"Authorization", std::string("Bearer ") + key}}; }

  static inline fs::path dir_;
  static inline std::unique_ptr<testing::SimServer> server_;
};

TEST_F(E2eTest, AttestedChatWorksAndIsLabelledSimulated) {
  auto c = client::Connect(Url(Port()), SimPolicy());
  ASSERT_TRUE(c.ok()) << c.detail();
  EXPECT_TRUE((*c)->server()->claims.simulated());
  EXPECT_EQ((*c)->server()->payload.model_name, "stories260K-f16");
  auto fresh = client::FetchAttestation(**c, SimPolicy());
  EXPECT_TRUE(fresh.ok()) << fresh.detail();
  auto r = (*c)->Request("POST", "/v1/chat/completions", Chat("Hello"), Auth(kKeyAlice));
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_EQ(r->status, 200) << r->body;
  auto j = json::parse(r->body);
  EXPECT_FALSE(j["choices"][0]["message"]["content"].get<std::string>().empty());
}

TEST_F(E2eTest, MismatchedPolicyIsRefusedWithTheRightError) {
  struct Case {
    std::function<void(attestation::Policy&)> change;
    const char* expect;
  };
  for (const Case& c : std::vector<Case>{
           {[](attestation::Policy& p) { p.model_digests = {Bytes(32, 1)}; }, "model_digest"},
           {[](attestation::Policy& p) { p.binary_digests = {Bytes(32, 1)}; }, "binary_digest"},
           {[](attestation::Policy& p) { p.platforms = {attestation::Platform::kSnp}; }, "simulated_not_allowed"},
           {[](attestation::Policy& p) {
              p.sim_platform_keys = {attestation::sim::GenerateSimPlatformKey().value().public_key()};
            },
            "platform_chain_invalid"},
       }) {
    attestation::Policy p = SimPolicy();
    c.change(p);
    auto conn = client::Connect(Url(Port()), p);
    ASSERT_FALSE(conn.ok()) << c.expect;
    EXPECT_EQ(conn.code(), client::ClientErrc::kAttestation);
    EXPECT_NE(conn.detail().find(c.expect), std::string::npos) << conn.detail();
  }
}

TEST_F(E2eTest, ManInTheMiddleWithItsOwnKeyIsRefused) {
  // The attacker fetches the genuine certificate and replays its evidence
  // under a key it controls, terminating TLS itself.
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  crypto::CertSpec spec;
  spec.common_name = "mitm";
  spec.not_before = std::chrono::system_clock::now() - std::chrono::minutes(1);
  spec.not_after = std::chrono::system_clock::now() + std::chrono::minutes(10);
  // The certificate is public: grab it through a permissive verifier.
  std::optional<crypto::Certificate> leaf;
  {
    auto fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(Port());
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    auto ctx = crypto::TlsContext::Client([&](const std::vector<crypto::Certificate>& chain) -> crypto::CryptoStatus {
                 leaf = chain.front();
                 return OkStatus();
               }).value();
    ASSERT_TRUE(crypto::TlsSession::Handshake(ctx, fd).ok());
    ::close(fd);
  }
  ASSERT_TRUE(leaf.has_value());
  spec.extensions.push_back({channel::kAttestationExtensionOid, false, *leaf->Extension(channel::kAttestationExtensionOid)});
  auto cert = crypto::IssueCertificate(spec, key.public_key(), key, nullptr).value();
  auto mitm_ctx = crypto::TlsContext::Server(crypto::TlsIdentity{key, cert}).value();
  int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(lfd, 1);
  socklen_t len = sizeof a;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  auto mitm = std::async(std::launch::async, [&] {
    int c = ::accept(lfd, nullptr, nullptr);
    auto s = crypto::TlsSession::Handshake(mitm_ctx, c);
    ::close(c);
    return s.ok();
  });
  auto conn = client::Connect(Url(ntohs(a.sin_port)), SimPolicy());
  mitm.wait();
  ::close(lfd);
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.code(), client::ClientErrc::kAttestation);
  EXPECT_NE(conn.detail().find("cert_evidence_mismatch"), std::string::npos) << conn.detail();
}

TEST_F(E2eTest, RelaySeesNoPromptOrCompletionBytes) {
  Relay relay(Port());
  auto c = client::Connect(Url(relay.port()), SimPolicy());
  ASSERT_TRUE(c.ok()) << c.detail();
  const std::string secret = "ZebraQuartzPrompt4711";
  auto r = (*c)->Request("POST", "/v1/chat/completions", Chat("Once upon a time " + secret, 24), Auth(kKeyAlice));
  ASSERT_TRUE(r.ok()) << r.detail();
  ASSERT_EQ(r->status, 200);
  std::string reply = json::parse(r->body)["choices"][0]["message"]["content"];
  c->reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::string seen = relay.seen();
  EXPECT_GT(seen.size(), 1000u);  // the relay did carry the session
  EXPECT_EQ(seen.find(secret), std::string::npos);
  EXPECT_EQ(seen.find("chat/completions"), std::string::npos);
  ASSERT_GT(reply.size(), 8u);
  EXPECT_EQ(seen.find(reply.substr(0, 16)), std::string::npos);
}

TEST_F(E2eTest, ProxyStreamsIncrementallyToAPlainClient) {
  fs::path proxy_ready = dir_ / "proxy.out";
  std::string policy_path = (dir_ / "policy.json").string();
  json pj = {{"version", 1},
             {"platforms", {"sim"}},
             {"sim", {{"platform_keys", {server_->platform_key().public_key().ToPem()}}}},
             {"model_digests", {server_->ready()["model_digest"]}},
             {"allow_debug_listener", true}};  // SimServer has one
  std::ofstream(policy_path) << pj.dump();
  // Find a free port for the proxy.
  int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&a), &len);
  uint16_t proxy_port = ntohs(a.sin_port);
  ::close(probe);
  Process proxy({std::string(CLLM_BIN_DIR) + "/cllm", "proxy", "--listen", "127.0.0.1:" + std::to_string(proxy_port),
                 "--upstream", "https://127.0.0.1:" + std::to_string(Port()), "--policy", policy_path});
  for (int i = 0; i < 100; ++i) {
    if (client::ConnectPlain(Url(proxy_port, false)).ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto c = client::ConnectPlain(Url(proxy_port, false));
  ASSERT_TRUE(c.ok()) << c.detail();
  std::vector<std::chrono::steady_clock::time_point> arrivals;
  std::string all;
  auto r = (*c)->Request("POST", "/v1/chat/completions", Chat("Tell me a story", 40, true), Auth(kKeyBob),
                         [&](std::string_view b) {
                           arrivals.push_back(std::chrono::steady_clock::now());
                           all.append(b);
                           return true;
                         });
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-type"], "text/event-stream");
  EXPECT_GE(arrivals.size(), 10u) << "chunks should arrive one by one, not as one body";
  EXPECT_NE(all.find("data: [DONE]"), std::string::npos);
}

TEST_F(E2eTest, BadRequestsGetCleanErrorsAndOthersAreStillServed) {
  auto c = client::ConnectPlain(Url(DebugPort(), false));
  ASSERT_TRUE(c.ok());
  auto status = [&](const std::string& body, std::map<std::string, std::string> h) {
    auto conn = client::ConnectPlain(Url(DebugPort(), false));
    auto r = (*conn)->Request("POST", "/v1/chat/completions", body, h);
    return r.ok() ? r->status : -1;
  };
  EXPECT_EQ(status("{not json", Auth(kKeyAlice)), 400);
  EXPECT_EQ(status(R"({"messages":[{"role":"user","content":"x"}],"frobnicate":1})", Auth(kKeyAlice)), 400);
  EXPECT_EQ(status(Chat("x"), {}), 401);
  EXPECT_EQ(status(Chat("x"), Auth("sk-wrong")), 401);
  EXPECT_EQ(status(std::string(2 << 20, ' '), Auth(kKeyAlice)), 413);
  EXPECT_EQ(status(json{{"model", "gpt-4"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}}.dump(),
                   Auth(kKeyAlice)),
            404);
  // Still serving.
  auto ok = (*c)->Request("POST", "/v1/chat/completions", Chat("Hello"), Auth(kKeyAlice));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200);
}

TEST_F(E2eTest, ConcurrentUsersDoNotSeeEachOthersContext) {
  // Bob alone, then Bob while Alice chats with a long, different context:
  // Bob's greedy reply must be identical (nothing of Alice leaks into it).
  auto ask = [&](const char* key, const std::string& body) {
    auto conn = client::Connect(Url(Port()), SimPolicy());
    auto r = (*conn)->Request("POST", "/v1/chat/completions", body, Auth(key));
    return r.ok() && r->status == 200 ? json::parse(r->body)["choices"][0]["message"]["content"].get<std::string>()
                                      : std::string("ERROR");
  };
  const std::string bob = Chat("The little dog", 24);
  std::string alone = ask(kKeyBob, bob);
  ASSERT_NE(alone, "ERROR");
  auto alice = std::async(std::launch::async, [&] { return ask(kKeyAlice, Chat("Lily had a secret garden.", 48)); });
  std::string together = ask(kKeyBob, bob);
  EXPECT_NE(alice.get(), "ERROR");
  EXPECT_EQ(together, alone);
}

}  // namespace
}  // namespace cllm
