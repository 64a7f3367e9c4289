// net::Stream over loopback: both roles, TLS and plain, the verifier's
// verdict, and what each handshake settled (served SPKI, peer chain).
#include "net/stream.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>

#include <future>
#include <thread>

#include "crypto/cert_builder.h"
#include "net/server_test_util.h"

namespace cllm::net {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

using testing::MakeIdentity;

// Accepts a peer whose leaf has common name `cn`.
crypto::PeerVerifier ExpectName(std::string cn) {
  return [cn](const std::vector<crypto::Certificate>& chain) -> crypto::CryptoStatus {
    if (chain.empty()) return MakeError(crypto::CryptoErrc::kChainInvalid, "no certificate");
    if (chain[0].SubjectCommonName() != cn) return MakeError(crypto::CryptoErrc::kBadSignature, "policy not satisfied: wrong name");
    return OkStatus();
  };
}

// Loopback runs a server stream and a client stream on one io_context.
struct Loopback {
  asio::io_context io;
  tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 0}};
  tcp::socket server_socket{io};
  tcp::socket client_socket{io};
  Loopback() {
    client_socket.connect(acceptor.local_endpoint());
    acceptor.accept(server_socket);
  }
};

struct HandshakeResults {
  std::optional<NetStatus> server, client;
};

HandshakeResults RunHandshake(asio::io_context& io, Stream& server, Stream& client) {
  HandshakeResults r;
  server.AsyncHandshake(Role::kServer, 5s, "", [&](NetStatus s) { r.server = std::move(s); });
  client.AsyncHandshake(Role::kClient, 5s, "server.example", [&](NetStatus s) { r.client = std::move(s); });
  io.run();
  io.restart();
  return r;
}

// Echo sends `text` from `from` and reads it at `to`.
std::string Echo(asio::io_context& io, Stream& from, Stream& to, const std::string& text) {
  std::string got(text.size(), '\0');
  asio::async_write(from, asio::buffer(text), [](boost::system::error_code ec, size_t) { EXPECT_FALSE(ec); });
  asio::async_read(to, asio::buffer(got), [](boost::system::error_code ec, size_t) { EXPECT_FALSE(ec); });
  io.run();
  io.restart();
  return got;
}

TEST(StreamTest, PlainStreamCarriesBytesBothWays) {
  Loopback l;
  auto server = Stream::Plain(std::move(l.server_socket));
  auto client = Stream::Plain(std::move(l.client_socket));
  auto r = RunHandshake(l.io, *server, *client);
  ASSERT_TRUE(r.server && r.server->ok());
  ASSERT_TRUE(r.client && r.client->ok());
  EXPECT_FALSE(server->is_tls());
  EXPECT_EQ(Echo(l.io, *client, *server, "ping"), "ping");
  EXPECT_EQ(Echo(l.io, *server, *client, "pong"), "pong");
  EXPECT_TRUE(server->served_spki().empty());
}

TEST(StreamTest, TlsHandshakeBothRolesAndServedSpki) {
  auto identity = MakeIdentity("server");
  const Bytes spki = identity.cert.GetPublicKey().value().ToSpkiDer();
  auto server_tls = TlsStreamContext::Make(crypto::TlsContext::Server(identity).value()).value();
  auto client_tls = TlsStreamContext::Make(crypto::TlsContext::Client(ExpectName("server")).value()).value();
  Loopback l;
  auto server = Stream::Tls(std::move(l.server_socket), server_tls).value();
  auto client = Stream::Tls(std::move(l.client_socket), client_tls).value();
  auto r = RunHandshake(l.io, *server, *client);
  ASSERT_TRUE(r.server && r.server->ok()) << r.server->detail();
  ASSERT_TRUE(r.client && r.client->ok()) << r.client->detail();
  EXPECT_EQ(server->served_spki(), spki);
  ASSERT_EQ(client->peer_chain().size(), 1u);
  EXPECT_EQ(client->peer_chain()[0].Der(), identity.cert.Der());
  EXPECT_TRUE(server->peer_chain().empty()) << "not mutual: the client sent no certificate";
  EXPECT_EQ(Echo(l.io, *client, *server, "over tls"), "over tls");
  EXPECT_EQ(Echo(l.io, *server, *client, "and back"), "and back");
}

TEST(StreamTest, ServedSpkiIsThisHandshakesCertificateAfterRotation) {
  auto first = MakeIdentity("server");
  auto second = MakeIdentity("server");
  auto server_ctx = crypto::TlsContext::Server(first).value();
  auto server_tls = TlsStreamContext::Make(server_ctx).value();
  auto client_tls = TlsStreamContext::Make(crypto::TlsContext::Client(ExpectName("server")).value()).value();
  Loopback l;
  // The SSL is made with the first identity; rotation before the handshake
  // does not change this stream.
  auto server = Stream::Tls(std::move(l.server_socket), server_tls).value();
  auto client = Stream::Tls(std::move(l.client_socket), client_tls).value();
  ASSERT_TRUE(server_ctx->SetIdentity(second).ok());
  auto r = RunHandshake(l.io, *server, *client);
  ASSERT_TRUE(r.server->ok() && r.client->ok());
  EXPECT_EQ(server->served_spki(), first.cert.GetPublicKey().value().ToSpkiDer());
  EXPECT_EQ(client->peer_chain()[0].Der(), first.cert.Der());

  Loopback l2;
  auto server2 = Stream::Tls(std::move(l2.server_socket), server_tls).value();
  auto client2 = Stream::Tls(std::move(l2.client_socket), client_tls).value();
  r = RunHandshake(l2.io, *server2, *client2);
  ASSERT_TRUE(r.server->ok() && r.client->ok());
  EXPECT_EQ(server2->served_spki(), second.cert.GetPublicKey().value().ToSpkiDer());
}

TEST(StreamTest, VerifierRefusalIsATypedErrorWithItsReason) {
  auto server_tls = TlsStreamContext::Make(crypto::TlsContext::Server(MakeIdentity("impostor")).value()).value();
  auto client_tls = TlsStreamContext::Make(crypto::TlsContext::Client(ExpectName("server")).value()).value();
  Loopback l;
  auto server = Stream::Tls(std::move(l.server_socket), server_tls).value();
  auto client = Stream::Tls(std::move(l.client_socket), client_tls).value();
  auto r = RunHandshake(l.io, *server, *client);
  ASSERT_TRUE(r.client.has_value());
  ASSERT_FALSE(r.client->ok());
  EXPECT_EQ(r.client->code(), NetErrc::kRefused);
  EXPECT_NE(r.client->detail().find("policy not satisfied: wrong name"), std::string::npos) << r.client->detail();
  ASSERT_TRUE(client->refusal().has_value());
  EXPECT_EQ(client->refusal()->code, crypto::CryptoErrc::kBadSignature);
  ASSERT_TRUE(r.server.has_value());
  EXPECT_FALSE(r.server->ok());
  EXPECT_NE(r.server->code(), NetErrc::kRefused) << "the server refused nobody: " << r.server->detail();
}

TEST(StreamTest, MutualTlsGivesTheServerTheClientChain) {
  auto client_id = MakeIdentity("client");
  auto server_tls =
      TlsStreamContext::Make(crypto::TlsContext::Server(MakeIdentity("server"), ExpectName("client")).value()).value();
  auto client_tls =
      TlsStreamContext::Make(crypto::TlsContext::Client(ExpectName("server"), client_id).value()).value();
  Loopback l;
  auto server = Stream::Tls(std::move(l.server_socket), server_tls).value();
  auto client = Stream::Tls(std::move(l.client_socket), client_tls).value();
  auto r = RunHandshake(l.io, *server, *client);
  ASSERT_TRUE(r.server->ok()) << r.server->detail();
  ASSERT_TRUE(r.client->ok()) << r.client->detail();
  ASSERT_EQ(server->peer_chain().size(), 1u);
  EXPECT_EQ(server->peer_chain()[0].Der(), client_id.cert.Der());
  EXPECT_EQ(client->served_spki(), client_id.cert.GetPublicKey().value().ToSpkiDer());
}

TEST(StreamTest, SilentPeerTimesOutTheHandshake) {
  auto server_tls = TlsStreamContext::Make(crypto::TlsContext::Server(MakeIdentity("server")).value()).value();
  Loopback l;
  auto server = Stream::Tls(std::move(l.server_socket), server_tls).value();
  std::optional<NetStatus> result;
  server->AsyncHandshake(Role::kServer, 200ms, "", [&](NetStatus s) { result = std::move(s); });
  l.io.run();
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->code(), NetErrc::kTimeout) << result->detail();
}

TEST(StreamTest, ShutdownClosesAndThePeerSeesTheEnd) {
  auto server_tls = TlsStreamContext::Make(crypto::TlsContext::Server(MakeIdentity("server")).value()).value();
  auto client_tls = TlsStreamContext::Make(crypto::TlsContext::Client(ExpectName("server")).value()).value();
  Loopback l;
  auto server = Stream::Tls(std::move(l.server_socket), server_tls).value();
  auto client = Stream::Tls(std::move(l.client_socket), client_tls).value();
  auto r = RunHandshake(l.io, *server, *client);
  ASSERT_TRUE(r.server->ok() && r.client->ok());
  bool closed = false;
  boost::system::error_code read_error;
  char byte;
  client->async_read_some(asio::buffer(&byte, 1), [&](boost::system::error_code ec, size_t) { read_error = ec; });
  server->AsyncShutdown(1s, [&] { closed = true; });
  l.io.run();
  EXPECT_TRUE(closed);
  EXPECT_TRUE(read_error) << "the client's read ends when the server closes";
}

}  // namespace
}  // namespace cllm::net
