// `cllm bench conns --url URL [--idle N] [--trickle M] [--server-pid PID] …`
//
// What many connections cost a cllm-server, and whether slow ones hurt
// everyone else (issue #12):
//
//   idle:    N connections opened and, for https://, handshaken (TLS done,
//            no request sent), then held; with --server-pid the server's
//            VmRSS (/proc/PID/status) before and after gives its bytes per
//            connection. At the end: how many the server had closed.
//   trickle: M connections that send a request head one byte every
//            --trickle-interval-ms and never finish it (the slowloris
//            attack); a connection the server closes is reopened.
//   probes:  a normal client (the client library, verifying the server as
//            `cllm chat` does) measures GET /health on a fresh connection,
//            and with --api-key a streamed completion's time to first
//            token, first without the trickling and then with it.
//
// The idle and trickling connections are raw Asio sockets (net::Stream) on
// one io_context and one thread, not a thread per connection, so the
// client's own cost stays small next to the server's. They accept whatever
// certificate the server presents: they are load, not users.
#include <CLI/CLI.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <thread>

#include "apps/cllm/bench_stats.h"
#include "apps/cllm/command.h"
#include "apps/cllm/remote_common.h"
#include "client/sse.h"
#include "net/stream.h"

namespace cllm::app {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Args {
  std::string url, policy, api_key, prompt = "Once upon a time";
  bool accept_unpinned = false;
  int idle = 0, trickle = 0, trickle_interval_ms = 1000, hold_s = 5, probes = 50, ttft_probes = 10, max_tokens = 8;
  int server_pid = 0, parallel = 256;
  bool json_out = false;
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// VmRssKb reads VmRSS of `pid` in KiB (-1 when unreadable).
long VmRssKb(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

// Load holds the idle and trickling connections on one io_context.
class Load {
 public:
  Load(tcp::endpoint server, std::shared_ptr<net::TlsStreamContext> tls, int trickle_interval_ms)
      : server_(server), tls_(std::move(tls)), interval_(std::chrono::milliseconds(trickle_interval_ms)) {}

  // Open starts `n` connections (at most `parallel` connecting at once);
  // `trickle` ones then trickle a request head. Returns when all are up or failed.
  void Open(int n, bool trickle, int parallel) {
    std::atomic<int> pending{n};
    auto next = std::make_shared<std::atomic<int>>(0);
    auto start_one = std::make_shared<std::function<void()>>();
    *start_one = [this, n, trickle, next, start_one, &pending] {
      if (next->fetch_add(1) >= n) return;
      Connect(trickle, [start_one, &pending](bool) {
        (*start_one)();  // before the count drops: Open may return once it is 0
        pending.fetch_sub(1);
      });
    };
    for (int i = 0; i < std::min(n, parallel); ++i) asio::post(ioc_, [start_one] { (*start_one)(); });
    while (pending.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    asio::post(ioc_, [start_one] { *start_one = nullptr; });  // break the self-reference
  }
  void Run() {
    thread_ = std::thread([this] {
      auto guard = asio::make_work_guard(ioc_);
      ioc_.run();
    });
  }
  void Stop() {
    stopping_ = true;
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }
  int opened() const { return opened_; }
  int failed() const { return failed_; }
  int closed_by_server() const { return closed_; }
  long trickled_bytes() const { return trickled_; }
  std::string first_error() {
    std::lock_guard<std::mutex> l(mu_);
    return first_error_;
  }

 private:
  struct Conn {
    std::unique_ptr<net::Stream> stream;
    asio::steady_timer timer;
    char in[1];
    size_t sent = 0;
    explicit Conn(asio::io_context& ioc) : timer(ioc) {}
  };

  void Fail(const std::string& why) {
    ++failed_;
    std::lock_guard<std::mutex> l(mu_);
    if (first_error_.empty()) first_error_ = why;
  }

  void Connect(bool trickle, std::function<void(bool)> done) {
    auto socket = std::make_shared<tcp::socket>(ioc_);
    socket->async_connect(server_, [this, socket, trickle, done](boost::system::error_code ec) {
      if (ec) {
        Fail("connect: " + ec.message());
        return done(false);
      }
      auto conn = std::make_shared<Conn>(ioc_);
      if (tls_) {
        auto s = net::Stream::Tls(std::move(*socket), tls_);
        if (!s.ok()) {
          Fail("tls: " + s.detail());
          return done(false);
        }
        conn->stream = std::move(s).value();
      } else {
        conn->stream = net::Stream::Plain(std::move(*socket));
      }
      conn->stream->AsyncHandshake(net::Role::kClient, std::chrono::seconds(30), "",
                                   [this, conn, trickle, done](net::NetStatus st) {
                                     if (!st.ok()) {
                                       Fail("handshake: " + st.detail());
                                       return done(false);
                                     }
                                     ++opened_;
                                     Watch(conn, trickle);
                                     if (trickle) Trickle(conn);
                                     done(true);
                                   });
    });
  }

  // Watch keeps a read pending: it completes only when the server closes
  // the connection (or answers, which an unfinished head never gets).
  void Watch(std::shared_ptr<Conn> c, bool trickle) {
    c->stream->async_read_some(asio::buffer(c->in), [this, c, trickle](boost::system::error_code ec, size_t) {
      if (!ec) return Watch(c, trickle);
      if (stopping_) return;
      ++closed_;
      c->timer.cancel();
      c->stream->Close();
      if (trickle) Connect(true, [](bool) {});  // keep M trickling
    });
  }

  void Trickle(std::shared_ptr<Conn> c) {
    // A head that never ends: a request line, then header bytes forever.
    static constexpr char kHead[] = "GET /health HTTP/1.1\r\nHost: bench\r\nX-Slow: ";
    c->timer.expires_after(interval_);
    c->timer.async_wait([this, c](boost::system::error_code ec) {
      if (ec) return;
      const char* byte = c->sent < sizeof(kHead) - 1 ? &kHead[c->sent] : "a";
      asio::async_write(*c->stream, asio::buffer(byte, 1), [this, c](boost::system::error_code wec, size_t) {
        if (wec) return;  // Watch sees the close
        ++c->sent;
        ++trickled_;
        Trickle(c);
      });
    });
  }

  tcp::endpoint server_;
  std::shared_ptr<net::TlsStreamContext> tls_;
  std::chrono::milliseconds interval_;
  asio::io_context ioc_{1};
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> opened_{0}, failed_{0}, closed_{0};
  std::atomic<long> trickled_{0};
  std::mutex mu_;
  std::string first_error_;
};

struct ProbeResult {
  Percentiles health, ttft;
  int failures = 0;
  std::string first_failure;
};

// Probe measures what a normal user sees: GET /health on a fresh verified
// connection (connect + handshake + request), and the time to the first
// streamed token of a completion.
ProbeResult Probe(const Args& a, const client::Url& url, const attestation::Policy& policy) {
  ProbeResult r;
  auto connect = [&] { return url.tls ? client::Connect(url, policy) : client::ConnectPlain(url); };
  auto failed = [&](const std::string& why) {
    if (r.failures++ == 0) r.first_failure = why;
  };
  std::vector<double> health, ttft;
  for (int i = 0; i < a.probes; ++i) {
    auto t0 = Clock::now();
    auto c = connect();
    if (!c.ok()) {
      failed(c.detail());
      continue;
    }
    auto resp = (*c)->Request("GET", "/health");
    if (!resp.ok() || resp->status != 200) {
      failed(resp.ok() ? "HTTP " + std::to_string(resp->status) : resp.detail());
      continue;
    }
    health.push_back(Ms(Clock::now() - t0));
  }
  for (int i = 0; !a.api_key.empty() && i < a.ttft_probes; ++i) {
    auto c = connect();
    if (!c.ok()) {
      failed(c.detail());
      continue;
    }
    json req = {{"messages", {{{"role", "user"}, {"content", a.prompt}}}}, {"max_tokens", a.max_tokens},
                {"temperature", 0}, {"stream", true}};
    if ((*c)->server()) req["model"] = (*c)->server()->payload.model_name;
    std::map<std::string, std::string> headers{{"Authorization", "Bearer " + a.api_key}};
    double first = -1;
    client::SseParser sse;
    auto t0 = Clock::now();
    auto resp = (*c)->Request("POST", "/v1/chat/completions", req.dump(), headers, [&](std::string_view b) {
      return sse.Feed(b, [&](const client::SseEvent& event) {
        const client::CompletionEvent e = client::ClassifyCompletionEvent(event);
        if (first < 0 && e.kind == client::CompletionEvent::Kind::kText && !e.text.empty()) {
          first = Ms(Clock::now() - t0);
        }
      });
    });
    if (!resp.ok() || resp->status != 200 || first < 0) {
      failed(resp.ok() ? "completion: HTTP " + std::to_string(resp->status) : resp.detail());
      continue;
    }
    ttft.push_back(first);
  }
  r.health = Summarize(health);
  r.ttft = Summarize(ttft);
  return r;
}

json ProbeJson(const ProbeResult& p) {
  json j = {{"health_ms", {{"p50", p.health.p50}, {"p99", p.health.p99}, {"n", p.health.n}}},
            {"failures", p.failures}};
  if (p.ttft.n > 0) j["ttft_ms"] = {{"p50", p.ttft.p50}, {"p99", p.ttft.p99}, {"n", p.ttft.n}};
  if (!p.first_failure.empty()) j["first_failure"] = p.first_failure;
  return j;
}

void PrintProbe(const char* label, const ProbeResult& p) {
  std::printf("  %-16s /health p50 %.2f ms  p99 %.2f ms (%zu)", label, p.health.p50, p.health.p99, p.health.n);
  if (p.ttft.n > 0) std::printf("; TTFT p50 %.1f ms  p99 %.1f ms (%zu)", p.ttft.p50, p.ttft.p99, p.ttft.n);
  std::printf("%s%s\n", p.failures ? "; failures: " : "", p.failures ? p.first_failure.c_str() : "");
}

int BenchConns(Args a) {
  if (a.api_key.empty()) {
    if (const char* k = std::getenv("CLLM_API_KEY")) a.api_key = k;
  }
  auto url = client::ParseUrl(a.url);
  if (!url.ok()) return Fail(url.detail(), 2);
  CLLM_ASSIGN_OR_EXIT(auto policy, LoadClientPolicy(a.policy, a.accept_unpinned));
  std::shared_ptr<net::TlsStreamContext> tls;
  if (url->tls) {
    // Load connections accept any certificate: they only occupy the server.
    auto ctx = crypto::TlsContext::Client([](const std::vector<crypto::Certificate>&) -> Status<crypto::CryptoErrc> {
      return OkStatus();
    });
    if (!ctx.ok()) return Fail(ctx.detail(), 2);
    auto stream_ctx = net::TlsStreamContext::Make(std::move(ctx).value());
    if (!stream_ctx.ok()) return Fail(stream_ctx.detail(), 2);
    tls = std::move(stream_ctx).value();
  }

  json out = {{"url", a.url}, {"idle", a.idle}, {"trickle", a.trickle}, {"trickle_interval_ms", a.trickle_interval_ms}};
  const long rss0 = a.server_pid ? VmRssKb(a.server_pid) : -1;
  ProbeResult base = Probe(a, *url, policy);

  boost::system::error_code ec;
  asio::io_context resolver_ioc;
  auto resolved = tcp::resolver(resolver_ioc).resolve(url->host, std::to_string(url->port), ec);
  if (ec || resolved.empty()) return Fail("cannot resolve " + url->host + ": " + ec.message(), 2);
  Load load(resolved.begin()->endpoint(), tls, a.trickle_interval_ms);
  load.Run();
  const auto t_idle = Clock::now();
  load.Open(a.idle, /*trickle=*/false, a.parallel);
  const double idle_open_ms = Ms(Clock::now() - t_idle);
  const int idle_opened = load.opened();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const long rss_idle = a.server_pid ? VmRssKb(a.server_pid) : -1;

  load.Open(a.trickle, /*trickle=*/true, a.parallel);
  std::this_thread::sleep_for(std::chrono::seconds(a.hold_s));  // the trickle under way
  ProbeResult loaded = Probe(a, *url, policy);
  const long rss_end = a.server_pid ? VmRssKb(a.server_pid) : -1;
  const int closed = load.closed_by_server();
  load.Stop();

  out["opened"] = load.opened();
  out["open_failures"] = load.failed();
  out["closed_by_server"] = closed;
  out["trickled_bytes"] = load.trickled_bytes();
  out["idle_open_ms"] = idle_open_ms;
  if (!load.first_error().empty()) out["first_open_error"] = load.first_error();
  out["baseline"] = ProbeJson(base);
  out["under_load"] = ProbeJson(loaded);
  if (a.server_pid) {
    out["server_rss_kib"] = {{"before", rss0}, {"idle_open", rss_idle}, {"end", rss_end}};
    if (idle_opened > 0 && rss0 > 0) out["bytes_per_idle_connection"] = (rss_idle - rss0) * 1024.0 / idle_opened;
  }
  if (a.json_out) {
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("cllm-server %s — %d idle, %d trickling (1 byte / %d ms), held %d s\n", a.url.c_str(), a.idle,
                a.trickle, a.trickle_interval_ms, a.hold_s);
    std::printf("  opened %d (%d failed%s%s), closed by the server %d, %ld bytes trickled\n", load.opened(),
                load.failed(), load.failed() ? ": " : "", load.first_error().c_str(), closed, load.trickled_bytes());
    if (a.server_pid) {
      std::printf("  server VmRSS  %ld KiB before, %ld KiB with %d idle open (%.0f bytes each), %ld KiB at the end\n",
                  rss0, rss_idle, idle_opened, idle_opened ? (rss_idle - rss0) * 1024.0 / idle_opened : 0.0, rss_end);
    }
    PrintProbe("no load:", base);
    PrintProbe("under load:", loaded);
    if (base.ttft.n > 0 && loaded.ttft.n > 0) {
      std::printf("  TTFT p50 change under load: %+.1f%%\n", 100.0 * (loaded.ttft.p50 / base.ttft.p50 - 1));
    }
  }
  return base.failures + loaded.failures == 0 ? 0 : 1;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  CLI::App* bench = SubcommandGroup(app, "bench", "Benchmarks");
  auto* cmd = bench->add_subcommand(
      "conns", "Hold idle and slow (trickling) connections to cllm-server; server memory and a user's latency");
  static Args a;
  cmd->add_option("--url", a.url, "cllm-server URL (https:// RA-TLS or the http:// debug listener)")->required();
  cmd->add_option("--policy", a.policy, "Client policy JSON for the probes over https:// (as for chat)");
  AddUnpinnedFlag(cmd, &a.accept_unpinned);
  cmd->add_option("--idle", a.idle, "Idle connections to hold (handshake done, no request)")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  cmd->add_option("--trickle", a.trickle, "Connections sending a request head one byte at a time")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  cmd->add_option("--trickle-interval-ms", a.trickle_interval_ms, "Milliseconds between a trickling connection's bytes")
      ->check(CLI::Range(1, 600000))
      ->capture_default_str();
  cmd->add_option("--hold", a.hold_s, "Seconds of trickling before the probes under load")
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();
  cmd->add_option("--probes", a.probes, "GET /health probes per phase")->check(CLI::Range(1, 100000))->capture_default_str();
  cmd->add_option("--ttft-probes", a.ttft_probes, "Completions per phase (with --api-key)")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str();
  cmd->add_option("--api-key", a.api_key, "API key for the completion probes (default $CLLM_API_KEY)");
  cmd->add_option("--prompt", a.prompt, "Prompt of the completion probes")->capture_default_str();
  cmd->add_option("--max-tokens", a.max_tokens, "max_tokens of the completion probes")->capture_default_str();
  cmd->add_option("--server-pid", a.server_pid, "The server's PID: report its VmRSS per connection");
  cmd->add_option("--parallel", a.parallel, "Connections being opened at once")->check(CLI::Range(1, 10000))->capture_default_str();
  cmd->add_flag("--json", a.json_out, "Print one JSON object");
  cmd->callback([&ctx] { ctx.exit_code = BenchConns(a); });
}

CommandRegistration reg{"bench-conns", 62, Setup};

}  // namespace
}  // namespace cllm::app
