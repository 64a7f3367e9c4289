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

  // Tamper arms a one-shot active attack on the next response that comes
  // back through the tap (upstream → client): `flip` flips the byte
  // `body_offset` bytes after the end of its HTTP head; otherwise the
  // connection is cut there (both directions closed), a truncation.
  void Tamper(size_t body_offset, bool flip) {
    std::lock_guard<std::mutex> l(mu_);
    tamper_offset_ = body_offset;
    tamper_flip_ = flip;
    tamper_armed_ = true;
  }
  // Disarm forgets an attack that has not fired, and a fired one.
  void Disarm() {
    std::lock_guard<std::mutex> l(mu_);
    tamper_armed_ = tamper_fired_ = false;
  }
  bool tamper_done() {
    std::lock_guard<std::mutex> l(mu_);
    return !tamper_armed_ && tamper_fired_;
  }

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
      pumps_.emplace_back([this, c, s] { Pump(s, c, /*down=*/true); });
      pumps_.emplace_back([this, c, s] { Pump(c, s, /*down=*/false); });
    }
  }
  void Pump(int from, int to, bool down) {
    char buf[16384];
    std::string head;           // down: bytes of the current response head while the attack looks for its end
    int64_t until_target = -1;  // down: body bytes before the attacked one (-1: not counting)
    for (;;) {
      pollfd p{from, POLLIN, 0};
      int ready = ::poll(&p, 1, 50);
      if (ready == 0) {
        if (stop_) break;
        continue;
      }
      ssize_t n = ::recv(from, buf, sizeof buf, 0);
      if (n <= 0) break;
      bool cut = false;
      size_t send_n = static_cast<size_t>(n);
      {
        std::lock_guard<std::mutex> l(mu_);
        captured_.append(buf, static_cast<size_t>(n));
        if (down && tamper_armed_) {
          size_t body_start = 0;
          if (until_target < 0) {
            head.append(buf, static_cast<size_t>(n));
            auto end = head.find("\r\n\r\n");
            if (end != std::string::npos) {
              const size_t consumed_before = head.size() - static_cast<size_t>(n);
              body_start = end + 4 - consumed_before;
              until_target = static_cast<int64_t>(tamper_offset_);
              head.clear();
            }
          }
          if (until_target >= 0 && static_cast<int64_t>(send_n - body_start) > until_target) {
            const size_t at = body_start + static_cast<size_t>(until_target);
            if (tamper_flip_) {
              buf[at] ^= 0x01;
            } else {
              send_n = at;
              cut = true;
            }
            tamper_armed_ = false;
            tamper_fired_ = true;
            until_target = -1;
          } else if (until_target >= 0) {
            until_target -= static_cast<int64_t>(send_n - body_start);
          }
        }
      }
      if (send_n > 0 && ::send(to, buf, send_n, MSG_NOSIGNAL) != static_cast<ssize_t>(send_n)) break;
      if (cut) {
        ::shutdown(from, SHUT_RDWR);
        break;
      }
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
  bool tamper_armed_ = false, tamper_flip_ = false, tamper_fired_ = false;
  size_t tamper_offset_ = 0;
};

}  // namespace cllm::testing
