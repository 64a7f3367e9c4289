// `cllm bench attest --trust URL --trust-ca F --concurrency C --requests N …`
//
// Load-tests cllm-trust's attestation path: C concurrent clients (one
// keep-alive pinned TLS connection each, opened before the clock starts)
// issue N attestations in total and we report latency p50/p90/p99 and
// attestations per second.
//
//   sim mode (--sim-key K): each attestation is POST /v1/challenge, then
//     fresh simulated evidence (ECDSA P-384, made here, not timed) binding
//     the nonce and this client's key, then POST /v1/attest: the service
//     verifies the P-384 signature, the binding and the policy, consumes the
//     nonce and signs an ES256 token.
//   replay mode (--evidence F --certs F…): each attestation is one
//     POST /v1/attest of recorded hardware evidence under a policy set with
//     `cllm trust policy set NAME FILE --replay-at TIME` (no freshness; the
//     full vendor chain and report signature are verified every time).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "apps/cllm/bench_stats.h"
#include "apps/cllm/command.h"
#include "attestation/sim/sim_attester.h"
#include "base/encoding.h"
#include "base/file.h"
#include "channel/payload.h"
#include "channel/ratls.h"
#include "trust/jose.h"
#include "trust/trust_client.h"

namespace cllm::app {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Args {
  std::string url, ca, policy = "default", sim_key, evidence;
  std::vector<std::string> certs;
  int concurrency = 64;
  int requests = 1000;
  bool json_out = false;
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Worker {
  std::unique_ptr<client::Connection> conn;
  std::shared_ptr<channel::RaTlsIssuer> issuer;  // sim mode
  crypto::PrivateKey key{nullptr};
  std::vector<double> latency_ms;
  std::vector<std::string> errors;
};

int Run(const Args& a) {
  const bool replay = !a.evidence.empty();
  if (replay == !a.sim_key.empty()) return Fail("give --sim-key K (sim mode) or --evidence F (replay mode)", 2);
  auto ep = trust::LoadTrustEndpoint(a.url, a.ca);
  if (!ep.ok()) return Fail(ep.detail(), 2);

  json replay_body;
  if (replay) {
    auto ev = ReadFile(a.evidence, 1 << 20);
    if (!ev.ok()) return Fail(ev.detail(), 2);
    json certs = json::array();
    for (const auto& c : a.certs) {
      auto b = ReadFile(c, 1 << 20);
      if (!b.ok()) return Fail(b.detail(), 2);
      certs.push_back(Base64Encode(*b));
    }
    replay_body = {{"evidence", Base64Encode(*ev)}, {"endorsements", certs}, {"policy", a.policy}};
  }

  // Per-client state first, then the connections (neither timed: the
  // benchmark measures attestations). Connections are opened last and
  // quickly, because the service drops a connection idle for 10 s.
  // One simulated TEE shared by every client (it holds no per-call state):
  // creating it measures this executable, which a thousand clients would
  // otherwise do a thousand times.
  std::shared_ptr<attestation::sim::SimAttester> attester;
  if (!replay) {
    auto pk = attestation::sim::LoadSimPlatformKey(a.sim_key);
    if (!pk.ok()) return Fail(pk.detail(), 2);
    auto sim = attestation::sim::SimAttester::Create(std::move(pk).value());
    if (!sim.ok()) return Fail(sim.detail(), 2);
    attester = std::make_shared<attestation::sim::SimAttester>(std::move(sim).value());
  }
  std::vector<Worker> workers(static_cast<size_t>(a.concurrency));
  for (auto& w : workers) {
    auto k = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256);
    if (!k.ok()) return Fail(k.detail());
    w.key = std::move(k).value();
    if (!replay) {
      channel::ServerClaims claims;
      claims.model_name = "bench";
      w.issuer = std::make_shared<channel::RaTlsIssuer>(attester, claims);
    }
  }
  std::fprintf(stderr, "opening %d connections to %s…\n", a.concurrency, a.url.c_str());
  const auto connect_start = Clock::now();
  for (auto& w : workers) {
    auto c = client::ConnectPinned(ep->url, ep->ca);
    if (!c.ok()) return Fail("connect: " + c.detail(), 2);
    w.conn = std::move(c).value();
  }
  const double connect_ms = Ms(Clock::now() - connect_start);

  // A connection the service closed is replaced (counted as an error).
  auto reconnect = [&](Worker& w) {
    auto c = client::ConnectPinned(ep->url, ep->ca);
    if (c.ok()) w.conn = std::move(c).value();
  };
  std::atomic<int> next{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (auto& w : workers) {
    threads.emplace_back([&, wp = &w] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      const json jwk = trust::PublicJwk(wp->key.public_key());
      while (next.fetch_add(1) < a.requests) {
        auto t0 = Clock::now();
        Clock::duration untimed{0};
        json body;
        if (replay) {
          body = replay_body;
          body["public_key"] = jwk;
        } else {
          auto ch = trust::TrustCall(*wp->conn, "POST", "/v1/challenge", json::object());
          if (!ch.ok() || ch->status != 200) {
            wp->errors.push_back(ch.ok() ? trust::ErrorOf(*ch) : ch.detail());
            if (!ch.ok()) reconnect(*wp);
            continue;
          }
          auto g0 = Clock::now();
          auto nonce = HexDecode(ch->body.value("nonce", ""));
          auto payload = wp->issuer->PayloadFor(wp->key.public_key().ToSpkiDer(), nonce.ok() ? *nonce : Bytes());
          untimed = Clock::now() - g0;
          if (!payload.ok()) {
            wp->errors.push_back(payload.detail());
            continue;
          }
          body = {{"nonce", ch->body["nonce"]}, {"payload", Base64Encode(channel::EncodePayload(*payload))},
                  {"public_key", jwk}, {"policy", a.policy}};
        }
        auto r = trust::TrustCall(*wp->conn, "POST", "/v1/attest", body);
        auto t1 = Clock::now();
        if (!r.ok() || r->status != 200) {
          wp->errors.push_back(r.ok() ? trust::ErrorOf(*r) : r.detail());
          if (!r.ok()) reconnect(*wp);
          continue;
        }
        wp->latency_ms.push_back(Ms(t1 - t0 - untimed));
      }
    });
  }
  auto start = Clock::now();
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  const double wall_s = std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<double> all;
  std::vector<std::string> errors;
  for (auto& w : workers) {
    all.insert(all.end(), w.latency_ms.begin(), w.latency_ms.end());
    errors.insert(errors.end(), w.errors.begin(), w.errors.end());
  }
  const Percentiles p = Summarize(all);
  const double rate = static_cast<double>(all.size()) / wall_s;
  if (a.json_out) {
    json j = {{"mode", replay ? "replay" : "sim"}, {"url", a.url}, {"policy", a.policy},
              {"concurrency", a.concurrency}, {"requests", a.requests}, {"ok", all.size()},
              {"errors", errors.size()}, {"wall_s", wall_s}, {"connect_ms", connect_ms}, {"attestations_per_s", rate},
              {"latency_ms", {{"p50", p.p50}, {"p90", p.p90}, {"p99", p.p99}, {"mean", p.mean}}}};
    if (!errors.empty()) j["first_error"] = errors.front();
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("cllm-trust %s — %s mode, policy %s, %d concurrent, %d requests\n", a.url.c_str(),
                replay ? "replay" : "sim", a.policy.c_str(), a.concurrency, a.requests);
    std::printf("  ok %zu, errors %zu%s%s\n", all.size(), errors.size(), errors.empty() ? "" : " — first: ",
                errors.empty() ? "" : errors.front().c_str());
    std::printf("  latency ms  p50 %.2f  p90 %.2f  p99 %.2f  mean %.2f\n", p.p50, p.p90, p.p99, p.mean);
    std::printf("  throughput  %.0f attestations/s (%.2f s wall; %d connections opened in %.0f ms before)\n", rate,
                wall_s, a.concurrency, connect_ms);
  }
  return errors.empty() ? 0 : 1;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  CLI::App* bench = SubcommandGroup(app, "bench", "Benchmarks");
  auto* cmd = bench->add_subcommand("attest", "Load-test cllm-trust attestations: latency percentiles, attestations/s");
  static Args a;
  cmd->add_option("--trust", a.url, "cllm-trust URL")->required();
  cmd->add_option("--trust-ca", a.ca, "cllm-trust's certificate (pinned)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--policy", a.policy, "Policy name at cllm-trust")->capture_default_str();
  cmd->add_option("--concurrency", a.concurrency, "Concurrent clients (connections)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  cmd->add_option("--requests", a.requests, "Attestations in total")->check(CLI::Range(1, 10000000))->capture_default_str();
  cmd->add_option("--sim-key", a.sim_key, "Sim mode: the simulated TEE platform key")->check(CLI::ExistingFile);
  cmd->add_option("--evidence", a.evidence, "Replay mode: recorded evidence file")->check(CLI::ExistingFile);
  cmd->add_option("--certs", a.certs, "Replay mode: certificate files for the evidence (VCEK, chain)")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--json", a.json_out, "Print one JSON object");
  cmd->callback([&ctx] { ctx.exit_code = Run(a); });
}

CommandRegistration reg{"bench-attest", 61, Setup};

}  // namespace
}  // namespace cllm::app
