// The proxy's upstream pool against a real RA-TLS upstream (net::Server with
// a simulated-TEE certificate) and a real proxy listener: connections are
// reused, a rotated certificate is verified again in the new connection's
// handshake (and refused when it fails), a kept-alive connection the server
// closed is retried once, and nothing is resent after response bytes.
#include "client/upstream_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "attestation/sim/sim_attester.h"
#include "net/server.h"

namespace cllm::client {
namespace {

using namespace std::chrono_literals;

// An attested upstream: a net::Server over TLS whose certificate comes from
// an RA-TLS issuer on a simulated TEE, and can be rotated.
class Upstream {
 public:
  explicit Upstream(net::ServerOptions options = {}) {
    platform_key_ = attestation::sim::GenerateSimPlatformKey().value();
    issuer_ = MakeIssuer(*platform_key_);
    tls_ = crypto::TlsContext::Server(issuer_->Issue(std::chrono::system_clock::now()).value()).value();
    server_ = net::Server::Start(
                  "127.0.0.1", 0,
                  [this](const net::Request& r, std::shared_ptr<net::ResponseWriter> w) { Handle(r, std::move(w)); },
                  options, tls_)
                  .value();
  }

  static std::shared_ptr<channel::RaTlsIssuer> MakeIssuer(const crypto::PrivateKey& platform_key) {
    attestation::sim::SimAttesterOptions o;
    o.measurement.emplace();
    o.measurement->fill(0x33);
    auto attester = std::make_shared<attestation::sim::SimAttester>(
        attestation::sim::SimAttester::Create(platform_key, o).value());
    channel::ServerClaims claims;
    claims.binary_digest.fill(0xB1);
    claims.model_digest.fill(0xD1);
    claims.model_name = "stories260K";
    return std::make_shared<channel::RaTlsIssuer>(attester, claims);
  }

  // Policy pins this upstream's platform key, binary and model.
  attestation::Policy Policy() const {
    attestation::Policy p = attestation::Policy::Default();
    p.platforms = {attestation::Platform::kSim};
    p.sim_platform_keys = {platform_key_->public_key()};
    p.model_digests = {Bytes(32, 0xD1)};
    p.binary_digests = {Bytes(32, 0xB1)};
    return p;
  }
  Url url() const { return ParseUrl("https://127.0.0.1:" + std::to_string(server_->port())).value(); }
  // Rotate gives new handshakes a new key and evidence (from `issuer`, or
  // this upstream's own TEE).
  void Rotate(channel::RaTlsIssuer* issuer = nullptr) {
    if (issuer == nullptr) issuer = issuer_.get();
    ASSERT_TRUE(tls_->SetIdentity(issuer->Issue(std::chrono::system_clock::now()).value()).ok());
  }
  net::Server& server() { return *server_; }
  int handled(const std::string& path) { return path == "/cut" ? cut_.load() : models_.load(); }
  int hung_clients_gone() const { return hung_gone_.load(); }

 private:
  void Handle(const net::Request& r, std::shared_ptr<net::ResponseWriter> w) {
    if (r.Path() == "/hang") {  // never answers; notes its client leaving
      w->OnClientGone([this] { ++hung_gone_; });
      std::lock_guard<std::mutex> lock(mu_);
      hung_.push_back(std::move(w));
      return;
    }
    if (r.Path() == "/cut") {  // starts a stream, then drops it
      ++cut_;
      if (w->BeginStream(200, "text/event-stream")) w->Write("data: {}\n\n");
      return;
    }
    if (r.Path() == "/stream") {
      if (!w->BeginStream(200, "text/event-stream")) return;
      w->Write("data: one\n\n");
      w->Write("data: [DONE]\n\n");
      w->EndStream();
      return;
    }
    ++models_;
    w->Send(200, "application/json", "{\"auth\":\"" + r.Header("authorization") + "\"}");
  }

  std::optional<crypto::PrivateKey> platform_key_;
  std::shared_ptr<channel::RaTlsIssuer> issuer_;
  std::shared_ptr<crypto::TlsContext> tls_;
  std::mutex mu_;
  std::vector<std::shared_ptr<net::ResponseWriter>> hung_;  // after server_ in destruction: outlives it
  std::atomic<int> hung_gone_{0};
  std::unique_ptr<net::Server> server_;
  std::atomic<int> models_{0}, cut_{0};
};

// Proxy is `cllm proxy` without its command line: a plain listener whose
// handler forwards through the pool.
struct Proxy {
  explicit Proxy(const Upstream& up, PoolOptions options = {}) {
    pool = UpstreamPool::Create(up.url(), up.Policy(), options).value();
    listener = net::Server::Start("127.0.0.1", 0, [this](const net::Request& r, std::shared_ptr<net::ResponseWriter> w) {
                 pool->Forward(r, std::move(w));
               }).value();
  }
  net::NetResult<net::ClientResponse> Get(const std::string& target, const net::BodySink& sink = nullptr) {
    auto c = net::Client::Connect("127.0.0.1", listener->port(), nullptr);
    if (!c.ok()) return c.error();
    return (*c)->Request({"GET", target, {{"Authorization", "Bearer sk-test"}}, ""}, sink);
  }
  std::unique_ptr<UpstreamPool> pool;
  std::unique_ptr<net::Server> listener;
};

TEST(UpstreamPoolTest, SequentialRequestsShareOneVerifiedConnection) {
  Upstream up;
  Proxy proxy(up);
  auto probe = proxy.pool->Probe();
  ASSERT_TRUE(probe.ok()) << probe.detail();
  EXPECT_EQ(probe->payload.model_name, "stories260K");
  for (int i = 0; i < 5; ++i) {
    auto r = proxy.Get("/v1/models");
    ASSERT_TRUE(r.ok()) << r.detail();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "{\"auth\":\"Bearer sk-test\"}");  // forwarded end-to-end header
  }
  std::string streamed;
  auto s = proxy.Get("/stream", [&](std::string_view b) {
    streamed.append(b);
    return true;
  });
  ASSERT_TRUE(s.ok()) << s.detail();
  EXPECT_EQ(streamed, "data: one\n\ndata: [DONE]\n\n");
  const PoolStats st = proxy.pool->Stats();
  EXPECT_EQ(st.verifications, 1u);
  EXPECT_EQ(st.connections_opened, 1u);
  EXPECT_EQ(st.reused, 6u);  // every request after the probe ran on the probe's connection
  EXPECT_EQ(up.server().Stats().accepted, 1u);
}

TEST(UpstreamPoolTest, ARotatedCertificateIsVerifiedAgainBeforeUse) {
  Upstream up;
  PoolOptions o;
  o.idle_timeout = 200ms;  // so the test can make the pool open new connections
  Proxy proxy(up, o);
  ASSERT_TRUE(proxy.Get("/v1/models").ok());
  EXPECT_EQ(proxy.pool->Stats().verifications, 1u);

  // Same certificate on a new connection: accepted on the earlier verification.
  std::this_thread::sleep_for(600ms);
  ASSERT_TRUE(proxy.Get("/v1/models").ok());
  EXPECT_EQ(proxy.pool->Stats().connections_opened, 2u);
  EXPECT_EQ(proxy.pool->Stats().verifications, 1u);
  EXPECT_EQ(proxy.pool->Stats().verifications_reused, 1u);

  // The server rotates: the next connection's certificate is new and is
  // verified in full during its handshake.
  up.Rotate();
  std::this_thread::sleep_for(600ms);
  auto r = proxy.Get("/v1/models");
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(proxy.pool->Stats().verifications, 2u);

  // A rotation to evidence the policy does not trust (another TEE's key) is
  // refused in the handshake: 502 naming attestation, no request upstream.
  auto other_key = attestation::sim::GenerateSimPlatformKey().value();
  auto rogue = Upstream::MakeIssuer(other_key);
  up.Rotate(rogue.get());
  std::this_thread::sleep_for(600ms);
  const int before = up.handled("/v1/models");
  auto refused = proxy.Get("/v1/models");
  ASSERT_TRUE(refused.ok()) << refused.detail();
  EXPECT_EQ(refused->status, 502);
  EXPECT_NE(refused->body.find("attestation"), std::string::npos) << refused->body;
  EXPECT_EQ(up.handled("/v1/models"), before);
  // One address may be a relay whose next connection lands on another
  // replica: each attempt (3) is a new handshake, each refused.
  EXPECT_EQ(proxy.pool->Stats().refusals, 3u);
  EXPECT_EQ(proxy.pool->Stats().verifications, 2u);
}

// A kept-alive connection serves only as long as its verification holds:
// past reverify_after the next request goes over a new connection, verified
// in full in its own handshake (found by review: a busy proxy's connection
// never idled out and served on one verification indefinitely).
TEST(UpstreamPoolTest, AKeptAliveConnectionIsNotReusedPastItsVerification) {
  Upstream up;
  PoolOptions o;
  o.reverify_after = 1s;
  Proxy proxy(up, o);
  ASSERT_TRUE(proxy.Get("/v1/models").ok());
  ASSERT_TRUE(proxy.Get("/v1/models").ok());
  EXPECT_EQ(proxy.pool->Stats().connections_opened, 1u);
  EXPECT_EQ(proxy.pool->Stats().reused, 1u);
  std::this_thread::sleep_for(1200ms);  // well inside idle_timeout (30 s)
  auto r = proxy.Get("/v1/models");
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(proxy.pool->Stats().connections_opened, 2u);
  EXPECT_EQ(proxy.pool->Stats().verifications, 2u);
  EXPECT_EQ(proxy.pool->Stats().reused, 1u);
  EXPECT_EQ(proxy.pool->Stats().open, 1);
}

TEST(UpstreamPoolTest, AKeptAliveConnectionTheServerClosedIsRetriedOnce) {
  net::ServerOptions so;
  so.idle_timeout = 200ms;  // the upstream closes idle keep-alive connections quickly
  Upstream up(so);
  Proxy proxy(up);  // the pool keeps idle connections far longer
  ASSERT_TRUE(proxy.Get("/v1/models").ok());
  // Until the upstream's idle close has happened (generous: a loaded CI).
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (up.server().Stats().open_connections > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(up.server().Stats().open_connections, 0);
  auto r = proxy.Get("/v1/models");
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(proxy.pool->Stats().retries, 1u);
  EXPECT_EQ(proxy.pool->Stats().connections_opened, 2u);
  EXPECT_EQ(up.handled("/v1/models"), 2);
}

TEST(UpstreamPoolTest, NothingIsResentAfterResponseBytes) {
  Upstream up;
  Proxy proxy(up);
  ASSERT_TRUE(proxy.Get("/v1/models").ok());  // the next request runs on a reused connection
  std::string got;
  auto r = proxy.Get("/cut", [&](std::string_view b) {
    got.append(b);
    return true;
  });
  // The client sees an error event, then the stream cut off: never a
  // complete-looking one.
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(got.rfind("data: {}\n\ndata: {\"error\"", 0), 0u) << got;
  EXPECT_NE(got.find("upstream_incomplete"), std::string::npos) << got;
  EXPECT_NE(got.find("the answer is incomplete"), std::string::npos) << got;
  EXPECT_EQ(up.handled("/cut"), 1);
  EXPECT_EQ(proxy.pool->Stats().retries, 0u);
}

TEST(UpstreamPoolTest, TheProxysClientLeavingClosesTheUpstreamRequest) {
  Upstream up;
  PoolOptions po;
  po.max_connections = 1;
  Proxy proxy(up, po);
  net::ClientOptions co;
  co.head_timeout = 300ms;  // the proxy's client gives up and leaves
  auto c = net::Client::Connect("127.0.0.1", proxy.listener->port(), nullptr, co).value();
  auto r = c->Request({"GET", "/hang", {}, ""});
  EXPECT_EQ(r.code(), net::NetErrc::kTimeout);
  c.reset();
  // The upstream sees its client (the pool's connection) go: it can cancel.
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (up.hung_clients_gone() == 0 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(up.hung_clients_gone(), 1);
  // And the pool's one connection is free again: the next request is served.
  auto next = proxy.Get("/v1/models");
  ASSERT_TRUE(next.ok()) << next.detail();
  EXPECT_EQ(next->status, 200);
  EXPECT_EQ(proxy.pool->Stats().retries, 0u);
}

}  // namespace
}  // namespace cllm::client
