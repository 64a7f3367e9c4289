// `cllm proxy --listen 127.0.0.1:PORT --upstream https://HOST:PORT --policy FILE`
//
// A local, plain-HTTP OpenAI-compatible endpoint for existing tools (OpenAI
// SDKs, curl): every request is forwarded unchanged over an RA-TLS
// connection whose server was verified against the policy during that
// connection's own handshake — so a server whose certificate (and evidence)
// changed is verified again before any byte of the request leaves. Streamed
// responses are forwarded chunk by chunk as they arrive. The proxy listens
// on loopback by default: the leg to it is inside the user's machine.
#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "apps/cllm/command.h"
#include "apps/cllm/remote_common.h"
#include "base/log.h"
#include "server/http_server.h"

namespace cllm::app {
namespace {

struct ProxyArgs {
  std::string listen = "127.0.0.1:8080";
  std::string upstream;
  std::string policy;
  bool accept_unpinned = false;  // --insecure-accept-unpinned
};

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

// Headers worth forwarding; hop-by-hop ones (connection, transfer-encoding,
// content-length) are the transports' own business.
constexpr const char* kForwarded[] = {"authorization", "content-type", "accept", "openai-organization",
                                      "openai-project", "user-agent"};

void Forward(const client::Url& upstream, const attestation::Policy& policy, const server::HttpRequest& req,
             server::ResponseWriter& w) {
  auto conn = client::Connect(upstream, policy);
  if (!conn.ok()) {
    // The client of the proxy learns why nothing was sent upstream.
    bool refused = conn.code() == client::ClientErrc::kAttestation;
    std::string msg = std::string(refused ? "upstream refused by attestation policy: " : "upstream unreachable: ") +
                      conn.detail();
    std::string body = nlohmann::json{{"error", {{"message", msg}, {"type", "cllm_attestation_error"},
                                                 {"code", client::ClientErrcName(conn.code())}}}}.dump();
    log::warn("proxy: {}", msg);
    w.Send(502, "application/json", body);
    return;
  }
  std::map<std::string, std::string> headers;
  for (const char* h : kForwarded) {
    std::string v = req.Header(h);
    if (!v.empty()) headers[h] = v;
  }
  bool streaming = false;
  bool client_ok = true;
  auto r = (*conn)->Request(
      req.method, req.target, req.body, headers,
      [&](std::string_view bytes) {
        if (streaming) client_ok = w.Write(bytes);
        return client_ok;  // the proxy's client left: stop reading upstream
      },
      [&](const client::HttpResponse& head) {
        auto te = head.headers.find("transfer-encoding");
        if (te != head.headers.end() && te->second.find("chunked") != std::string::npos) {
          auto ct = head.headers.find("content-type");
          streaming = true;
          client_ok = w.BeginStream(head.status, ct == head.headers.end() ? "application/octet-stream" : ct->second);
        }
      });
  if (!r.ok()) {
    if (streaming) {
      w.EndStream();  // the stream just ends; nothing else can be said
    } else {
      w.Send(502, "application/json",
             nlohmann::json{{"error", {{"message", "upstream: " + r.detail()}, {"type", "cllm_proxy_error"}}}}.dump());
    }
    return;
  }
  if (streaming) {
    w.EndStream();
    return;
  }
  auto ct = r->headers.find("content-type");
  w.Send(r->status, ct == r->headers.end() ? "application/json" : ct->second, r->body);
}

int Proxy(const ProxyArgs& a) {
  CLLM_ASSIGN_OR_EXIT(auto policy, LoadClientPolicy(a.policy, a.accept_unpinned));
  CLLM_ASSIGN_OR_EXIT(auto upstream, ParseServerUrl(a.upstream));
  auto colon = a.listen.rfind(':');
  if (colon == std::string::npos) return Fail("--listen must be HOST:PORT", 2);
  std::string host = a.listen.substr(0, colon);
  int port = std::atoi(a.listen.c_str() + colon + 1);
  if (port < 0 || port > 65535) return Fail("bad --listen port", 2);
  // Check the upstream once now, so a wrong policy fails at start-up.
  auto probe = client::Connect(upstream, policy);
  if (!probe.ok()) {
    return Fail(std::string("upstream ") + a.upstream + ": " + client::ClientErrcName(probe.code()) + ": " +
                    probe.detail(),
                probe.code() == client::ClientErrc::kAttestation ? 1 : 2);
  }
  const channel::VerifiedServer s = *(*probe)->server();  // a copy: the connection goes now
  probe->reset();
  auto srv = server::HttpServer::Start(host, static_cast<uint16_t>(port),
                                       [&](const server::HttpRequest& r, server::ResponseWriter& w) {
                                         Forward(upstream, policy, r, w);
                                       });
  if (!srv.ok()) return Fail(srv.detail(), 2);
  std::printf("cllm proxy: http://%s:%u → %s (%s%s%s, model %s); every connection re-verifies\n", host.c_str(),
              (*srv)->port(), a.upstream.c_str(), attestation::PlatformName(s.claims.platform()),
              s.claims.simulated() ? ", SIMULATED TEE" : "",
              policy.insecure_accept_unpinned ? ", UNPINNED — code and model NOT verified" : ", pinned",
              s.payload.model_name.c_str());
  std::fflush(stdout);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  (*srv)->Stop();
  return 0;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  static ProxyArgs args;
  auto* cmd = app.add_subcommand("proxy", "Local OpenAI-compatible endpoint forwarding to a verified server");
  cmd->add_option("--listen", args.listen, "Local address HOST:PORT (port 0: any free port)")->capture_default_str();
  cmd->add_option("--upstream", args.upstream, "https://HOST:PORT of the cllm server")->required();
  cmd->add_option("--policy", args.policy,
                  "Client policy JSON pinning the server's reference values (`cllm policy pin`); without it every "
                  "upstream is refused as not pinned");
  AddUnpinnedFlag(cmd, &args.accept_unpinned);
  cmd->callback([&ctx] { ctx.exit_code = Proxy(args); });
}

CommandRegistration reg{"proxy", 46, Setup};

}  // namespace
}  // namespace cllm::app
