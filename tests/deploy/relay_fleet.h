// relay_fleet.h — three cllm-server replicas on the simulated TEE behind a
// real relay (nginx `stream` or HAProxy in TCP mode), configured by
// deploy/relay/render.sh exactly as an operator would.
//
// The replicas share one simulated platform key (one policy verifies the
// fleet) but each has its own TLS key and evidence. The relay runs as a
// foreground child with its pid, logs and temporary files in the fleet's
// temporary directory.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "attestation/sim/sim_attester.h"
#include "base/encoding.h"
#include "client/client.h"
#include "support/process.h"
#include "support/sim_server.h"

namespace cllm::testing {

// FindExe returns the path of a system program (PATH, then the sbin
// directories a non-root PATH often lacks), or "" when it is not installed.
inline std::string FindExe(const std::string& name) {
  const char* env = std::getenv("PATH");
  std::string dirs = std::string(env ? env : "") + ":/usr/sbin:/usr/local/sbin:/sbin";
  std::stringstream ss(dirs);
  for (std::string d; std::getline(ss, d, ':');) {
    auto p = std::filesystem::path(d) / name;
    if (!d.empty() && ::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

// FreePort returns a loopback port that was free a moment ago.
inline uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline bool Accepts(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

class RelayFleet {
 public:
  explicit RelayFleet(std::string engine) : engine_(std::move(engine)) {
    dir_ = std::filesystem::temp_directory_path() / ("cllm_relay_" + engine_ + "_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    fleet_key_ = attestation::sim::GenerateSimPlatformKey().value();
  }
  ~RelayFleet() {
    relay_.reset();
    replicas_.clear();
    std::filesystem::remove_all(dir_);
  }
  RelayFleet(const RelayFleet&) = delete;
  RelayFleet& operator=(const RelayFleet&) = delete;

  // Binary is the relay program, "" when the package is not installed.
  std::string Binary() const { return FindExe(engine_ == "nginx" ? "nginx" : "haproxy"); }

  // StartReplicas starts `n` replicas; false (with their stderr in dir()) when one did not come up.
  bool StartReplicas(int n) {
    for (int i = 0; i < n; ++i) {
      auto s = SimServer::Start(dir_, "replica" + std::to_string(i), {}, SimServer::kModel, fleet_key_->ToPem());
      if (!s) return false;
      replicas_.push_back(std::move(s));
    }
    return true;
  }

  // Render runs deploy/relay/render.sh for `upstreams` (loopback ports) and returns its exit
  // code (3: this nginx has no stream module).
  int Render(const std::vector<uint16_t>& upstreams) {
    std::string list;
    for (uint16_t p : upstreams) list += (list.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(p);
    port_ = FreePort();
    conf_ = dir_ / (engine_ + ".conf");
    Process render({"/bin/bash", std::string(CLLM_SOURCE_DIR) + "/deploy/relay/render.sh", "--engine", engine_,
                    "--replicas", list, "--listen", "127.0.0.1:" + std::to_string(port_), "--runtime-dir",
                    dir_.string(), "--workers", "2", "--max-conns", "512", "--out", conf_.string(), "--nginx",
                    engine_ == "nginx" ? Binary() : "nginx"},
                   dir_ / "render");
    return render.Wait(std::chrono::seconds(20));
  }

  // StartRelay runs the rendered configuration in the foreground; false when the relay does
  // not accept connections within 10 s (its stderr is in RelayLog()).
  bool StartRelay() {
    std::vector<std::string> argv;
    if (engine_ == "nginx") {
      argv = {Binary(), "-p", dir_.string(), "-c", conf_.string(), "-e", (dir_ / "error.log").string(),
              "-g", "daemon off;"};
    } else {
      argv = {Binary(), "-f", conf_.string(), "-db"};
    }
    relay_ = std::make_unique<Process>(argv, dir_ / "relay");
    for (int i = 0; i < 200; ++i) {
      if (!relay_->running()) return false;
      if (Accepts(port_)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  std::string RelayLog() const {
    return ReadFile(dir_ / "relay.err") + ReadFile(dir_ / "error.log") + ReadFile(dir_ / "render.err");
  }

  // Policy verifies every replica: same platform key, binary and model.
  attestation::Policy Policy() const { return replicas_.at(0)->Policy(); }

  // ReplicaKeys maps each replica's TLS key (SPKI SHA-256, hex) to its index, learnt by
  // connecting to the replicas directly.
  std::map<std::string, int> ReplicaKeys() const {
    std::map<std::string, int> keys;
    for (size_t i = 0; i < replicas_.size(); ++i) {
      auto c = client::Connect(client::Url{true, "127.0.0.1", replicas_[i]->port(), ""}, Policy());
      if (c.ok()) keys[HexEncode((*c)->server()->spki_sha256)] = static_cast<int>(i);
    }
    return keys;
  }

  client::Url RelayUrl() const { return client::Url{true, "127.0.0.1", port_, ""}; }
  uint16_t relay_port() const { return port_; }
  std::vector<uint16_t> ReplicaPorts() const {
    std::vector<uint16_t> ports;
    for (auto& r : replicas_) ports.push_back(r->port());
    return ports;
  }
  SimServer& replica(size_t i) { return *replicas_.at(i); }
  const std::filesystem::path& dir() const { return dir_; }
  const std::string& engine() const { return engine_; }

 private:
  std::string engine_;
  std::filesystem::path dir_, conf_;
  std::optional<crypto::PrivateKey> fleet_key_;
  std::vector<std::unique_ptr<SimServer>> replicas_;
  std::unique_ptr<Process> relay_;
  uint16_t port_ = 0;
};

}  // namespace cllm::testing
