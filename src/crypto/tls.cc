#include "crypto/tls.h"

#include <openssl/ssl.h>

#include <csignal>

#include "crypto/ossl.h"

namespace cllm::crypto {

// ---------------------------------------------------------------------------
// Per-handshake state reachable from OpenSSL callbacks
// ---------------------------------------------------------------------------

namespace {

struct HandshakeState {
  const PeerVerifier* verifier = nullptr;
  std::optional<Error<CryptoErrc>> error;  // the verifier's rejection, if any
  std::vector<Certificate> chain;          // what the peer presented, leaf first
};

int StateIndex() {
  static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

Certificate Ref(X509* x) {
  X509_up_ref(x);
  return Certificate(x);
}

}  // namespace

struct TlsCallbacks {
  // Replaces OpenSSL's path validation: RA-TLS peers present self-signed
  // certificates whose trust comes from the attestation evidence inside.
  static int VerifyPeer(X509_STORE_CTX* store_ctx, void*) {
    SSL* ssl = static_cast<SSL*>(
        X509_STORE_CTX_get_ex_data(store_ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
    auto* state = ssl ? static_cast<HandshakeState*>(SSL_get_ex_data(ssl, StateIndex())) : nullptr;
    if (state == nullptr || state->verifier == nullptr || !*state->verifier) {
      X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_APPLICATION_VERIFICATION);
      return 0;  // fail closed: no verifier, no trust
    }
    std::vector<Certificate> chain;
    if (X509* leaf = X509_STORE_CTX_get0_cert(store_ctx)) chain.push_back(Ref(leaf));
    if (STACK_OF(X509)* rest = X509_STORE_CTX_get0_untrusted(store_ctx)) {
      for (int i = 0; i < sk_X509_num(rest); ++i) {
        X509* x = sk_X509_value(rest, i);
        if (chain.empty() || X509_cmp(x, chain[0].get()) != 0) chain.push_back(Ref(x));
      }
    }
    auto verdict = (*state->verifier)(chain);
    if (!verdict.ok()) {
      state->error = std::move(verdict).error();
      X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_APPLICATION_VERIFICATION);
      return 0;
    }
    state->chain = std::move(chain);
    return 1;
  }
};

// ---------------------------------------------------------------------------
// TlsContext
// ---------------------------------------------------------------------------

TlsContext::TlsContext(SSL_CTX* ctx, bool server, PeerVerifier verifier)
    : ctx_(ctx), server_(server), verifier_(std::move(verifier)) {}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

namespace {

CryptoResult<SSL_CTX*> NewContext(bool server) {
  // OpenSSL writes to the socket with write(2): a peer that hangs up would
  // raise SIGPIPE and kill the process. Every TLS user wants EPIPE instead.
  static const bool sigpipe_ignored = [] { return std::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();
  (void)sigpipe_ignored;
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == nullptr) return OpenSslError(CryptoErrc::kInternal, "SSL_CTX_new");
  // TLS 1.3 only: forward secrecy always, no renegotiation, encrypted certificates.
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
    SSL_CTX_free(ctx);
    return OpenSslError(CryptoErrc::kInternal, "TLS 1.3 only");
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);  // no session resumption: every connection verifies
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_cert_verify_callback(ctx, TlsCallbacks::VerifyPeer, nullptr);
  return ctx;
}

}  // namespace

CryptoStatus TlsContext::SetIdentity(TlsIdentity identity) {
  std::lock_guard<std::mutex> lock(identity_mu_);
  if (SSL_CTX_use_certificate(ctx_, identity.cert.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx_, identity.key.get()) != 1 ||
      SSL_CTX_check_private_key(ctx_) != 1) {
    return OpenSslError(CryptoErrc::kInvalidArgument, "certificate and key do not match");
  }
  return OkStatus();
}

CryptoStatus TlsContext::SetRecordPadding(size_t block_size) {
  if (block_size > kMaxRecordPadding) {
    return MakeError(CryptoErrc::kInvalidArgument,
                     "record padding block over " + std::to_string(kMaxRecordPadding) + " bytes");
  }
  // OpenSSL treats 0 and 1 alike: no padding.
  if (SSL_CTX_set_block_padding(ctx_, block_size) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "SSL_CTX_set_block_padding");
  }
  return OkStatus();
}

CryptoResult<std::shared_ptr<TlsContext>> TlsContext::Server(TlsIdentity identity,
                                                             PeerVerifier client_verifier) {
  CLLM_ASSIGN_OR_RETURN(SSL_CTX * raw, NewContext(true));
  bool mutual = static_cast<bool>(client_verifier);
  std::shared_ptr<TlsContext> ctx(new TlsContext(raw, true, std::move(client_verifier)));
  SSL_CTX_set_verify(raw, mutual ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_NONE,
                     nullptr);
  CLLM_RETURN_IF_ERROR(ctx->SetIdentity(std::move(identity)));
  return ctx;
}

CryptoResult<std::shared_ptr<TlsContext>> TlsContext::Client(PeerVerifier server_verifier,
                                                             std::optional<TlsIdentity> identity) {
  if (!server_verifier) {
    return MakeError(CryptoErrc::kInvalidArgument, "a TLS client needs a server verifier");
  }
  CLLM_ASSIGN_OR_RETURN(SSL_CTX * raw, NewContext(false));
  std::shared_ptr<TlsContext> ctx(new TlsContext(raw, false, std::move(server_verifier)));
  SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
  if (identity) CLLM_RETURN_IF_ERROR(ctx->SetIdentity(std::move(*identity)));
  return ctx;
}

// ---------------------------------------------------------------------------
// TlsAttachment
// ---------------------------------------------------------------------------

struct TlsAttachment::State {
  HandshakeState handshake;
};

TlsAttachment::TlsAttachment(std::shared_ptr<TlsContext> ctx, SSL* ssl)
    : ctx_(std::move(ctx)), ssl_(ssl), state_(std::make_unique<State>()) {}

TlsAttachment::~TlsAttachment() = default;

CryptoResult<std::unique_ptr<TlsAttachment>> TlsAttachment::Create(std::shared_ptr<TlsContext> ctx,
                                                                   const std::function<SSL*()>& make_ssl) {
  SSL* ssl = nullptr;
  {
    // SSL_new copies the context's current certificate and key.
    std::lock_guard<std::mutex> lock(ctx->identity_mu_);
    ssl = make_ssl();
  }
  if (ssl == nullptr) return OpenSslError(CryptoErrc::kInternal, "SSL_new");
  std::unique_ptr<TlsAttachment> a(new TlsAttachment(ctx, ssl));
  a->state_->handshake.verifier = &a->ctx_->verifier_;
  if (SSL_set_ex_data(ssl, StateIndex(), &a->state_->handshake) != 1) {
    return OpenSslError(CryptoErrc::kInternal, "SSL_set_ex_data");
  }
  return a;
}

void TlsAttachment::Finish(bool handshake_ok) {
  if (ssl_ == nullptr) return;
  SSL_set_ex_data(ssl_, StateIndex(), nullptr);
  if (handshake_ok) {
    if (X509* own = SSL_get_certificate(ssl_)) {
      unsigned char* der = nullptr;
      int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(own), &der);
      if (len > 0) served_spki_.assign(der, der + len);
      OPENSSL_free(der);
    }
  } else {
    state_->handshake.chain.clear();
  }
  ERR_clear_error();
  ssl_ = nullptr;
}

const std::optional<Error<CryptoErrc>>& TlsAttachment::refusal() const { return state_->handshake.error; }

const std::vector<Certificate>& TlsAttachment::peer_chain() const { return state_->handshake.chain; }

// ---------------------------------------------------------------------------
// TlsSession
// ---------------------------------------------------------------------------

CryptoResult<std::unique_ptr<TlsSession>> TlsSession::Handshake(std::shared_ptr<TlsContext> ctx,
                                                                int fd, const std::string& sni) {
  SSL* ssl = nullptr;
  {
    // SSL_new copies the context's current certificate and key.
    std::lock_guard<std::mutex> lock(ctx->identity_mu_);
    ssl = SSL_new(ctx->ctx_);
  }
  if (ssl == nullptr) return OpenSslError(CryptoErrc::kInternal, "SSL_new");
  std::unique_ptr<TlsSession> session(new TlsSession(ctx, ssl));
  HandshakeState state;
  state.verifier = &ctx->verifier_;
  SSL_set_ex_data(ssl, StateIndex(), &state);
  if (SSL_set_fd(ssl, fd) != 1) return OpenSslError(CryptoErrc::kInternal, "SSL_set_fd");
  if (!ctx->server_ && !sni.empty()) SSL_set_tlsext_host_name(ssl, sni.c_str());

  int rc = ctx->server_ ? SSL_accept(ssl) : SSL_connect(ssl);
  SSL_set_ex_data(ssl, StateIndex(), nullptr);
  if (rc != 1) {
    if (state.error) {
      ERR_clear_error();
      return std::move(*state.error);
    }
    return OpenSslError(CryptoErrc::kTls, "TLS handshake failed");
  }
  session->peer_chain_ = std::move(state.chain);
  return session;
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

CryptoStatus TlsSession::Write(ByteSpan data) {
  size_t done = 0;
  while (done < data.size()) {
    size_t n = 0;
    if (SSL_write_ex(ssl_, data.data() + done, data.size() - done, &n) != 1) {
      return OpenSslError(CryptoErrc::kTls, "TLS write failed");
    }
    done += n;
  }
  return OkStatus();
}

CryptoResult<Bytes> TlsSession::Read(size_t max) {
  Bytes buf(max);
  size_t n = 0;
  if (SSL_read_ex(ssl_, buf.data(), buf.size(), &n) != 1) {
    int err = SSL_get_error(ssl_, 0);
    if (err == SSL_ERROR_ZERO_RETURN) return Bytes{};
    return OpenSslError(CryptoErrc::kTls, "TLS read failed");
  }
  buf.resize(n);
  return buf;
}

void TlsSession::Shutdown() {
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

std::string TlsSession::Protocol() const { return SSL_get_version(ssl_); }
std::string TlsSession::Cipher() const { return SSL_get_cipher_name(ssl_); }

}  // namespace cllm::crypto
