// relay.h — a TCP relay on loopback that records what it forwards: what a
// network attacker, the cloud host or an untrusted load balancer sees.
//
// Relay accepts one connection on an ephemeral port, connects it to
// 127.0.0.1:`upstream` and pumps bytes both ways, keeping a copy of each
// direction (server_bytes() is what came from the upstream).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace cllm::testing {

class Relay {
 public:
  explicit Relay(uint16_t upstream) : upstream_(upstream) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listen_fd_, 4);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~Relay() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    thread_.join();
  }
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  uint16_t port() const { return port_; }
  // seen is every byte in both directions, interleaved as forwarded.
  std::string seen() {
    std::lock_guard<std::mutex> l(mu_);
    return seen_;
  }
  // server_bytes is what the upstream sent, in order.
  std::string server_bytes() {
    std::lock_guard<std::mutex> l(mu_);
    return from_server_;
  }

 private:
  void Pump(int from, int to, bool from_server) {
    char buf[8192];
    for (;;) {
      ssize_t n = ::recv(from, buf, sizeof buf, 0);
      if (n <= 0) break;
      {
        std::lock_guard<std::mutex> l(mu_);
        seen_.append(buf, static_cast<size_t>(n));
        if (from_server) from_server_.append(buf, static_cast<size_t>(n));
      }
      if (::send(to, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
    }
    ::shutdown(to, SHUT_WR);
  }
  void Run() {
    int c = ::accept(listen_fd_, nullptr, nullptr);
    if (c < 0) return;
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(upstream_);
    if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      std::thread up([&] { Pump(c, s, false); });
      Pump(s, c, true);
      up.join();
    }
    ::close(s);
    ::close(c);
  }

  uint16_t upstream_;
  int listen_fd_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::string seen_, from_server_;
};

}  // namespace cllm::testing
