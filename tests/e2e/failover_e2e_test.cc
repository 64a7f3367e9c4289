// Replicas and failover with real processes (issue #14, item 2): three
// cllm-server replicas on the simulated TEE sharing one platform key (one
// policy verifies them all; each has its own TLS key), driven by the real
// `cllm bench serve`, `cllm proxy` and the client library.
//
//   * a replica SIGKILLed in the middle of a load run: no request that
//     started after the kill fails; a request cut off on the killed replica
//     fails as "incomplete" with the clear message;
//   * a rolling restart of all replicas loses no request;
//   * a stream cut off mid-way is an error (library: kIncomplete; proxy: an
//     error event, then the stream is cut), never a silently short answer;
//   * `cllm proxy` with several upstreams fails over;
//   * one relay address (a round-robin TCP forwarder written here, standing
//     in for nginx in passthrough) in front of a fleet with a dead replica.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "attestation/sim/sim_attester.h"
#include "client/failover_client.h"
#include "client/sse.h"
#include "support/process.h"
#include "support/shared_data.h"
#include "support/sim_server.h"

namespace cllm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Process;
using testing::SimServer;

// A random-weight model: it does not stop early, so a stream lasts long
// enough to be cut in the middle.
constexpr char kLongModel[] = "models/llama3-tiny-random-q8_0.gguf";

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void Kill(SimServer& s) {
  ::kill(s.process().pid(), SIGKILL);
  s.process().Wait(std::chrono::seconds(10));
}

// ---------------------------------------------------------------------------
// A fleet of replicas, and the policy that verifies every one of them
// ---------------------------------------------------------------------------

class Fleet {
 public:
  Fleet(const std::string& tag, int n, const std::string& model = SimServer::kModel) {
    dir_ = fs::temp_directory_path() / ("cllm_failover_" + tag + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string key = attestation::sim::GenerateSimPlatformKey().value().ToPem();
    for (int i = 0; i < n; ++i) {
      auto s = SimServer::Start(dir_, "replica" + std::to_string(i), {}, model, key);
      if (!s) {
        error_ = testing::ReadFile(dir_ / ("replica" + std::to_string(i) + ".err"));
        return;
      }
      replicas_.push_back(std::move(s));
    }
    const SimServer& r = *replicas_.front();
    policy_path_ = (dir_ / "policy.json").string();
    std::ofstream(policy_path_) << json{{"version", 1},
                                        {"platforms", {"sim"}},
                                        {"sim", {{"platform_keys", {r.platform_key().public_key().ToPem()}}}},
                                        {"model_digests", {r.ready()["model_digest"]}},
                                        {"binary_digests", {r.ready()["binary_digest"]}},
                                        {"allow_debug_listener", true}}  // SimServer has one
                                           .dump();
  }
  ~Fleet() {
    replicas_.clear();
    fs::remove_all(dir_);
  }
  bool ok() const { return error_.empty() && !replicas_.empty(); }
  const std::string& error() const { return error_; }
  SimServer& replica(size_t i) { return *replicas_[i]; }
  size_t size() const { return replicas_.size(); }
  std::string Url(size_t i) const { return "https://127.0.0.1:" + std::to_string(replicas_[i]->port()); }
  std::string Urls() const {
    std::string all;
    for (size_t i = 0; i < replicas_.size(); ++i) all += (i ? "," : "") + Url(i);
    return all;
  }
  const std::string& policy_path() const { return policy_path_; }
  attestation::Policy Policy() const { return replicas_.front()->Policy(); }
  const fs::path& dir() const { return dir_; }

  // Bench starts `cllm bench serve --json` against `url` for `seconds`.
  std::unique_ptr<Process> Bench(const std::string& url, double seconds, int users) {
    return std::make_unique<Process>(
        std::vector<std::string>{testing::Bin("cllm"), "bench", "serve", "--url", url, "--policy", policy_path_,
                                 "--api-key", testing::kKeyAlice, "--users", std::to_string(users), "--duration",
                                 std::to_string(seconds), "--gen-len", "48", "--prompt-len", "8", "--handshakes",
                                 "0", "--timeout", "20", "--json"},
        dir_ / "bench");
  }

 private:
  fs::path dir_;
  std::vector<std::unique_ptr<SimServer>> replicas_;
  std::string policy_path_, error_;
};

json BenchResult(Process& bench) {
  bench.Wait(std::chrono::seconds(50));
  auto j = json::parse(bench.out(), nullptr, false);
  return j.is_discarded() ? json() : j;
}

// ---------------------------------------------------------------------------
// A round-robin TCP forwarder: one address whose successive connections land
// on successive replicas, as behind nginx in TLS passthrough. Test-only.
// ---------------------------------------------------------------------------

class RoundRobinRelay {
 public:
  explicit RoundRobinRelay(std::vector<uint16_t> backends) : backends_(std::move(backends)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 64);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Accept(); });
  }
  ~RoundRobinRelay() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
    for (auto& t : pumps_) t.join();
  }
  uint16_t port() const { return port_; }

 private:
  static void Pump(int from, int to) {
    char buf[16384];
    for (;;) {
      ssize_t n = ::recv(from, buf, sizeof buf, 0);
      if (n <= 0 || ::send(to, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
    }
    ::shutdown(to, SHUT_WR);
  }
  void Accept() {
    for (size_t next = 0;; ++next) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      int s = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(backends_[next % backends_.size()]);
      if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {  // a dead replica: hang up
        ::close(s);
        ::close(c);
        continue;
      }
      pumps_.emplace_back([c, s] {
        std::thread up([c, s] { Pump(c, s); });
        Pump(s, c);
        up.join();
        ::close(s);
        ::close(c);
      });
    }
  }
  std::vector<uint16_t> backends_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::vector<std::thread> pumps_;
};

// ---------------------------------------------------------------------------
// (a) one replica killed in the middle of a load run
// ---------------------------------------------------------------------------

TEST(FailoverTest, KillingOneReplicaMidLoadFailsNoRequestStartedAfterIt) {
  CLLM_SHARED_PATH(model, SimServer::kModel);
  Fleet fleet("kill", 3);
  ASSERT_TRUE(fleet.ok()) << fleet.error();
  auto bench = fleet.Bench(fleet.Urls(), 8, 6);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  Kill(fleet.replica(1));
  const int64_t killed_at = NowUnixMs();  // after the process is gone: later requests cannot reach it
  json r = BenchResult(*bench);
  ASSERT_FALSE(r.is_null()) << bench->out() << bench->err();
  std::printf("bench: ok %d failed %d errors %s retried %s replicas %s\n", r["ok"].get<int>(), r["failed"].get<int>(),
              r["errors"].dump().c_str(), r["retried"].dump().c_str(), r["replicas"].dump().c_str());
  EXPECT_GT(r["ok"].get<int>(), 30);
  for (const auto& f : r["failures"]) {
    // Only a request that was streaming from the killed replica may fail,
    // and then with the clear error, never as a short "success".
    EXPECT_LT(f["start_unix_ms"].get<int64_t>(), killed_at) << f.dump();
    EXPECT_EQ(f["kind"], "incomplete") << f.dump();
    EXPECT_NE(f["detail"].get<std::string>().find("the answer is incomplete"), std::string::npos) << f.dump();
    EXPECT_EQ(f["replica"], fleet.Url(1)) << f.dump();
  }
  EXPECT_EQ(r["failed"].get<int>(), static_cast<int>(r["failures"].size()));
  // The survivors served on after the kill.
  EXPECT_GT(r["replicas"][fleet.Url(0)]["ok"].get<int>(), 0);
  EXPECT_GT(r["replicas"][fleet.Url(2)]["ok"].get<int>(), 0);
}

// ---------------------------------------------------------------------------
// (b) a rolling restart: one replica at a time stops (drains), comes back
// on the same port with a new TLS key, and the next one follows
// ---------------------------------------------------------------------------

TEST(FailoverTest, RollingRestartOfAllReplicasLosesNoRequest) {
  CLLM_SHARED_PATH(model, SimServer::kModel);
  Fleet fleet("rolling", 3);
  ASSERT_TRUE(fleet.ok()) << fleet.error();
  auto bench = fleet.Bench(fleet.Urls(), 12, 4);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  for (size_t i = 0; i < fleet.size(); ++i) {
    ASSERT_TRUE(fleet.replica(i).Restart()) << fleet.replica(i).process().err();
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
  }
  json r = BenchResult(*bench);
  ASSERT_FALSE(r.is_null()) << bench->out() << bench->err();
  std::printf("bench: ok %d failed %d retried %s replicas %s\n", r["ok"].get<int>(), r["failed"].get<int>(),
              r["retried"].dump().c_str(), r["replicas"].dump().c_str());
  EXPECT_EQ(r["failed"].get<int>(), 0) << r["failures"].dump(2);
  EXPECT_GT(r["ok"].get<int>(), 30);
  // New keys after each restart: every connection verified on its own.
  EXPECT_GE(r["verifications"].get<int>(), 4 + 3);
}

// ---------------------------------------------------------------------------
// (c) a stream cut off mid-way: a clear error, never a short answer
// ---------------------------------------------------------------------------

std::string ChatBody(int max_tokens) {
  return json{{"messages", {{{"role", "user"}, {"content", "Tell me a story"}}}},
              {"max_tokens", max_tokens},
              {"temperature", 0},
              {"stream", true}}
      .dump();
}

TEST(FailoverTest, StreamCutMidwayIsIncompleteAndTheNextRequestFailsOver) {
  CLLM_SHARED_PATH(model, kLongModel);
  Fleet fleet("midstream", 2, kLongModel);
  ASSERT_TRUE(fleet.ok()) << fleet.error();
  std::vector<client::Url> urls;
  for (size_t i = 0; i < fleet.size(); ++i) urls.push_back(client::ParseUrl(fleet.Url(i)).value());
  auto set = std::make_shared<client::ReplicaSet>(urls);
  const attestation::Policy policy = fleet.Policy();
  int connects = 0;
  client::FailoverClient fc(set, [&](const client::Url& u) {
    ++connects;
    return client::Connect(u, policy);
  });
  ASSERT_TRUE(fc.Connect().ok());
  const std::string first = fc.replica();
  SimServer& serving = first == fleet.Url(0) ? fleet.replica(0) : fleet.replica(1);
  const std::map<std::string, std::string> auth = {{"Authorization", std::string("Bearer ") + testing::kKeyAlice}};
  size_t received = 0;
  bool killed = false, done = false;
  client::SseParser sse;
  auto r = fc.Request("POST", "/v1/chat/completions", ChatBody(500), auth, [&](std::string_view bytes) {
    received += bytes.size();
    if (!killed) {  // the replica dies once the answer is under way
      killed = true;
      Kill(serving);
    }
    return sse.Feed(bytes, [&](const client::SseEvent& e) {
      if (client::ClassifyCompletionEvent(e).kind == client::CompletionEvent::Kind::kDone) done = true;
    });
  });
  ASSERT_FALSE(r.ok()) << "a complete-looking answer after the replica died";
  EXPECT_FALSE(done);
  EXPECT_EQ(r.code(), client::ClientErrc::kIncomplete) << r.detail();
  EXPECT_NE(r.detail().find("closed the stream after"), std::string::npos) << r.detail();
  EXPECT_NE(r.detail().find("the answer is incomplete"), std::string::npos) << r.detail();
  EXPECT_GT(received, 0u);
  // The next request goes to the other replica, verified on a new connection.
  auto again = fc.Request("POST", "/v1/chat/completions", ChatBody(8), auth, [](std::string_view) { return true; });
  ASSERT_TRUE(again.ok()) << again.detail();
  EXPECT_EQ(again->status, 200);
  EXPECT_NE(fc.replica(), first);
  EXPECT_EQ(connects, 2);
}

TEST(FailoverTest, ProxyEndsACutStreamWithAnErrorEvent) {
  CLLM_SHARED_PATH(model, kLongModel);
  Fleet fleet("proxystream", 2, kLongModel);
  ASSERT_TRUE(fleet.ok()) << fleet.error();
  Process proxy({testing::Bin("cllm"), "proxy", "--listen", "127.0.0.1:0", "--upstream", fleet.Url(0), "--upstream",
                 fleet.Url(1), "--policy", fleet.policy_path()},
                fleet.dir() / "proxy");
  uint16_t port = 0;
  for (int i = 0; i < 400 && proxy.running() && port == 0; ++i) {
    const std::string out = proxy.out();
    if (auto at = out.find("http://127.0.0.1:"); at != std::string::npos) port = std::atoi(out.c_str() + at + 17);
    if (port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_NE(port, 0) << proxy.err();
  auto conn = client::ConnectPlain(client::ParseUrl("http://127.0.0.1:" + std::to_string(port)).value());
  ASSERT_TRUE(conn.ok()) << conn.detail();
  const std::map<std::string, std::string> auth = {{"Authorization", std::string("Bearer ") + testing::kKeyAlice}};
  bool killed = false, done = false;
  std::string error_code;
  client::SseParser sse;
  auto r = (*conn)->Request("POST", "/v1/chat/completions", ChatBody(500), auth, [&](std::string_view bytes) {
    if (!killed) {  // whichever replica serves it dies now
      killed = true;
      Kill(fleet.replica(0));
      Kill(fleet.replica(1));
    }
    return sse.Feed(bytes, [&](const client::SseEvent& e) {
      auto ev = client::ClassifyCompletionEvent(e);
      if (ev.kind == client::CompletionEvent::Kind::kDone) done = true;
      if (ev.kind == client::CompletionEvent::Kind::kError) error_code = ev.text;
    });
  });
  EXPECT_FALSE(r.ok()) << "the proxy ended a cut stream as if complete";
  EXPECT_FALSE(done);
  EXPECT_NE(error_code.find("the answer is incomplete"), std::string::npos) << error_code;
}

// ---------------------------------------------------------------------------
// (d) cllm proxy with several upstreams
// ---------------------------------------------------------------------------

TEST(FailoverTest, ProxyWithSeveralUpstreamsFailsOver) {
  CLLM_SHARED_PATH(model, SimServer::kModel);
  Fleet fleet("proxy", 3);
  ASSERT_TRUE(fleet.ok()) << fleet.error();
  Process proxy({testing::Bin("cllm"), "proxy", "--listen", "127.0.0.1:0", "--upstream", fleet.Urls(), "--policy",
                 fleet.policy_path()},
                fleet.dir() / "proxy");
  uint16_t port = 0;
  for (int i = 0; i < 400 && proxy.running() && port == 0; ++i) {
    const std::string out = proxy.out();
    if (auto at = out.find("http://127.0.0.1:"); at != std::string::npos) port = std::atoi(out.c_str() + at + 17);
    if (port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_NE(port, 0) << proxy.err();
  const client::Url url = client::ParseUrl("http://127.0.0.1:" + std::to_string(port)).value();
  const std::map<std::string, std::string> auth = {{"Authorization", std::string("Bearer ") + testing::kKeyAlice}};
  auto ask = [&](int i) {
    auto c = client::ConnectPlain(url);  // a new downstream connection each time: any pooled upstream
    if (!c.ok()) return std::string("connect: ") + c.detail();
    bool done = false;
    client::SseParser sse;
    auto r = (*c)->Request("POST", "/v1/chat/completions", ChatBody(8 + i % 3), auth, [&](std::string_view b) {
      return sse.Feed(b, [&](const client::SseEvent& e) {
        if (client::ClassifyCompletionEvent(e).kind == client::CompletionEvent::Kind::kDone) done = true;
      });
    });
    if (!r.ok()) return std::string("request: ") + r.detail();
    if (r->status != 200) return "status " + std::to_string(r->status) + ": " + r->body;
    return std::string(done ? "" : "no [DONE]");
  };
  for (int i = 0; i < 6; ++i) EXPECT_EQ(ask(i), "") << "before the kill, request " << i;
  Kill(fleet.replica(0));  // its pooled connections die with it
  Kill(fleet.replica(2));
  for (int i = 0; i < 12; ++i) EXPECT_EQ(ask(i), "") << "after the kill, request " << i << "\n" << proxy.err();
  proxy.Stop();
  // "cllm proxy: … N failed over, …" on exit: the dead replicas were tried and left.
  const std::string err = proxy.err();
  const auto at = err.find(" failed over");
  ASSERT_NE(at, std::string::npos) << err;
  const auto start = err.rfind(' ', at - 1);
  EXPECT_GT(std::atoi(err.c_str() + start + 1), 0) << err;
}

// ---------------------------------------------------------------------------
// One relay address in front of the fleet, one replica dead
// ---------------------------------------------------------------------------

TEST(FailoverTest, ThroughOneRelayAddressEveryConnectionIsVerifiedAndADeadReplicaIsSkipped) {
  CLLM_SHARED_PATH(model, SimServer::kModel);
  Fleet fleet("relay", 3);
  ASSERT_TRUE(fleet.ok()) << fleet.error();
  RoundRobinRelay relay({fleet.replica(0).port(), fleet.replica(1).port(), fleet.replica(2).port()});
  Kill(fleet.replica(1));
  auto bench = fleet.Bench("https://127.0.0.1:" + std::to_string(relay.port()), 4, 4);
  json r = BenchResult(*bench);
  ASSERT_FALSE(r.is_null()) << bench->out() << bench->err();
  std::printf("bench via relay: ok %d failed %d retried %s verifications %d\n", r["ok"].get<int>(),
              r["failed"].get<int>(), r["retried"].dump().c_str(), r["verifications"].get<int>());
  EXPECT_EQ(r["failed"].get<int>(), 0) << r["failures"].dump(2);
  EXPECT_GT(r["ok"].get<int>(), 10);
  // The 4 users' first connections reach all three backends in turn: one of
  // them lands on the dead replica and is tried again.
  EXPECT_GE(r["retried"].size(), 1u);
}

}  // namespace
}  // namespace cllm
