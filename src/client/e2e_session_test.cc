// E2eSession's key choice over time: the preferred key of the session's
// suite at creation; on a timer (StartAutoRefresh) the key cllm-trust prefers
// after a rotation, while the old one is still published; a failed fetch keeps
// the current key; the timer stops with the session.
#include "client/e2e_session.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace cllm::client {
namespace {

namespace e2e = channel::e2e;
namespace hpke = crypto::hpke;

e2e::KeyConfig Key(uint8_t id, const hpke::Suite& suite = hpke::kSuiteX25519) {
  return e2e::KeyConfig{id, suite, Bytes(32, id)};
}

// Published is what the fake cllm-trust lists: tests change it as a rotation would.
struct Published {
  std::mutex mu;
  std::vector<e2e::KeyConfig> keys;
  bool fail = false;
  std::atomic<int> fetches{0};
  std::atomic<int> delay_ms{0};  // a slow cllm-trust
  std::optional<std::chrono::system_clock::time_point> signed_at;  // the statements' (nullopt: now)
  E2eKeyFetch Fetch() {
    return [this]() -> Result<E2eKeyList> {
      ++fetches;
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms.load()));
      std::lock_guard<std::mutex> lock(mu);
      if (fail) return MakeError(Errc::kIo, "cllm-trust unreachable");
      return E2eKeyList{keys, signed_at};
    };
  }
  void Set(std::vector<e2e::KeyConfig> k, bool failing = false) {
    std::lock_guard<std::mutex> lock(mu);
    keys = std::move(k);
    fail = failing;
  }
};

// WaitFor polls `pred` for up to 5 s.
template <typename Pred>
bool WaitFor(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

TEST(E2eSessionTest, PicksThePreferredKeyOfItsSuite) {
  Published p;
  p.Set({Key(1, hpke::kSuiteGmt), Key(2), Key(4)});
  auto any = E2eSession::Create(p.Fetch());
  ASSERT_TRUE(any.ok()) << any.detail();
  EXPECT_EQ((*any)->current().key_id, 1);
  auto x25519 = E2eSession::Create(p.Fetch(), hpke::kSuiteX25519);
  ASSERT_TRUE(x25519.ok()) << x25519.detail();
  EXPECT_EQ((*x25519)->current().key_id, 2);
  p.Set({Key(1, hpke::kSuiteGmt)});
  EXPECT_FALSE(E2eSession::Create(p.Fetch(), hpke::kSuiteX25519).ok());
}

TEST(E2eSessionTest, AutoRefreshMovesToARotatedKeyBeforeTheOldOneIsRetired) {
  Published p;
  p.Set({Key(2)});
  auto s = E2eSession::Create(p.Fetch(), hpke::kSuiteX25519);
  ASSERT_TRUE(s.ok()) << s.detail();
  (*s)->StartAutoRefresh(std::chrono::milliseconds(10));
  (*s)->StartAutoRefresh(std::chrono::milliseconds(10));  // a second call changes nothing
  // A rotation: the new key listed first, the old one still published.
  p.Set({Key(4), Key(2)});
  EXPECT_TRUE(WaitFor([&] { return (*s)->current().key_id == 4; }));
  // cllm-trust unreachable: the current key stays.
  p.Set({}, /*failing=*/true);
  const int before = p.fetches.load();
  EXPECT_TRUE(WaitFor([&] { return p.fetches.load() >= before + 3; }));
  EXPECT_EQ((*s)->current().key_id, 4);
}

TEST(E2eSessionTest, WithoutAutoRefreshOnlyA421MovesIt) {
  Published p;
  p.Set({Key(2)});
  auto s = E2eSession::Create(p.Fetch(), hpke::kSuiteX25519);
  ASSERT_TRUE(s.ok());
  p.Set({Key(4), Key(2)});
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ((*s)->current().key_id, 2);
  EXPECT_EQ(p.fetches.load(), 1);
  std::this_thread::sleep_for(
      std::chrono::milliseconds(1000));  // Refresh fetches at most once a second
  EXPECT_TRUE((*s)->Refresh(Key(2)));
  EXPECT_EQ((*s)->current().key_id, 4);
}

// A request refused while a slow fetch runs (more than the once-a-second
// limit after it began) waits for it and shares its result: one fetch, not
// one per request in turn.
TEST(E2eSessionTest, ARequestRefusedDuringASlowFetchSharesIt) {
  Published p;
  p.Set({Key(2), Key(1)});
  auto s = E2eSession::Create(p.Fetch());
  ASSERT_TRUE(s.ok()) << s.detail();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past the once-a-second limit
  p.delay_ms = 1500;
  const int before = p.fetches.load();
  std::thread first([&] { EXPECT_FALSE((*s)->Refresh(Key(2))); });  // still preferred: no move
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));    // the fetch is still running
  EXPECT_FALSE((*s)->Refresh(Key(2)));
  first.join();
  EXPECT_EQ(p.fetches.load() - before, 1);
}

// A list the client's own checks refuse (a statement that does not verify;
// a release policy weakened since, which its policy no longer covers) used
// to leave the session sealing to the key it held (found by review). It
// now seals to nothing until a list is accepted again.
TEST(E2eSessionTest, ARefusedKeyListStopsSealingUntilOneIsAccepted) {
  Published p;
  p.Set({Key(2)});
  auto s = E2eSession::Create(p.Fetch(), hpke::kSuiteX25519);
  ASSERT_TRUE(s.ok()) << s.detail();
  ASSERT_TRUE((*s)->Seal("POST", "/v1/chat/completions", "", "{}").ok());
  std::atomic<bool> refuse{true};
  auto session = E2eSession::Create([&]() -> Result<E2eKeyList> {
    static std::atomic<int> calls{0};
    if (calls++ > 0 && refuse) {
      return MakeError(Errc::kPermission, "no fleet key may be used with this client policy: release policy weaker");
    }
    return E2eKeyList{{Key(2)}, std::nullopt};
  }, hpke::kSuiteX25519);
  ASSERT_TRUE(session.ok()) << session.detail();
  (*session)->StartAutoRefresh(std::chrono::milliseconds(10));
  ASSERT_TRUE(WaitFor([&] { return !(*session)->Seal("POST", "/v1/chat/completions", "", "{}").ok(); }));
  auto refused = (*session)->Seal("POST", "/v1/chat/completions", "", "{}");
  EXPECT_EQ(refused.code(), Errc::kPermission);
  EXPECT_NE(refused.detail().find("refused at its last check"), std::string::npos) << refused.detail();
  EXPECT_FALSE((*session)->NextKey({Key(2)}).has_value());
  refuse = false;
  EXPECT_TRUE(WaitFor([&] { return (*session)->Seal("POST", "/v1/chat/completions", "", "{}").ok(); }));
}

// Whoever sits on the path to cllm-trust can fail the fetches for ever; a
// key list is vouched for only as long as cllm-trust's statements live, so
// past that the session seals to nothing (it used to keep sealing to the
// key it held, whatever happened to it since).
TEST(E2eSessionTest, NothingIsSealedToAListOlderThanItsLifetime) {
  Published p;
  p.Set({Key(2)});
  auto s = E2eSession::Create(p.Fetch(), hpke::kSuiteX25519);
  ASSERT_TRUE(s.ok()) << s.detail();
  (*s)->SetListLifetime(std::chrono::milliseconds(300));
  p.Set({Key(2)}, /*failing=*/true);
  (*s)->StartAutoRefresh(std::chrono::milliseconds(20));
  ASSERT_TRUE((*s)->Seal("POST", "/v1/chat/completions", "", "{}").ok()) << "a recent list";
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  auto stale = (*s)->Seal("POST", "/v1/chat/completions", "", "{}");
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.code(), Errc::kPermission);
  EXPECT_NE(stale.detail().find("last verified"), std::string::npos) << stale.detail();
  p.Set({Key(2)});  // cllm-trust reachable again
  EXPECT_TRUE(WaitFor([&] { return (*s)->Seal("POST", "/v1/chat/completions", "", "{}").ok(); }));
}

// The list's age is its oldest statement's, not the fetch's (found by
// review): a gateway serving a list cllm-trust signed long ago cannot give
// it a fresh lifetime.
TEST(E2eSessionTest, AnOldListServedAgainIsAsOldAsItsStatements) {
  Published p;
  p.Set({Key(2)});
  p.signed_at = std::chrono::system_clock::now() - std::chrono::seconds(290);
  auto s = E2eSession::Create(p.Fetch(), hpke::kSuiteX25519);
  ASSERT_TRUE(s.ok()) << s.detail();
  ASSERT_TRUE((*s)->Seal("POST", "/v1/chat/completions", "", "{}").ok()) << "290 s of 300: still vouched for";
  (*s)->SetListLifetime(std::chrono::milliseconds(280000));  // now past it
  auto stale = (*s)->Seal("POST", "/v1/chat/completions", "", "{}");
  ASSERT_FALSE(stale.ok()) << "a list signed 290 s ago sealed past a 280 s lifetime";
  EXPECT_NE(stale.detail().find("last verified"), std::string::npos) << stale.detail();
  p.signed_at = std::chrono::system_clock::now() - std::chrono::seconds(400);  // the same list served again
  EXPECT_FALSE((*s)->RefreshIfStale()) << "fetching an old list again made it new";
  EXPECT_FALSE((*s)->Seal("POST", "/v1/chat/completions", "", "{}").ok());
  p.signed_at.reset();  // a fresh list
  EXPECT_TRUE(WaitFor([&] { return (*s)->RefreshIfStale(); }));
  EXPECT_TRUE((*s)->Seal("POST", "/v1/chat/completions", "", "{}").ok());
}

TEST(E2eSessionTest, TheTimerStopsWithTheSession) {
  Published p;
  p.Set({Key(2)});
  {
    auto s = E2eSession::Create(p.Fetch());
    ASSERT_TRUE(s.ok());
    (*s)->StartAutoRefresh(std::chrono::milliseconds(5));
    EXPECT_TRUE(WaitFor([&] { return p.fetches.load() >= 3; }));
  }
  const int after = p.fetches.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(p.fetches.load(), after);
}

}  // namespace
}  // namespace cllm::client
