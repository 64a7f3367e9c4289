// tls.h — TLS 1.3 endpoints (OpenSSL) with a pluggable peer verifier.
//
// RA-TLS replaces PKI path validation with attestation: the peer presents a
// self-signed certificate whose extension carries evidence bound to its key.
// TlsContext therefore takes a PeerVerifier that sees the peer's certificate
// chain and decides; its typed error is kept so the caller can explain a
// failed handshake ("policy not satisfied: model digest …") instead of a
// generic alert. Only TLS 1.3 is offered or accepted.
//
// The transport is the caller's: TlsSession runs over a connected socket fd
// (blocking), which covers tests and tools; net::Stream wraps the same
// SSL_CTX in Boost.Asio and attaches the verifier to each of its SSLs with
// TlsAttachment.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "crypto/keys.h"
#include "crypto/x509.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace cllm::crypto {

// PeerVerifier decides whether the peer's certificate chain (leaf first) is
// acceptable. Returning an error aborts the handshake; the error is kept.
using PeerVerifier = std::function<Status<CryptoErrc>(const std::vector<Certificate>& chain)>;

struct TlsIdentity {
  PrivateKey key;
  Certificate cert;
};

class TlsContext {
 public:
  // Server: presents `identity`; when `client_verifier` is set, requires and
  // verifies a client certificate (mutual mode).
  static CryptoResult<std::shared_ptr<TlsContext>> Server(TlsIdentity identity,
                                                          PeerVerifier client_verifier = nullptr);
  // Client: verifies the server with `server_verifier` (required); presents
  // `identity` when the server asks for one.
  static CryptoResult<std::shared_ptr<TlsContext>> Client(PeerVerifier server_verifier,
                                                          std::optional<TlsIdentity> identity = {});
  ~TlsContext();

  // SetIdentity swaps the certificate and key used for new handshakes
  // (certificate rotation); sessions already established are unaffected.
  CryptoStatus SetIdentity(TlsIdentity identity);
  // SetRecordPadding pads every TLS 1.3 record that sessions made after the
  // call send (RFC 8446 section 5.4) so its plaintext, content type byte
  // included, is a multiple of `block_size` bytes (a full 16 KiB record is
  // not padded); 0 turns padding off. The record length on the wire then
  // says only how many blocks were written, not how many bytes: a streamed
  // token of 1 or 20 characters looks the same. kInvalidArgument above
  // kMaxRecordPadding. Call it before the context serves connections.
  CryptoStatus SetRecordPadding(size_t block_size);
  static constexpr size_t kMaxRecordPadding = 16384;
  SSL_CTX* native_handle() const { return ctx_; }
  bool is_server() const { return server_; }

 private:
  TlsContext(SSL_CTX* ctx, bool server, PeerVerifier verifier);
  friend class TlsSession;
  friend class TlsAttachment;
  friend struct TlsCallbacks;
  SSL_CTX* ctx_;
  bool server_;
  PeerVerifier verifier_;
  std::mutex identity_mu_;
};

// TlsAttachment is one connection's peer verification when the transport
// makes the SSL itself (net::Stream over Boost.Asio). Create runs `make_ssl`
// under the context's identity lock — SSL_new copies the current certificate
// and key, so SetIdentity cannot race it — and attaches the context's
// verifier to the SSL it returns. Finish detaches it after the handshake and
// records what the handshake settled. The SSL is not owned; the attachment
// must stay alive from Create until Finish (or until the SSL is freed).
class TlsAttachment {
 public:
  // Create fails with kInternal when `make_ssl` returns null.
  static CryptoResult<std::unique_ptr<TlsAttachment>> Create(std::shared_ptr<TlsContext> ctx,
                                                            const std::function<SSL*()>& make_ssl);
  ~TlsAttachment();
  TlsAttachment(const TlsAttachment&) = delete;
  TlsAttachment& operator=(const TlsAttachment&) = delete;

  // Finish detaches the verifier from the SSL. `handshake_ok` says whether
  // the handshake succeeded: then the peer chain and served SPKI are kept.
  void Finish(bool handshake_ok);
  // Refusal is the verifier's own error when it refused the peer.
  const std::optional<Error<CryptoErrc>>& refusal() const;
  // PeerChain is what the verifier accepted (leaf first); empty when the
  // peer sent no certificate.
  const std::vector<Certificate>& peer_chain() const;
  // ServedSpki is the SubjectPublicKeyInfo DER of the certificate this SSL
  // presented (SSL_get_certificate), empty when it presented none.
  const Bytes& served_spki() const { return served_spki_; }
  SSL* ssl() const { return ssl_; }

 private:
  struct State;
  TlsAttachment(std::shared_ptr<TlsContext> ctx, SSL* ssl);
  std::shared_ptr<TlsContext> ctx_;
  SSL* ssl_;
  std::unique_ptr<State> state_;
  Bytes served_spki_;
};

class TlsSession {
 public:
  // Handshake runs a blocking TLS 1.3 handshake on connected socket `fd`
  // (not owned). On a verifier rejection the error is the verifier's own;
  // other failures are kChainInvalid / kInternal with OpenSSL's reason.
  static CryptoResult<std::unique_ptr<TlsSession>> Handshake(std::shared_ptr<TlsContext> ctx, int fd,
                                                             const std::string& sni = "");
  ~TlsSession();

  // Write sends all of `data`; Read returns up to `max` bytes, empty at a
  // clean close (close_notify).
  CryptoStatus Write(ByteSpan data);
  CryptoResult<Bytes> Read(size_t max);
  // Shutdown sends close_notify.
  void Shutdown();
  // PeerChain is the chain the peer presented (leaf first).
  const std::vector<Certificate>& PeerChain() const { return peer_chain_; }
  std::string Protocol() const;  // "TLSv1.3"
  std::string Cipher() const;

 private:
  TlsSession(std::shared_ptr<TlsContext> ctx, SSL* ssl) : ctx_(std::move(ctx)), ssl_(ssl) {}
  std::shared_ptr<TlsContext> ctx_;
  SSL* ssl_;
  std::vector<Certificate> peer_chain_;
};

}  // namespace cllm::crypto
