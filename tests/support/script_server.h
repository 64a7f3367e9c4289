// script_server.h — a loopback HTTP/1.1 server that follows a script: what
// a silent, slow or broken server does to a client (accept and never
// answer, stall between chunks, cut a response, close a kept-alive
// connection), for the client's deadline and error tests.
//
// Blocking sockets, one thread per connection (a handful in a test), plain
// or TLS (crypto::TlsSession). Requests are read up to the end of their
// head plus Content-Length body bytes; the script decides each reply.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "crypto/tls.h"

namespace cllm::testing {

class ScriptServer {
 public:
  struct Step {
    std::string bytes;                  // sent as one write
    std::chrono::milliseconds pause{0};  // then wait this long
  };
  struct Reply {
    std::vector<Step> steps;
    bool close = false;  // close the connection after the steps
    bool hang = false;   // after the steps, hold the connection open and say nothing more
  };
  // Script answers the n-th request the server read (0-based, all
  // connections counted) whose head (request line and headers) is `head`.
  using Script = std::function<Reply(int n, const std::string& head)>;

  // Silent accepts connections and never reads or writes a byte.
  static std::unique_ptr<ScriptServer> Silent() { return std::unique_ptr<ScriptServer>(new ScriptServer(nullptr, nullptr)); }
  static std::unique_ptr<ScriptServer> Http(Script script, std::shared_ptr<crypto::TlsContext> tls = nullptr) {
    return std::unique_ptr<ScriptServer>(new ScriptServer(std::move(script), std::move(tls)));
  }
  // Ok is a complete 200 response with a Content-Length body.
  static Reply Ok(const std::string& body) {
    return Reply{{{"HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body}}};
  }

  ~ScriptServer() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
      for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    }
    cv_.notify_all();
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    accept_thread_.join();
    for (auto& t : threads_) t.join();
    for (int fd : fds_) ::close(fd);
  }
  ScriptServer(const ScriptServer&) = delete;
  ScriptServer& operator=(const ScriptServer&) = delete;

  uint16_t port() const { return port_; }
  int connections() const { return connections_.load(); }
  int requests() const { return requests_.load(); }

 private:
  ScriptServer(Script script, std::shared_ptr<crypto::TlsContext> tls) : script_(std::move(script)), tls_(std::move(tls)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listen_fd_, 64);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    accept_thread_ = std::thread([this] { Accept(); });
  }

  void Accept() {
    for (;;) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      std::lock_guard<std::mutex> l(mu_);
      if (stop_) {
        ::close(fd);
        return;
      }
      ++connections_;
      fds_.push_back(fd);
      threads_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  // WaitStop sleeps `d` (forever when negative) or until the destructor.
  void WaitStop(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> l(mu_);
    if (d.count() < 0) {
      cv_.wait(l, [&] { return stop_; });
    } else {
      cv_.wait_for(l, d, [&] { return stop_; });
    }
  }

  void Serve(int fd) {
    if (!script_) return WaitStop(std::chrono::milliseconds(-1));
    std::unique_ptr<crypto::TlsSession> tls;
    if (tls_) {
      auto s = crypto::TlsSession::Handshake(tls_, fd);
      if (!s.ok()) return;
      tls = std::move(s).value();
    }
    auto read = [&](std::string& buf) {
      if (tls) {
        auto r = tls->Read(16384);
        if (!r.ok() || r->empty()) return false;
        buf.append(r->begin(), r->end());
        return true;
      }
      char b[16384];
      ssize_t n = ::recv(fd, b, sizeof b, 0);
      if (n <= 0) return false;
      buf.append(b, static_cast<size_t>(n));
      return true;
    };
    auto write = [&](const std::string& s) {
      if (tls) return tls->Write(AsBytes(s)).ok();
      return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
    };
    std::string buf;
    for (;;) {
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        if (!read(buf)) return;
      }
      std::string head = buf.substr(0, end + 2);
      size_t body = ContentLength(head);
      while (buf.size() < end + 4 + body) {
        if (!read(buf)) return;
      }
      buf.erase(0, end + 4 + body);
      Reply reply = script_(requests_++, head);
      for (const auto& step : reply.steps) {
        if (!write(step.bytes)) return;
        if (step.pause.count() > 0) WaitStop(step.pause);
      }
      if (reply.hang) return WaitStop(std::chrono::milliseconds(-1));
      if (reply.close) {
        ::shutdown(fd, SHUT_RDWR);
        return;
      }
    }
  }

  static size_t ContentLength(std::string head) {
    std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return std::tolower(c); });
    size_t at = head.find("\r\ncontent-length:");
    return at == std::string::npos ? 0 : std::strtoul(head.c_str() + at + 17, nullptr, 10);
  }

  Script script_;
  std::shared_ptr<crypto::TlsContext> tls_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::thread accept_thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
};

}  // namespace cllm::testing
