// e2e_gateway_test.cc — encrypted bodies through a real L7 gateway (issue #15).
//
// Real processes on loopback: cllm-trust with two fleet keys (x25519 and gmt)
// released only to attested sim replicas; three cllm-server replicas with
// --e2e, each behind a recording TCP tap (what the gateway↔replica leg
// carries); Debian's nginx as an L7 gateway terminating TLS with its own
// certificate and balancing per request (deploy/relay/render.sh --engine
// nginx-l7 --log-bodies); `cllm proxy --e2e` in front of it for clients.
//
// It checks that chats and streams work for both suites and the OpenAI Node
// SDK; that nginx's log (with request bodies) and the taps hold no prompt,
// answer or API key; that requests spread over the replicas; that a flipped
// byte or a cut in a sealed answer is refused, never delivered as an answer;
// that a replica which never attested cannot open a request (it has no key);
// that a gateway serving a replaced key config is refused before any prompt
// is sent. Skipped loudly without nginx.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "attestation/sim/sim_attester.h"
#include "base/encoding.h"
#include "channel/e2e.h"
#include "client/e2e_session.h"
#include "client/failover_client.h"
#include "crypto/cert_builder.h"
#include "crypto/digest.h"
#include "crypto/hpke.h"
#include "deploy/relay_fleet.h"
#include "deploy/tcp_tap.h"
#include "support/openai_sdk.h"
#include "support/process.h"
#include "support/shared_data.h"
#include "support/sim_server.h"

namespace cllm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Bin;
using testing::Process;
using testing::ReadFile;

constexpr char kPrompt[] = "Zebra quartz lantern whispered Oberon";  // unmistakable in any capture

class E2eGatewayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(testing::SharedDir() / testing::SimServer::kModel)) return;
    nginx_ = testing::FindExe("nginx");
    if (nginx_.empty()) return;
    dir_ = fs::temp_directory_path() / ("cllm_e2e_gw_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    setup_ok_ = StartFleet();
  }
  static void TearDownTestSuite() {
    proxy_.reset();
    nginx_proc_.reset();
    taps_.clear();
    replicas_.clear();
    trust_.reset();
    if (!dir_.empty() && !std::getenv("CLLM_KEEP_E2E")) fs::remove_all(dir_);
  }
  void SetUp() override {
    CLLM_SHARED_PATH(model, testing::SimServer::kModel);
    if (nginx_.empty()) GTEST_SKIP() << "SKIPPED — nginx is not installed (scripts/install-deps.sh installs it)";
    ASSERT_TRUE(setup_ok_) << "suite setup failed: " << setup_error_ << "\nlogs in " << dir_;
  }

  static int Run(std::vector<std::string> argv, const std::string& tag) {
    Process p(std::move(argv), dir_ / tag);
    const int code = p.Wait(std::chrono::seconds(60));
    if (code != 0) setup_error_ += "[" + tag + "] exit " + std::to_string(code) + ": " + p.err() + "\n";
    return code;
  }
  static int Admin(std::vector<std::string> args, const std::string& tag) {
    std::vector<std::string> argv = {Bin("cllm")};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--trust");
    argv.push_back(TrustUrl());
    argv.push_back("--trust-ca");
    argv.push_back((dir_ / "state/trust-ca.pem").string());
    argv.push_back("--admin-token-file");
    argv.push_back((dir_ / "state/admin.token").string());
    return Run(std::move(argv), tag);
  }
  static std::string TrustUrl() { return "https://127.0.0.1:" + std::to_string(trust_port_); }

  static bool StartFleet() {
    // Reference values: the sim platform key of the fleet, the model it serves.
    platform_key_ = attestation::sim::GenerateSimPlatformKey().value();
    const json sim = {{"platform_keys", {platform_key_->public_key().ToPem()}}};
    model_digest_ = HexEncode(crypto::Sha256File(testing::SharedDir() / testing::SimServer::kModel).value());
    // Every replica is a SimServer, with a debug listener its evidence names.
    std::ofstream(dir_ / "policy.json")
        << json{{"version", 1}, {"platforms", {"sim"}}, {"sim", sim}, {"allow_debug_listener", true}}.dump();
    std::ofstream(dir_ / "client.json") << json{{"version", 1},
                                                {"platforms", {"sim"}},
                                                {"sim", sim},
                                                {"model_digests", {model_digest_}},
                                                {"allow_debug_listener", true}}
                                               .dump();
    std::ofstream(dir_ / "release.json") << json{{"model_digests", {model_digest_}},
                                                 {"platforms", {"sim"}},
                                                 {"allow_simulated", true},
                                                 {"allow_debug_listener", true}}
                                                .dump();

    // cllm-trust with the attestation policy and two fleet keys.
    if (Run({Bin("cllm-trust"), "init", "--state-dir", (dir_ / "state").string()}, "trust-init") != 0) return false;
    trust_ = std::make_unique<Process>(std::vector<std::string>{Bin("cllm-trust"), "serve", "--state-dir",
                                                                (dir_ / "state").string(), "--listen", "127.0.0.1:0",
                                                                "--ready-file", (dir_ / "trust-ready.json").string(),
                                                                "--log-level", "warn"},
                                       dir_ / "trust");
    json ready = testing::WaitReady(*trust_, dir_ / "trust-ready.json");
    if (ready.is_null()) return setup_error_ += "cllm-trust: " + trust_->err(), false;
    trust_port_ = ready["port"].get<int>();
    if (Admin({"trust", "policy", "set", "default", (dir_ / "policy.json").string()}, "policy") != 0) return false;
    for (const char* suite : {"x25519", "gmt"}) {
      if (Admin({"trust", "fleet-key", "create", "--suite", suite, "--release-policy-file",
                 (dir_ / "release.json").string()},
                std::string("fleet-") + suite) != 0) {
        return false;
      }
    }

    // Three attested replicas, each behind a tap, and nginx in front.
    std::vector<uint16_t> tapped;
    for (int i = 0; i < 3; ++i) {
      auto r = testing::SimServer::Start(dir_, "replica" + std::to_string(i),
                                         {"--trust", TrustUrl(), "--trust-ca", (dir_ / "state/trust-ca.pem").string(),
                                          "--e2e", "--e2e-listen", "127.0.0.1:0"},
                                         testing::SimServer::kModel, platform_key_->ToPem());
      if (!r) return setup_error_ += ReadFile(dir_ / ("replica" + std::to_string(i) + ".err")), false;
      taps_.push_back(std::make_unique<testing::TcpTap>(r->ready()["e2e_port"].get<uint16_t>()));
      tapped.push_back(taps_.back()->port());
      replicas_.push_back(std::move(r));
    }
    if (!MakeGatewayCert()) return false;
    gateway_port_ = testing::FreePort();
    std::string list;
    for (uint16_t p : tapped) list += (list.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(p);
    if (Run({"/bin/bash", std::string(CLLM_SOURCE_DIR) + "/deploy/relay/render.sh", "--engine", "nginx-l7",
             "--replicas", list, "--listen", "127.0.0.1:" + std::to_string(gateway_port_), "--runtime-dir",
             dir_.string(), "--tls-cert", (dir_ / "gw.pem").string(), "--tls-key", (dir_ / "gw.key").string(),
             "--log-bodies", "--workers", "1", "--max-conns", "256", "--out", (dir_ / "nginx.conf").string()},
            "render") != 0) {
      return false;
    }
    AddEvilGateway();
    nginx_proc_ = std::make_unique<Process>(
        std::vector<std::string>{nginx_, "-p", dir_.string(), "-c", (dir_ / "nginx.conf").string(), "-e",
                                 (dir_ / "error.log").string(), "-g", "daemon off;"},
        dir_ / "nginx");
    if (!WaitListening(gateway_port_, *nginx_proc_)) return setup_error_ += "nginx: " + nginx_proc_->err(), false;
    proxy_port_ = StartProxy("x25519", gateway_port_, &proxy_);
    return proxy_port_ != 0;
  }

  // MakeGatewayCert writes a CA and the gateway's certificate for "localhost".
  static bool MakeGatewayCert() {
    auto ca_key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
    auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
    crypto::CertSpec ca;
    ca.common_name = "test gateway CA";
    ca.not_before = std::chrono::system_clock::now() - std::chrono::hours(1);
    ca.not_after = std::chrono::system_clock::now() + std::chrono::hours(24);
    ca.is_ca = true;
    auto ca_cert = crypto::IssueCertificate(ca, ca_key.public_key(), ca_key, nullptr);
    crypto::CertSpec leaf = ca;
    leaf.common_name = "localhost";
    leaf.is_ca = false;
    leaf.dns_names = {"localhost"};
    if (!ca_cert.ok()) return false;
    auto cert = crypto::IssueCertificate(leaf, key.public_key(), ca_key, &*ca_cert);
    if (!cert.ok()) return setup_error_ += "gateway certificate: " + cert.detail(), false;
    std::ofstream(dir_ / "gw-ca.pem") << ca_cert->ToPem();
    std::ofstream(dir_ / "gw.pem") << cert->ToPem() << ca_cert->ToPem();
    std::ofstream(dir_ / "gw.key") << key.ToPem();
    return true;
  }

  // AddEvilGateway adds a second server block to nginx.conf: the same
  // gateway, except that it serves a key list whose x25519 config was
  // replaced by the attacker's own key (the statement left as it was).
  static void AddEvilGateway() {
    // The replica's own list (over its plain e2e listener, through the tap).
    auto c = client::ConnectPlain(client::Url{false, "127.0.0.1", taps_[0]->port(), ""});
    if (!c.ok()) return;
    auto r = (*c)->Request("GET", "/v1/e2e/keys");
    if (!r.ok()) return;
    json published = json::parse(r->body, nullptr, false);
    if (published.is_discarded() || !published.contains("keys")) return;
    auto attacker = crypto::hpke::GenerateKeyPair(crypto::hpke::Kem::kX25519HkdfSha256).value();
    for (auto& entry : published["keys"]) {
      if (entry.value("suite", "") != "x25519") continue;
      channel::e2e::KeyConfig cfg{static_cast<uint8_t>(entry["key_id"].get<int>()), crypto::hpke::kSuiteX25519,
                                  attacker.pk};
      entry["config"] = Base64UrlEncode(channel::e2e::EncodeKeyConfig(cfg));
    }
    std::ofstream(dir_ / "evil-keys.json") << published.dump();
    evil_port_ = testing::FreePort();
    std::string conf = ReadFile(dir_ / "nginx.conf");
    const std::string evil = "    server {\n        listen 127.0.0.1:" + std::to_string(evil_port_) +
                             " ssl;\n        ssl_certificate " + (dir_ / "gw.pem").string() +
                             ";\n        ssl_certificate_key " + (dir_ / "gw.key").string() +
                             ";\n        ssl_protocols TLSv1.2 TLSv1.3;\n        location = /v1/e2e/keys { default_type application/json; alias " +
                             (dir_ / "evil-keys.json").string() +
                             "; }\n        location / { proxy_pass http://cllm_e2e; proxy_http_version 1.1; "
                             "proxy_set_header Connection \"\"; proxy_buffering off; }\n    }\n";
    const auto at = conf.rfind('}');
    conf.insert(at, evil);
    std::ofstream(dir_ / "nginx.conf") << conf;
  }

  static bool WaitListening(uint16_t port, Process& p) {
    for (int i = 0; i < 400; ++i) {
      if (!p.running()) return false;
      if (testing::Accepts(port)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return false;
  }

  // StartProxy runs `cllm proxy --e2e` against the gateway on `port`; returns
  // its port, 0 when it did not come up (its stderr in dir_).
  static uint16_t StartProxy(const std::string& suite, uint16_t gateway, std::unique_ptr<Process>* out,
                             const std::string& tag = "") {
    const uint16_t port = testing::FreePort();
    std::vector<std::string> argv{Bin("cllm"), "proxy", "--e2e", "--suite", suite, "--listen",
                                 "127.0.0.1:" + std::to_string(port), "--upstream",
                                 "https://localhost:" + std::to_string(gateway), "--upstream-ca",
                                 (dir_ / "gw-ca.pem").string(), "--trust", TrustUrl(), "--trust-ca",
                                 (dir_ / "state/trust-ca.pem").string(), "--policy", (dir_ / "client.json").string()};
    // CLLM_TEST_WRAP=valgrind|gdb runs the proxy under that tool (its report in the proxy's log).
    if (const char* wrap = std::getenv("CLLM_TEST_WRAP"); wrap && std::string(wrap) == "gdb") {
      argv.insert(argv.begin(), {"/usr/bin/gdb", "-q", "-batch", "-ex", "run", "-ex", "bt", "--args"});
    } else if (wrap && std::string(wrap) == "valgrind") {
      argv.insert(argv.begin(), {"/usr/bin/valgrind", "-q"});
    }
    *out = std::make_unique<Process>(argv, dir_ / ("proxy-" + suite + tag));
    if (!WaitListening(port, **out)) {
      setup_error_ += "cllm proxy --e2e: " + (*out)->err();
      return 0;
    }
    return port;
  }

  // Chat sends one chat completion through a local proxy (plain HTTP on
  // loopback, as an SDK would) and returns status and body.
  static client::HttpResponse Chat(uint16_t proxy_port, bool stream, const std::string& prompt = kPrompt) {
    auto c = client::ConnectPlain(client::Url{false, "127.0.0.1", proxy_port, ""});
    if (!c.ok()) return {};
    const json req = {{"model", "stories260K-f16"},
                      {"messages", {{{"role", "user"}, {"content", prompt}}}},
                      {"max_tokens", 24},
                      {"temperature", 0},
                      {"stream", stream}};
    std::string streamed;
    auto r = (*c)->Request("POST", "/v1/chat/completions", req.dump(),
                           {{"content-type", "application/json"},
                            {"authorization", std::string("Bearer ") + testing::kKeyAlice}},
                           [&](std::string_view b) {
                             streamed.append(b);
                             return true;
                           });
    if (!r.ok()) return client::HttpResponse{-1, {}, r.detail()};
    if (r->body.empty()) r->body = streamed;
    return *r;
  }

  // Answer extracts the generated text from a whole or streamed answer.
  static std::string Answer(const std::string& body) {
    std::string text;
    auto whole = json::parse(body, nullptr, false);
    if (!whole.is_discarded() && whole.contains("choices")) {
      return whole["choices"][0]["message"].value("content", "");
    }
    std::istringstream in(body);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("data: {", 0) != 0) continue;
      auto ev = json::parse(line.substr(6), nullptr, false);
      if (ev.is_discarded() || !ev.contains("choices") || ev["choices"].empty()) continue;
      const auto& d = ev["choices"][0]["delta"];
      if (d.contains("content") && d["content"].is_string()) text += d["content"].get<std::string>();
    }
    return text;
  }

  static std::string Captured() {
    std::string all = ReadFile(dir_ / "access.log") + ReadFile(dir_ / "error.log");
    for (auto& t : taps_) all += t->captured();
    return all;
  }

  static inline fs::path dir_;
  static inline std::string nginx_, setup_error_, model_digest_;
  static inline bool setup_ok_ = false;
  static inline std::optional<crypto::PrivateKey> platform_key_;
  static inline std::unique_ptr<Process> trust_, nginx_proc_, proxy_;
  static inline std::vector<std::unique_ptr<testing::SimServer>> replicas_;
  static inline std::vector<std::unique_ptr<testing::TcpTap>> taps_;
  static inline int trust_port_ = 0;
  static inline uint16_t gateway_port_ = 0, evil_port_ = 0, proxy_port_ = 0;
};

TEST_F(E2eGatewayTest, ChatsAndStreamsThroughTheGatewayWhichSeesNoPromptAnswerOrKey) {
  std::vector<std::string> answers;
  for (int i = 0; i < 6; ++i) {
    auto r = Chat(proxy_port_, i % 2 == 1);
    ASSERT_EQ(r.status, 200) << r.body << "\nproxy: " << proxy_->err();
    answers.push_back(Answer(r.body));
    ASSERT_GE(answers.back().size(), 8u) << r.body;
    if (i % 2 == 1) {
      EXPECT_NE(r.body.find("data: [DONE]"), std::string::npos) << r.body;
    }
  }
  EXPECT_EQ(answers[0], answers[1]) << "temperature 0: streamed and whole answers agree";
  // Per-request balancing: more than one replica answered.
  int used = 0;
  for (auto& t : taps_) used += t->connections() > 0 ? 1 : 0;
  EXPECT_GE(used, 2);
  // Nothing of the prompt, the answers or the API key on the gateway or between it and the replicas.
  const std::string seen = Captured();
  ASSERT_NE(seen.find("application/cllm-e2e-request"), std::string::npos) << "the capture is empty?";
  EXPECT_EQ(seen.find("Zebra quartz"), std::string::npos);
  EXPECT_EQ(seen.find(testing::kKeyAlice), std::string::npos);
  for (const auto& a : answers) EXPECT_EQ(seen.find(a.substr(0, 24)), std::string::npos) << a;
  EXPECT_NE(ReadFile(dir_ / "access.log").find("body=\""), std::string::npos) << "--log-bodies logs the bodies";
}

TEST_F(E2eGatewayTest, GmtSuiteChats) {
  std::unique_ptr<Process> gmt;
  const uint16_t port = StartProxy("gmt", gateway_port_, &gmt);
  ASSERT_NE(port, 0u) << setup_error_;
  EXPECT_NE(gmt->out().find("suite gmt"), std::string::npos) << gmt->out();
  auto whole = Chat(port, false);
  ASSERT_EQ(whole.status, 200) << whole.body << gmt->err();
  auto streamed = Chat(port, true);
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  EXPECT_EQ(Answer(whole.body), Answer(streamed.body));
  EXPECT_EQ(Captured().find("Zebra quartz"), std::string::npos);
}

TEST_F(E2eGatewayTest, CllmChatSealsItsMessages) {
  for (const char* suite : {"x25519", "gmt"}) {
    Process chat({Bin("cllm"), "chat", "--e2e", "--suite", suite, "https://localhost:" + std::to_string(gateway_port_),
                  "--upstream-ca", (dir_ / "gw-ca.pem").string(), "--trust", TrustUrl(), "--trust-ca",
                  (dir_ / "state/trust-ca.pem").string(), "--policy", (dir_ / "client.json").string(), "--api-key",
                  testing::kKeyAlice, "-p", "Quetzal mirror Bellatrix", "-n", "12", "--temperature", "0"},
                 dir_ / (std::string("chat-") + suite));
    ASSERT_EQ(chat.Wait(std::chrono::seconds(60)), 0) << chat.out() << chat.err();
    EXPECT_GE(chat.out().size(), 8u) << chat.out();
    EXPECT_NE(chat.err().find(std::string("sealing every message end to end (e2e, suite ") + suite),
              std::string::npos)
        << chat.err();
    EXPECT_NE(chat.err().find("release policy"), std::string::npos) << chat.err();
  }
  EXPECT_EQ(Captured().find("Quetzal mirror"), std::string::npos);
  // A wrong API key is refused by the replica, inside the sealed answer.
  Process bad({Bin("cllm"), "chat", "--e2e", "https://localhost:" + std::to_string(gateway_port_), "--upstream-ca",
               (dir_ / "gw-ca.pem").string(), "--trust", TrustUrl(), "--trust-ca",
               (dir_ / "state/trust-ca.pem").string(), "--policy", (dir_ / "client.json").string(), "--api-key",
               "sk-wrong", "-p", "hello", "-n", "4"},
              dir_ / "chat-badkey");
  EXPECT_EQ(bad.Wait(std::chrono::seconds(60)), 1) << bad.err();
  EXPECT_NE(bad.err().find("401"), std::string::npos) << bad.err();
}

// Mutual mode (issue #15 item 4): a replica that requires client tokens; a
// client in a (simulated) TEE attests to cllm-trust and seals in HPKE auth
// mode with a key its token binds. Without that the replica refuses before
// decrypting anything.
// With --e2e-client-policy the replica also appraises each client's token
// under its own policy: one pinning another launch measurement refuses the
// same client.
TEST_F(E2eGatewayTest, MutualModeRequiresAnAttestedClient) {
  std::ofstream(dir_ / "clients-any.json") << R"({"version": 1, "platforms": ["sim"]})";
  std::ofstream(dir_ / "clients-pinned.json")
      << R"({"version": 1, "platforms": ["sim"], "sim": {"measurements": [")" + std::string(96, '0') + R"("]}})";
  auto mutual = [&](const std::string& name, const std::string& client_policy) {
    return testing::SimServer::Start(
        dir_, name,
        {"--trust", TrustUrl(), "--trust-ca", (dir_ / "state/trust-ca.pem").string(), "--e2e", "--e2e-listen",
         "127.0.0.1:0", "--e2e-client-token-policy", "default", "--e2e-require-client-token", "--e2e-client-policy",
         (dir_ / client_policy).string()},
        testing::SimServer::kModel, platform_key_->ToPem());
  };
  auto replica = mutual("mutual", "clients-any.json");
  ASSERT_TRUE(replica) << ReadFile(dir_ / "mutual.err");
  auto pinned = mutual("mutual-pinned", "clients-pinned.json");
  ASSERT_TRUE(pinned) << ReadFile(dir_ / "mutual-pinned.err");
  const std::string url = "http://127.0.0.1:" + std::to_string(replica->ready()["e2e_port"].get<int>());
  auto chat_at = [&](const std::string& at, const std::string& tag, std::vector<std::string> extra) {
    std::vector<std::string> argv = {Bin("cllm"), "chat", "--e2e", at, "--trust", TrustUrl(), "--trust-ca",
                                     (dir_ / "state/trust-ca.pem").string(), "--policy",
                                     (dir_ / "client.json").string(), "--api-key", testing::kKeyAlice, "-p",
                                     "Once upon a time", "-n", "8", "--temperature", "0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = std::make_unique<Process>(argv, dir_ / tag);
    p->Wait(std::chrono::seconds(60));
    return p;
  };
  auto chat = [&](const std::string& tag, std::vector<std::string> extra) {
    return chat_at(url, tag, std::move(extra));
  };
  for (const char* suite : {"x25519", "gmt"}) {
    auto ok = chat(std::string("mutual-ok-") + suite,
                   {"--suite", suite, "--client-tee", "sim", "--client-sim-key", (dir_ / "mutual.plat.key").string()});
    EXPECT_EQ(ok->Wait(), 0) << ok->out() << ok->err() << replica->process().err();
    EXPECT_NE(ok->err().find("mutual: HPKE auth mode"), std::string::npos) << ok->err();
    EXPECT_GE(ok->out().size(), 4u);
  }
  auto anonymous = chat("mutual-none", {});
  EXPECT_EQ(anonymous->Wait(), 1) << anonymous->err();
  EXPECT_NE(anonymous->err().find("e2e_client_token"), std::string::npos) << anonymous->err();
  auto unpinned = chat_at("http://127.0.0.1:" + std::to_string(pinned->ready()["e2e_port"].get<int>()),
                          "mutual-unpinned", {"--client-tee", "sim", "--client-sim-key",
                                              (dir_ / "mutual.plat.key").string()});
  EXPECT_EQ(unpinned->Wait(), 1) << unpinned->err();
  EXPECT_NE(unpinned->err().find("e2e_client_token"), std::string::npos) << unpinned->err();
  EXPECT_NE(unpinned->err().find("field measurement: expected one of"), std::string::npos) << unpinned->err();
}

TEST_F(E2eGatewayTest, OpenAiNodeSdkStreamsThroughTheE2eProxy) {
  const testing::OpenAiSdk sdk =
      testing::EnsureOpenAiSdk(fs::path(CLLM_SDK_DIR), fs::path(CLLM_SOURCE_DIR) / "tests/sdk");
  if (!sdk.skip.empty()) GTEST_SKIP() << sdk.skip;
  ASSERT_EQ(sdk.error, "");
  Process run({sdk.node, sdk.script.string(), "--base-url", "http://127.0.0.1:" + std::to_string(proxy_port_) + "/v1",
               "--api-key", testing::kKeyAlice, "--model", "stories260K-f16"},
              dir_ / "sdk");
  const int rc = run.Wait(std::chrono::seconds(90));
  EXPECT_EQ(rc, 0) << run.out() << run.err() << "\nproxy: " << proxy_->err();
  EXPECT_NE(run.out().find("ok - streaming chat"), std::string::npos) << run.out();
  EXPECT_NE(run.out().find("ok - bad key"), std::string::npos) << run.out();
  EXPECT_EQ(Captured().find("little dog"), std::string::npos) << "the SDK script's prompt reached a capture";
}

TEST_F(E2eGatewayTest, TamperedOrTruncatedAnswersAreRefusedNeverDelivered) {
  for (const bool flip : {true, false}) {
    for (const bool stream : {false, true}) {
      for (auto& t : taps_) t->Tamper(/*body_offset=*/60, flip);
      auto r = Chat(proxy_port_, stream);
      int fired = 0;
      for (auto& t : taps_) fired += t->tamper_done() ? 1 : 0;
      for (auto& t : taps_) t->Disarm();
      ASSERT_EQ(fired, 1) << "exactly one answer was attacked; got " << r.status << " " << r.body.substr(0, 300)
                          << "\nproxy running " << proxy_->running() << ": " << proxy_->err();
      const std::string what = std::string(flip ? "flipped" : "cut") + (stream ? " stream" : " whole");
      if (stream) {
        // The stream ends with an error event and no [DONE]: never a complete-looking answer.
        EXPECT_EQ(r.body.find("data: [DONE]"), std::string::npos) << what << ": " << r.body;
      } else {
        EXPECT_NE(r.status, 200) << what << ": " << r.body;
      }
      EXPECT_TRUE(r.status != 200 || r.body.find("e2e_") != std::string::npos || r.status == -1)
          << what << ": " << r.status << " " << r.body;
    }
  }
  // The proxy still serves clean answers afterwards.
  auto ok = Chat(proxy_port_, false);
  EXPECT_EQ(ok.status, 200) << ok.body;
}

TEST_F(E2eGatewayTest, AReplicaThatNeverAttestedCannotOpenARequest) {
  // Same binary, model and platform key, but no cllm-trust: it never got the fleet key.
  auto rogue = testing::SimServer::Start(dir_, "rogue", {}, testing::SimServer::kModel, platform_key_->ToPem());
  ASSERT_TRUE(rogue) << ReadFile(dir_ / "rogue.err");
  // A client's request, sealed to the real fleet key, delivered to it.
  auto keys_reply = client::ConnectPlain(client::Url{false, "127.0.0.1", taps_[0]->port(), ""});
  ASSERT_TRUE(keys_reply.ok());
  auto list = (*keys_reply)->Request("GET", "/v1/e2e/keys");
  ASSERT_TRUE(list.ok());
  auto entries = json::parse(list->body)["keys"];
  auto cfg = channel::e2e::ParseKeyConfig(Base64UrlDecode(entries[0]["config"].get<std::string>()).value());
  ASSERT_TRUE(cfg.ok()) << cfg.detail();
  auto session = client::E2eSession::Create([&]() -> Result<client::E2eKeyList> {
    return client::E2eKeyList{{*cfg}, std::nullopt};
  });
  ASSERT_TRUE(session.ok()) << session.detail();
  auto replicas = std::make_shared<client::ReplicaSet>(
      std::vector<client::Url>{client::Url{false, "127.0.0.1", rogue->debug_port(), ""}}, client::FailoverOptions{});
  client::FailoverClient fc(replicas, [](const client::Url& u) { return client::ConnectPlain(u); });
  const json req = {{"model", "stories260K-f16"}, {"messages", {{{"role", "user"}, {"content", kPrompt}}}}};
  auto r = client::E2eExchange(fc, **session, "/v1/chat/completions", req.dump(),
                               std::string("Bearer ") + testing::kKeyAlice);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.detail().find("e2e_key_unknown"), std::string::npos) << r.detail();
}

TEST_F(E2eGatewayTest, CllmAttestExplainsTheFleetKey) {
  const std::vector<std::string> common = {"--upstream-ca", (dir_ / "gw-ca.pem").string(), "--trust", TrustUrl(),
                                           "--trust-ca", (dir_ / "state/trust-ca.pem").string()};
  std::vector<std::string> argv = {Bin("cllm"), "attest", "--e2e", "https://localhost:" + std::to_string(gateway_port_),
                                   "--policy", (dir_ / "client.json").string()};
  argv.insert(argv.end(), common.begin(), common.end());
  Process ok(argv, dir_ / "attest-e2e");
  ASSERT_EQ(ok.Wait(std::chrono::seconds(30)), 0) << ok.out() << ok.err();
  EXPECT_NE(ok.out().find("released to platforms: sim"), std::string::npos) << ok.out();
  EXPECT_NE(ok.out().find("models: " + model_digest_.substr(0, 16)), std::string::npos) << ok.out();
  EXPECT_NE(ok.out().find("verdict: OK"), std::string::npos) << ok.out();
  // A client policy pinning another model: the key may reach replicas it would refuse.
  std::ofstream(dir_ / "other-model.json") << json{{"version", 1},
                                                  {"platforms", {"sim"}},
                                                  {"sim", {{"platform_keys", {platform_key_->public_key().ToPem()}}}},
                                                  {"model_digests", {std::string(64, 'a')}},
                                                  {"allow_debug_listener", true}}  // only the model differs
                                                  .dump();
  argv[5] = (dir_ / "other-model.json").string();
  Process refused(argv, dir_ / "attest-e2e-refused");
  EXPECT_EQ(refused.Wait(std::chrono::seconds(30)), 1) << refused.out() << refused.err();
  EXPECT_NE(refused.err().find("is released to but not pinned by this client policy"), std::string::npos)
      << refused.err();
}

TEST_F(E2eGatewayTest, AReplacedKeyConfigIsRefusedBeforeAnyPromptIsSent) {
  ASSERT_NE(evil_port_, 0u);
  std::unique_ptr<Process> p;
  const uint16_t port = StartProxy("x25519", evil_port_, &p, "-evil");
  EXPECT_EQ(port, 0u) << "a proxy trusting a replaced key config started";
  p->Wait(std::chrono::seconds(10));
  EXPECT_NE(p->err().find("mismatch"), std::string::npos) << p->err();
  // A tampered list is not partly trusted: a gmt client (whose key was not
  // replaced) refuses it too.
  std::unique_ptr<Process> gmt;
  EXPECT_EQ(StartProxy("gmt", evil_port_, &gmt, "-evil-gmt"), 0u);
}

}  // namespace
}  // namespace cllm
