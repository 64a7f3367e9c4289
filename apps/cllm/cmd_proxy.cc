// `cllm proxy --listen 127.0.0.1:PORT --upstream https://HOST:PORT[,https://…] --policy FILE`
//
// A local, plain-HTTP OpenAI-compatible endpoint for existing tools (OpenAI
// SDKs, curl): every request is forwarded unchanged over a pool of kept-alive
// RA-TLS connections (client/upstream_pool.h). Each upstream connection was
// verified against the policy during its own handshake; a certificate seen
// before is not verified again, and a new one — the server rotated its key
// and evidence — is verified in full before the connection carries a
// request. Streamed responses are forwarded chunk by chunk as they arrive.
// Several upstreams (repeated --upstream or a comma list) are replicas of one
// service: a request that failed before any response byte is failed over to
// another (client/replicas.h); one cut off mid-stream ends with an error
// event, never silently.
// The proxy listens on loopback by default: the leg to it is inside the
// user's machine.
//
// With --e2e the upstream is instead any HTTP endpoint in front of the
// replicas (an L7 gateway terminating TLS): each request body is sealed with
// HPKE to the fleet key, each answer opened here frame by frame
// (docs/protocol.md, "Encrypted bodies"; apps/cllm/e2e_common.h says what is
// verified before the first request).
//
// With --split the proxy embeds user text itself (docs/split-inference.md,
// "The client"): chat user content and completion prompts are rewritten into
// prompt_embeds rows (noised by Report-Noisy-Max) before forwarding, and any
// other POST is refused, so no prompt text or token id leaves this machine.
#include <nlohmann/json.hpp>

#include <csignal>
#include <cstdio>
#include <optional>
#include <thread>

#include "apps/cllm/command.h"
#include "apps/cllm/e2e_common.h"
#include "apps/cllm/remote_common.h"
#include "apps/cllm/split_common.h"
#include "client/upstream_pool.h"
#include "net/server.h"

namespace cllm::app {
namespace {

struct ProxyArgs {
  std::string listen = "127.0.0.1:8080";
  std::vector<std::string> upstreams;
  std::string policy;
  int attempts = 0;  // --attempts: 0 = max(3, replicas)
  bool accept_unpinned = false;  // --insecure-accept-unpinned
  int max_upstream = 64;
  int idle_seconds = 30;
  TimeoutArgs timeouts;
  E2eArgs e2e;
  SplitArgs split;
};

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

OrExit<std::vector<client::Url>> ParseE2eUpstreams(const std::vector<std::string>& specs) {
  auto u = client::ParseReplicaUrls(specs);
  if (!u.ok()) return ExitWith(Fail(u.detail(), 2));
  return std::move(u).value();
}

std::string policy_note(const ProxyArgs& a) {
  return a.accept_unpinned ? "; UNPINNED — the fleet key's release policy was NOT checked against pinned values" : "";
}

int RunUntilSignal(net::Server& srv, client::UpstreamPool& pool);
int Serve(const ProxyArgs& a, const std::string& host, int port, client::UpstreamPool& pool, size_t n,
          const E2eSetup& e2e, split::SplitRewriter* rewriter);

// Handler forwards each request through `pool`; with a split rewriter it
// first turns user text into prompt_embeds (or refuses the request) and
// logs the privacy spent — counts only, never content.
net::Handler MakeHandler(client::UpstreamPool* pool, split::SplitRewriter* rewriter) {
  return [pool, rewriter](const net::Request& r, std::shared_ptr<net::ResponseWriter> w) {
    if (rewriter == nullptr) return pool->Forward(r, std::move(w));
    split::SplitRewriter::Outcome o = rewriter->Rewrite(r.method, r.target, r.body);
    if (!o.ok) {
      const nlohmann::json err = {{"error", {{"message", "cllm proxy --split: " + o.message},
                                             {"type", "invalid_request_error"},
                                             {"code", o.error_code}}}};
      return w->Send(o.status, "application/json", err.dump());
    }
    if (!o.rewritten) return pool->Forward(r, std::move(w));
    std::fprintf(stderr, "cllm proxy: split %s: %u rows (%u texts resent as before), %u tokens perturbed, ε spent %s\n",
                 r.Path().c_str(), o.n_rows, o.reused, o.num_perturbed, EpsilonText(o.epsilon_spent).c_str());
    net::Request copy = r;
    copy.body = std::move(o.body);
    pool->Forward(copy, std::move(w));
  };
}

int Proxy(const ProxyArgs& a) {
  // --split: load the embeddings first, so a wrong file fails before any connection.
  std::optional<SplitSetup> split_setup;
  split::SystemRandom split_random;
  std::unique_ptr<split::SplitRewriter> rewriter;
  if (a.split.enabled) {
    CLLM_ASSIGN_OR_EXIT(SplitSetup s, LoadSplit(a.split, {a.e2e.trust_url, a.e2e.trust_ca, a.e2e.client_tee, a.e2e.client_sim_key}));
    split_setup = std::move(s);
    rewriter = std::make_unique<split::SplitRewriter>(*split_setup->model, split_setup->options, split_setup->policy,
                                                      split_random);
  } else if (!a.split.epsilon.empty() || !a.split.embeddings.empty()) {
    return Fail("--epsilon and --split-embeddings apply to --split", 2);
  }
  CLLM_ASSIGN_OR_EXIT(auto policy, LoadClientPolicy(a.policy, a.accept_unpinned));
  CLLM_ASSIGN_OR_EXIT(auto upstreams, a.e2e.enabled ? ParseE2eUpstreams(a.upstreams) : ParseServerUrls(a.upstreams));
  auto colon = a.listen.rfind(':');
  if (colon == std::string::npos) return Fail("--listen must be HOST:PORT", 2);
  std::string host = a.listen.substr(0, colon);
  int port = std::atoi(a.listen.c_str() + colon + 1);
  if (port < 0 || port > 65535) return Fail("bad --listen port", 2);
  client::PoolOptions po;
  po.max_connections = a.max_upstream;
  po.idle_timeout = std::chrono::seconds(a.idle_seconds);
  po.http = a.timeouts.Options();
  po.failover.max_attempts = a.attempts;
  const size_t n = upstreams.size();
  E2eSetup e2e;
  if (a.e2e.enabled) {
    CLLM_ASSIGN_OR_EXIT(e2e, MakeE2e(a.e2e, policy, upstreams, po.http));
    po.e2e = e2e.session;
    po.upstream_roots = e2e.upstream_roots;
  }
  auto pool = client::UpstreamPool::Create(std::move(upstreams), policy, po);
  if (!pool.ok()) return Fail(pool.detail(), 2);
  if (split_setup) {
    std::printf("cllm proxy: split inference — user text is embedded here and sent as rows only (other roles' "
                "text is forwarded as is; POSTs other than chat/completions are refused); %s\n",
                split_setup->description.c_str());
  }
  if (a.e2e.enabled) return Serve(a, host, port, **pool, n, e2e, rewriter.get());
  // Check every upstream once now, so a wrong policy fails at start-up (the
  // connections stay in the pool for the first requests). A replica that is
  // down or refused starts in backoff; at least one must verify.
  std::optional<channel::VerifiedServer> verified;
  std::optional<Error<client::ClientErrc>> first_error;
  for (size_t i = 0; i < n; ++i) {
    auto probe = (*pool)->Probe(i);
    if (probe.ok()) {
      if (!verified) verified = *probe;
      continue;
    }
    std::fprintf(stderr, "cllm proxy: upstream %s: %s: %s%s\n", (*pool)->replicas().name(i).c_str(),
                 client::ClientErrcName(probe.code()), probe.detail().c_str(), n > 1 ? " (in backoff)" : "");
    if (!first_error) first_error = probe.error();
  }
  if (!verified) {
    return Fail("no upstream verified", first_error && first_error->code == client::ClientErrc::kAttestation ? 1 : 2);
  }
  const channel::VerifiedServer& s = *verified;
  auto srv = net::Server::Start(host, static_cast<uint16_t>(port), MakeHandler(pool->get(), rewriter.get()));
  if (!srv.ok()) return Fail(srv.detail(), 2);
  std::string names;
  for (size_t i = 0; i < n; ++i) names += (i ? "," : "") + (*pool)->replicas().name(i);
  std::printf("cllm proxy: http://%s:%u → %s (%s%s%s, model %s); up to %d verified upstream connections, "
              "a new upstream certificate is verified before use\n",
              host.c_str(), (*srv)->port(), names.c_str(), attestation::PlatformName(s.claims.platform()),
              s.claims.simulated() ? ", SIMULATED TEE" : "",
              policy.insecure_accept_unpinned ? ", UNPINNED — code and model NOT verified" : ", pinned",
              s.payload.model_name.c_str(), a.max_upstream);
  std::fflush(stdout);
  return RunUntilSignal(**srv, **pool);
}

// RunUntilSignal serves until SIGINT/SIGTERM, then prints the pool's counters.
int RunUntilSignal(net::Server& srv, client::UpstreamPool& pool) {
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  srv.Stop();
  const client::PoolStats st = pool.Stats();
  std::fprintf(stderr, "cllm proxy: %llu requests, %llu upstream connections opened, %llu full verifications, "
               "%llu retried, %llu failed over, %llu cut off mid-stream\n", static_cast<unsigned long long>(st.requests),
               static_cast<unsigned long long>(st.connections_opened),
               static_cast<unsigned long long>(st.verifications), static_cast<unsigned long long>(st.retries),
               static_cast<unsigned long long>(st.failovers), static_cast<unsigned long long>(st.incomplete));
  if (st.e2e_refused || st.e2e_key_resends) {
    std::fprintf(stderr,
                 "cllm proxy: e2e: %llu answers refused (tampered or truncated), %llu requests sealed again to "
                 "another key\n",
                 static_cast<unsigned long long>(st.e2e_refused), static_cast<unsigned long long>(st.e2e_key_resends));
  }
  return 0;
}

// Serve is the --e2e start-up: no RA-TLS probe (the upstream is a gateway);
// what was verified is the fleet key list (e2e_common.h).
int Serve(const ProxyArgs& a, const std::string& host, int port, client::UpstreamPool& pool, size_t n,
          const E2eSetup& e2e, split::SplitRewriter* rewriter) {
  auto srv = net::Server::Start(host, static_cast<uint16_t>(port), MakeHandler(&pool, rewriter));
  if (!srv.ok()) return Fail(srv.detail(), 2);
  std::string names;
  for (size_t i = 0; i < n; ++i) names += (i ? "," : "") + pool.replicas().name(i);
  std::printf("cllm proxy: http://%s:%u → %s, bodies sealed end to end (e2e, suite %s%s, fleet key %u)%s\n",
              host.c_str(), (*srv)->port(), names.c_str(), a.e2e.suite.c_str(),
              e2e.mutual ? ", mutual: HPKE auth mode with this client's attested key" : "",
              static_cast<unsigned>(e2e.session->current().key_id),
              policy_note(a).c_str());
  for (const auto& line : e2e.explanation) std::printf("  %s\n", line.c_str());
  std::fflush(stdout);
  return RunUntilSignal(**srv, pool);
}

void Setup(CLI::App& app, CommandContext& ctx) {
  static ProxyArgs args;
  auto* cmd = app.add_subcommand("proxy", "Local OpenAI-compatible endpoint forwarding to a verified server");
  cmd->add_option("--listen", args.listen, "Local address HOST:PORT (port 0: any free port)")->capture_default_str();
  cmd->add_option("--upstream", args.upstreams,
                  "https://HOST:PORT of the cllm server; repeat it (or give a comma list) for replicas to fail over "
                  "between, or give one relay address")
      ->required();
  AddAttemptsFlag(cmd, &args.attempts);
  cmd->add_option("--policy", args.policy,
                  "Client policy JSON pinning the server's reference values (`cllm policy pin`); without it every "
                  "upstream is refused as not pinned");
  AddUnpinnedFlag(cmd, &args.accept_unpinned);
  cmd->add_option("--max-upstream", args.max_upstream, "Upstream connections kept at most (busy + idle)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  cmd->add_option("--upstream-idle", args.idle_seconds, "Seconds an idle upstream connection is kept")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  AddTimeoutFlags(cmd, &args.timeouts);
  AddE2eFlags(cmd, &args.e2e);
  AddSplitFlags(cmd, &args.split);
  cmd->callback([&ctx] { ctx.exit_code = Proxy(args); });
}

CommandRegistration reg{"proxy", 46, Setup};

}  // namespace
}  // namespace cllm::app
