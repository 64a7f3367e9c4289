// e2e_session.h — the client side of encrypted bodies (docs/protocol.md,
// "Encrypted bodies"): requests sealed with HPKE to the fleet key that
// cllm-trust releases only to attested replicas, answers opened frame by
// frame, so TLS may end in any proxy on the way.
//
// An E2eSession holds the key configs the client may seal to. Where they come
// from is the caller's: `cllm proxy --e2e` and `cllm chat --e2e` fetch them
// from cllm-trust, verify its signed statement and check the key's release
// policy against the client's own policy (trust/e2e_client.h) before any
// request is sealed. A replica that answers `e2e_key_unknown` (the fleet key
// rotated) makes the session fetch again; the request is then sealed to the
// new key and sent again. When cllm-trust still prefers the refused key (the
// replica has not fetched a rotated key yet), the request goes again sealed
// to the next key of a recent list — during a rotation's overlap, the older
// key (NextKey; at most kMaxKeyAttempts keys per request). With
// StartAutoRefresh (cllm proxy and chat: every minute) it also fetches on a
// timer, so it moves to a rotated key before the old one is retired.
//
// E2eExchange is the blocking form over a FailoverClient (cllm chat); the
// asynchronous proxy (upstream_pool.h) uses Seal and E2eAnswer directly.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "channel/e2e.h"
#include "channel/e2e_response.h"
#include "client/client.h"
#include "client/failover_client.h"
#include "net/client.h"

namespace cllm::client {

// E2eKeyList is what a fetch verified: the key configs the client may seal
// to (the preferred one of each suite first, as cllm-trust lists them), and
// when cllm-trust signed the oldest statement vouching for them. The list's
// lifetime counts from that signature, not from the fetch: a path that
// serves an old list again (a gateway, a replica) cannot extend it.
struct E2eKeyList {
  std::vector<channel::e2e::KeyConfig> keys;
  std::optional<std::chrono::system_clock::time_point> signed_at;  // nullopt: now
};
// E2eKeyFetch returns the verified list, or why there is none.
using E2eKeyFetch = std::function<Result<E2eKeyList>()>;
// E2eClientProvider returns the client's attested identity for mutual mode
// (its token and a freshly signed key statement: the server accepts a
// statement only within minutes of its iat, so the provider re-signs and
// renews as needed).
using E2eClientProvider = std::function<Result<std::shared_ptr<const channel::e2e::ClientIdentity>>()>;

class E2eSession {
 public:
  // Create fetches the keys once, so a wrong setup fails at start-up.
  // `suite`: only keys of this suite (nullopt: any, the first). `client`:
  // mutual mode (HPKE auth mode with the client's attested key).
  [[nodiscard]] static Result<std::shared_ptr<E2eSession>> Create(
      E2eKeyFetch fetch, std::optional<crypto::hpke::Suite> suite = std::nullopt,
      E2eClientProvider client = nullptr);

  struct Sealed {
    net::ClientRequest request;  // POST, sealed body, the router headers
    channel::e2e::ResponseSecret secret;
    uint8_t key_id = 0;
    channel::e2e::KeyConfig key;  // the config it was sealed to
  };
  // Seal turns a local request (an OpenAI API call: POST with a JSON body)
  // into its encrypted form. Only POST is sealed (kInvalidArgument
  // otherwise); "model" and "stream" are read from the JSON for the router
  // headers; `authorization` travels inside the ciphertext.
  // `key`: seal to this key (one NextKey returned) instead of the current one.
  [[nodiscard]] Result<Sealed> Seal(const std::string& method, const std::string& target,
                                    const std::string& authorization, const std::string& json,
                                    const channel::e2e::KeyConfig* key = nullptr) const;

  // Refresh is called when a replica did not know the key a request was
  // sealed to (e2e_key_unknown), or could not open it (e2e_decrypt_failed: a
  // key replaced under the same id): fetch the keys again (at most once per
  // second, counted from the end of the last fetch; requests refused during
  // a fetch share its result) and return whether requests are now sealed to
  // another key.
  bool Refresh(const channel::e2e::KeyConfig& stale);
  // RefreshIfStale fetches the keys when nothing may be sealed now (the list
  // refused, or older than its lifetime; at most once per second) and says
  // whether something may be sealed after. A blocking call: E2eExchange
  // makes it before sealing; the proxy's timer (StartAutoRefresh) keeps its
  // list fresh instead.
  bool RefreshIfStale();

  // NextKey is what a request refused with a RefreshWorthy code does next:
  // `tried` holds the keys it was sealed to so far, the refused one last.
  // When the preferred key is among them it refreshes (Refresh). It returns
  // the preferred key if untried (the session moved to a rotated key), else
  // — only while the session's list is younger than the list lifetime —
  // the first key of the list, in cllm-trust's order, that the request has
  // not been sealed to: during a rotation's overlap the older key, which a
  // replica that has not fetched the new one holds. nullopt: none left, or
  // the list too old to fall back on (it may name keys retired since; a
  // path that fails the fetches must not move the client back to them).
  // Every key it returns passed the verification of the fetch (a key
  // cllm-trust publishes and this client's policy accepts).
  std::optional<channel::e2e::KeyConfig> NextKey(const std::vector<channel::e2e::KeyConfig>& tried);
  // kMaxKeyAttempts bounds the keys one request is sealed to.
  static constexpr size_t kMaxKeyAttempts = 3;

  // RefreshWorthy: the clear error codes after which Refresh may help.
  static bool RefreshWorthy(const std::string& code) {
    return code == "e2e_key_unknown" || code == "e2e_decrypt_failed";
  }

  // StartAutoRefresh fetches the keys again every `every` on a thread of
  // the session's own, so a long-lived client moves to the key cllm-trust
  // prefers after a rotation while the old one is still published (the
  // rotation's overlap), instead of learning of it from a 421 once the old
  // key is retired. A fetch that fails to reach cllm-trust keeps the current
  // key, within the list lifetime; a list the client's checks refuse (kPermission:
  // a statement that does not verify, or no key whose release policy this
  // client's policy covers — say, a release policy weakened since) stops
  // sealing until a list is accepted again. Stopped when the session is
  // destroyed; calling it again changes nothing.
  void StartAutoRefresh(std::chrono::milliseconds every);

  // SetListLifetime: how long after a successful fetch the session seals at
  // all, and NextKey may fall back on the list's other keys (default 300 s,
  // the lifetime of cllm-trust's statements): past it a key's release
  // policy is no longer vouched for (the path to cllm-trust may be failing
  // the fetches on purpose), and Seal refuses.
  void SetListLifetime(std::chrono::milliseconds lifetime);
  channel::e2e::KeyConfig current() const;
  // mutual: requests are sealed with the client's attested identity, which
  // Seal may renew with cllm-trust first (a network call).
  bool mutual() const { return client_ != nullptr; }
  uint64_t refreshes() const;
  ~E2eSession();

 private:
  E2eSession() = default;
  Status<> Pick(E2eKeyList list);
  // Fetched takes a fetch's result: Pick on success, a refusal noted (no
  // sealing until a list is accepted), an unreachable cllm-trust ignored.
  bool Fetched(Result<E2eKeyList> keys);
  // UnusableLocked says why nothing may be sealed now (mu_ held): the last
  // list was refused, or the one held is older than list_lifetime_.
  std::optional<std::string> UnusableLocked() const;
  // FetchUnless fetches the keys unless `done` (called with mu_ held) is
  // already true or the last fetch ended under a second ago; one fetch at a
  // time. Returns `done` after it.
  bool FetchUnless(const std::function<bool()>& done);

  E2eKeyFetch fetch_;
  std::mutex fetch_mu_;  // one fetch at a time (the timer's and a 421's); taken before mu_, never under it
  std::optional<crypto::hpke::Suite> suite_;
  E2eClientProvider client_;
  mutable std::mutex mu_;
  channel::e2e::KeyConfig current_;
  std::vector<channel::e2e::KeyConfig> keys_;  // current_'s suite, cllm-trust's order (current_ first)
  std::chrono::steady_clock::time_point list_time_{};  // when keys_'s oldest statement was signed
  std::chrono::milliseconds list_lifetime_{300000};
  std::optional<std::string> refused_;  // why the last list fetched was refused (cleared by the next accepted one)
  std::chrono::steady_clock::time_point last_fetch_{};
  uint64_t refreshes_ = 0;
  // StartAutoRefresh's thread; stop_ (under mu_) ends it.
  std::thread refresher_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
};

// E2eAnswer opens one sealed answer as its bytes arrive and says what the
// caller gets: the inner head (status, content type), then body bytes (one
// server-sent event per frame when streaming).
class E2eAnswer {
 public:
  [[nodiscard]] static Result<E2eAnswer> Create(const channel::e2e::ResponseSecret& secret);
  struct Event {
    std::optional<channel::e2e::ResponseHead> head;  // the first event only
    std::string body;                                // body bytes of one frame
    bool final = false;
  };
  // Feed takes received bytes; errors (tampered, reordered, oversized
  // frames) are channel::e2e codes, by name, in the detail.
  [[nodiscard]] Result<std::vector<Event>> Feed(std::string_view bytes);
  // Finish: the response ended; an error when no final frame came (truncated).
  [[nodiscard]] Status<> Finish();
  bool finished() const { return opener_.finished(); }

 private:
  explicit E2eAnswer(channel::e2e::ResponseOpener opener) : opener_(std::move(opener)) {}
  channel::e2e::ResponseOpener opener_;
  bool head_seen_ = false;
};

// OuterError reads the clear JSON error of a refused encrypted request
// (e2e_key_unknown, e2e_decrypt_failed, …): its code, or "" when the body
// is not one.
std::string OuterErrorCode(const std::string& body);
// KeysTriedNote is " (sealed in turn to N keys)", what a refusal after N
// keys adds to its message.
std::string KeysTriedNote(size_t keys);

// E2eExchange sends one request sealed by `session` over `fc` and returns
// the inner response (status, content type; the body when not streamed).
// Streamed bodies go to `on_body` as they are opened. After an
// e2e_key_unknown it seals again to the key NextKey names and resends. A tampered
// or truncated answer is ClientErrc::kProtocol ("e2e_decrypt_failed: …",
// "e2e_truncated: …"), raised even after part of a stream was delivered.
[[nodiscard]] ClientResult<HttpResponse> E2eExchange(FailoverClient& fc, E2eSession& session,
                                                     const std::string& target, const std::string& json,
                                                     const std::string& authorization,
                                                     const BodyCallback& on_body = nullptr);

}  // namespace cllm::client
