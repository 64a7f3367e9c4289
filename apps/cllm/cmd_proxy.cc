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
#include <csignal>
#include <cstdio>
#include <optional>
#include <thread>

#include "apps/cllm/command.h"
#include "apps/cllm/remote_common.h"
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
};

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

int Proxy(const ProxyArgs& a) {
  CLLM_ASSIGN_OR_EXIT(auto policy, LoadClientPolicy(a.policy, a.accept_unpinned));
  CLLM_ASSIGN_OR_EXIT(auto upstreams, ParseServerUrls(a.upstreams));
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
  auto pool = client::UpstreamPool::Create(std::move(upstreams), policy, po);
  if (!pool.ok()) return Fail(pool.detail(), 2);
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
  client::UpstreamPool* p = pool->get();
  auto srv = net::Server::Start(host, static_cast<uint16_t>(port),
                                [p](const net::Request& r, std::shared_ptr<net::ResponseWriter> w) {
                                  p->Forward(r, std::move(w));
                                });
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
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  (*srv)->Stop();
  const client::PoolStats st = (*pool)->Stats();
  std::fprintf(stderr, "cllm proxy: %llu requests, %llu upstream connections opened, %llu full verifications, "
               "%llu retried, %llu failed over, %llu cut off mid-stream\n", static_cast<unsigned long long>(st.requests),
               static_cast<unsigned long long>(st.connections_opened),
               static_cast<unsigned long long>(st.verifications), static_cast<unsigned long long>(st.retries),
               static_cast<unsigned long long>(st.failovers), static_cast<unsigned long long>(st.incomplete));
  return 0;
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
  cmd->callback([&ctx] { ctx.exit_code = Proxy(args); });
}

CommandRegistration reg{"proxy", 46, Setup};

}  // namespace
}  // namespace cllm::app
