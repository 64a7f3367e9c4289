// sim_server.h — a real cllm-server on the simulated TEE for end-to-end and
// attack tests (record sizes, /metrics, the evidence endpoint), and the raw
// TLS exchanges an attacker would make.
//
// SimServer::Start runs cllm-server with users alice and bob, a debug
// listener, and the caller's extra flags; Policy() pins what a careful
// client pins (platform key, binary and model digests) and accepts the
// debug listener every SimServer has. Replicas of one
// fleet share a simulated platform key (`platform_key_pem`), so one policy
// verifies all of them (each still has its own TLS key); Restart brings a
// replica back on the same ports, with a fresh TLS key and evidence.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "attestation/policy.h"
#include "attestation/sim/sim_attester.h"
#include "base/encoding.h"
#include "client/client.h"
#include "crypto/digest.h"
#include "crypto/tls.h"
#include "support/process.h"
#include "support/shared_data.h"

namespace cllm::testing {

inline constexpr char kKeyAlice[] = "sk-alice-0123456789";
inline constexpr char kKeyBob[] = "sk-bob-9876543210";

class SimServer {
 public:
  // Start returns a listening server, or null when it did not come up (its
  // stderr is in `dir`/NAME.err). `dir` must exist.
  static std::unique_ptr<SimServer> Start(const std::filesystem::path& dir, const std::string& name,
                                          const std::vector<std::string>& extra_args,
                                          const std::string& model = kModel,
                                          const std::string& platform_key_pem = "") {
    auto s = std::unique_ptr<SimServer>(new SimServer());
    s->platform_key_ = platform_key_pem.empty() ? attestation::sim::GenerateSimPlatformKey().value()
                                                : crypto::PrivateKey::FromPem(platform_key_pem).value();
    std::ofstream(dir / (name + ".plat.key")) << s->platform_key_->ToPem();
    nlohmann::json keys = {{"keys",
                            {{{"user", "alice"}, {"sha256", HexEncode(crypto::Sha256(AsBytes(kKeyAlice)))}, {"prompt_embeds", true}},
                             {{"user", "bob"}, {"sha256", HexEncode(crypto::Sha256(AsBytes(kKeyBob)))}}}}};
    std::ofstream(dir / (name + ".keys.json")) << keys.dump();
    std::vector<std::string> argv = {Bin("cllm-server"), "-m", (SharedDir() / model).string(), "--tee", "sim",
                                     "--sim-key", (dir / (name + ".plat.key")).string(), "--listen", "127.0.0.1:0",
                                     "--debug-listen", "127.0.0.1:0", "--api-keys",
                                     (dir / (name + ".keys.json")).string(), "--ready-file",
                                     (dir / (name + ".ready.json")).string(), "--log-level", "warn"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    s->argv_ = argv;
    s->ready_file_ = dir / (name + ".ready.json");
    s->log_prefix_ = dir / name;
    s->process_ = std::make_unique<Process>(argv, dir / name);
    s->ready_ = WaitReady(*s->process_, dir / (name + ".ready.json"));
    if (s->ready_.is_null()) return nullptr;
    return s;
  }

  // Restart stops the server (SIGTERM: it drains; or it is dead already)
  // and starts it again on the same ports; false when it did not come up.
  bool Restart() {
    const std::string listen = "127.0.0.1:" + std::to_string(port());
    const std::string debug = "127.0.0.1:" + std::to_string(debug_port());
    process_.reset();
    std::filesystem::remove(ready_file_);
    for (size_t i = 0; i + 1 < argv_.size(); ++i) {
      if (argv_[i] == "--listen") argv_[i + 1] = listen;
      if (argv_[i] == "--debug-listen") argv_[i + 1] = debug;
    }
    process_ = std::make_unique<Process>(argv_, log_prefix_);
    ready_ = WaitReady(*process_, ready_file_);
    return !ready_.is_null();
  }

  static constexpr const char* kModel = "models/stories260K-f16.gguf";
  // A random-weight model whose chat template renders tools (Qwen2's).
  static constexpr const char* kToolModel = "models/qwen2-tiny-random-q8_0.gguf";

  attestation::Policy Policy() const {
    attestation::Policy p = attestation::Policy::Default();
    p.platforms = {attestation::Platform::kSim};
    p.sim_platform_keys = {platform_key_->public_key()};
    p.model_digests = {HexDecode(ready_["model_digest"].get<std::string>()).value()};
    p.binary_digests = {HexDecode(ready_["binary_digest"].get<std::string>()).value()};
    // Every SimServer has a debug listener (the tests read /metrics and
    // record sizes there) and says so in its evidence; its metrics keys, if
    // any, are the test's own, pinned by digest.
    p.allow_debug_listener = true;
    for (const auto& d : ready_.value("metrics_readers", nlohmann::json::array())) {
      p.metrics_readers.push_back(HexDecode(d.get<std::string>()).value());
    }
    return p;
  }
  uint16_t port() const { return ready_["port"].get<uint16_t>(); }
  uint16_t debug_port() const { return ready_["debug_port"].get<uint16_t>(); }
  const nlohmann::json& ready() const { return ready_; }
  const crypto::PrivateKey& platform_key() const { return *platform_key_; }
  Process& process() { return *process_; }

 private:
  SimServer() = default;
  std::optional<crypto::PrivateKey> platform_key_;
  std::unique_ptr<Process> process_;
  nlohmann::json ready_;
  std::vector<std::string> argv_;
  std::filesystem::path ready_file_, log_prefix_;
};

// RawReply is what an unverifying client sees: status, headers, body.
struct RawReply {
  int status = 0;
  std::string head;  // status line and headers as sent
  std::string body;
  std::string Header(const std::string& name) const {
    const std::string key = "\r\n" + name + ": ";
    auto at = head.find(key);
    if (at == std::string::npos) return "";
    at += key.size();
    return head.substr(at, head.find("\r\n", at) - at);
  }
};

// RawTlsGet sends one GET over TLS 1.3 from source address `from` (any
// 127.0.0.0/8 address works on Linux loopback) to 127.0.0.1:`port`, without
// verifying the server: an anonymous caller of a public endpoint. Status 0
// when the exchange failed.
inline RawReply RawTlsGet(const std::string& from, uint16_t port, const std::string& target,
                          const std::string& extra_headers = "") {
  RawReply reply;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  ::inet_pton(AF_INET, from.c_str(), &src.sin_addr);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  dst.sin_port = htons(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
    ::close(fd);
    return reply;
  }
  auto ctx = crypto::TlsContext::Client([](const std::vector<crypto::Certificate>&) -> crypto::CryptoStatus {
               return OkStatus();
             }).value();
  auto session = crypto::TlsSession::Handshake(ctx, fd);
  if (session.ok()) {
    const std::string request =
        "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n" + extra_headers + "Connection: close\r\n\r\n";
    std::string all;
    if ((*session)->Write(AsBytes(request)).ok()) {
      for (;;) {
        auto r = (*session)->Read(16384);
        if (!r.ok() || r->empty()) break;
        all.append(r->begin(), r->end());
      }
    }
    auto end = all.find("\r\n\r\n");
    if (all.rfind("HTTP/1.1 ", 0) == 0 && end != std::string::npos) {
      reply.status = std::atoi(all.c_str() + 9);
      reply.head = all.substr(0, end + 2);
      reply.body = all.substr(end + 4);
    }
  }
  ::close(fd);
  return reply;
}

}  // namespace cllm::testing
