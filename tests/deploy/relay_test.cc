// relay_test.cc — the untrusted relay (issue #14, deploy/relay/): real nginx
// (`stream`, TLS passthrough) and real HAProxy (TCP mode) in front of three
// attested cllm-server replicas on loopback.
//
// Each test runs for both engines (…/nginx, …/haproxy) and checks one claim of
// deploy/relay/README.md: every replica attests on its own through the relay;
// an attested chat works through it; neither leg of the relay's traffic
// carries prompt or answer bytes; new connections are served while a replica
// is dead. Skipped loudly when the relay program is not installed.
#include <gtest/gtest.h>
#include <signal.h>

#include <set>

#include "deploy/tcp_tap.h"
#include "deploy/relay_fleet.h"
#include "support/shared_data.h"

namespace cllm {
namespace {

using nlohmann::json;
using testing::RelayFleet;

std::string Chat(const std::string& content, int max_tokens, bool stream) {
  return json{{"messages", {{{"role", "user"}, {"content", content}}}},
              {"max_tokens", max_tokens},
              {"temperature", 0},
              {"stream", stream}}
      .dump();
}
std::map<std::string, std::string> Auth() { return {{"Authorization", std::string("Bearer ") + testing::kKeyAlice}}; }

class RelayTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    CLLM_SHARED_PATH(model, testing::SimServer::kModel);
    fleet_ = std::make_unique<RelayFleet>(GetParam());
    if (fleet_->Binary().empty()) {
      GTEST_SKIP() << "SKIPPED — " << GetParam() << " is not installed (scripts/install-deps.sh installs it); "
                   << "the relay tests need the real program";
    }
    ASSERT_TRUE(fleet_->StartReplicas(3)) << "a replica did not start; see " << fleet_->dir();
  }
  // StartRelay renders the configuration for `upstreams` (default: the replicas) and starts it.
  void StartRelay(std::vector<uint16_t> upstreams = {}) {
    if (upstreams.empty()) upstreams = fleet_->ReplicaPorts();
    const int rc = fleet_->Render(upstreams);
    if (rc == 3) GTEST_SKIP() << "SKIPPED — nginx has no stream module (Debian: libnginx-mod-stream)";
    ASSERT_EQ(rc, 0) << fleet_->RelayLog();
    ASSERT_TRUE(fleet_->StartRelay()) << fleet_->RelayLog();
  }
  // ChatThroughRelay runs one attested chat completion through the relay; returns the answer.
  std::string ChatThroughRelay(const std::string& prompt) {
    auto c = client::Connect(fleet_->RelayUrl(), fleet_->Policy());
    EXPECT_TRUE(c.ok()) << c.detail();
    if (!c.ok()) return "";
    auto r = (*c)->Request("POST", "/v1/chat/completions", Chat(prompt, 24, false), Auth());
    EXPECT_TRUE(r.ok()) << r.detail();
    if (!r.ok()) return "";
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body)["choices"][0]["message"]["content"].get<std::string>();
  }

  std::unique_ptr<RelayFleet> fleet_;
};

TEST_P(RelayTest, EveryReplicaAttestsOnItsOwnThroughTheRelay) {
  StartRelay();
  if (IsSkipped() || HasFatalFailure()) return;
  const auto keys = fleet_->ReplicaKeys();
  ASSERT_EQ(keys.size(), 3u) << "each replica has its own TLS key (and so its own evidence)";

  // Hold many connections open at once: the relay balances open connections over the replicas.
  std::vector<std::unique_ptr<client::Connection>> held;
  std::map<int, int> per_replica;
  for (int i = 0; i < 12; ++i) {
    auto c = client::Connect(fleet_->RelayUrl(), fleet_->Policy());  // verified during the handshake
    ASSERT_TRUE(c.ok()) << c.detail();
    const std::string spki = HexEncode((*c)->server()->spki_sha256);
    ASSERT_TRUE(keys.count(spki)) << "the relay connected us to something that is not a replica";
    ++per_replica[keys.at(spki)];
    held.push_back(std::move(*c));
  }
  EXPECT_EQ(per_replica.size(), 3u) << "all three replicas are reached through the relay";

  // Fresh evidence (the nonce endpoint) on one connection per replica binds that replica's key.
  std::set<int> fetched;
  for (auto& c : held) {
    const int replica = keys.at(HexEncode(c->server()->spki_sha256));
    if (!fetched.insert(replica).second) continue;
    auto v = client::FetchAttestation(*c, fleet_->Policy());
    ASSERT_TRUE(v.ok()) << v.detail();
    EXPECT_EQ(v->spki_sha256, c->server()->spki_sha256);
  }
  EXPECT_EQ(fetched.size(), 3u);
}

TEST_P(RelayTest, AttestedChatAndStreamWorkThroughTheRelay) {
  StartRelay();
  if (IsSkipped() || HasFatalFailure()) return;
  EXPECT_GT(ChatThroughRelay("Once upon a time").size(), 0u);

  auto c = client::Connect(fleet_->RelayUrl(), fleet_->Policy());
  ASSERT_TRUE(c.ok()) << c.detail();
  std::string events;
  int chunks = 0;
  auto r = (*c)->Request("POST", "/v1/chat/completions", Chat("Tell me a story", 32, true), Auth(),
                         [&](std::string_view b) {
                           ++chunks;
                           events.append(b);
                           return true;
                         });
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-type"], "text/event-stream");
  EXPECT_GE(chunks, 5) << "the relay passes SSE events through as they come";
  EXPECT_NE(events.find("data: [DONE]"), std::string::npos);
}

TEST_P(RelayTest, NeitherLegOfTheRelayCarriesPromptOrAnswerBytes) {
  // client --tap--> relay --tap--> replica i: a recording tap on every leg.
  std::vector<std::unique_ptr<testing::TcpTap>> replica_legs;
  std::vector<uint16_t> upstreams;
  for (uint16_t p : fleet_->ReplicaPorts()) {
    replica_legs.push_back(std::make_unique<testing::TcpTap>(p));
    upstreams.push_back(replica_legs.back()->port());
  }
  StartRelay(upstreams);
  if (IsSkipped() || HasFatalFailure()) return;
  testing::TcpTap client_leg(fleet_->relay_port());

  const std::string secret = "ZebraQuartzRelayPrompt4711";
  std::vector<std::string> answers;
  for (int i = 0; i < 3; ++i) {
    auto c = client::Connect(client::Url{true, "127.0.0.1", client_leg.port(), ""}, fleet_->Policy());
    ASSERT_TRUE(c.ok()) << c.detail();
    auto r = (*c)->Request("POST", "/v1/chat/completions", Chat("Once upon a time " + secret, 24, false), Auth());
    ASSERT_TRUE(r.ok()) << r.detail();
    ASSERT_EQ(r->status, 200);
    answers.push_back(json::parse(r->body)["choices"][0]["message"]["content"].get<std::string>());
    ASSERT_GT(answers.back().size(), 8u);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  std::vector<std::pair<std::string, std::string>> legs = {{"client<->relay", client_leg.captured()}};
  for (size_t i = 0; i < replica_legs.size(); ++i) {
    legs.push_back({"relay<->replica" + std::to_string(i), replica_legs[i]->captured()});
  }
  size_t carried = 0;
  for (auto& [name, bytes] : legs) {
    carried += bytes.size();
    EXPECT_EQ(bytes.find(secret), std::string::npos) << name << " carries the prompt";
    EXPECT_EQ(bytes.find("chat/completions"), std::string::npos) << name << " carries the request line";
    EXPECT_EQ(bytes.find(std::string(testing::kKeyAlice)), std::string::npos) << name << " carries the API key";
    for (auto& a : answers) EXPECT_EQ(bytes.find(a.substr(0, 16)), std::string::npos) << name << " carries the answer";
  }
  EXPECT_GT(client_leg.captured().size(), 3000u) << "the taps did record the sessions";
  EXPECT_GE(carried, 2 * client_leg.captured().size() - 64) << "the replica legs carry what the client leg does";
}

TEST_P(RelayTest, NewConnectionsAreServedWhileAReplicaIsDead) {
  StartRelay();
  if (IsSkipped() || HasFatalFailure()) return;
  const auto keys = fleet_->ReplicaKeys();
  ASSERT_EQ(keys.size(), 3u);
  auto before = client::Connect(fleet_->RelayUrl(), fleet_->Policy());
  ASSERT_TRUE(before.ok()) << before.detail();
  const int victim = keys.at(HexEncode((*before)->server()->spki_sha256));

  ::kill(fleet_->replica(victim).process().pid(), SIGKILL);  // a crash, not a drain
  fleet_->replica(victim).process().Wait(std::chrono::seconds(5));

  // The connection that was on it fails with an error, never silently.
  auto on_dead = (*before)->Request("GET", "/v1/models", "", Auth());
  EXPECT_FALSE(on_dead.ok());

  // New connections: the relay skips the dead replica (nginx: the refused connect goes to the
  // next upstream and marks it failed; HAProxy: retry with redispatch, then the active check).
  std::set<int> reached;
  for (int i = 0; i < 12; ++i) {
    auto c = client::Connect(fleet_->RelayUrl(), fleet_->Policy());
    ASSERT_TRUE(c.ok()) << "connection " << i << ": " << c.detail();
    const int replica = keys.at(HexEncode((*c)->server()->spki_sha256));
    EXPECT_NE(replica, victim);
    reached.insert(replica);
    auto r = (*c)->Request("GET", "/v1/models", "", Auth());
    ASSERT_TRUE(r.ok()) << r.detail();
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_EQ(reached.size(), 2u) << "the two live replicas share the load";
  EXPECT_GT(ChatThroughRelay("After the crash").size(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Engines, RelayTest, ::testing::Values("nginx", "haproxy"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace cllm
