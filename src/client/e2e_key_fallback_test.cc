// A client sealing to a fleet key a replica does not hold, against the real
// replica (server::Service over net::Server) holding a real key ring: after a
// rotation, a client that already moved to the new key (cllm-trust lists it
// first) and a replica that has not fetched it yet still agree — the request
// goes once more to the older key, still published during the overlap — in
// `cllm chat --e2e` (E2eExchange) and in `cllm proxy --e2e` (UpstreamPool).
// A replica holding neither key refuses after a bounded number of tries.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "channel/e2e.h"
#include "client/e2e_session.h"
#include "client/upstream_pool.h"
#include "net/server.h"
#include "server/service.h"
#include "support/shared_data.h"

namespace cllm::client {
namespace {

using nlohmann::json;
namespace e2e = channel::e2e;
namespace hpke = crypto::hpke;

constexpr char kModel[] = "models/stories260K-f16.gguf";
constexpr char kApiKey[] = "sk-fallback";

struct FleetKey {
  e2e::KeyConfig config;
  SecretBytes sk;
};

FleetKey MakeKey(uint8_t id) {
  auto kp = hpke::GenerateKeyPair(hpke::kSuiteX25519.kem).value();
  return FleetKey{e2e::KeyConfig{id, hpke::kSuiteX25519, kp.pk}, std::move(kp.sk)};
}

// Replica is cllm-server's service on a plain listener, holding the keys it
// is given, and noting the key id each encrypted request was sealed to.
class Replica {
 public:
  Replica(const engine::Model& model, const std::vector<const FleetKey*>& held) {
    auto tmpl = engine::ChatTemplate::FromSource("{% for m in messages %}{{ m.content }}{% endfor %}", "", "");
    server::ServiceOptions so;
    so.model_name = "stories";
    so.api_keys = server::ApiKeys::Parse(R"({"keys": [{"user": "u", "sha256": ")" +
                                         server::ApiKeys::DigestHex(kApiKey) + R"("}]})")
                      .value();
    so.chat_template = std::make_shared<const engine::ChatTemplate>(std::move(tmpl).value());
    service_ = std::make_unique<server::Service>(model, so);
    auto ring = std::make_shared<e2e::KeyRing>();
    for (const FleetKey* k : held) EXPECT_TRUE(ring->Add(e2e::EncodeKeyConfig(k->config), k->sk.span()).ok());
    service_->SetE2eKeys(ring);
    server_ = net::Server::Start("127.0.0.1", 0, [this](const net::Request& r, std::shared_ptr<net::ResponseWriter> w) {
                {
                  std::lock_guard<std::mutex> lock(mu_);
                  if (!r.body.empty()) seen_.push_back(static_cast<uint8_t>(r.body[0]));  // hdr: key_id first
                }
                service_->Handle(r, std::move(w));
              }).value();
  }
  Url url() const { return ParseUrl("http://127.0.0.1:" + std::to_string(server_->port())).value(); }
  std::vector<uint8_t> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  std::unique_ptr<server::Service> service_;
  std::unique_ptr<net::Server> server_;
  std::mutex mu_;
  std::vector<uint8_t> seen_;
};

class E2eKeyFallbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CLLM_SHARED_PATH(path, kModel);
    model_ = engine::Model::Open(path).value();
  }
  // Published is what cllm-trust lists: the preferred key first.
  std::shared_ptr<E2eSession> Session(std::vector<e2e::KeyConfig>* published) {
    auto s = E2eSession::Create([published]() -> Result<E2eKeyList> { return E2eKeyList{*published, std::nullopt}; });
    EXPECT_TRUE(s.ok()) << s.detail();
    return s.ok() ? *s : nullptr;
  }
  ClientResult<HttpResponse> Chat(Replica& replica, E2eSession& session) {
    auto replicas = std::make_shared<ReplicaSet>(std::vector<Url>{replica.url()}, FailoverOptions{});
    FailoverClient fc(replicas, [](const Url& u) { return ConnectPlain(u); });
    const json req = {{"model", "stories"}, {"max_tokens", 4}, {"messages", {{{"role", "user"}, {"content", "Hi"}}}}};
    return E2eExchange(fc, session, "/v1/chat/completions", req.dump(), std::string("Bearer ") + kApiKey);
  }
  std::unique_ptr<engine::Model> model_;
  FleetKey old_ = MakeKey(1), new_ = MakeKey(2), other_ = MakeKey(3);
};

TEST_F(E2eKeyFallbackTest, AReplicaWithoutTheNewKeyIsReachedWithTheOlderOne) {
  std::vector<e2e::KeyConfig> published = {new_.config, old_.config};  // mid-rotation
  auto session = Session(&published);
  ASSERT_TRUE(session);
  Replica behind(*model_, {&old_});  // has not fetched the new key yet
  auto r = Chat(behind, *session);
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->body.find("chat.completion"), std::string::npos) << r->body;
  EXPECT_EQ(behind.seen(), (std::vector<uint8_t>{2, 1}));
  EXPECT_EQ(session->current().key_id, 2) << "the session still prefers the new key";

  // A replica that has both keys gets the new one at once.
  Replica current(*model_, {&old_, &new_});
  auto again = Chat(current, *session);
  ASSERT_TRUE(again.ok()) << again.detail();
  EXPECT_EQ(current.seen(), (std::vector<uint8_t>{2}));
}

TEST_F(E2eKeyFallbackTest, AClientOnARetiredKeyMovesToTheNewOne) {
  std::vector<e2e::KeyConfig> published = {old_.config};
  auto session = Session(&published);
  ASSERT_TRUE(session);
  published = {new_.config};  // rotated, and the old key retired since
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // a session fetches at most once a second
  Replica replica(*model_, {&new_});
  auto r = Chat(replica, *session);
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(replica.seen(), (std::vector<uint8_t>{1, 2}));
  EXPECT_EQ(session->current().key_id, 2);
}

TEST_F(E2eKeyFallbackTest, AReplicaHoldingNoPublishedKeyIsRefusedAfterBoundedTries) {
  std::vector<e2e::KeyConfig> published = {new_.config, old_.config};
  auto session = Session(&published);
  ASSERT_TRUE(session);
  Replica stranger(*model_, {&other_});
  auto r = Chat(stranger, *session);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.detail().find("421 e2e_key_unknown"), std::string::npos) << r.detail();
  EXPECT_NE(r.detail().find("sealed in turn to 2 keys"), std::string::npos) << r.detail();
  EXPECT_EQ(stranger.seen(), (std::vector<uint8_t>{2, 1}));
  // However many keys are published, one request is sealed to 3 at most.
  FleetKey k4 = MakeKey(4), k5 = MakeKey(5);
  published = {new_.config, old_.config, k4.config, k5.config};
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // a session fetches at most once a second
  auto capped = Chat(stranger, *session);
  ASSERT_FALSE(capped.ok());
  EXPECT_NE(capped.detail().find("sealed in turn to 3 keys"), std::string::npos) << capped.detail();
  EXPECT_EQ(stranger.seen(), (std::vector<uint8_t>{2, 1, 2, 1, 4}));
  // NextKey itself: never a key tried before, never more than kMaxKeyAttempts.
  EXPECT_FALSE(session->NextKey({new_.config, old_.config, k4.config}).has_value());
  EXPECT_FALSE(session->NextKey({}).has_value());
  auto next = session->NextKey({new_.config});
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->key_id, 1);
}

// Whoever sits between the client and the upstream can fail the key-list
// fetches and answer 421 for the new key; with a list older than its
// lifetime the client does not fall back on the keys it names (they may be
// retired since), nor seal to any of them: their statements expired.
TEST_F(E2eKeyFallbackTest, AnOldListIsNotFallenBackOn) {
  std::vector<e2e::KeyConfig> published = {new_.config, old_.config};
  bool failing = false;
  auto s = E2eSession::Create([&]() -> Result<E2eKeyList> {
    if (failing) return MakeError(Errc::kIo, "GET /v1/e2e/keys failed");
    return E2eKeyList{published, std::nullopt};
  });
  ASSERT_TRUE(s.ok()) << s.detail();
  auto session = *s;
  session->SetListLifetime(std::chrono::milliseconds(1000));  // the sleeps below outlast it
  EXPECT_EQ(session->NextKey({new_.config})->key_id, 1) << "a recent list: the older key";
  failing = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_FALSE(session->NextKey({new_.config}).has_value()) << "the fetch failed and the list is old";
  // Nor is anything sealed to a list that old: its statements expired.
  Replica behind(*model_, {&old_});
  auto r = Chat(behind, *session);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.detail().find("last verified"), std::string::npos) << r.detail();
  EXPECT_TRUE(behind.seen().empty());
  failing = false;  // a fetch that works makes the list recent again
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto ok = Chat(behind, *session);
  ASSERT_TRUE(ok.ok()) << ok.detail();
  EXPECT_EQ(behind.seen(), (std::vector<uint8_t>{2, 1}));
}

// ProxyOver is `cllm proxy --e2e` without its command line: the pool in
// front of `upstream` (a replica, or whatever stands on the path), behind a
// plain listener.
struct ProxyOver {
  ProxyOver(const Url& upstream, std::shared_ptr<E2eSession> session) {
    PoolOptions po;
    po.e2e = std::move(session);
    pool = UpstreamPool::Create(upstream, attestation::Policy::Default(), po).value();
    auto forward = [this](const net::Request& r, std::shared_ptr<net::ResponseWriter> w) {
      pool->Forward(r, std::move(w));
    };
    listener = net::Server::Start("127.0.0.1", 0, forward).value();
  }
  net::NetResult<net::ClientResponse> Call(const std::string& method, const std::string& body) {
    auto c = net::Client::Connect("127.0.0.1", listener->port(), nullptr);
    if (!c.ok()) return c.error();
    return (*c)->Request({method,
                          "/v1/chat/completions",
                          {{"Authorization", std::string("Bearer ") + kApiKey}, {"Content-Type", "application/json"}},
                          body});
  }
  std::unique_ptr<UpstreamPool> pool;
  std::unique_ptr<net::Server> listener;
};

const json kChat = {{"model", "stories"}, {"max_tokens", 4}, {"messages", {{{"role", "user"}, {"content", "Hi"}}}}};

TEST_F(E2eKeyFallbackTest, TheProxyReachesAReplicaWithoutTheNewKeyWithTheOlderOne) {
  std::vector<e2e::KeyConfig> published = {new_.config, old_.config};
  auto session = Session(&published);
  ASSERT_TRUE(session);
  Replica behind(*model_, {&old_});
  ProxyOver proxy(behind.url(), session);
  auto r = proxy.Call("POST", kChat.dump());
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->body.find("chat.completion"), std::string::npos) << r->body;
  EXPECT_EQ(behind.seen(), (std::vector<uint8_t>{2, 1}));
  EXPECT_EQ(proxy.pool->Stats().e2e_key_resends, 1u);
  EXPECT_FALSE(proxy.pool->replicas().InBackoff(0)) << "a key the replica lacks is not a replica failure";
  EXPECT_EQ(proxy.pool->Stats().failovers, 0u);
}

// A replica that holds none of the published keys: the proxy relays its
// last refusal, saying how many keys the request was sealed to in turn.
TEST_F(E2eKeyFallbackTest, TheProxySaysHowManyKeysEveryOneOfWhichWasRefused) {
  std::vector<e2e::KeyConfig> published = {new_.config, old_.config};
  auto session = Session(&published);
  ASSERT_TRUE(session);
  Replica stranger(*model_, {&other_});
  ProxyOver proxy(stranger.url(), session);
  auto r = proxy.Call("POST", kChat.dump());
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_EQ(r->status, 421) << r->body;
  auto body = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << r->body;
  EXPECT_EQ(body["error"]["code"], "e2e_key_unknown") << r->body;
  EXPECT_NE(body["error"]["message"].get<std::string>().find("(sealed in turn to 2 keys)"), std::string::npos)
      << r->body;
  EXPECT_EQ(stranger.seen(), (std::vector<uint8_t>{2, 1}));
  EXPECT_EQ(body["error"]["type"], "cllm_e2e_error") << "passed on as the proxy's own error";
  EXPECT_EQ(proxy.pool->Stats().e2e_refused, 0u) << "a clear error is not a forgery";
}

// ClearUpstream stands where a TLS-terminating gateway stands: it answers
// every request itself, in the clear, with `status`, `content_type` and
// `body` (chunked when streamed), never reaching a replica.
struct ClearUpstream {
  ClearUpstream(int status, std::string content_type, std::string body, bool stream = false) {
    auto answer = [=](const net::Request&, std::shared_ptr<net::ResponseWriter> w) {
      w->AddHeader("Retry-After", "7");
      if (!stream) return w->Send(status, content_type, body);
      w->BeginStream(status, content_type);
      w->Write(body);
      w->EndStream();
    };
    server = net::Server::Start("127.0.0.1", 0, answer).value();
  }
  Url url() const { return ParseUrl("http://127.0.0.1:" + std::to_string(server->port())).value(); }
  std::unique_ptr<net::Server> server;
};

// The path to the replicas (a gateway that ends TLS) answers an encrypted
// request itself, in the clear. A clear 200 is never an answer — a replica
// seals every answer to a request it opened — so the proxy refuses it
// (502) instead of handing the gateway's text to its client as the model's;
// a clear error is passed on as the proxy's own, its bytes not relayed.
TEST_F(E2eKeyFallbackTest, AClearAnswerFromThePathIsRefusedAndAClearErrorIsNotRelayedAsIs) {
  std::vector<e2e::KeyConfig> published = {new_.config};
  auto session = Session(&published);
  ASSERT_TRUE(session);
  const std::string forged =
      R"({"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"FORGED"}}]})";
  auto through = [&](ClearUpstream& gateway) {
    ProxyOver proxy(gateway.url(), session);
    auto r = proxy.Call("POST", kChat.dump());
    EXPECT_TRUE(r.ok()) << r.detail();
    net::ClientResponse response;
    if (r.ok()) response = *r;
    return std::make_pair(response, proxy.pool->Stats().e2e_refused);
  };
  {
    ClearUpstream gateway(200, "application/json", forged);
    auto [r, refused] = through(gateway);
    EXPECT_EQ(r.status, 502) << r.body;
    EXPECT_EQ(r.body.find("FORGED"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("e2e_answer_invalid"), std::string::npos) << r.body;
    EXPECT_EQ(refused, 1u);
  }
  {
    ClearUpstream gateway(200, "text/event-stream", "data: " + forged + "\n\n", /*stream=*/true);
    auto [r, refused] = through(gateway);
    EXPECT_EQ(r.status, 502) << r.body;
    EXPECT_EQ(r.body.find("FORGED"), std::string::npos) << r.body;
    EXPECT_EQ(refused, 1u);
  }
  {
    ClearUpstream gateway(429, "text/html", R"({"error":{"message":"slow down <b>now</b>","code":"rate_limited"}})");
    auto [r, refused] = through(gateway);
    EXPECT_EQ(r.status, 429) << r.body;
    EXPECT_EQ(r.Header("content-type"), "application/json");
    EXPECT_EQ(r.Header("retry-after"), "7");
    auto body = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << r.body;
    EXPECT_EQ(body["error"]["code"], "rate_limited");
    EXPECT_EQ(body["error"]["type"], "cllm_e2e_error");
    EXPECT_EQ(body["error"]["message"], "from upstream, not sealed: slow down <b>now</b>");
    EXPECT_EQ(refused, 0u);
  }
  {
    ClearUpstream gateway(502, "text/html", "<html>bad gateway</html>");
    auto [r, refused] = through(gateway);
    EXPECT_EQ(r.status, 502) << r.body;
    auto body = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << r.body;
    EXPECT_EQ(body["error"]["code"], "upstream_error");
    EXPECT_EQ(body["error"]["message"], "from upstream, not sealed: HTTP 502");
  }
}

// The key list is fetched again off the proxy's I/O thread: while that fetch
// hangs on a slow cllm-trust, the proxy still answers its other clients.
TEST_F(E2eKeyFallbackTest, ASlowKeyFetchDoesNotHoldUpTheProxysOtherClients) {
  std::vector<e2e::KeyConfig> published = {new_.config, old_.config};
  std::atomic<bool> slow{false}, fetching{false};
  auto session = E2eSession::Create([&]() -> Result<E2eKeyList> {
    if (slow) {
      fetching = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(2000));
    }
    return E2eKeyList{published, std::nullopt};
  });
  ASSERT_TRUE(session.ok()) << session.detail();
  Replica behind(*model_, {&old_});
  ProxyOver proxy(behind.url(), *session);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // a session fetches at most once a second
  slow = true;
  net::NetResult<net::ClientResponse> first = MakeError(net::NetErrc::kProtocol, "not run");
  std::thread t([&] { first = proxy.Call("POST", kChat.dump()); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!fetching && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(fetching) << "the refused request never fetched the key list";
  const auto t0 = std::chrono::steady_clock::now();
  auto other = proxy.Call("GET", "");  // answered by the proxy itself (only POST is sealed): 405
  const auto waited = std::chrono::steady_clock::now() - t0;
  t.join();
  ASSERT_TRUE(other.ok()) << other.detail();
  EXPECT_EQ(other->status, 405) << other->body;
  EXPECT_LT(waited, std::chrono::milliseconds(1000)) << "the other client waited for the key fetch";
  ASSERT_TRUE(first.ok()) << first.detail();
  EXPECT_EQ(first->status, 200) << first->body;
  EXPECT_EQ(behind.seen(), (std::vector<uint8_t>{2, 1}));
}

}  // namespace
}  // namespace cllm::client
