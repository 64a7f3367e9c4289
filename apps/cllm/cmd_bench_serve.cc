// `cllm bench serve --url URL --users N [--requests R] --prompt-len L --gen-len G [--json]`
//
// Load-tests a running cllm-server the way users see it: N concurrent users
// (coroutines on a few threads, not a thread each) each keep one connection
// and send R streamed chat completions one after another. The server-sent
// events are parsed as a client would (client/sse.h: `data:` lines, the
// "[DONE]" sentinel, error events), and we report time to first token,
// inter-token latency, end-to-end latency (p50/p90/p99), aggregate
// generated tokens/s and failed requests by kind. Against https:// every
// user connection is RA-TLS-verified in its own handshake (no cache: one
// full verification per connection, counted); the time of one handshake +
// verification on an idle server is measured apart. Against the server's
// http:// debug listener the same load runs without the channel, so the two
// results give the cost of the attested channel.
//
// Several --url (or a comma list) are replicas of one service, one --url may
// be a relay in front of them: users spread over the replicas, and a request
// that fails before any response byte is failed over to another replica over
// a newly verified connection (client/replicas.h); one cut off after bytes
// arrived counts as "incomplete", never as a success. The report counts
// final failures by class ("errors"), failed attempts that were retried by
// class ("retried"), requests served per replica, and lists failures with
// their start time ("failures", the first 100) so a test can tell requests
// that started before a replica died from those that started after.
// --duration runs the load for a time instead of a number of requests.
#include <utility>  // before Asio: 1.74's awaitable.hpp uses std::exchange without including it

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <thread>

#include "apps/cllm/bench_stats.h"
#include "apps/cllm/command.h"
#include "apps/cllm/remote_common.h"
#include "client/replicas.h"
#include "client/sse.h"
#include "net/async_client.h"

namespace cllm::app {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using nlohmann::json;
using Kind = client::CompletionEvent::Kind;

struct Args {
  std::vector<std::string> urls;
  std::string policy;
  std::string api_key;
  int users = 4;
  int prompt_len = 64;
  int gen_len = 64;
  int requests = 2;     // per user
  int handshakes = 20;  // timed one by one before the load (https only)
  int threads = 2;      // I/O threads running all users
  double duration_s = 0;  // > 0: each user sends requests until this many seconds passed (--requests ignored)
  int attempts = 0;       // per request across replicas; 0: max(3, replicas)
  bool json_out = false;
  bool accept_unpinned = false;  // --insecure-accept-unpinned
  TimeoutArgs timeouts;
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

json ToJson(const Percentiles& p) { return {{"p50", p.p50}, {"p90", p.p90}, {"p99", p.p99}, {"mean", p.mean}, {"n", p.n}}; }

// A prompt of roughly `len` tokens for a story model: repeated common words.
std::string Prompt(int len, int user) {
  static const char* kWords[] = {"the", "little", "dog", "saw", "a", "big", "red", "ball", "in", "park"};
  std::string s = "User " + std::to_string(user) + ":";
  for (int i = 0; i < len; ++i) s += std::string(" ") + kWords[(i + user) % 10];
  return s;
}

// What one user measured; each user writes only its own.
struct FailureRecord {
  int64_t start_unix_ms = 0, end_unix_ms = 0;
  std::string kind, replica, detail;
};

int64_t UnixMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

struct UserResult {
  std::vector<double> ttft, itl, e2e, connect;
  long tokens = 0;
  int ok = 0;
  std::map<std::string, int> errors;       // final failures: kind → count
  std::map<std::string, int> retried;      // failed attempts that were tried again: kind → count
  std::map<std::string, int> served_by;    // replica → requests it completed
  std::map<std::string, int> failed_on;    // replica → failed attempts (retried or not)
  int failed_over = 0;                     // requests that succeeded after a failed attempt
  std::vector<FailureRecord> failures;     // the first few, with times
  std::string first_error;
  void Fail(const std::string& kind, const std::string& detail, std::chrono::system_clock::time_point start = {},
            const std::string& replica = "") {
    ++errors[kind];
    if (first_error.empty()) first_error = kind + ": " + detail;
    if (failures.size() < 100) {
      failures.push_back({UnixMs(start), UnixMs(std::chrono::system_clock::now()), kind, replica, detail.substr(0, 500)});
    }
  }
};

struct Load {
  const Args& args;
  std::shared_ptr<client::ReplicaSet> replicas;
  std::string model;
  std::optional<Clock::time_point> until;  // --duration
  std::shared_ptr<net::TlsStreamContext> tls;  // null for http://
  net::ClientOptions options;
};

// What one attempt of a request came to.
struct AttemptOutcome {
  bool done = false;  // answered (recorded in UserResult, success or not): no further attempt
  client::ClientErrc code = client::ClientErrc::kProtocol;  // else: the transport failure
  net::NetErrc net_code = net::NetErrc::kProtocol;
  std::string detail;
};

// One streamed completion on `conn`. An answer (success or an error the
// server gave) is recorded and done; a transport failure or a 503 is
// returned for the failover decision (`gate` says what reached us).
asio::awaitable<AttemptOutcome> Complete(const Load& load, net::ClientConnection& conn, int user, int n,
                                         const std::string& replica, client::AttemptGate& gate,
                                         std::chrono::system_clock::time_point started, UserResult& out) {
  json body = {{"messages", {{{"role", "user"}, {"content", Prompt(load.args.prompt_len, user)}}}},
               {"max_tokens", load.args.gen_len}, {"temperature", 0.8}, {"seed", user * 1000 + n}, {"stream", true}};
  if (!load.model.empty()) body["model"] = load.model;
  net::ClientRequest req{"POST", "/v1/chat/completions", {}, body.dump()};
  if (!load.args.api_key.empty()) req.headers["Authorization"] = "Bearer " + load.args.api_key;

  client::SseParser sse;
  bool done = false;
  std::string stream_error;
  long content_events = 0, usage_tokens = -1;
  double ttft = -1;
  std::vector<double> itl;
  Clock::time_point last;
  const auto t0 = Clock::now();
  net::HeadSink head = [&](const net::ClientResponse& h) { gate.Head(h.status); };
  net::BodySink sink = [&](std::string_view bytes) {
    if (!gate.Body(bytes.size())) return true;  // a 503 being held back
    return sse.Feed(bytes, [&](const client::SseEvent& event) {
      const client::CompletionEvent e = client::ClassifyCompletionEvent(event);
      if (e.kind == Kind::kDone) done = true;
      if (e.kind == Kind::kError && stream_error.empty()) stream_error = e.error_type + ": " + e.text;
      if (e.kind == Kind::kUsage) usage_tokens = e.completion_tokens;
      if (e.kind != Kind::kText || e.text.empty()) return;
      const auto now = Clock::now();
      if (ttft < 0) {
        ttft = Ms(now - t0);
      } else {
        itl.push_back(Ms(now - last));
      }
      last = now;
      ++content_events;
    });
  };
  auto r = co_await conn.Request(req, sink, head);
  const double e2e = Ms(Clock::now() - t0);
  AttemptOutcome o;
  if (!r.ok()) {
    o.code = client::ClientCodeOf(r.code());
    o.net_code = r.code();
    o.detail = r.detail();
    co_return o;
  }
  if (gate.unavailable()) {
    o.code = client::ClientErrc::kUnavailable;
    o.detail = "answered 503: " + r->body.substr(0, 200);
    co_return o;
  }
  o.done = true;
  if (r->status != 200) {
    out.Fail("http_" + std::to_string(r->status), r->body.substr(0, 200), started, replica);
  } else if (sse.failed()) {
    out.Fail("sse_oversized_event", "an event over the parser's limit", started, replica);
  } else if (!stream_error.empty()) {
    out.Fail("stream_error", stream_error, started, replica);
  } else if (!done) {
    out.Fail("no_done", "the stream ended without [DONE]", started, replica);
  } else {
    ++out.ok;
    ++out.served_by[replica];
    out.tokens += usage_tokens >= 0 ? usage_tokens : content_events;
    if (ttft >= 0) out.ttft.push_back(ttft);
    out.itl.insert(out.itl.end(), itl.begin(), itl.end());
    out.e2e.push_back(e2e);
  }
  co_return o;
}

// Request sends request `n` of `user` with failover: on the user's kept-alive
// connection while its replica is healthy, else over a new connection (each
// verified in its handshake) to the replica the set picks.
asio::awaitable<void> Request(const Load& load, int user, int n, std::unique_ptr<net::ClientConnection>& conn,
                              size_t& conn_replica, UserResult& out) {
  const auto started = std::chrono::system_clock::now();
  client::ReplicaSet& set = *load.replicas;
  client::Attempts at(set);
  std::optional<size_t> prefer;
  if (conn && conn->is_open()) prefer = conn_replica;
  bool after_failure = false;
  while (auto next = at.Begin(prefer)) {
    prefer.reset();
    if (next->delay.count() > 0) {
      auto ex = co_await asio::this_coro::executor;
      asio::steady_timer pause(ex, next->delay);
      boost::system::error_code ignored;
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    const std::string& name = set.name(next->replica);
    const bool reuse = !after_failure && conn && conn->is_open() && conn_replica == next->replica;
    after_failure = true;
    if (!reuse) {
      conn.reset();
      const client::Url& url = set.url(next->replica);
      const auto t0 = Clock::now();
      auto c = co_await net::ClientConnection::Connect(url.host, url.port, load.tls, load.options);
      if (!c.ok()) {
        const client::ClientErrc code = client::ClientCodeOf(c.code());
        ++out.failed_on[name];
        if (at.Failed(code, c.detail(), std::nullopt)) {
          ++out.retried[client::ClientErrcName(code)];
          continue;
        }
        break;
      }
      out.connect.push_back(Ms(Clock::now() - t0));
      conn = std::move(c).value();
      conn_replica = next->replica;
    }
    client::AttemptGate gate;
    AttemptOutcome o = co_await Complete(load, *conn, user, n, name, gate, started, out);
    if (o.done) {
      at.Succeeded();
      if (at.attempts() > 1) ++out.failed_over;
      co_return;
    }
    const bool stale = reuse && o.net_code == net::NetErrc::kClosed && !gate.head_seen();
    if (!stale) ++out.failed_on[name];
    if (at.Failed(o.code, o.detail, gate.delivered(), stale)) {
      ++out.retried[stale ? "closed_idle" : client::ClientErrcName(o.code)];
      continue;
    }
    break;
  }
  conn.reset();
  const Error<client::ClientErrc> e = at.FinalError();
  const std::string replica = at.failures().empty() ? "" : set.name(at.failures().back().replica);
  out.Fail(client::ClientErrcName(e.code), e.detail, started, replica);
}

asio::awaitable<void> RunUser(const Load& load, int user, UserResult& out) {
  std::unique_ptr<net::ClientConnection> conn;
  size_t conn_replica = 0;
  for (int n = 0; load.until ? Clock::now() < *load.until : n < load.args.requests; ++n) {
    co_await Request(load, user, n, conn, conn_replica, out);
  }
}

// Verifier for every user connection: a full RA-TLS verification each time.
crypto::PeerVerifier CountingVerifier(attestation::Policy policy, std::atomic<long>* count) {
  return [policy = std::move(policy), count](const std::vector<crypto::Certificate>& chain) -> crypto::CryptoStatus {
    if (chain.empty()) return MakeError(crypto::CryptoErrc::kChainInvalid, "no_evidence: no certificate");
    channel::VerifyOptions o;
    o.at = std::chrono::system_clock::now();
    auto v = channel::VerifyServerCertificate(chain.front(), policy, o);
    if (!v.ok()) {
      return MakeError(crypto::CryptoErrc::kChainInvalid, std::string(channel::ChannelErrcName(v.code())) + ": " + v.detail());
    }
    if (auto pinned = client::RequirePinned(policy, *v); !pinned.ok()) {
      return MakeError(crypto::CryptoErrc::kChainInvalid, pinned.detail());
    }
    ++*count;
    return OkStatus();
  };
}

int BenchServe(Args a) {
  if (a.api_key.empty()) {
    if (const char* k = std::getenv("CLLM_API_KEY")) a.api_key = k;
  }
  auto urls = client::ParseReplicaUrls(a.urls);
  if (!urls.ok()) return Fail(urls.detail(), 2);
  const bool tls = urls->front().tls;
  const std::string url_text = [&] {
    std::string t;
    for (const auto& u : *urls) t += (t.empty() ? "" : ",") + client::UrlText(u);
    return t;
  }();
  CLLM_ASSIGN_OR_EXIT(auto policy, LoadClientPolicy(a.policy, a.accept_unpinned));
  const net::ClientOptions options = a.timeouts.Options();
  client::FailoverOptions fo;
  fo.max_attempts = a.attempts;
  auto replicas = std::make_shared<client::ReplicaSet>(*urls, fo);
  auto connect = [&](size_t i) {
    const client::Url& u = replicas->url(i % replicas->size());
    return tls ? client::Connect(u, policy, nullptr, options) : client::ConnectPlain(u, options);
  };

  // --- handshake + verification, one at a time on an idle server ----------
  std::vector<double> handshake_ms;
  if (tls) {
    for (int i = 0; i < a.handshakes; ++i) {
      auto t0 = Clock::now();
      auto c = connect(static_cast<size_t>(i));
      if (!c.ok()) return Fail(std::string(client::ClientErrcName(c.code())) + ": " + c.detail(), 1);
      handshake_ms.push_back(Ms(Clock::now() - t0));
    }
  }
  Load load{a, replicas, "", std::nullopt, nullptr, options};
  {
    // The model name from the first replica that answers.
    auto c = connect(0);
    for (size_t i = 1; !c.ok() && i < replicas->size(); ++i) c = connect(i);
    if (!c.ok()) return Fail(std::string(client::ClientErrcName(c.code())) + ": " + c.detail(), 2);
    if ((*c)->server()) {
      load.model = (*c)->server()->payload.model_name;
    } else if (auto m = (*c)->Request("GET", "/v1/models"); m.ok() && m->status == 200) {
      auto j = json::parse(m->body, nullptr, false);
      if (j.is_object() && j.contains("data") && j["data"].is_array() && !j["data"].empty() &&
          j["data"][0].is_object() && j["data"][0].contains("id") && j["data"][0]["id"].is_string()) {
        load.model = j["data"][0]["id"].get<std::string>();
      }
    }
  }
  std::atomic<long> verifications{0};
  if (tls) {
    auto ctx = crypto::TlsContext::Client(CountingVerifier(policy, &verifications));
    if (!ctx.ok()) return Fail(ctx.detail(), 2);
    if (auto st = (*ctx)->SetRecordPadding(client::kRequestRecordPadding); !st.ok()) return Fail(st.detail(), 2);
    auto s = net::TlsStreamContext::Make(std::move(ctx).value());
    if (!s.ok()) return Fail(s.detail(), 2);
    load.tls = std::move(s).value();
  }

  // --- load: every user a coroutine on its own strand --------------------
  asio::io_context ioc(a.threads);
  std::vector<UserResult> results(static_cast<size_t>(a.users));
  for (int u = 0; u < a.users; ++u) {
    asio::co_spawn(
        asio::make_strand(ioc),
        [&load, u, &results]() -> asio::awaitable<void> { co_await RunUser(load, u, results[static_cast<size_t>(u)]); },
        asio::detached);
  }
  const auto start = Clock::now();
  if (a.duration_s > 0) {
    load.until = start + std::chrono::milliseconds(static_cast<int64_t>(a.duration_s * 1000));
  }
  std::vector<std::thread> threads;
  for (int t = 1; t < a.threads; ++t) threads.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  // --- report ----------------------------------------------------------------
  std::vector<double> ttft, itl, e2e, conn_ms;
  std::map<std::string, int> errors, retried;
  std::map<std::string, std::map<std::string, int>> per_replica;
  std::vector<FailureRecord> failures;
  std::string first_error;
  long tokens = 0, ok = 0, failed = 0, failed_over = 0;
  for (const auto& r : results) {
    for (const auto& [kind, n] : r.retried) retried[kind] += n;
    for (const auto& [name, n] : r.served_by) per_replica[name]["ok"] += n;
    for (const auto& [name, n] : r.failed_on) per_replica[name]["failed_attempts"] += n;
    failed_over += r.failed_over;
    for (const auto& f : r.failures) {
      if (failures.size() < 100) failures.push_back(f);
    }
    ttft.insert(ttft.end(), r.ttft.begin(), r.ttft.end());
    itl.insert(itl.end(), r.itl.begin(), r.itl.end());
    e2e.insert(e2e.end(), r.e2e.begin(), r.e2e.end());
    conn_ms.insert(conn_ms.end(), r.connect.begin(), r.connect.end());
    tokens += r.tokens;
    ok += r.ok;
    for (const auto& [kind, n] : r.errors) {
      errors[kind] += n;
      failed += n;
    }
    if (first_error.empty()) first_error = r.first_error;
  }
  const auto hs = Summarize(handshake_ms), tf = Summarize(ttft), il = Summarize(itl), ee = Summarize(e2e),
             cn = Summarize(conn_ms);
  const double tps = seconds > 0 ? static_cast<double>(tokens) / seconds : 0;
  if (a.json_out) {
    json fl = json::array();
    for (const auto& f : failures) {
      fl.push_back({{"start_unix_ms", f.start_unix_ms}, {"end_unix_ms", f.end_unix_ms}, {"kind", f.kind},
                    {"replica", f.replica}, {"detail", f.detail}});
    }
    json out = {{"url", url_text}, {"replicas", per_replica}, {"attested", tls}, {"model", load.model},
                {"users", a.users}, {"requests_per_user", a.duration_s > 0 ? json(nullptr) : json(a.requests)},
                {"duration_s", a.duration_s}, {"prompt_len", a.prompt_len}, {"gen_len", a.gen_len},
                {"threads", a.threads}, {"ok", ok}, {"failed", failed}, {"errors", errors}, {"retried", retried},
                {"failed_over", failed_over}, {"failures", fl}, {"first_error", first_error}, {"tokens", tokens},
                {"seconds", seconds}, {"tokens_per_second", tps}, {"ttft_ms", ToJson(tf)}, {"itl_ms", ToJson(il)},
                {"e2e_ms", ToJson(ee)}, {"connect_under_load_ms", ToJson(cn)}};
    if (tls) {
      out["handshake_verify_ms"] = ToJson(hs);
      out["verifications"] = verifications.load();
    }
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    const std::string load_text = a.duration_s > 0 ? std::to_string(a.duration_s) + " s"
                                                    : std::to_string(a.requests) + " requests";
    std::printf("%s — %s, %d users × %s, prompt ~%d words, %d tokens each, %d client threads\n",
                url_text.c_str(), tls ? "RA-TLS (verified per connection)" : "plain HTTP (not attested)", a.users,
                load_text.c_str(), a.prompt_len, a.gen_len, a.threads);
    if (tls) {
      std::printf("  handshake + verification  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  (idle server, n=%zu)\n", hs.p50,
                  hs.p90, hs.p99, hs.n);
    }
    std::printf("  connect under load        p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  (n=%zu%s)\n", cn.p50, cn.p90,
                cn.p99, cn.n, tls ? (", " + std::to_string(verifications.load()) + " verifications").c_str() : "");
    std::printf("  time to first token       p50 %.1f ms  p90 %.1f ms  p99 %.1f ms\n", tf.p50, tf.p90, tf.p99);
    std::printf("  inter-token latency       p50 %.2f ms  p90 %.2f ms  p99 %.2f ms\n", il.p50, il.p90, il.p99);
    std::printf("  end-to-end                p50 %.1f ms  p90 %.1f ms  p99 %.1f ms\n", ee.p50, ee.p90, ee.p99);
    std::printf("  aggregate                 %.1f tokens/s (%ld tokens in %.2f s), %ld ok, %ld failed\n", tps, tokens,
                seconds, ok, failed);
    for (const auto& [kind, n] : errors) std::printf("    %-22s %d\n", kind.c_str(), n);
    if (!retried.empty() || replicas->size() > 1) {
      std::printf("  failover                  %ld requests served after a failed attempt; retried attempts:%s\n",
                  failed_over, retried.empty() ? " none" : "");
      for (const auto& [kind, n] : retried) std::printf("    %-22s %d\n", kind.c_str(), n);
      for (const auto& [name, counts] : per_replica) {
        auto get = [&](const char* k) { auto it = counts.find(k); return it == counts.end() ? 0 : it->second; };
        std::printf("  replica %-30s %d ok, %d failed attempts\n", name.c_str(), get("ok"), get("failed_attempts"));
      }
    }
    if (!first_error.empty()) std::printf("  first failure: %s\n", first_error.c_str());
  }
  return failed == 0 ? 0 : 1;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  static Args args;
  CLI::App* bench = SubcommandGroup(app, "bench", "Benchmarks");
  auto* cmd = bench->add_subcommand("serve", "Load-test a running server: TTFT, inter-token latency, tokens/s");
  cmd->add_option("--url", args.urls,
                  "https://HOST:PORT (RA-TLS) or http://HOST:PORT (debug listener); repeat it or give a comma list "
                  "for replicas to spread over and fail over between")
      ->required();
  AddAttemptsFlag(cmd, &args.attempts);
  cmd->add_option("--duration", args.duration_s,
                  "Seconds to keep every user sending requests (instead of --requests)")
      ->check(CLI::Range(0.0, 86400.0));
  cmd->add_option("--policy", args.policy, "Client policy JSON for https:// (must pin the server, as for chat)");
  AddUnpinnedFlag(cmd, &args.accept_unpinned);
  cmd->add_option("--api-key", args.api_key, "API key (default: $CLLM_API_KEY)");
  cmd->add_option("--users", args.users, "Concurrent users (one connection each)")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  cmd->add_option("--prompt-len", args.prompt_len, "Prompt length in words")->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--gen-len", args.gen_len, "Tokens to generate per request")->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--requests", args.requests, "Requests per user")->check(CLI::Range(1, 100000))->capture_default_str();
  cmd->add_option("--handshakes", args.handshakes, "RA-TLS handshakes to time one by one before the load")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  cmd->add_option("--threads", args.threads, "Client I/O threads running all users")->check(CLI::Range(1, 64))
      ->capture_default_str();
  // N users connect at once, and each handshake waits for the client's own
  // RA-TLS verifications of the connections before it: 1000 of them take
  // several seconds of this machine's CPU, so the bench allows 30 s.
  args.timeouts.connect_s = 30;
  AddTimeoutFlags(cmd, &args.timeouts);
  cmd->add_flag("--json", args.json_out, "Print one JSON object");
  cmd->callback([&ctx] { ctx.exit_code = BenchServe(args); });
}

CommandRegistration reg{"bench-serve", 60, Setup};

}  // namespace
}  // namespace cllm::app
