// ServerChannel on the simulated TEE with a fake clock: when it rotates,
// what new and established TLS sessions see, how a failed cllm-trust renewal
// is retried, and which keys the well-known evidence may bind. Time only
// moves when a test moves it; handshakes are real TLS 1.3 over socketpairs.
#include "channel/server_channel.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>

#include "attestation/sim/sim_attester.h"
#include "crypto/digest.h"

namespace cllm::channel {
namespace {

using namespace std::chrono_literals;
using attestation::Platform;

struct FakeClock {
  crypto::TimePoint wall = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  std::chrono::steady_clock::time_point monotonic{std::chrono::hours(1)};
  void Advance(std::chrono::seconds d) {
    wall += d;
    monotonic += d;
  }
  ChannelClock Clock() {
    return ChannelClock{[this] { return wall; }, [this] { return monotonic; }};
  }
};

// A client TLS session to the channel's listener context, with the server
// end kept open like an established keep-alive connection.
struct Connection {
  int fds[2] = {-1, -1};
  std::unique_ptr<crypto::TlsSession> client;
  std::unique_ptr<crypto::TlsSession> server;
  ~Connection() {
    client.reset();
    server.reset();
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  // ServedSpki is the SPKI of the certificate this connection's handshake
  // presented (what the client saw).
  Bytes ServedSpki() const { return client->PeerChain().front().GetPublicKey()->ToSpkiDer(); }
};

// FakeTrust stands in for cllm-trust: each call makes a fresh node key and
// a token valid for `token_life`, unless told to fail.
struct FakeTrust {
  explicit FakeTrust(FakeClock* c) : clock(c) {}
  FakeClock* clock;
  std::chrono::seconds token_life{300};
  bool fail = false;
  int calls = 0;
  std::optional<AttestedKey> last;
  ReattestFn Fn() {
    return [this]() -> ChannelResult<AttestedKey> {
      ++calls;
      if (fail) return MakeError(ChannelErrc::kAttesterFailed, "cllm-trust unreachable");
      AttestedKey k{crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value(),
                    "token-" + std::to_string(calls), clock->wall + token_life};
      last = k;
      return k;
    };
  }
};

class ServerChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    platform_key_ = attestation::sim::GenerateSimPlatformKey().value();
    auto attester = std::make_shared<attestation::sim::SimAttester>(
        attestation::sim::SimAttester::Create(*platform_key_).value());
    ServerClaims claims;
    claims.binary_digest.fill(0xB1);
    claims.model_digest.fill(0xD1);
    claims.model_name = "stories260K";
    IssuerOptions io;
    io.validity = 600s;
    issuer_ = std::make_shared<RaTlsIssuer>(attester, claims, io);
    policy_ = attestation::Policy::Default();
    policy_.platforms = {Platform::kSim};
    policy_.sim_platform_keys = {platform_key_->public_key()};
  }

  std::unique_ptr<ServerChannel> Make(ReattestFn reattest = nullptr, ServerChannelOptions o = {}) {
    auto ch = ServerChannel::Create(issuer_, std::move(o), clock_.Clock(), std::move(reattest));
    EXPECT_TRUE(ch.ok()) << ch.detail();
    return ch.ok() ? std::move(ch).value() : nullptr;
  }

  // Connect runs a real TLS 1.3 handshake against the channel's context,
  // the client verifying the RA-TLS certificate at the fake wall time.
  std::unique_ptr<Connection> Connect(ServerChannel& ch) {
    auto c = std::make_unique<Connection>();
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, c->fds), 0);
    auto verdict = std::make_shared<PeerVerdict>();
    auto client_ctx = crypto::TlsContext::Client(MakePeerVerifier(policy_, verdict, [this] { return clock_.wall; }));
    EXPECT_TRUE(client_ctx.ok());
    auto server = std::async(std::launch::async, [&] { return crypto::TlsSession::Handshake(ch.tls(), c->fds[0]); });
    auto client = crypto::TlsSession::Handshake(*client_ctx, c->fds[1], "localhost");
    auto s = server.get();
    EXPECT_TRUE(client.ok()) << client.detail();
    EXPECT_TRUE(s.ok()) << s.detail();
    if (!client.ok() || !s.ok()) return nullptr;
    c->client = std::move(client).value();
    c->server = std::move(s).value();
    return c;
  }

  // FetchEvidence is what a client of the well-known endpoint checks: the
  // payload for `served_spki` with our nonce, verified against the SPKI the
  // client's own connection negotiated.
  ChannelResult<VerifiedServer> FetchEvidence(ServerChannel& ch, const Bytes& served_spki,
                                              const Bytes& client_seen_spki) {
    const Bytes nonce(16, 0x4E);
    CLLM_ASSIGN_OR_RETURN(AttestationPayload p, ch.PayloadFor(served_spki, nonce));
    VerifyOptions o;
    o.at = clock_.wall;
    o.expected_freshness = nonce;
    return VerifyPayloadForKey(p, client_seen_spki, policy_, o);
  }

  static std::optional<std::string> TokenIn(const crypto::Certificate& cert) {
    auto ext = cert.Extension(kAttestationExtensionOid);
    if (!ext) return std::nullopt;
    auto p = DecodePayload(*ext);
    if (!p.ok()) return std::nullopt;
    return p->token;
  }

  FakeClock clock_;
  std::optional<crypto::PrivateKey> platform_key_;
  std::shared_ptr<RaTlsIssuer> issuer_;
  attestation::Policy policy_;
};

TEST_F(ServerChannelTest, DoesNotRotateBeforeHalfLife) {
  auto ch = Make();
  ASSERT_NE(ch, nullptr);
  const ServedIdentity first = ch->Current();
  EXPECT_EQ(first.generation, 1u);
  EXPECT_FALSE(first.has_token);
  EXPECT_EQ(first.cert.NotAfter(), clock_.wall + 600s);
  EXPECT_EQ(ch->NextRotation(), clock_.monotonic + 300s);

  clock_.Advance(299s);
  auto r = ch->RotateIfDue();
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_FALSE(*r);
  EXPECT_EQ(ch->Current().generation, 1u);
  EXPECT_EQ(ch->Current().spki_der, first.spki_der);
}

TEST_F(ServerChannelTest, RotatesAtHalfLifeAndNewHandshakesGetTheNewKey) {
  auto ch = Make();
  ASSERT_NE(ch, nullptr);
  auto before = Connect(*ch);
  ASSERT_NE(before, nullptr);
  const Bytes old_spki = ch->Current().spki_der;
  EXPECT_EQ(before->ServedSpki(), old_spki);

  clock_.Advance(300s);
  auto r = ch->RotateIfDue();
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_TRUE(*r);
  const ServedIdentity now = ch->Current();
  EXPECT_EQ(now.generation, 2u);
  EXPECT_NE(now.spki_der, old_spki);
  EXPECT_EQ(now.cert.NotAfter(), clock_.wall + 600s);  // dated by the (fake) wall clock
  EXPECT_EQ(ch->NextRotation(), clock_.monotonic + 300s);

  auto after = Connect(*ch);
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(after->ServedSpki(), now.spki_der);

  // The established session is unaffected: it still carries data.
  ASSERT_TRUE(before->client->Write(AsBytes("ping")).ok());
  auto got = before->server->Read(16);
  ASSERT_TRUE(got.ok()) << got.detail();
  EXPECT_EQ(std::string(got->begin(), got->end()), "ping");

  // Each connection gets evidence for its own key, which its client accepts.
  auto old_ev = FetchEvidence(*ch, before->ServedSpki(), before->ServedSpki());
  EXPECT_TRUE(old_ev.ok()) << old_ev.detail();
  auto new_ev = FetchEvidence(*ch, after->ServedSpki(), after->ServedSpki());
  EXPECT_TRUE(new_ev.ok()) << new_ev.detail();
  // Evidence for the newest key is what the old connection must NOT get:
  // its client sees a different key and refuses it.
  auto wrong = FetchEvidence(*ch, after->ServedSpki(), before->ServedSpki());
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.code(), ChannelErrc::kCertEvidenceMismatch);
}

TEST_F(ServerChannelTest, EvidenceOnlyForKeysItServed) {
  auto ch = Make();
  ASSERT_NE(ch, nullptr);
  auto stranger = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value().public_key().ToSpkiDer();
  auto p = ch->PayloadFor(stranger, Bytes(16, 1));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.code(), ChannelErrc::kCertEvidenceMismatch) << p.detail();
  EXPECT_TRUE(ch->PayloadFor(ch->Current().spki_der, Bytes(16, 1)).ok());
}

TEST_F(ServerChannelTest, TokenExpiryBoundsTheCertificate) {
  FakeTrust trust{&clock_};
  trust.token_life = 120s;  // shorter than the 600 s certificate lifetime
  auto ch = Make(trust.Fn());
  ASSERT_NE(ch, nullptr);
  EXPECT_EQ(trust.calls, 1);
  const ServedIdentity id = ch->Current();
  EXPECT_TRUE(id.has_token);
  EXPECT_EQ(id.cert.NotAfter(), clock_.wall + 120s);
  EXPECT_EQ(TokenIn(id.cert), "token-1");
  EXPECT_EQ(id.spki_der, trust.last->key.public_key().ToSpkiDer());  // the token's cnf key is the TLS key
  EXPECT_EQ(ch->NextRotation(), clock_.monotonic + 60s);

  // An already-expired token never becomes a certificate.
  trust.token_life = 0s;
  auto refused = ServerChannel::Create(issuer_, {}, clock_.Clock(), trust.Fn());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), ChannelErrc::kStale) << refused.detail();
}

TEST_F(ServerChannelTest, FailedTokenRenewalKeepsIdentityAndRetries) {
  FakeTrust trust{&clock_};
  int refreshed = 0;
  ServerChannelOptions o;
  o.on_renewal = [&] { ++refreshed; };
  auto ch = Make(trust.Fn(), o);
  ASSERT_NE(ch, nullptr);
  EXPECT_EQ(refreshed, 0);  // the app fetched the JWKS at start
  const ServedIdentity first = ch->Current();

  clock_.Advance(150s);  // half of the token's 300 s
  trust.fail = true;
  auto r = ch->RotateIfDue();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ChannelErrc::kAttesterFailed);
  EXPECT_EQ(r.detail().rfind("token renewal: ", 0), 0u) << r.detail();
  EXPECT_EQ(refreshed, 0);
  EXPECT_EQ(ch->Current().generation, 1u);
  EXPECT_EQ(ch->Current().spki_der, first.spki_der);
  auto still = Connect(*ch);  // handshakes keep working on the current identity
  ASSERT_NE(still, nullptr);
  EXPECT_EQ(still->ServedSpki(), first.spki_der);
  EXPECT_EQ(ch->NextRotation(), clock_.monotonic + 10s);

  clock_.Advance(9s);
  auto early = ch->RotateIfDue();
  ASSERT_TRUE(early.ok()) << early.detail();
  EXPECT_FALSE(*early);
  EXPECT_EQ(trust.calls, 2);  // no attempt before the retry interval

  clock_.Advance(1s);
  trust.fail = false;
  auto ok = ch->RotateIfDue();
  ASSERT_TRUE(ok.ok()) << ok.detail();
  EXPECT_TRUE(*ok);
  EXPECT_EQ(trust.calls, 3);
  EXPECT_EQ(refreshed, 1);  // the JWKS hook runs with each successful renewal
  const ServedIdentity renewed = ch->Current();
  EXPECT_EQ(renewed.generation, 2u);
  EXPECT_EQ(renewed.spki_der, trust.last->key.public_key().ToSpkiDer());
  EXPECT_EQ(TokenIn(renewed.cert), "token-3");
  EXPECT_EQ(renewed.cert.NotAfter(), clock_.wall + 300s);
}

TEST_F(ServerChannelTest, BootKeyIsServedFirst) {
  FakeTrust trust{&clock_};
  auto boot = trust.Fn()();
  ASSERT_TRUE(boot.ok());
  const Bytes boot_spki = boot->key.public_key().ToSpkiDer();
  auto ch = ServerChannel::Create(issuer_, {}, clock_.Clock(), trust.Fn(), std::move(boot).value());
  ASSERT_TRUE(ch.ok()) << ch.detail();
  EXPECT_EQ(trust.calls, 1);  // not re-attested at creation
  EXPECT_EQ((*ch)->Current().spki_der, boot_spki);
  EXPECT_EQ(TokenIn((*ch)->Current().cert), "token-1");
}

TEST_F(ServerChannelTest, MutualModeRefusesClientsWithoutEvidence) {
  ServerChannelOptions o;
  int asked = 0;
  o.client_verifier = [&](const std::vector<crypto::Certificate>&) -> crypto::CryptoStatus {
    ++asked;
    return OkStatus();
  };
  auto ch = Make(nullptr, o);
  ASSERT_NE(ch, nullptr);
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  auto client_ctx = crypto::TlsContext::Client(MakePeerVerifier(policy_, std::make_shared<PeerVerdict>(),
                                                                [this] { return clock_.wall; }))
                        .value();
  auto server = std::async(std::launch::async, [&] {
    auto s = crypto::TlsSession::Handshake(ch->tls(), fds[0]);
    ::close(fds[0]);
    return s.ok();
  });
  auto c = crypto::TlsSession::Handshake(client_ctx, fds[1], "localhost");
  EXPECT_FALSE(server.get());  // no client certificate: refused before the verifier
  ::close(fds[1]);
  EXPECT_EQ(asked, 0);
}

}  // namespace
}  // namespace cllm::channel
