// The failover rules of client/replicas.h, without a network: which replica
// an attempt goes to, what is retried, and what the caller is told; and
// FailoverClient's connection lifetime against a local HTTP server.
#include "client/replicas.h"

#include <gtest/gtest.h>

#include <thread>

#include "client/failover_client.h"
#include "net/server.h"

namespace cllm::client {
namespace {

std::vector<Url> Three() { return ParseReplicaUrls({"https://127.0.0.1:1001,https://127.0.0.1:1002", "https://127.0.0.1:1003"}).value(); }

TEST(ReplicaUrlsTest, RepeatedOptionsAndCommaListsAdd) {
  auto u = Three();
  ASSERT_EQ(u.size(), 3u);
  EXPECT_EQ(UrlText(u[2]), "https://127.0.0.1:1003");
  EXPECT_EQ(ParseReplicaUrls({"https://a:1, https://b:2"}).value().size(), 2u);
}

TEST(ReplicaUrlsTest, RefusesMixedSchemesDuplicatesAndEmpties) {
  EXPECT_EQ(ParseReplicaUrls({"https://a:1,http://b:2"}).code(), ClientErrc::kBadUrl);
  EXPECT_EQ(ParseReplicaUrls({"https://a:1", "https://a:1"}).code(), ClientErrc::kBadUrl);
  EXPECT_EQ(ParseReplicaUrls({"https://a:1,"}).code(), ClientErrc::kBadUrl);
  EXPECT_EQ(ParseReplicaUrls({}).code(), ClientErrc::kBadUrl);
}

TEST(ReplicaSetTest, PrefersHealthyReplicasRoundRobin) {
  ReplicaSet set(Three());
  std::vector<int> none(3, 0);
  set.MarkFailed(1);
  EXPECT_TRUE(set.InBackoff(1));
  for (int i = 0; i < 6; ++i) EXPECT_NE(set.Pick(none), 1u);
  set.MarkOk(1);
  EXPECT_FALSE(set.InBackoff(1));
}

TEST(ReplicaSetTest, AllInBackoffPicksTheOneRecoveringFirst) {
  FailoverOptions o;
  o.backoff_base = std::chrono::milliseconds(50);
  ReplicaSet set(Three(), o);
  set.MarkFailed(0);
  set.MarkFailed(0);  // 100 ms
  set.MarkFailed(2);  // 50 ms
  set.MarkFailed(1);
  set.MarkFailed(1);
  set.MarkFailed(1);  // 200 ms
  EXPECT_EQ(set.Pick(std::vector<int>(3, 0)), 2u);
}

TEST(AttemptsTest, FailureBeforeAnyResponseByteGoesToAnotherReplica) {
  ReplicaSet set(Three());
  Attempts at(set);
  auto a = at.Begin();
  ASSERT_TRUE(a);
  EXPECT_TRUE(at.Failed(ClientErrc::kConnect, "refused", std::nullopt));
  auto b = at.Begin();
  ASSERT_TRUE(b);
  EXPECT_NE(b->replica, a->replica);
  EXPECT_TRUE(at.Failed(ClientErrc::kAttestation, "bad evidence", std::nullopt));
  auto c = at.Begin();
  ASSERT_TRUE(c);
  EXPECT_NE(c->replica, a->replica);
  EXPECT_NE(c->replica, b->replica);
  EXPECT_FALSE(at.Failed(ClientErrc::kUnavailable, "503", std::nullopt));  // three attempts: the limit
  EXPECT_FALSE(at.Begin());
  auto e = at.FinalError();
  EXPECT_EQ(e.code, ClientErrc::kUnavailable);
  EXPECT_NE(e.detail.find("3 attempts"), std::string::npos) << e.detail;
  EXPECT_NE(e.detail.find("connect: refused"), std::string::npos) << e.detail;
  EXPECT_NE(e.detail.find("attestation: bad evidence"), std::string::npos) << e.detail;
}

TEST(AttemptsTest, FailureAfterDeliveredBytesIsNeverRetried) {
  ReplicaSet set(Three());
  Attempts at(set);
  auto a = at.Begin();
  ASSERT_TRUE(a);
  EXPECT_FALSE(at.Failed(ClientErrc::kProtocol, "connection closed during the response body", size_t{1234}));
  EXPECT_FALSE(at.Begin());
  auto e = at.FinalError();
  EXPECT_EQ(e.code, ClientErrc::kIncomplete);
  EXPECT_NE(e.detail.find("closed the stream after 1234 bytes"), std::string::npos) << e.detail;
  EXPECT_NE(e.detail.find("the answer is incomplete"), std::string::npos) << e.detail;
  EXPECT_TRUE(set.InBackoff(a->replica));
}

TEST(AttemptsTest, AnAnswerOrOurOwnBadRequestIsNotRetried) {
  ReplicaSet set(Three());
  Attempts at(set);
  ASSERT_TRUE(at.Begin());
  EXPECT_FALSE(at.Failed(ClientErrc::kHttp, "401", std::nullopt));
}

TEST(AttemptsTest, AStaleKeptAliveConnectionIsResentOnceWithoutBlame) {
  ReplicaSet set(Three());
  Attempts at(set);
  auto a = at.Begin();
  ASSERT_TRUE(a);
  EXPECT_TRUE(at.Failed(ClientErrc::kProtocol, "closed while idle", std::nullopt, /*stale=*/true));
  auto b = at.Begin();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->replica, a->replica);
  EXPECT_EQ(at.attempts(), 1);
  EXPECT_FALSE(set.InBackoff(a->replica));
}

TEST(AttemptsTest, OneRelayAddressIsTriedAgainAfterAPause) {
  ReplicaSet set(ParseReplicaUrls({"https://relay:443"}).value());
  Attempts at(set);
  ASSERT_TRUE(at.Begin());
  EXPECT_TRUE(at.Failed(ClientErrc::kTls, "handshake cut", std::nullopt));
  auto again = at.Begin();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->replica, 0u);
  EXPECT_GT(again->delay.count(), 0);
}

TEST(AttemptGateTest, HoldsBackA503AndCountsWhatPasses) {
  AttemptGate held;
  EXPECT_FALSE(held.Head(503));
  EXPECT_FALSE(held.Body(10));
  EXPECT_TRUE(held.unavailable());
  EXPECT_FALSE(held.delivered());
  AttemptGate passed;
  EXPECT_TRUE(passed.Head(200));
  EXPECT_TRUE(passed.Body(7));
  EXPECT_EQ(passed.delivered(), std::optional<size_t>(7));
}

// FailoverClient keeps its connection for a conversation, but not past
// reverify_after: then the next request opens a new connection, which its
// connector verifies (found by review: a kept-alive connection served on one
// verification for as long as it stayed busy).
TEST(FailoverClientTest, AConnectionIsVerifiedAgainAfterReverifyAfter) {
  auto server = net::Server::Start("127.0.0.1", 0, [](const net::Request&, std::shared_ptr<net::ResponseWriter> w) {
                  w->Send(200, "application/json", "{}");
                }).value();
  auto set = std::make_shared<ReplicaSet>(
      std::vector<Url>{ParseUrl("http://127.0.0.1:" + std::to_string(server->port())).value()});
  int connects = 0;
  FailoverClient fc(set, [&](const Url& u) {
    ++connects;
    return ConnectPlain(u);
  });
  fc.SetReverifyAfter(std::chrono::milliseconds(300));
  ASSERT_TRUE(fc.Request("GET", "/").ok());
  ASSERT_TRUE(fc.Request("GET", "/").ok());
  EXPECT_EQ(connects, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  auto r = fc.Request("GET", "/");
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(connects, 2);
  ASSERT_TRUE(fc.Connect().ok());
  EXPECT_EQ(connects, 2);
}

}  // namespace
}  // namespace cllm::client
