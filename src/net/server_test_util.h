// Test helpers for net::Server: raw loopback clients (plain and TLS).
#pragma once

#include <boost/asio.hpp>

#include <poll.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "crypto/cert_builder.h"
#include "crypto/tls.h"

namespace cllm::net::testing {

using boost::asio::ip::tcp;
using namespace std::chrono_literals;

// RawClient is a blocking plain-TCP client with read deadlines.
class RawClient {
 public:
  // `from`: the local address to connect from (any of 127.0.0.0/8 on
  // Linux's loopback), so a test can be several clients.
  explicit RawClient(uint16_t port, const char* from = nullptr) : s_(io_) {
    if (from != nullptr) {
      s_.open(boost::asio::ip::tcp::v4());
      s_.bind({boost::asio::ip::make_address(from), 0});
    }
    s_.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  }
  void Send(const std::string& bytes) { boost::asio::write(s_, boost::asio::buffer(bytes)); }
  // ReadFor reads until `until` appears, the server closes, or `limit`
  // passes; closed() tells which.
  std::string ReadUntil(const std::string& until, std::chrono::milliseconds limit = 5000ms) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (!until.empty() && got_.find(until) != std::string::npos) break;
      if (!WaitReadable(end)) break;
      char buf[4096];
      boost::system::error_code ec;
      size_t n = s_.read_some(boost::asio::buffer(buf), ec);
      if (ec) {
        closed_ = true;
        break;
      }
      got_.append(buf, n);
    }
    return got_;
  }
  // ReadResponse reads one whole response with a Content-Length body and
  // removes it from what was received.
  std::string ReadResponse(std::chrono::milliseconds limit = 5000ms) {
    ReadUntil("\r\n\r\n", limit);
    auto head_end = got_.find("\r\n\r\n");
    if (head_end == std::string::npos) return Take(got_.size());
    size_t length = 0;
    auto cl = got_.find("Content-Length: ");
    if (cl != std::string::npos && cl < head_end) length = std::stoul(got_.substr(cl + 16));
    const size_t total = head_end + 4 + length;
    const auto end = std::chrono::steady_clock::now() + limit;
    while (got_.size() < total && !closed_ && std::chrono::steady_clock::now() < end) ReadUntil("", 100ms);
    return Take(std::min(total, got_.size()));
  }
  bool closed() const { return closed_; }
  tcp::socket& socket() { return s_; }

 private:
  bool WaitReadable(std::chrono::steady_clock::time_point end) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{s_.native_handle(), POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(left.count())) > 0;
  }
  std::string Take(size_t n) {
    std::string out = got_.substr(0, n);
    got_.erase(0, n);
    return out;
  }
  boost::asio::io_context io_;
  tcp::socket s_;
  std::string got_;
  bool closed_ = false;
};

inline crypto::TlsIdentity MakeIdentity(const std::string& cn) {
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  auto now = std::chrono::system_clock::now();
  crypto::CertSpec spec{.common_name = cn, .not_before = now - 1min, .not_after = now + 10min, .serial = {},
                        .is_ca = false, .dns_names = {}, .extensions = {}};
  auto cert = crypto::IssueCertificate(spec, key.public_key(), key, nullptr).value();
  return crypto::TlsIdentity{key, cert};
}

inline crypto::PeerVerifier AcceptAny() {
  return [](const std::vector<crypto::Certificate>& chain) -> crypto::CryptoStatus {
    if (chain.empty()) return MakeError(crypto::CryptoErrc::kChainInvalid, "no certificate");
    return OkStatus();
  };
}

// TlsClient is a blocking TLS client over a RawClient's socket.
class TlsClient {
 public:
  TlsClient(uint16_t port, std::shared_ptr<crypto::TlsContext> ctx) : raw_(port) {
    auto s = crypto::TlsSession::Handshake(std::move(ctx), raw_.socket().native_handle());
    if (s.ok()) session_ = std::move(s).value();
    else error_ = s.detail();
  }
  bool ok() const { return session_ != nullptr; }
  const std::string& error() const { return error_; }
  // Request sends `request` and reads one Content-Length response.
  std::string Request(const std::string& request) {
    if (!session_->Write(AsBytes(request)).ok()) return "";
    std::string got;
    for (;;) {
      auto head_end = got.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        auto cl = got.find("Content-Length: ");
        size_t length = cl == std::string::npos ? 0 : std::stoul(got.substr(cl + 16));
        if (got.size() >= head_end + 4 + length) return got;
      }
      auto r = session_->Read(4096);
      if (!r.ok() || r->empty()) return got;
      got.append(r->begin(), r->end());
    }
  }

 private:
  RawClient raw_;
  std::unique_ptr<crypto::TlsSession> session_;
  std::string error_;
};

// WaitFor polls `pred` for up to `limit`.
template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds limit = 5000ms) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

}  // namespace cllm::net::testing
