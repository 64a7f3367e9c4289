// cllm-server's request lifecycle with a real process (plain debug
// listener, raw HTTP): SIGTERM drains — a long streaming completion under
// way when the signal arrives runs to its end, while requests after the
// signal are refused (503, or the listener is closed), then the process
// exits 0; and a non-streaming client that disconnects cancels its
// generation.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
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

#include "attestation/sim/sim_attester.h"
#include "support/process.h"
#include "support/shared_data.h"

namespace cllm {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A random-weights model: it does not stop early on an end-of-generation
// token, and a few hundred tokens take seconds — a long generation.
constexpr char kModel[] = "models/llama3-tiny-random-q8_0.gguf";

int ConnectTo(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const std::string& s) {
  for (size_t off = 0; off < s.size();) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// ReadSome appends what arrives within `wait`; false once the peer closed.
bool ReadSome(int fd, std::string* out, std::chrono::milliseconds wait) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return true;
  char buf[16384];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  if (n <= 0) return false;
  out->append(buf, static_cast<size_t>(n));
  return true;
}

std::string Post(const std::string& body) {
  return "POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

// Refused says whether a new request now gets 503, a closed connection or
// a refused connect.
bool Refused(uint16_t port) {
  int fd = ConnectTo(port);
  if (fd < 0) return true;
  std::string reply;
  bool open = SendAll(fd, Post(R"({"prompt":"Hi","max_tokens":1})"));
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (open && reply.find("\r\n\r\n") == std::string::npos && Clock::now() < deadline) {
    open = ReadSome(fd, &reply, std::chrono::milliseconds(100));
  }
  ::close(fd);
  if (reply.empty()) return !open;  // closed without an answer
  return reply.rfind("HTTP/1.1 503", 0) == 0;
}

// Metric reads one counter or gauge from GET /metrics (-1 when unreadable).
int64_t Metric(uint16_t port, const std::string& name) {
  int fd = ConnectTo(port);
  if (fd < 0) return -1;
  std::string reply;
  if (SendAll(fd, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")) {
    while (ReadSome(fd, &reply, std::chrono::milliseconds(1000)) && reply.size() < (1 << 20)) {
    }
  }
  ::close(fd);
  auto at = reply.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stoll(reply.substr(at + name.size() + 2));
}

class LifecycleE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CLLM_SHARED_PATH(model, kModel);
    dir_ = fs::temp_directory_path() / ("cllm_lifecycle_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "plat.key") << attestation::sim::GenerateSimPlatformKey().value().ToPem();
    server_ = std::make_unique<testing::Process>(
        std::vector<std::string>{testing::Bin("cllm-server"), "-m", model.string(), "--tee", "sim", "--sim-key",
                                 (dir_ / "plat.key").string(), "--listen", "127.0.0.1:0", "--debug-listen",
                                 "127.0.0.1:0", "--allow-anonymous", "--drain-timeout", "120", "--ready-file",
                                 (dir_ / "ready.json").string(), "--log-level", "warn"},
        dir_ / "server");
    auto ready = testing::WaitReady(*server_, dir_ / "ready.json");
    ASSERT_FALSE(ready.is_null()) << server_->err();
    port_ = ready["debug_port"].get<uint16_t>();
  }
  void TearDown() override {
    server_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  fs::path dir_;
  std::unique_ptr<testing::Process> server_;
  uint16_t port_ = 0;
};

TEST_F(LifecycleE2eTest, SigtermLetsAStreamFinishAndRefusesNewRequests) {
  testing::Process& server = *server_;
  const uint16_t port = port_;

  // A long streaming completion; SIGTERM once its first event arrived. The
  // tiny model decodes thousands of tokens a second: 4000 of them (~1.5 s)
  // outlast the refusal checks below.
  int fd = ConnectTo(port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, Post(R"({"prompt":"Hello","max_tokens":4000,"temperature":0,"stream":true})")));
  std::string stream;
  const auto first_deadline = Clock::now() + std::chrono::seconds(30);
  while (stream.find("data: {") == std::string::npos && Clock::now() < first_deadline) {
    ASSERT_TRUE(ReadSome(fd, &stream, std::chrono::milliseconds(100))) << stream;
  }
  ASSERT_NE(stream.find("data: {"), std::string::npos) << stream;
  ASSERT_EQ(::kill(server.pid(), SIGTERM), 0);

  // The stream keeps coming on its own thread while new requests are tried.
  std::atomic<bool> stream_done{false};
  std::thread reader([&] {
    const auto deadline = Clock::now() + std::chrono::seconds(120);
    while (Clock::now() < deadline && ReadSome(fd, &stream, std::chrono::milliseconds(100))) {
    }
    stream_done = true;
  });
  bool refused = false, refused_while_streaming = false;
  for (int i = 0; i < 100 && !refused; ++i) {
    refused = Refused(port);
    refused_while_streaming = refused && !stream_done;
    if (!refused) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  reader.join();
  ::close(fd);
  EXPECT_TRUE(refused) << "a request after SIGTERM was served";
  EXPECT_TRUE(refused_while_streaming) << "the stream had ended before new requests were refused: no drain tested";
  // The stream ran to its end: the finish event, [DONE] and the last chunk.
  EXPECT_NE(stream.find("\"finish_reason\":\"length\""), std::string::npos) << stream.substr(0, 400);
  EXPECT_NE(stream.find("data: [DONE]"), std::string::npos);
  EXPECT_EQ(stream.substr(stream.size() - 5), "0\r\n\r\n");
  EXPECT_EQ(server.Wait(std::chrono::seconds(60)), 0) << server.err();
}

// The issue's "a non-streaming request keeps generating after its client
// has gone": nothing is written before the answer is complete, so only the
// connection noticing the closed socket can cancel it.
TEST_F(LifecycleE2eTest, NonStreamingClientThatDisconnectsCancelsItsGeneration) {
  int fd = ConnectTo(port_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, Post(R"({"prompt":"Hello","max_tokens":4000,"temperature":0})")));  // ~1.5 s
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Metric(port_, "cllm_generated_tokens_total") < 1 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE(Metric(port_, "cllm_generated_tokens_total"), 1);
  ::close(fd);  // the client goes away mid-generation
  while (Metric(port_, "cllm_sequences_completed_total") < 1 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(Metric(port_, "cllm_sequences_completed_total"), 1);
  EXPECT_EQ(Metric(port_, "cllm_streams_cancelled_total"), 1);
  EXPECT_LT(Metric(port_, "cllm_generated_tokens_total"), 3000) << "generation ran on for a client that had gone";
}

}  // namespace
}  // namespace cllm
