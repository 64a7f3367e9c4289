#include "client/client.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "attestation/pinning.h"
#include "base/encoding.h"
#include "crypto/random.h"

namespace cllm::client {

const char* ClientErrcName(ClientErrc code) {
  switch (code) {
    case ClientErrc::kBadUrl: return "bad_url";
    case ClientErrc::kConnect: return "connect";
    case ClientErrc::kAttestation: return "attestation";
    case ClientErrc::kTls: return "tls";
    case ClientErrc::kProtocol: return "protocol";
    case ClientErrc::kHttp: return "http";
    case ClientErrc::kTimeout: return "timeout";
    case ClientErrc::kUnavailable: return "unavailable";
    case ClientErrc::kIncomplete: return "incomplete";
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

Error<ClientErrc> FromNet(const Error<net::NetErrc>& e) {
  switch (e.code) {
    case net::NetErrc::kInvalidArgument: return MakeError(ClientErrc::kBadUrl, e.detail);
    case net::NetErrc::kListen:
    case net::NetErrc::kConnect: return MakeError(ClientErrc::kConnect, e.detail);
    case net::NetErrc::kTimeout: return MakeError(ClientErrc::kTimeout, e.detail);
    case net::NetErrc::kTls:
    case net::NetErrc::kRefused: return MakeError(ClientErrc::kTls, e.detail);
    case net::NetErrc::kProtocol:
    case net::NetErrc::kTooLarge:
    case net::NetErrc::kClosed: return MakeError(ClientErrc::kProtocol, e.detail);
  }
  return MakeError(ClientErrc::kProtocol, e.detail);
}

Connection::~Connection() = default;

bool Connection::is_open() const { return http_ && http_->is_open(); }

std::string Connection::TlsDescription() const {
  return http_ ? http_->TlsDescription() : "not connected";
}

ClientResult<HttpResponse> Connection::Request(const std::string& method, const std::string& target,
                                               const std::string& body,
                                               const std::map<std::string, std::string>& headers,
                                               const BodyCallback& on_body, const HeadCallback& on_head) {
  net::ClientRequest req{method, target, headers, body};
  net::HeadSink head_sink;
  if (on_head) {
    head_sink = [&](const net::ClientResponse& h) { on_head(HttpResponse{h.status, h.headers, ""}); };
  }
  auto r = http_->Request(req, on_body, head_sink);
  if (!r.ok()) return FromNet(r.error());
  return HttpResponse{r->status, std::move(r->headers), std::move(r->body)};
}

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

namespace {

// Longest Retry-After (seconds) FetchAttestation waits out before giving up.
constexpr int kMaxAttestationRetryAfterS = 5;

// Open connects over TLS with `verifier` (plain TCP when it is null).
net::NetResult<std::unique_ptr<net::Client>> Open(const Url& url, crypto::PeerVerifier verifier,
                                                  const crypto::TlsIdentity* client_identity,
                                                  const net::ClientOptions& options) {
  std::shared_ptr<crypto::TlsContext> ctx;
  if (verifier) {
    std::optional<crypto::TlsIdentity> identity;
    if (client_identity != nullptr) identity = *client_identity;
    auto c = crypto::TlsContext::Client(std::move(verifier), identity);
    if (!c.ok()) return MakeError(net::NetErrc::kTls, c.detail());
    if (auto st = (*c)->SetRecordPadding(kRequestRecordPadding); !st.ok()) {
      return MakeError(net::NetErrc::kTls, st.detail());
    }
    ctx = std::move(c).value();
  }
  return net::Client::Connect(url.host, url.port, std::move(ctx), options);
}

Bytes LeafSpki(const net::Client& http) {
  if (http.PeerChain().empty()) return {};
  auto key = http.PeerChain().front().GetPublicKey();
  return key.ok() ? key->ToSpkiDer() : Bytes();
}

}  // namespace

ClientResult<std::unique_ptr<Connection>> Connect(const Url& url, const attestation::Policy& policy,
                                                  const crypto::TlsIdentity* client_identity,
                                                  const net::ClientOptions& options) {
  if (!url.tls) return MakeError(ClientErrc::kBadUrl, "an attested connection needs https://");
  auto verdict = std::make_shared<channel::PeerVerdict>();
  auto http = Open(url, channel::MakePeerVerifier(policy, verdict), client_identity, options);
  std::lock_guard<std::mutex> lock(verdict->mu);
  if (!http.ok()) {
    if (http.code() == net::NetErrc::kRefused && verdict->error) {
      return MakeError(ClientErrc::kAttestation,
                       std::string(channel::ChannelErrcName(verdict->error->code)) + ": " + verdict->error->detail);
    }
    return FromNet(http.error());
  }
  std::unique_ptr<Connection> c(new Connection());
  c->url_ = url;
  c->http_ = std::move(http).value();
  c->server_ = verdict->server;
  // Genuine is not enough: a TEE whose launch measurement and model the
  // policy leaves open runs unknown code. Refused before any request byte
  // leaves (the connection closes with `c`).
  if (!c->server_) return MakeError(ClientErrc::kAttestation, "the handshake left no verified server");
  CLLM_RETURN_IF_ERROR(RequirePinned(policy, *c->server_));
  c->peer_spki_ = LeafSpki(*c->http_);
  return c;
}

ClientResult<std::unique_ptr<Connection>> ConnectWithVerifier(const Url& url, crypto::PeerVerifier verifier,
                                                              const net::ClientOptions& options) {
  if (!url.tls) return MakeError(ClientErrc::kBadUrl, "a verified TLS connection needs https://");
  if (!verifier) return MakeError(ClientErrc::kTls, "no peer verifier");
  auto http = Open(url, std::move(verifier), nullptr, options);
  if (!http.ok()) {
    if (http.code() == net::NetErrc::kRefused) {
      return MakeError(ClientErrc::kTls, "TLS handshake with " + url.host + " failed: " + http.detail());
    }
    return FromNet(http.error());
  }
  std::unique_ptr<Connection> c(new Connection());
  c->url_ = url;
  c->http_ = std::move(http).value();
  c->peer_spki_ = LeafSpki(*c->http_);
  return c;
}

ClientResult<std::unique_ptr<Connection>> ConnectPinned(const Url& url, const crypto::Certificate& pinned,
                                                        const net::ClientOptions& options) {
  const Bytes want = pinned.Der();
  return ConnectWithVerifier(
      url,
      [want](const std::vector<crypto::Certificate>& chain) -> crypto::CryptoStatus {
        if (chain.empty() || !ConstantTimeEqual(chain.front().Der(), want)) {
          return MakeError(crypto::CryptoErrc::kChainInvalid, "the service's certificate is not the pinned one");
        }
        const auto now = std::chrono::system_clock::now();
        if (now < chain.front().NotBefore()) return MakeError(crypto::CryptoErrc::kNotYetValid, "pinned certificate");
        if (now > chain.front().NotAfter()) return MakeError(crypto::CryptoErrc::kExpired, "pinned certificate expired");
        return OkStatus();
      },
      options);
}

crypto::CryptoStatus VerifyWebServer(const std::vector<crypto::Certificate>& chain,
                                     const std::vector<crypto::Certificate>& roots,
                                     const std::vector<std::string>& hosts) {
  if (chain.empty()) return MakeError(crypto::CryptoErrc::kChainInvalid, "the upstream sent no certificate");
  crypto::ChainOptions o;
  o.at = std::chrono::system_clock::now();
  o.tls_server = true;  // a certificate issued for clients or code signing does not stand for a server
  std::vector<crypto::Certificate> rest(chain.begin() + 1, chain.end());
  CLLM_RETURN_IF_ERROR(crypto::VerifyChain(chain.front(), rest, roots, o));
  for (const auto& h : hosts) {
    if (chain.front().MatchesHost(h)) return OkStatus();
  }
  return MakeError(crypto::CryptoErrc::kChainInvalid,
                   "the upstream's certificate is not for " + (hosts.empty() ? std::string("?") : hosts.front()));
}

ClientResult<std::unique_ptr<Connection>> ConnectPlain(const Url& url, const net::ClientOptions& options) {
  auto http = Open(url, nullptr, nullptr, options);
  if (!http.ok()) return FromNet(http.error());
  std::unique_ptr<Connection> c(new Connection());
  c->url_ = url;
  c->http_ = std::move(http).value();
  return c;
}

ClientResult<channel::VerifiedServer> FetchAttestation(Connection& c, const attestation::Policy& policy) {
  if (!c.server()) return MakeError(ClientErrc::kBadUrl, "not an attested connection");
  Bytes nonce = crypto::RandomBytes(32);
  const std::string target = "/.well-known/cllm-attestation?nonce=" + HexEncode(nonce);
  CLLM_ASSIGN_OR_RETURN(HttpResponse r, c.Request("GET", target));
  // The endpoint is rate-limited (anyone may ask it): a 429 with a short
  // Retry-After is waited out, at most twice and a few seconds each.
  for (int attempt = 0; r.status == 429 && attempt < 2; ++attempt) {
    auto it = r.headers.find("retry-after");
    int wait_s = it == r.headers.end() ? 1 : std::atoi(it->second.c_str());
    if (wait_s < 0 || wait_s > kMaxAttestationRetryAfterS) break;
    std::this_thread::sleep_for(std::chrono::seconds(std::max(wait_s, 1)));
    CLLM_ASSIGN_OR_RETURN(r, c.Request("GET", target));
  }
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
