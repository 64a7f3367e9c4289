#include "client/client.h"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "attestation/pinning.h"
#include "base/encoding.h"
#include "crypto/random.h"

namespace cllm::client {

namespace beast = boost::beast;
namespace http = beast::http;

const char* ClientErrcName(ClientErrc code) {
  switch (code) {
    case ClientErrc::kBadUrl: return "bad_url";
    case ClientErrc::kConnect: return "connect";
    case ClientErrc::kAttestation: return "attestation";
    case ClientErrc::kTls: return "tls";
    case ClientErrc::kProtocol: return "protocol";
    case ClientErrc::kHttp: return "http";
  }
  return "unknown";
}

ClientResult<Url> ParseUrl(std::string_view s) {
  Url u;
  if (s.rfind("https://", 0) == 0) {
    s.remove_prefix(8);
  } else if (s.rfind("http://", 0) == 0) {
    u.tls = false;
    u.port = 80;
    s.remove_prefix(7);
  } else {
    return MakeError(ClientErrc::kBadUrl, "URL must start with https:// (or http:// for a debug listener)");
  }
  size_t slash = s.find('/');
  std::string_view authority = s.substr(0, slash);
  if (slash != std::string_view::npos) u.path = std::string(s.substr(slash));
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return MakeError(ClientErrc::kBadUrl, "unterminated [IPv6] host");
    host = authority.substr(1, close - 1);
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return MakeError(ClientErrc::kBadUrl, "junk after [IPv6] host");
      port = rest.substr(1);
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (!port.empty() || authority.find(':') != std::string_view::npos) {
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
        std::stoi(std::string(port)) > 65535 || std::stoi(std::string(port)) == 0) {
      return MakeError(ClientErrc::kBadUrl, "bad port \"" + std::string(port) + "\"");
    }
    u.port = static_cast<uint16_t>(std::stoi(std::string(port)));
  }
  if (host.empty()) return MakeError(ClientErrc::kBadUrl, "URL has no host");
  u.host = std::string(host);
  return u;
}

namespace {

// Requests are sent in TLS 1.3 records padded to multiples of this many bytes
// (RFC 8446 section 5.4), as cllm-server pads its answers by default.
constexpr size_t kRequestRecordPadding = 512;

ClientResult<int> TcpConnect(const Url& u) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(u.host.c_str(), std::to_string(u.port).c_str(), &hints, &res);
  if (rc != 0) return MakeError(ClientErrc::kConnect, u.host + ": " + ::gai_strerror(rc));
  std::string last = "no address";
  int fd = -1;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      int one = 1;  // requests are written in pieces; do not let Nagle delay them
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      break;
    }
    last = std::strerror(errno);
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  if (fd < 0) return MakeError(ClientErrc::kConnect, u.host + ":" + std::to_string(u.port) + ": " + last);
  return fd;
}

}  // namespace

Connection::~Connection() {
  if (session_) session_->Shutdown();
  if (fd_ >= 0) ::close(fd_);
}

std::string Connection::TlsDescription() const {
  return session_ ? session_->Protocol() + " " + session_->Cipher() : "plain HTTP (not encrypted, not attested)";
}

bool Connection::Send(std::string_view bytes) {
  if (session_) return session_->Write(AsBytes(bytes)).ok();
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

long Connection::Receive(char* buf, size_t max) {
  if (session_) {
    auto r = session_->Read(max);
    if (!r.ok()) return -1;
    if (r->empty()) return 0;  // close_notify
    std::memcpy(buf, r->data(), r->size());
    return static_cast<long>(r->size());
  }
  for (;;) {
    ssize_t n = ::recv(fd_, buf, max, 0);
    if (n < 0 && errno == EINTR) continue;
    return static_cast<long>(n);
  }
}

ClientResult<HttpResponse> Connection::Request(const std::string& method, const std::string& target,
                                               const std::string& body,
                                               const std::map<std::string, std::string>& headers,
                                               const BodyCallback& on_body, const HeadCallback& on_head) {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: " + url_.host + "\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST") {
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  // A server may answer before reading the whole body (413) and close; its
  // answer is then still readable, so a failed send only fails the request
  // when no response follows.
  const bool sent = Send(req);

  http::response_parser<http::string_body> parser;
  parser.body_limit(64ull << 20);
  parser.eager(true);
  bool stopped = false;
  bool head_sent = false;
  auto head = [&] {
    HttpResponse h;
    h.status = static_cast<int>(parser.get().result_int());
    for (const auto& f : parser.get()) {
      std::string name(f.name_string());
      for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      h.headers[name] = std::string(f.value());
    }
    return h;
  };
  std::function<size_t(uint64_t, beast::string_view, beast::error_code&)> chunk_cb;
  if (on_body) {
    chunk_cb = [&](uint64_t, beast::string_view data, beast::error_code&) {
      if (!head_sent && on_head) on_head(head());
      head_sent = true;
      if (!stopped && !on_body(std::string_view(data.data(), data.size()))) stopped = true;
      return data.size();
    };
    parser.on_chunk_body(chunk_cb);
  }
  std::string pending;
  char buf[16384];
  bool got_bytes = false;
  while (!parser.is_done() && !stopped) {
    if (!pending.empty()) {
      beast::error_code ec;
      size_t used = parser.put(boost::asio::buffer(pending.data(), pending.size()), ec);
      pending.erase(0, used);
      if (ec && ec != http::error::need_more) {
        return MakeError(ClientErrc::kProtocol, "malformed HTTP response: " + ec.message());
      }
      if (parser.is_done()) break;
      if (used > 0 && !pending.empty()) continue;
    }
    long n = Receive(buf, sizeof buf);
    if (n <= 0 && !got_bytes) {
      return MakeError(ClientErrc::kProtocol,
                       sent ? "the server closed the connection without answering (idle keep-alive timeout?)"
                            : "the server closed the connection while we were sending");
    }
    if (n <= 0) {
      beast::error_code ec;
      parser.put_eof(ec);
      if (!ec && parser.is_done()) break;
      return MakeError(ClientErrc::kProtocol, "the connection closed before the response was complete");
    }
    pending.append(buf, static_cast<size_t>(n));
    got_bytes = true;
  }
  if (!parser.is_header_done()) return MakeError(ClientErrc::kProtocol, "no response header");
  HttpResponse out = head();
  auto& res = parser.get();
  out.body = std::move(res.body());
  if (!head_sent && on_head) on_head(out);
  // A non-chunked body was not streamed: hand it over whole.
  if (on_body && !out.body.empty() && !res.chunked()) on_body(out.body);
  return out;
}

namespace {

// RequirePinned applies attestation/pinning.h to a verified server unless the
// user opted out (--insecure-accept-unpinned).
Status<ClientErrc> RequirePinned(const attestation::Policy& policy, const channel::VerifiedServer& s) {
  if (policy.insecure_accept_unpinned) return OkStatus();
  Bytes model(s.payload.model_digest.begin(), s.payload.model_digest.end());
  auto pinned = attestation::CheckPinned(policy, attestation::SubjectOf(s.claims, std::move(model)));
  if (!pinned.ok()) {
    return MakeError(ClientErrc::kAttestation,
                     std::string(attestation::AttestErrcName(pinned.code())) + ": " + pinned.detail());
  }
  return OkStatus();
}

}  // namespace

ClientResult<std::unique_ptr<Connection>> Connect(const Url& url, const attestation::Policy& policy,
                                                  const crypto::TlsIdentity* client_identity) {
  if (!url.tls) return MakeError(ClientErrc::kBadUrl, "an attested connection needs https://");
  CLLM_ASSIGN_OR_RETURN(int fd, TcpConnect(url));
  std::unique_ptr<Connection> c(new Connection());
  c->url_ = url;
  c->fd_ = fd;
  auto verdict = std::make_shared<channel::PeerVerdict>();
  std::optional<crypto::TlsIdentity> identity;
  if (client_identity != nullptr) identity = *client_identity;
  auto ctx = crypto::TlsContext::Client(channel::MakePeerVerifier(policy, verdict), identity);
  if (!ctx.ok()) return MakeError(ClientErrc::kTls, ctx.detail());
  // The prompt's length is as secret as its text: requests go out in
  // padded records like the server's answers (docs/security.md).
  if (auto st = (*ctx)->SetRecordPadding(kRequestRecordPadding); !st.ok()) return MakeError(ClientErrc::kTls, st.detail());
  auto session = crypto::TlsSession::Handshake(*ctx, fd, url.host);
  std::lock_guard<std::mutex> lock(verdict->mu);
  if (!session.ok()) {
    if (verdict->error) {
      return MakeError(ClientErrc::kAttestation,
                       std::string(channel::ChannelErrcName(verdict->error->code)) + ": " + verdict->error->detail);
    }
    return MakeError(ClientErrc::kTls, "TLS handshake with " + url.host + " failed: " + session.detail());
  }
  c->session_ = std::move(session).value();
  c->server_ = verdict->server;
  // Genuine is not enough: a TEE whose launch measurement and model the
  // policy leaves open runs unknown code. Refused before any request byte
  // leaves (the connection closes with `c`).
  if (!c->server_) return MakeError(ClientErrc::kAttestation, "the handshake left no verified server");
  CLLM_RETURN_IF_ERROR(RequirePinned(policy, *c->server_));
  if (!c->session_->PeerChain().empty()) {
    auto key = c->session_->PeerChain().front().GetPublicKey();
    if (key.ok()) c->peer_spki_ = key->ToSpkiDer();
  }
  return c;
}

ClientResult<std::unique_ptr<Connection>> ConnectWithVerifier(const Url& url, crypto::PeerVerifier verifier) {
  if (!url.tls) return MakeError(ClientErrc::kBadUrl, "a verified TLS connection needs https://");
  CLLM_ASSIGN_OR_RETURN(int fd, TcpConnect(url));
  std::unique_ptr<Connection> c(new Connection());
  c->url_ = url;
  c->fd_ = fd;
  auto ctx = crypto::TlsContext::Client(std::move(verifier), std::nullopt);
  if (!ctx.ok()) return MakeError(ClientErrc::kTls, ctx.detail());
  if (auto st = (*ctx)->SetRecordPadding(kRequestRecordPadding); !st.ok()) return MakeError(ClientErrc::kTls, st.detail());
  auto session = crypto::TlsSession::Handshake(*ctx, fd, url.host);
  if (!session.ok()) return MakeError(ClientErrc::kTls, "TLS handshake with " + url.host + " failed: " + session.detail());
  c->session_ = std::move(session).value();
  if (!c->session_->PeerChain().empty()) {
    auto key = c->session_->PeerChain().front().GetPublicKey();
    if (key.ok()) c->peer_spki_ = key->ToSpkiDer();
  }
  return c;
}

ClientResult<std::unique_ptr<Connection>> ConnectPinned(const Url& url, const crypto::Certificate& pinned) {
  const Bytes want = pinned.Der();
  return ConnectWithVerifier(url, [want](const std::vector<crypto::Certificate>& chain) -> crypto::CryptoStatus {
    if (chain.empty() || !ConstantTimeEqual(chain.front().Der(), want)) {
      return MakeError(crypto::CryptoErrc::kChainInvalid, "the service's certificate is not the pinned one");
    }
    const auto now = std::chrono::system_clock::now();
    if (now < chain.front().NotBefore()) return MakeError(crypto::CryptoErrc::kNotYetValid, "pinned certificate");
    if (now > chain.front().NotAfter()) return MakeError(crypto::CryptoErrc::kExpired, "pinned certificate expired");
    return OkStatus();
  });
}

ClientResult<std::unique_ptr<Connection>> ConnectPlain(const Url& url) {
  CLLM_ASSIGN_OR_RETURN(int fd, TcpConnect(url));
  std::unique_ptr<Connection> c(new Connection());
  c->url_ = url;
  c->fd_ = fd;
  return c;
}

ClientResult<channel::VerifiedServer> FetchAttestation(Connection& c, const attestation::Policy& policy) {
  if (!c.server()) return MakeError(ClientErrc::kBadUrl, "not an attested connection");
  Bytes nonce = crypto::RandomBytes(32);
  CLLM_ASSIGN_OR_RETURN(HttpResponse r, c.Request("GET", "/.well-known/cllm-attestation?nonce=" + HexEncode(nonce)));
  if (r.status != 200) return MakeError(ClientErrc::kHttp, "attestation endpoint answered " + std::to_string(r.status));
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.contains("payload") || !j["payload"].is_string()) {
    return MakeError(ClientErrc::kProtocol, "attestation endpoint: malformed JSON");
  }
  auto bytes = Base64Decode(j["payload"].get<std::string>());
  if (!bytes.ok()) return MakeError(ClientErrc::kProtocol, "attestation payload: " + bytes.detail());
  auto payload = channel::DecodePayload(*bytes);
  if (!payload.ok()) return MakeError(ClientErrc::kAttestation, std::string("malformed: ") + payload.detail());
  channel::VerifyOptions o;
  o.at = std::chrono::system_clock::now();
  o.expected_freshness = nonce;
  // The key this connection actually negotiated with: the payload must bind it.
  auto v = channel::VerifyPayloadForKey(*payload, c.peer_spki_, policy, o);
  if (!v.ok()) {
    return MakeError(ClientErrc::kAttestation, std::string(channel::ChannelErrcName(v.code())) + ": " + v.detail());
  }
  CLLM_RETURN_IF_ERROR(RequirePinned(policy, *v));
  return std::move(v).value();
}

}  // namespace cllm::client
