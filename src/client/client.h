// client.h — talking to a cllm server over a verified RA-TLS channel.
//
// Connect opens TCP, runs the TLS 1.3 handshake with the RA-TLS peer
// verifier (channel/ratls.h) and only then returns a Connection: no request
// byte is sent to a server whose evidence, binding or policy failed. The
// typed error says which (ClientErrc::kAttestation carries the ChannelErrc
// name and the explanation). Requests are HTTP/1.1 over net::Client
// (net/client.h): Beast parses the responses, streamed bodies arrive chunk
// by chunk through a callback, and every phase has a deadline
// (net::ClientOptions; a missed one is ClientErrc::kTimeout naming the
// phase). This library never links the engine.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attestation/policy.h"
#include "base/result.h"
#include "channel/ratls.h"
#include "crypto/tls.h"
#include "net/client.h"

namespace cllm::client {

enum class ClientErrc {
  kBadUrl = 1,     // not https://HOST:PORT (or http:// without --insecure-plain)
  kConnect,        // DNS / TCP failure
  kAttestation,    // the server's RA-TLS evidence was refused (detail: channel error name + why)
  kTls,            // TLS failure that is not an attestation verdict
  kProtocol,       // malformed HTTP response, connection closed early
  kHttp,           // the server answered with an error status (detail: its message)
  kTimeout,        // a deadline passed: connect, handshake, sending, response head, between chunks
  kUnavailable,    // 503: the replica is draining or not ready (retried elsewhere; see replicas.h)
  kIncomplete,     // the connection failed after response bytes were delivered: the answer is cut off
};
const char* ClientErrcName(ClientErrc code);

template <typename T>
using ClientResult = Result<T, ClientErrc>;

struct Url {
  bool tls = true;
  std::string host;
  uint16_t port = 443;
  std::string path;  // "" or "/…"
};
[[nodiscard]] ClientResult<Url> ParseUrl(std::string_view url);

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;                            // empty when streamed to a callback
};

// BodyCallback receives body bytes as they arrive; return false to stop.
using BodyCallback = std::function<bool(std::string_view)>;
// HeadCallback receives status and headers (body empty) before the first
// streamed body bytes (a proxy starts its own response with them).
using HeadCallback = std::function<void(const HttpResponse&)>;

class Connection {
 public:
  ~Connection();
  // Request sends one request and reads its response. With `on_body`, the
  // body is delivered incrementally and not kept in the response.
  [[nodiscard]] ClientResult<HttpResponse> Request(const std::string& method, const std::string& target,
                                                   const std::string& body = "",
                                                   const std::map<std::string, std::string>& headers = {},
                                                   const BodyCallback& on_body = nullptr,
                                                   const HeadCallback& on_head = nullptr);
  // server is what verification established (nullopt on plain connections).
  const std::optional<channel::VerifiedServer>& server() const { return server_; }
  const Url& url() const { return url_; }
  bool is_open() const;  // false once closed by an error, the server, or a response without keep-alive
  std::string TlsDescription() const;  // "TLSv1.3 TLS_AES_256_GCM_SHA384"

 private:
  friend ClientResult<std::unique_ptr<Connection>> Connect(const Url&, const attestation::Policy&,
                                                           const crypto::TlsIdentity*, const net::ClientOptions&);
  friend ClientResult<std::unique_ptr<Connection>> ConnectPlain(const Url&, const net::ClientOptions&);
  friend ClientResult<std::unique_ptr<Connection>> ConnectWithVerifier(const Url&, crypto::PeerVerifier,
                                                                       const net::ClientOptions&);
  friend ClientResult<channel::VerifiedServer> FetchAttestation(Connection&, const attestation::Policy&);
  Connection() = default;

  Url url_;
  std::unique_ptr<net::Client> http_;
  std::optional<channel::VerifiedServer> server_;
  Bytes peer_spki_;  // SPKI DER of the certificate the server presented
};

// FromNet maps a transport error to the client's codes (kRefused becomes
// kTls here; Connect turns an RA-TLS refusal into kAttestation itself).
Error<ClientErrc> FromNet(const Error<net::NetErrc>& e);

// Connect verifies the server against `policy` during the handshake, then
// refuses (kAttestation, "not_pinned: …") a genuine server whose launch
// measurement or model digest the policy does not pin (attestation/pinning.h)
// unless policy.insecure_accept_unpinned; no request byte is sent. With
// `client_identity` (an RA-TLS identity from the client's own TEE, see
// channel::RaTlsIssuer) the client presents evidence too, for servers in
// mutual mode (`cllm-server --client-policy`).
// `options` sets the deadlines of the connection and of its requests.
[[nodiscard]] ClientResult<std::unique_ptr<Connection>> Connect(const Url& url, const attestation::Policy& policy,
                                                                const crypto::TlsIdentity* client_identity = nullptr,
                                                                const net::ClientOptions& options = {});
// ConnectPinned opens TLS 1.3 to a service with an ordinary certificate
// (cllm-trust), accepting exactly the `pinned` certificate (within its
// validity) and nothing else: no system CA store, no hostname matching.
[[nodiscard]] ClientResult<std::unique_ptr<Connection>> ConnectPinned(const Url& url,
                                                                      const crypto::Certificate& pinned,
                                                                      const net::ClientOptions& options = {});
// ConnectWithVerifier opens TLS 1.3 with a caller's peer verifier (e.g.
// trust/token_verifier.h); a refusal is kTls carrying the verifier's detail.
[[nodiscard]] ClientResult<std::unique_ptr<Connection>> ConnectWithVerifier(const Url& url,
                                                                            crypto::PeerVerifier verifier,
                                                                            const net::ClientOptions& options = {});
// VerifyWebServer checks a peer as an ordinary web server — what an e2e
// client asks of the L7 gateway in front of the replicas: a chain to one of
// `roots`, valid now, whose leaf is for one of `hosts`.
[[nodiscard]] crypto::CryptoStatus VerifyWebServer(const std::vector<crypto::Certificate>& chain,
                                                   const std::vector<crypto::Certificate>& roots,
                                                   const std::vector<std::string>& hosts);
// ConnectPlain is for the server's unattested debug listener (http://).
[[nodiscard]] ClientResult<std::unique_ptr<Connection>> ConnectPlain(const Url& url,
                                                                     const net::ClientOptions& options = {});

// RequirePinned applies attestation/pinning.h to a verified server: OK when
// the policy pins its launch measurement and model (or the user opted out
// with --insecure-accept-unpinned), else kAttestation "not_pinned: …".
[[nodiscard]] Status<ClientErrc> RequirePinned(const attestation::Policy& policy, const channel::VerifiedServer& s);

// Requests leave in TLS 1.3 records padded to multiples of this many bytes
// (RFC 8446 section 5.4), as cllm-server pads its answers by default: a
// prompt's length is as secret as its text (docs/security.md).
inline constexpr size_t kRequestRecordPadding = 512;

// FetchAttestation asks /.well-known/cllm-attestation with a fresh nonce and
// verifies the answer against the key of this very connection (pinning
// required as in Connect). The endpoint is rate-limited: a 429 whose
// Retry-After is at most 5 s is waited out, twice at most.
[[nodiscard]] ClientResult<channel::VerifiedServer> FetchAttestation(Connection& c, const attestation::Policy& policy);

}  // namespace cllm::client
