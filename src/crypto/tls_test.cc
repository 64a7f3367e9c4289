#include "crypto/tls.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "crypto/cert_builder.h"

namespace cllm::crypto {
namespace {

using namespace std::chrono_literals;

TlsIdentity MakeIdentity(const std::string& cn, Bytes ext_value) {
  auto key = PrivateKey::Generate(KeyType::kEcP256).value();
  auto now = std::chrono::system_clock::now();
  CertSpec spec{.common_name = cn, .not_before = now - 1min, .not_after = now + 10min, .serial = {},
                .is_ca = false, .dns_names = {}, .extensions = {{"1.3.6.1.4.1.99999.1", false, ext_value}}};
  auto cert = IssueCertificate(spec, key.public_key(), key, nullptr).value();
  return TlsIdentity{key, cert};
}

// A verifier that accepts a peer whose extension holds `expected`.
PeerVerifier ExpectExtension(Bytes expected) {
  return [expected](const std::vector<Certificate>& chain) -> CryptoStatus {
    if (chain.empty()) return MakeError(CryptoErrc::kChainInvalid, "no certificate");
    if (chain[0].Extension("1.3.6.1.4.1.99999.1") != expected) {
      return MakeError(CryptoErrc::kBadSignature, "evidence does not match");
    }
    return OkStatus();
  };
}

struct Pair {
  int fds[2];
  Pair() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0); }
  ~Pair() {
    close(fds[0]);
    close(fds[1]);
  }
};

TEST(TlsTest, HandshakeWithVerifierAndEcho) {
  auto server_ctx = TlsContext::Server(MakeIdentity("server", {0x04, 0x01, 0x07})).value();
  auto client_ctx = TlsContext::Client(ExpectExtension({0x04, 0x01, 0x07})).value();
  Pair p;
  auto server = std::async(std::launch::async, [&] {
    auto s = TlsSession::Handshake(server_ctx, p.fds[0]);
    if (!s.ok()) return std::string("handshake: ") + s.detail();
    auto msg = (*s)->Read(100);
    if (!msg.ok()) return std::string("read failed");
    (void)(*s)->Write(*msg);
    (*s)->Shutdown();
    return std::string(msg->begin(), msg->end());
  });
  auto c = TlsSession::Handshake(client_ctx, p.fds[1], "localhost");
  ASSERT_TRUE(c.ok()) << c.detail();
  EXPECT_EQ((*c)->Protocol(), "TLSv1.3");
  ASSERT_EQ((*c)->PeerChain().size(), 1u);
  EXPECT_EQ((*c)->PeerChain()[0].SubjectCommonName(), "server");
  ASSERT_TRUE((*c)->Write(AsBytes("ping")).ok());
  auto echo = (*c)->Read(100);
  ASSERT_TRUE(echo.ok());
  EXPECT_EQ(AsChars(*echo), "ping");
  EXPECT_EQ(server.get(), "ping");
}

TEST(TlsTest, VerifierRejectionIsReportedWithItsOwnError) {
  auto server_ctx = TlsContext::Server(MakeIdentity("server", {0x04, 0x01, 0x07})).value();
  auto client_ctx = TlsContext::Client(ExpectExtension({0x04, 0x01, 0x08})).value();
  Pair p;
  auto server = std::async(std::launch::async,
                           [&] { return TlsSession::Handshake(server_ctx, p.fds[0]).ok(); });
  auto c = TlsSession::Handshake(client_ctx, p.fds[1]);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.code(), CryptoErrc::kBadSignature);
  EXPECT_EQ(c.detail(), "evidence does not match");
  shutdown(p.fds[1], SHUT_RDWR);
  EXPECT_FALSE(server.get());
}

TEST(TlsTest, MutualModeRequiresClientCertificate) {
  auto server_ctx =
      TlsContext::Server(MakeIdentity("server", {1}), ExpectExtension({2})).value();
  {
    auto anon = TlsContext::Client(ExpectExtension({1})).value();
    Pair p;
    auto server = std::async(std::launch::async, [&] { return TlsSession::Handshake(server_ctx, p.fds[0]); });
    auto c = TlsSession::Handshake(anon, p.fds[1]);
    // In TLS 1.3 the client may finish before the server rejects; the server must refuse.
    auto s = server.get();
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), CryptoErrc::kTls);
  }
  {
    auto authed = TlsContext::Client(ExpectExtension({1}), MakeIdentity("client", {2})).value();
    Pair p;
    auto server = std::async(std::launch::async, [&] { return TlsSession::Handshake(server_ctx, p.fds[0]); });
    auto c = TlsSession::Handshake(authed, p.fds[1]);
    ASSERT_TRUE(c.ok()) << c.detail();
    auto s = server.get();
    ASSERT_TRUE(s.ok()) << s.detail();
    ASSERT_EQ((*s)->PeerChain().size(), 1u);
    EXPECT_EQ((*s)->PeerChain()[0].SubjectCommonName(), "client");
  }
}

TEST(TlsTest, IdentityRotationAppliesToNewHandshakes) {
  auto server_ctx = TlsContext::Server(MakeIdentity("old", {1})).value();
  ASSERT_TRUE(server_ctx->SetIdentity(MakeIdentity("new", {3})).ok());
  auto client_ctx = TlsContext::Client(ExpectExtension({3})).value();
  Pair p;
  auto server = std::async(std::launch::async, [&] { return TlsSession::Handshake(server_ctx, p.fds[0]).ok(); });
  auto c = TlsSession::Handshake(client_ctx, p.fds[1]);
  ASSERT_TRUE(c.ok()) << c.detail();
  EXPECT_EQ((*c)->PeerChain()[0].SubjectCommonName(), "new");
  EXPECT_TRUE(server.get());
  // A key that does not match the certificate is refused.
  auto a = MakeIdentity("a", {1}), b = MakeIdentity("b", {1});
  EXPECT_EQ(server_ctx->SetIdentity(TlsIdentity{a.key, b.cert}).code(), CryptoErrc::kInvalidArgument);
}

TEST(TlsTest, ClientWithoutVerifierIsRefused) {
  EXPECT_EQ(TlsContext::Client(nullptr).code(), CryptoErrc::kInvalidArgument);
}

}  // namespace
}  // namespace cllm::crypto
