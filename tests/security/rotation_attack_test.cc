// Attack on the well-known evidence endpoint across a certificate rotation
// (issue #12 item 2). A client opens a keep-alive RA-TLS connection, the
// server rotates its certificate, and the client then asks
// /.well-known/cllm-attestation?nonce=… on the SAME connection. Before the
// fix the server bound the newest key (one service-wide "served SPKI"), so
// the evidence named a key this connection never saw: a careful client
// refused it (cert_evidence_mismatch) and a careless one would have accepted
// evidence unrelated to its own session. Now the evidence binds the key of
// the connection it is asked on (net::ConnectionInfo::served_spki through
// channel::ServerChannel::PayloadFor), and a new connection gets the new key.
//
// In process: net::Server + server::Service + channel::ServerChannel on the
// simulated TEE. Only the channel's monotonic clock is faked, so the
// rotation happens when the test says, without waiting; certificates stay
// dated by the real wall clock the client verifies them at.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>

#include "attestation/sim/sim_attester.h"
#include "base/encoding.h"
#include "channel/server_channel.h"
#include "crypto/digest.h"
#include "crypto/random.h"
#include "engine/model/model.h"
#include "net/server.h"
#include "server/service.h"
#include "support/shared_data.h"

namespace cllm {
namespace {

using namespace std::chrono_literals;

constexpr char kModel[] = "models/stories260K-f16.gguf";

// KeepAliveClient: one verified RA-TLS connection that sends several
// requests, like a client library's pooled connection.
class KeepAliveClient {
 public:
  static std::unique_ptr<KeepAliveClient> Connect(uint16_t port, const attestation::Policy& policy) {
    std::unique_ptr<KeepAliveClient> c(new KeepAliveClient());
    c->fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    dst.sin_port = htons(port);
    if (::connect(c->fd_, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) return nullptr;
    auto ctx = crypto::TlsContext::Client(
        channel::MakePeerVerifier(policy, std::make_shared<channel::PeerVerdict>()));
    if (!ctx.ok()) return nullptr;
    auto session = crypto::TlsSession::Handshake(*ctx, c->fd_, "localhost");
    if (!session.ok()) return nullptr;
    c->session_ = std::move(session).value();
    return c;
  }
  ~KeepAliveClient() {
    session_.reset();
    if (fd_ >= 0) ::close(fd_);
  }

  // ServedSpki is the key this connection's handshake saw.
  Bytes ServedSpki() const { return session_->PeerChain().front().GetPublicKey()->ToSpkiDer(); }

  // Get sends one keep-alive GET and reads one Content-Length response;
  // status 0 when the exchange failed (e.g. the server closed the connection).
  std::pair<int, std::string> Get(const std::string& target) {
    const std::string req = "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
    if (!session_->Write(AsBytes(req)).ok()) return {0, ""};
    size_t head_end;
    while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return {0, ""};
    }
    const std::string head = buf_.substr(0, head_end + 2);
    std::string lower = head;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    auto cl = lower.find("\r\ncontent-length: ");
    if (head.rfind("HTTP/1.1 ", 0) != 0 || cl == std::string::npos) return {0, ""};
    const size_t length = std::stoul(head.substr(cl + 18));
    while (buf_.size() < head_end + 4 + length) {
      if (!Fill()) return {0, ""};
    }
    std::string body = buf_.substr(head_end + 4, length);
    buf_.erase(0, head_end + 4 + length);
    return {std::atoi(head.c_str() + 9), body};
  }

 private:
  KeepAliveClient() = default;
  bool Fill() {
    auto r = session_->Read(16384);
    if (!r.ok() || r->empty()) return false;
    buf_.append(r->begin(), r->end());
    return true;
  }
  int fd_ = -1;
  std::unique_ptr<crypto::TlsSession> session_;
  std::string buf_;
};

class RotationAttackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CLLM_SHARED_PATH(model_path, kModel);
    model_ = engine::Model::Open(model_path).value();

    auto platform_key = attestation::sim::GenerateSimPlatformKey().value();
    auto attester = std::make_shared<attestation::sim::SimAttester>(
        attestation::sim::SimAttester::Create(platform_key).value());
    channel::ServerClaims claims;
    claims.binary_digest.fill(0xB1);
    claims.model_digest.fill(0xD1);
    claims.model_name = "stories260K";
    auto issuer = std::make_shared<channel::RaTlsIssuer>(attester, claims);  // 600 s certificates
    channel::ChannelClock clock{[] { return std::chrono::system_clock::now(); }, [this] { return monotonic_; }};
    channel_ = channel::ServerChannel::Create(issuer, {}, clock).value();

    server::ServiceOptions so;
    so.model_name = "stories260K";
    service_ = std::make_unique<server::Service>(*model_, so);
    service_->SetAttestation(channel_);
    server_ = net::Server::Start("127.0.0.1", 0, service_->Handler(), {}, channel_->tls()).value();

    policy_ = attestation::Policy::Default();
    policy_.platforms = {attestation::Platform::kSim};
    policy_.sim_platform_keys = {platform_key.public_key()};
    policy_.binary_digests = {Bytes(32, 0xB1)};
    policy_.model_digests = {Bytes(32, 0xD1)};
  }
  void TearDown() override {
    if (server_) server_->Stop();
    if (service_) service_->Shutdown();
  }

  // Rotate moves the channel's schedule to its half-life and rotates.
  void Rotate() {
    monotonic_ = channel_->NextRotation();
    auto r = channel_->RotateIfDue();
    ASSERT_TRUE(r.ok()) << r.detail();
    ASSERT_TRUE(*r);
  }

  // FetchEvidence is client::FetchAttestation's check: fresh nonce, then
  // the payload must bind the key THIS connection negotiated.
  channel::ChannelResult<channel::VerifiedServer> FetchEvidence(KeepAliveClient& c) {
    const Bytes nonce = crypto::RandomBytes(32);
    auto [status, body] = c.Get("/.well-known/cllm-attestation?nonce=" + HexEncode(nonce));
    if (status != 200) return MakeError(channel::ChannelErrc::kInternal, "HTTP " + std::to_string(status) + ": " + body);
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.contains("payload") || !j["payload"].is_string()) {
      return MakeError(channel::ChannelErrc::kMalformed, "not the endpoint's JSON: " + body);
    }
    auto bytes = Base64Decode(j["payload"].get<std::string>());
    if (!bytes.ok()) return MakeError(channel::ChannelErrc::kMalformed, bytes.detail());
    auto payload = channel::DecodePayload(*bytes);
    if (!payload.ok()) return MakeError(channel::ChannelErrc::kMalformed, payload.detail());
    channel::VerifyOptions o;
    o.at = std::chrono::system_clock::now();
    o.expected_freshness = nonce;
    const Bytes spki = c.ServedSpki();
    // The answer also names the key it bound; it must be this connection's.
    EXPECT_EQ(j.value("spki_sha256", ""), HexEncode(crypto::Sha256(spki)));
    return channel::VerifyPayloadForKey(*payload, spki, policy_, o);
  }

  std::chrono::steady_clock::time_point monotonic_{std::chrono::hours(1)};
  std::unique_ptr<engine::Model> model_;
  std::shared_ptr<channel::ServerChannel> channel_;
  std::unique_ptr<server::Service> service_;
  std::unique_ptr<net::Server> server_;
  attestation::Policy policy_;
};

TEST_F(RotationAttackTest, KeepAliveConnectionGetsEvidenceForItsOwnKeyAfterRotation) {
  auto old_conn = KeepAliveClient::Connect(server_->port(), policy_);
  ASSERT_NE(old_conn, nullptr);
  const Bytes old_key = old_conn->ServedSpki();
  EXPECT_EQ(old_key, channel_->Current().spki_der);
  auto before = FetchEvidence(*old_conn);
  ASSERT_TRUE(before.ok()) << channel::ChannelErrcName(before.code()) << ": " << before.detail();

  Rotate();
  const Bytes new_key = channel_->Current().spki_der;
  ASSERT_NE(new_key, old_key);

  // The same connection, asked after the rotation: evidence for ITS key.
  auto after = FetchEvidence(*old_conn);
  EXPECT_TRUE(after.ok()) << channel::ChannelErrcName(after.code()) << ": " << after.detail();
  EXPECT_EQ(old_conn->ServedSpki(), old_key);

  // A new connection gets the new certificate, and evidence for it.
  auto new_conn = KeepAliveClient::Connect(server_->port(), policy_);
  ASSERT_NE(new_conn, nullptr);
  EXPECT_EQ(new_conn->ServedSpki(), new_key);
  auto fresh = FetchEvidence(*new_conn);
  EXPECT_TRUE(fresh.ok()) << channel::ChannelErrcName(fresh.code()) << ": " << fresh.detail();
}

}  // namespace
}  // namespace cllm
