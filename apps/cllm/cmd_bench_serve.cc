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
#include <utility>  // before Asio: 1.74's awaitable.hpp uses std::exchange without including it

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <thread>

#include "apps/cllm/bench_stats.h"
#include "apps/cllm/command.h"
#include "apps/cllm/remote_common.h"
#include "client/sse.h"
#include "net/async_client.h"

namespace cllm::app {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using nlohmann::json;
using Kind = client::CompletionEvent::Kind;

struct Args {
  std::string url;
  std::string policy;
  std::string api_key;
  int users = 4;
  int prompt_len = 64;
  int gen_len = 64;
  int requests = 2;     // per user
  int handshakes = 20;  // timed one by one before the load (https only)
  int threads = 2;      // I/O threads running all users
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
struct UserResult {
  std::vector<double> ttft, itl, e2e, connect;
  long tokens = 0;
  int ok = 0;
  std::map<std::string, int> errors;  // kind → count
  std::string first_error;
  void Fail(const std::string& kind, const std::string& detail) {
    ++errors[kind];
    if (first_error.empty()) first_error = kind + ": " + detail;
  }
};

struct Load {
  const Args& args;
  client::Url url;
  std::string model;
  std::shared_ptr<net::TlsStreamContext> tls;  // null for http://
  net::ClientOptions options;
};

// One streamed completion on `conn`; false when the connection is unusable.
asio::awaitable<void> Complete(const Load& load, net::ClientConnection& conn, int user, int n, UserResult& out) {
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
  net::BodySink sink = [&](std::string_view bytes) {
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
  auto r = co_await conn.Request(req, sink);
  const double e2e = Ms(Clock::now() - t0);
  if (!r.ok()) co_return out.Fail(net::NetErrcName(r.code()), r.detail());
  if (r->status != 200) co_return out.Fail("http_" + std::to_string(r->status), r->body.substr(0, 200));
  if (sse.failed()) co_return out.Fail("sse_oversized_event", "an event over the parser's limit");
  if (!stream_error.empty()) co_return out.Fail("stream_error", stream_error);
  if (!done) co_return out.Fail("no_done", "the stream ended without [DONE]");
  ++out.ok;
  out.tokens += usage_tokens >= 0 ? usage_tokens : content_events;
  if (ttft >= 0) out.ttft.push_back(ttft);
  out.itl.insert(out.itl.end(), itl.begin(), itl.end());
  out.e2e.push_back(e2e);
}

asio::awaitable<void> RunUser(const Load& load, int user, UserResult& out) {
  std::unique_ptr<net::ClientConnection> conn;
  for (int n = 0; n < load.args.requests; ++n) {
    if (!conn || !conn->is_open()) {  // the first request, or the server closed the connection
      const auto t0 = Clock::now();
      auto c = co_await net::ClientConnection::Connect(load.url.host, load.url.port, load.tls, load.options);
      if (!c.ok()) {
        out.Fail(std::string("connect_") + net::NetErrcName(c.code()), c.detail());
        continue;
      }
      out.connect.push_back(Ms(Clock::now() - t0));
      conn = std::move(c).value();
    }
    co_await Complete(load, *conn, user, n, out);
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
  auto url = client::ParseUrl(a.url);
  if (!url.ok()) return Fail(url.detail(), 2);
  CLLM_ASSIGN_OR_EXIT(auto policy, LoadClientPolicy(a.policy, a.accept_unpinned));
  const net::ClientOptions options = a.timeouts.Options();
  auto connect = [&]() {
    return url->tls ? client::Connect(*url, policy, nullptr, options) : client::ConnectPlain(*url, options);
  };

  // --- handshake + verification, one at a time on an idle server ----------
  std::vector<double> handshake_ms;
  if (url->tls) {
    for (int i = 0; i < a.handshakes; ++i) {
      auto t0 = Clock::now();
      auto c = connect();
      if (!c.ok()) return Fail(std::string(client::ClientErrcName(c.code())) + ": " + c.detail(), 1);
      handshake_ms.push_back(Ms(Clock::now() - t0));
    }
  }
  Load load{a, *url, "", nullptr, options};
  {
    auto c = connect();
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
  if (url->tls) {
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
  std::vector<std::thread> threads;
  for (int t = 1; t < a.threads; ++t) threads.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  // --- report ----------------------------------------------------------------
  std::vector<double> ttft, itl, e2e, conn_ms;
  std::map<std::string, int> errors;
  std::string first_error;
  long tokens = 0, ok = 0, failed = 0;
  for (const auto& r : results) {
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
    json out = {{"url", a.url}, {"attested", url->tls}, {"model", load.model}, {"users", a.users},
                {"requests_per_user", a.requests}, {"prompt_len", a.prompt_len}, {"gen_len", a.gen_len},
                {"threads", a.threads}, {"ok", ok}, {"failed", failed}, {"errors", errors},
                {"first_error", first_error}, {"tokens", tokens}, {"seconds", seconds}, {"tokens_per_second", tps},
                {"ttft_ms", ToJson(tf)}, {"itl_ms", ToJson(il)}, {"e2e_ms", ToJson(ee)},
                {"connect_under_load_ms", ToJson(cn)}};
    if (url->tls) {
      out["handshake_verify_ms"] = ToJson(hs);
      out["verifications"] = verifications.load();
    }
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("%s — %s, %d users × %d requests, prompt ~%d words, %d tokens each, %d client threads\n",
                a.url.c_str(), url->tls ? "RA-TLS (verified per connection)" : "plain HTTP (not attested)", a.users,
                a.requests, a.prompt_len, a.gen_len, a.threads);
    if (url->tls) {
      std::printf("  handshake + verification  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  (idle server, n=%zu)\n", hs.p50,
                  hs.p90, hs.p99, hs.n);
    }
    std::printf("  connect under load        p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  (n=%zu%s)\n", cn.p50, cn.p90,
                cn.p99, cn.n, url->tls ? (", " + std::to_string(verifications.load()) + " verifications").c_str() : "");
    std::printf("  time to first token       p50 %.1f ms  p90 %.1f ms  p99 %.1f ms\n", tf.p50, tf.p90, tf.p99);
    std::printf("  inter-token latency       p50 %.2f ms  p90 %.2f ms  p99 %.2f ms\n", il.p50, il.p90, il.p99);
    std::printf("  end-to-end                p50 %.1f ms  p90 %.1f ms  p99 %.1f ms\n", ee.p50, ee.p90, ee.p99);
    std::printf("  aggregate                 %.1f tokens/s (%ld tokens in %.2f s), %ld ok, %ld failed\n", tps, tokens,
                seconds, ok, failed);
    for (const auto& [kind, n] : errors) std::printf("    %-22s %d\n", kind.c_str(), n);
    if (!first_error.empty()) std::printf("  first failure: %s\n", first_error.c_str());
  }
  return failed == 0 ? 0 : 1;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  static Args args;
  CLI::App* bench = SubcommandGroup(app, "bench", "Benchmarks");
  auto* cmd = bench->add_subcommand("serve", "Load-test a running server: TTFT, inter-token latency, tokens/s");
  cmd->add_option("--url", args.url, "https://HOST:PORT (RA-TLS) or http://HOST:PORT (debug listener)")->required();
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
