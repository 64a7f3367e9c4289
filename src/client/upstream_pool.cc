#include "client/upstream_pool.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <deque>
#include <future>
#include <list>
#include <map>
#include <mutex>
#include <thread>
#include <type_traits>

#include "base/log.h"
#include "client/e2e_forward.h"
#include "client/e2e_session.h"
#include "crypto/digest.h"
#include "net/async_client.h"

namespace cllm::client {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// Headers worth forwarding; hop-by-hop ones (connection, transfer-encoding,
// content-length, host) are each leg's own business.
constexpr const char* kForwarded[] = {"authorization", "content-type", "accept", "openai-organization",
                                      "openai-project", "user-agent"};

// ---------------------------------------------------------------------------
// The verifier: full RA-TLS verification once per distinct certificate
// ---------------------------------------------------------------------------

class CachingVerifier {
 public:
  CachingVerifier(attestation::Policy policy, std::chrono::seconds reverify_after)
      : policy_(std::move(policy)), reverify_after_(reverify_after) {}

  crypto::CryptoStatus Verify(const std::vector<crypto::Certificate>& chain) {
    if (chain.empty()) return Refuse("no_evidence: the server sent no certificate");
    const crypto::Certificate& leaf = chain.front();
    const Digest key = crypto::Sha256(leaf.Der());
    const auto now = std::chrono::system_clock::now();
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = known_.find(key);
      // Seen and verified before, still inside its validity and the
      // re-verification period: these exact bytes passed every check.
      if (it != known_.end() && now < it->second.until && now >= leaf.NotBefore()) {
        ++reused_;
        return OkStatus();
      }
    }
    channel::VerifyOptions o;
    o.at = now;
    auto v = channel::VerifyServerCertificate(leaf, policy_, o);
    if (!v.ok()) return Refuse(std::string(channel::ChannelErrcName(v.code())) + ": " + v.detail());
    // Genuine is not enough: the policy must pin what it runs.
    if (auto pinned = RequirePinned(policy_, *v); !pinned.ok()) return Refuse(pinned.detail());
    std::lock_guard<std::mutex> lock(mu_);
    ++verifications_;
    if (known_.size() >= kMaxKnown) known_.erase(known_.begin());
    known_.insert_or_assign(key, Known{std::min(leaf.NotAfter(), now + reverify_after_), std::move(v).value()});
    return OkStatus();
  }

  // Until is how long a connection that presented `leaf` may serve on its
  // verification: the certificate's end or `reverify_after` past the full
  // verification, whichever is first (nullopt: not verified here).
  std::optional<crypto::TimePoint> Until(const crypto::Certificate& leaf) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = known_.find(crypto::Sha256(leaf.Der()));
    if (it == known_.end()) return std::nullopt;
    return it->second.until;
  }

  std::optional<channel::VerifiedServer> ServerFor(const crypto::Certificate& leaf) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = known_.find(crypto::Sha256(leaf.Der()));
    if (it == known_.end()) return std::nullopt;
    return it->second.server;
  }

  uint64_t verifications() const { return verifications_.load(); }
  uint64_t reused() const { return reused_.load(); }
  uint64_t refusals() const { return refusals_.load(); }

 private:
  struct Known {
    crypto::TimePoint until;
    channel::VerifiedServer server;
  };
  static constexpr size_t kMaxKnown = 8;  // a few certificates: rotation overlaps, replicas

  crypto::CryptoStatus Refuse(std::string why) {
    ++refusals_;
    return MakeError(crypto::CryptoErrc::kChainInvalid, std::move(why));
  }

  const attestation::Policy policy_;
  const std::chrono::seconds reverify_after_;
  std::mutex mu_;
  using Digest = decltype(crypto::Sha256(ByteSpan()));
  std::map<Digest, Known> known_;
  std::atomic<uint64_t> verifications_{0}, reused_{0}, refusals_{0};
};

std::string ErrorJson(const std::string& message, const char* type, const char* code) {
  return nlohmann::json{{"error", {{"message", message}, {"type", type}, {"code", code}}}}.dump();
}

bool SafeHeaderValue(const std::string& v) { return v.find_first_of(std::string("\r\n\0", 3)) == std::string::npos; }

}  // namespace

// ---------------------------------------------------------------------------
// The pool (all state below is touched on the pool's one I/O thread only)
// ---------------------------------------------------------------------------

struct UpstreamPool::Impl {
  // First, so it is destroyed last: coroutine frames still pending in it
  // (holding connections and timers of this pool) go before it does.
  asio::io_context ioc{1};
  std::shared_ptr<ReplicaSet> replicas;
  PoolOptions options;
  std::shared_ptr<CachingVerifier> verifier;
  std::shared_ptr<net::TlsStreamContext> tls;

  asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
  std::thread thread;
  // Work that may block on the network runs off the I/O thread, which
  // serves every other request meanwhile: `fetching` gets the key list
  // again after a 421 (from the upstream, verified under cllm-trust's
  // keys), `sealing` seals in mutual mode (which may renew the client's
  // token with cllm-trust). Two threads, so a slow fetch never holds up
  // sealing. Destroyed before `options` and `ioc`: their destructors join a
  // task still running, which uses the session and its suspended caller's
  // locals (kept alive by the task's pending completion).
  asio::thread_pool fetching{1}, sealing{1};

  // OffLoop runs `f` on `where` and resumes the calling coroutine on the
  // I/O thread with its result (an exception in `f` is rethrown there).
  // Callers pass a named function object, as every co_await here takes
  // named lvalues: GCC 12 destroys temporaries in a co_await too early.
  template <typename F>
  asio::awaitable<std::invoke_result_t<F&>> OffLoop(asio::thread_pool& where, F& f) {
    using R = std::invoke_result_t<F&>;  // co_spawn's result must be default-constructible: R in an optional
    auto task = [&f]() -> asio::awaitable<std::optional<R>> { co_return f(); };
    std::optional<R> r = co_await asio::co_spawn(where, task, asio::use_awaitable);
    co_return std::move(*r);
  }

  // SealWith runs `seal` here, or in mutual mode (which may renew the
  // client's token with cllm-trust first) on `sealing`.
  template <typename F>
  asio::awaitable<Result<E2eSession::Sealed>> SealWith(F& seal) {
    if (!options.e2e->mutual()) co_return seal();
    co_return co_await OffLoop(sealing, seal);
  }

  // Poster lets other threads post onto `ioc` while the pool lives: a
  // writer's OnClientGone callback runs on the proxy server's I/O thread and
  // may outlive the pool (~UpstreamPool clears `ioc` first).
  struct Poster {
    std::mutex mu;
    asio::io_context* ioc = nullptr;
  };
  std::shared_ptr<Poster> poster = std::make_shared<Poster>();

  struct Idle {
    std::unique_ptr<net::ClientConnection> conn;
    Clock::time_point since;
    size_t replica = 0;
    crypto::TimePoint until;  // its verification's end (Lease::until)
  };
  std::deque<Idle> idle;                  // most recently used at the back
  std::list<asio::steady_timer*> waiters;  // requests waiting for a free connection
  int open = 0;
  asio::steady_timer sweeper{ioc};

  std::atomic<uint64_t> opened{0}, requests{0}, reused{0}, retries{0}, failovers{0}, incomplete{0};
  std::atomic<uint64_t> e2e_refused{0}, e2e_key_resends{0};
  std::atomic<int> open_now{0}, idle_now{0};

  void Published() {
    open_now = open;
    idle_now = static_cast<int>(idle.size());
  }

  struct Lease {
    std::unique_ptr<net::ClientConnection> conn;
    bool pooled = false;  // taken from the idle pool: the server may have closed it meanwhile
    size_t replica = 0;
    // The connection is not reused past this: its certificate's end, or
    // reverify_after past the full verification that admitted it. A
    // kept-alive connection otherwise serves on one verification for as long
    // as it stays busy, past a rotation or a certificate's expiry.
    crypto::TimePoint until = crypto::TimePoint::max();
  };

  // VerifiedUntil is Lease::until for a connection just opened to `url`.
  crypto::TimePoint VerifiedUntil(const net::ClientConnection& c, const Url& url) const {
    if (!url.tls) return crypto::TimePoint::max();  // http:// (e2e: the bodies are sealed)
    if (c.PeerChain().empty()) return crypto::TimePoint::min();  // TLS without a certificate: never reused
    const crypto::Certificate& leaf = c.PeerChain().front();
    return std::min(leaf.NotAfter(), verifier->Until(leaf).value_or(crypto::TimePoint::max()));
  }

  // Acquire returns an idle connection to `replica` (unless `fresh`), or a
  // new one when fewer than max_connections are open (closing an idle one
  // to another replica to make room), or waits for one to be released.
  asio::awaitable<net::NetResult<Lease>> Acquire(size_t replica, bool fresh) {
    const auto deadline = Clock::now() + options.acquire_timeout;
    for (;;) {
      for (size_t k = idle.size(); !fresh && k-- > 0;) {  // most recently used first
        if (idle[k].replica != replica) continue;
        Idle e = std::move(idle[k]);
        idle.erase(idle.begin() + static_cast<std::ptrdiff_t>(k));
        if (e.conn->is_open() && Clock::now() - e.since < options.idle_timeout &&
            std::chrono::system_clock::now() < e.until) {
          Published();
          co_return Lease{std::move(e.conn), true, replica, e.until};
        }
        e.conn->Close();
        --open;  // closed by the server, idle too long, or its verification is due: drop it
      }
      if (open >= options.max_connections && !idle.empty()) {  // idle to another replica: make room
        idle.front().conn->Close();
        idle.pop_front();
        --open;
      }
      if (open < options.max_connections) break;
      if (Clock::now() >= deadline) {
        co_return MakeError(net::NetErrc::kTimeout, "all " + std::to_string(options.max_connections) +
                                                        " upstream connections stayed busy");
      }
      asio::steady_timer wait(ioc, deadline);
      waiters.push_back(&wait);
      boost::system::error_code ec;
      co_await wait.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      // Woken by WakeOne, it is off the list already; by its deadline, not.
      if (auto me = std::find(waiters.begin(), waiters.end(), &wait); me != waiters.end()) waiters.erase(me);
    }
    ++open;
    ++opened;
    Published();
    const Url& url = replicas->url(replica);
    // A named lvalue, not a temporary, inside co_await (GCC 12 destroys such
    // temporaries too early in coroutines).
    std::shared_ptr<net::TlsStreamContext> leg_tls = url.tls ? tls : nullptr;
    auto c = co_await net::ClientConnection::Connect(url.host, url.port, leg_tls, options.http);
    if (!c.ok()) {
      Release(nullptr);
      co_return c.error();
    }
    const crypto::TimePoint until = VerifiedUntil(**c, url);
    co_return Lease{std::move(c).value(), false, replica, until};
  }

  // Release returns a connection after a request (null: it was lost).
  void Release(Lease&& lease) { Release(std::move(lease.conn), lease.replica, lease.until); }
  void Release(std::unique_ptr<net::ClientConnection> conn, size_t replica = 0,
               crypto::TimePoint until = crypto::TimePoint::max()) {
    if (conn && conn->is_open()) {
      idle.push_back({std::move(conn), Clock::now(), replica, until});
    } else {
      --open;
    }
    Published();
    WakeOne();
  }

  // WakeOne wakes the longest waiting request and takes it off the list, so
  // two releases before it resumes wake two different waiters.
  void WakeOne() {
    if (waiters.empty()) return;
    waiters.front()->cancel();
    waiters.pop_front();
  }

  void Sweep() {
    while (!idle.empty() && Clock::now() - idle.front().since >= options.idle_timeout) {
      idle.front().conn->Close();
      idle.pop_front();
      --open;
      WakeOne();
    }
    Published();
    sweeper.expires_after(std::max<std::chrono::milliseconds>(options.idle_timeout / 2, std::chrono::milliseconds(50)));
    sweeper.async_wait([this](boost::system::error_code ec) {
      if (!ec) Sweep();
    });
  }

  asio::awaitable<void> Forward(net::Request req, std::shared_ptr<net::ResponseWriter> w) {
    ++requests;
    net::ClientRequest up;
    up.method = req.method;
    up.target = req.target;
    up.body = std::move(req.body);
    for (const char* h : kForwarded) {
      std::string v = req.Header(h);
      if (!v.empty()) up.headers[h] = v;
    }
    // e2e: the request sealed to the fleet key; the clear Authorization
    // stays here (it travels inside the ciphertext).
    std::optional<E2eSession::Sealed> sealed;
    const std::string plain_body = options.e2e ? up.body : std::string();
    std::vector<channel::e2e::KeyConfig> e2e_tried;  // the keys this request was sealed to, in order
    using KeyChoice = std::optional<channel::e2e::KeyConfig>;  // nullopt: the session's current key
    auto sealed_to = [session = options.e2e, method = req.method, target = req.target,
                      auth = req.Header("authorization"), body = &plain_body](const KeyChoice& key) {
      return session->Seal(method, target, auth, *body, key ? &*key : nullptr);
    };
    auto adopt = [&](Result<E2eSession::Sealed> s) -> bool {
      if (!s.ok()) {
        // kPermission: no key may be sealed to now (its list refused, or too
        // old to vouch for it): not the request's fault.
        const bool no_key = s.code() == Errc::kPermission;
        w->Send(s.code() == Errc::kInvalidArgument ? 405 : no_key ? 503 : 400, "application/json",
                ErrorJson(s.detail(), "cllm_e2e_error", no_key ? "e2e_no_usable_key" : "e2e_request_refused"));
        return false;
      }
      sealed = std::move(s).value();
      up = sealed->request;
      for (const char* h : {"accept", "user-agent"}) {
        std::string v = req.Header(h);
        if (!v.empty()) up.headers[h] = v;
      }
      return true;
    };
    if (options.e2e) {
      auto seal_current = [&] { return sealed_to(std::nullopt); };
      auto s = co_await SealWith(seal_current);  // (co_await kept out of conditions: GCC 12 has miscompiled them)
      if (!adopt(std::move(s))) co_return;
    }
    std::optional<E2eToWriter> e2w;  // e2e: this attempt's answer
    bool streaming = false;     // the client's response has started
    bool event_stream = false;  // ... as server-sent events
    bool client_ok = true;
    // The proxy's client leaving closes the leased upstream connection, so
    // the upstream sees EOF and cancels the request (no generation runs on
    // for nobody, no pooled connection stays busy). The callback runs on the
    // proxy server's I/O thread: it posts onto the pool's.
    struct Watch {
      net::ClientConnection* leased = nullptr;  // during the upstream request
      bool gone = false;
    };
    auto watch = std::make_shared<Watch>();
    w->OnClientGone([poster = poster, watch] {
      std::lock_guard<std::mutex> lock(poster->mu);
      if (poster->ioc == nullptr) return;
      asio::post(*poster->ioc, [watch] {
        watch->gone = true;
        if (watch->leased != nullptr) watch->leased->Close();
      });
    });
    AttemptGate gate;  // per attempt: holds a 503 back, counts what was passed on
    net::HeadSink on_head = [&](const net::ClientResponse& head) {
      if (e2w) {
        if (gate.Head(head.status)) e2w->Head(head.status, head.Header("content-type"));
        return;
      }
      if (!gate.Head(head.status) || !head.chunked) return;
      std::string retry_after = head.Header("retry-after");
      if (!retry_after.empty() && SafeHeaderValue(retry_after)) w->AddHeader("Retry-After", retry_after);
      std::string ct = head.Header("content-type");
      if (ct.empty() || !SafeHeaderValue(ct)) ct = "application/octet-stream";
      streaming = true;
      event_stream = ct.rfind("text/event-stream", 0) == 0;
      client_ok = w->BeginStream(head.status, ct);
    };
    net::BodySink on_body = [&](std::string_view bytes) {
      if (!gate.Body(bytes.size())) return true;  // a held-back 503: read it to its end
      if (e2w) return e2w->Body(bytes);
      if (streaming && client_ok) client_ok = w->Write(bytes);
      return client_ok;  // the proxy's client left: stop reading upstream
    };
    Attempts at(*replicas);
    bool after_failure = false;  // then never an idle connection: it may be as dead as the last one
    while (auto next = at.Begin()) {
      if (next->delay.count() > 0) {
        asio::steady_timer pause(ioc, next->delay);
        boost::system::error_code ignored;
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      }
      auto conn = co_await Acquire(next->replica, after_failure);
      after_failure = true;
      if (watch->gone) {
        if (conn.ok()) Release(std::move(*conn));
        co_return;
      }
      if (!conn.ok()) {
        log::warn("proxy: upstream {} failed: {}: {}", replicas->name(next->replica), net::NetErrcName(conn.code()),
                  conn.detail());
        if (at.Failed(ClientCodeOf(conn.code()), conn.detail(), std::nullopt)) {
          ++failovers;
          continue;
        }
        break;
      }
      const bool was_reused = conn->pooled;
      if (was_reused) ++reused;
      gate = AttemptGate();
      if (sealed) {
        auto answer = E2eAnswer::Create(sealed->secret);
        if (!answer.ok()) {
          Release(std::move(*conn));
          w->Send(500, "application/json", ErrorJson(answer.detail(), "cllm_e2e_error", "e2e_internal"));
          co_return;
        }
        e2w.emplace(w, std::move(answer).value());
      }
      watch->leased = conn->conn.get();
      auto r = co_await conn->conn->Request(up, on_body, on_head);
      watch->leased = nullptr;
      Release(std::move(*conn));
      if (watch->gone) co_return;  // nobody to answer, nothing to resend
      if (e2w && r.ok() && !gate.unavailable()) {
        if (e2w->encrypted()) {
          at.Succeeded();
          if (std::string failure = e2w->Complete(); !failure.empty()) {
            ++e2e_refused;
            log::warn("proxy: the answer of upstream {} was refused: {}", replicas->name(next->replica), failure);
          }
          co_return;
        }
        // A clear error. A key the replica does not know: seal anew to the
        // next key (NextKey: the new preferred one after a fetch, or the
        // older one still published) and send once more (not a replica
        // failure).
        const std::string code = OuterErrorCode(e2w->outer_body());
        if (E2eSession::RefreshWorthy(code)) {
          e2e_tried.push_back(sealed->key);
          // NextKey may fetch the key list from cllm-trust: off the I/O thread.
          auto pick_next = [&] { return options.e2e->NextKey(e2e_tried); };
          auto next_key = co_await OffLoop(fetching, pick_next);
          if (watch->gone) co_return;
          if (next_key) {
            auto seal_next = [&] { return sealed_to(next_key); };
            auto s = co_await SealWith(seal_next);
            if (watch->gone) co_return;
            if (!adopt(std::move(s))) co_return;  // adopt() answered
            ++e2e_key_resends;
            at.Again();  // the same replica, not a failure (NextKey bounds the keys per request)
            continue;
          }
        }
        at.Succeeded();
        // A clear error passed on as ours (after every key refused, saying
        // how many were tried); a clear non-error is a forgery: 502.
        const size_t keys_tried = E2eSession::RefreshWorthy(code) ? e2e_tried.size() : 0;
        if (!e2w->clear_error()) ++e2e_refused;  // counted before the local client hears of it
        if (std::string failure = e2w->RelayClear(r->Header("retry-after"), keys_tried); !failure.empty()) {
          log::warn("proxy: the answer of upstream {} was refused: {}", replicas->name(next->replica), failure);
        }
        co_return;
      }
      if (e2w && !r.ok() && e2w->streaming()) {
        // Cut off mid-answer: the frames so far were delivered; never resent.
        ++incomplete;
        e2w->Fail("e2e_truncated: upstream " + replicas->name(next->replica) + " closed the answer: " + r.detail());
        co_return;
      }
      if (r.ok() && !gate.unavailable()) {
        at.Succeeded();
        if (streaming) {
          if (client_ok) w->EndStream();
          co_return;
        }
        std::string retry_after = r->Header("retry-after");
        if (!retry_after.empty() && SafeHeaderValue(retry_after)) w->AddHeader("Retry-After", retry_after);
        std::string ct = r->Header("content-type");
        if (ct.empty() || !SafeHeaderValue(ct)) ct = "application/json";
        w->Send(r->status, ct, r->body);
        co_return;
      }
      const ClientErrc code = r.ok() ? ClientErrc::kUnavailable : ClientCodeOf(r.code());
      const std::string detail = r.ok() ? "answered 503 (draining or not ready)" : r.detail();
      // The server closed a kept-alive connection before answering (its idle
      // timeout raced us): nothing of this request was processed.
      const bool stale = !r.ok() && r.code() == net::NetErrc::kClosed && was_reused;
      if (stale) ++retries;
      if (at.Failed(code, detail, gate.delivered(), stale)) {
        if (!stale) ++failovers;
        if (!stale) log::warn("proxy: upstream {} failed before answering: {}: {}", replicas->name(next->replica),
                              ClientErrcName(code), detail);
        continue;
      }
      break;
    }
    const Error<ClientErrc> e = at.FinalError();
    if (e.code == ClientErrc::kIncomplete) {
      ++incomplete;
      log::warn("proxy: {}", e.detail);
      if (streaming) {
        // An error event the client's SDK raises, then the stream is cut off
        // (the writer is dropped without EndStream): never a complete-looking
        // but truncated answer.
        if (event_stream && client_ok) {
          w->Write("data: " + ErrorJson(e.detail, "cllm_proxy_error", "upstream_incomplete") + "\n\n");
        }
        co_return;
      }
      w->Send(502, "application/json", ErrorJson(e.detail, "cllm_proxy_error", "upstream_incomplete"));
      co_return;
    }
    const bool refused = e.code == ClientErrc::kAttestation;
    log::warn("proxy: {}", e.detail);
    // A deadline is 504; every replica draining (503 each) stays 503.
    w->Send(e.code == ClientErrc::kTimeout ? 504 : e.code == ClientErrc::kUnavailable ? 503 : 502, "application/json",
            ErrorJson((refused ? "upstream refused by attestation policy: " : "upstream unreachable: ") + e.detail,
                      refused ? "cllm_attestation_error" : "cllm_proxy_error", ClientErrcName(e.code)));
  }
};

UpstreamPool::UpstreamPool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

UpstreamPool::~UpstreamPool() {
  {
    std::lock_guard<std::mutex> lock(impl_->poster->mu);
    impl_->poster->ioc = nullptr;
  }
  // Stop the thread; then Impl's members close the idle connections, and
  // its io_context, destroyed last, drops the requests still in flight
  // (their writers cut the client's responses off).
  impl_->work.reset();
  impl_->ioc.stop();
  impl_->thread.join();
}

ClientResult<std::unique_ptr<UpstreamPool>> UpstreamPool::Create(std::vector<Url> upstreams,
                                                                 attestation::Policy policy, PoolOptions options) {
  if (upstreams.empty()) return MakeError(ClientErrc::kBadUrl, "no upstream");
  std::vector<std::string> hosts;
  bool any_tls = false;
  for (const Url& u : upstreams) {
    if (!u.tls && !options.e2e) {
      return MakeError(ClientErrc::kBadUrl, "the upstream must be https:// (attested): " + UrlText(u));
    }
    any_tls |= u.tls;
    hosts.push_back(u.host);
  }
  if (options.e2e && any_tls && options.upstream_roots.empty()) {
    return MakeError(ClientErrc::kBadUrl, "an https:// e2e upstream needs the roots its certificate chains to");
  }
  if (options.max_connections < 1) return MakeError(ClientErrc::kBadUrl, "max_connections must be at least 1");
  auto impl = std::make_unique<Impl>();
  impl->replicas = std::make_shared<ReplicaSet>(std::move(upstreams), options.failover);
  impl->options = options;
  impl->verifier = std::make_shared<CachingVerifier>(std::move(policy), options.reverify_after);
  crypto::PeerVerifier verify = [v = impl->verifier](const std::vector<crypto::Certificate>& chain) {
    return v->Verify(chain);
  };
  if (options.e2e) {
    verify = [roots = options.upstream_roots, hosts](const std::vector<crypto::Certificate>& chain) {
      return VerifyWebServer(chain, roots, hosts);
    };
  }
  auto ctx = crypto::TlsContext::Client(std::move(verify));
  if (!ctx.ok()) return MakeError(ClientErrc::kTls, ctx.detail());
  // Requests leave in padded records (docs/security.md).
  if (auto st = (*ctx)->SetRecordPadding(kRequestRecordPadding); !st.ok()) return MakeError(ClientErrc::kTls, st.detail());
  auto tls = net::TlsStreamContext::Make(std::move(ctx).value());
  if (!tls.ok()) return MakeError(ClientErrc::kTls, tls.detail());
  impl->tls = std::move(tls).value();
  Impl* raw = impl.get();
  raw->poster->ioc = &raw->ioc;
  asio::post(raw->ioc, [raw] { raw->Sweep(); });
  raw->thread = std::thread([raw] { raw->ioc.run(); });
  return std::unique_ptr<UpstreamPool>(new UpstreamPool(std::move(impl)));
}

ClientResult<channel::VerifiedServer> UpstreamPool::Probe(size_t replica) {
  std::promise<ClientResult<channel::VerifiedServer>> done;
  Impl* impl = impl_.get();
  if (replica >= impl->replicas->size()) return MakeError(ClientErrc::kBadUrl, "no such upstream");
  asio::co_spawn(
      impl->ioc,
      [impl, replica, &done]() -> asio::awaitable<void> {
        auto c = co_await impl->Acquire(replica, /*fresh=*/true);
        if (!c.ok()) {
          impl->replicas->MarkFailed(replica);
          done.set_value(c.code() == net::NetErrc::kRefused ? MakeError(ClientErrc::kAttestation, c.detail())
                                                            : FromNet(c.error()));
          co_return;
        }
        auto& conn = c->conn;
        auto server = conn->PeerChain().empty() ? std::nullopt : impl->verifier->ServerFor(conn->PeerChain().front());
        impl->Release(std::move(*c));
        if (!server) {
          done.set_value(MakeError(ClientErrc::kAttestation, "the handshake left no verified server"));
        } else {
          done.set_value(std::move(*server));
        }
      },
      asio::detached);
  return done.get_future().get();
}

void UpstreamPool::Forward(const net::Request& request, std::shared_ptr<net::ResponseWriter> writer) {
  Impl* impl = impl_.get();
  asio::co_spawn(
      impl->ioc,
      [impl, request, writer = std::move(writer)]() -> asio::awaitable<void> {
        co_await impl->Forward(request, writer);  // lvalues: no temporaries inside co_await (GCC 12)
      },
      asio::detached);
}

const ReplicaSet& UpstreamPool::replicas() const { return *impl_->replicas; }

PoolStats UpstreamPool::Stats() const {
  PoolStats s;
  s.connections_opened = impl_->opened.load();
  s.verifications = impl_->verifier->verifications();
  s.verifications_reused = impl_->verifier->reused();
  s.refusals = impl_->verifier->refusals();
  s.requests = impl_->requests.load();
  s.reused = impl_->reused.load();
  s.retries = impl_->retries.load();
  s.failovers = impl_->failovers.load();
  s.incomplete = impl_->incomplete.load();
  s.e2e_refused = impl_->e2e_refused.load();
  s.e2e_key_resends = impl_->e2e_key_resends.load();
  s.open = impl_->open_now.load();
  s.idle = impl_->idle_now.load();
  return s;
}

}  // namespace cllm::client
