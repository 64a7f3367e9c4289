// tcp_tap.h — a recording TCP tap for the relay tests: what anyone on one
// leg of the relay's traffic (client↔relay or relay↔replica) can capture.
//
// TcpTap listens on an ephemeral loopback port, forwards every accepted
// connection to 127.0.0.1:`upstream` and keeps a copy of every byte in both
// directions, like `tcpdump -w` on that leg would (minus TCP/IP headers).
// A tap is used instead of tcpdump because it needs no capture privilege and
// no extra package; it sees exactly the payload bytes tcpdump would.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cllm::testing {

class TcpTap {
 public:
  explicit TcpTap(uint16_t upstream) : upstream_(upstream) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a = Loopback(0);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listen_fd_, 64);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~TcpTap() {
    stop_ = true;
    acceptor_.join();
    ::close(listen_fd_);
    for (auto& t : pumps_) t.join();
    for (int fd : fds_) ::close(fd);
  }
  TcpTap(const TcpTap&) = delete;
  TcpTap& operator=(const TcpTap&) = delete;

  uint16_t port() const { return port_; }
  // captured is every forwarded byte of every connection, both directions.
  std::string captured() {
    std::lock_guard<std::mutex> l(mu_);
    return captured_;
  }
  int connections() const { return connections_.load(); }

 private:
  static sockaddr_in Loopback(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return a;
  }
  void Accept() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept(listen_fd_, nullptr, nullptr);
      if (c < 0) continue;
      ++connections_;
      int s = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a = Loopback(upstream_);
      if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(s);
        ::close(c);
        continue;
      }
      // Two pumps per connection; the descriptors are closed once every pump has stopped.
      fds_.push_back(c);
      fds_.push_back(s);
      pumps_.emplace_back([this, c, s] { Pump(s, c); });
      pumps_.emplace_back([this, c, s] { Pump(c, s); });
    }
  }
  void Pump(int from, int to) {
    char buf[16384];
    for (;;) {
      pollfd p{from, POLLIN, 0};
      int ready = ::poll(&p, 1, 50);
      if (ready == 0) {
        if (stop_) break;
        continue;
      }
      ssize_t n = ::recv(from, buf, sizeof buf, 0);
      if (n <= 0) break;
      {
        std::lock_guard<std::mutex> l(mu_);
        captured_.append(buf, static_cast<size_t>(n));
      }
      if (::send(to, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
    }
    ::shutdown(to, SHUT_WR);
  }

  uint16_t upstream_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread acceptor_;
  std::list<std::thread> pumps_;  // touched by the acceptor only, joined after it
  std::vector<int> fds_;          // likewise
  std::mutex mu_;
  std::string captured_;
};

}  // namespace cllm::testing
