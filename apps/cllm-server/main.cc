// cllm-server: serve one model over RA-TLS with an OpenAI-compatible API.
//
//   cllm-server -m MODEL.gguf --tee sim --sim-key plat.key --listen 127.0.0.1:8443 --api-keys keys.json
//
// At start it hashes its own executable (binary digest) and the model (model
// digest), asks the TEE for evidence binding both and a fresh TLS key, and
// serves only over TLS 1.3 with that certificate (rotated at half its
// lifetime). `--debug-listen` adds a plain-HTTP listener for benchmarks and
// debugging; it is not attested and says so. Prompts and completions are
// never logged.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <thread>

#include "apps/cllm-server/tee.h"
#include "base/encoding.h"
#include "base/log.h"
#include "channel/ratls.h"
#include "crypto/digest.h"
#include "server/service.h"

namespace {

using namespace cllm;

std::mutex g_mu;
std::condition_variable g_cv;
volatile std::sig_atomic_t g_signal = 0;

void OnSignal(int sig) { g_signal = sig; }

bool SplitHostPort(const std::string& s, std::string* host, uint16_t* port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  *host = s.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  try {
    int p = std::stoi(s.substr(colon + 1));
    if (p < 0 || p > 65535) return false;
    *port = static_cast<uint16_t>(p);
  } catch (...) {
    return false;
  }
  return !host->empty();
}

int Fail(const std::string& msg) {
  std::fprintf(stderr, "cllm-server: error: %s\n", msg.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cllm-server — attested LLM inference (OpenAI-compatible API over RA-TLS)"};
  app.set_version_flag("--version", std::string("cllm-server ") + CLLM_VERSION);
  std::string model_path, model_name, tee = "auto", sim_key, listen = "127.0.0.1:8443", debug_listen, keys_file,
                              ready_file, log_level = "info", client_policy_file;
  bool anonymous = false;
  int max_active = 8, max_queued = 64, context = 0, validity_s = 600;
  app.add_option("-m,--model", model_path, "GGUF model file")->required()->check(CLI::ExistingFile);
  app.add_option("--model-name", model_name, "Name served in /v1/models (default: the file name)");
  app.add_option("--tee", tee, "sim, snp, tdx, csv or auto")->check(CLI::IsMember({"sim", "snp", "tdx", "csv", "auto"}));
  app.add_option("--sim-key", sim_key, "Simulated-TEE platform key (with --tee sim)");
  app.add_option("--listen", listen, "RA-TLS listen address HOST:PORT (port 0: any free port)");
  app.add_option("--debug-listen", debug_listen, "Also serve plain HTTP here (NOT attested; benchmarks/debugging)");
  app.add_option("--api-keys", keys_file, "API keys file (SHA-256 digests → user ids)")->check(CLI::ExistingFile);
  app.add_flag("--allow-anonymous", anonymous, "Serve without API keys (development only)");
  app.add_option("--max-active", max_active, "Sequences generated together")->check(CLI::Range(1, 256));
  app.add_option("--max-queued", max_queued, "Waiting requests before 429")->check(CLI::Range(0, 100000));
  app.add_option("--context", context, "Context length per sequence (0: the model's, at most 8192)")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--cert-validity", validity_s, "RA-TLS certificate lifetime in seconds")->check(CLI::Range(60, 86400));
  app.add_option("--client-policy", client_policy_file,
                 "Mutual RA-TLS: require every client to present evidence satisfying this policy")
      ->check(CLI::ExistingFile);
  app.add_option("--ready-file", ready_file, "Write {\"port\":…, \"debug_port\":…} here once listening");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  CLI11_PARSE(app, argc, argv);

  auto level = log::ParseLevel(log_level);
  if (!level.ok()) return Fail(level.detail());
  log::Init(*level);

  std::string host, debug_host;
  uint16_t port = 0, debug_port = 0;
  if (!SplitHostPort(listen, &host, &port)) return Fail("--listen must be HOST:PORT, got \"" + listen + "\"");
  if (!debug_listen.empty() && !SplitHostPort(debug_listen, &debug_host, &debug_port)) {
    return Fail("--debug-listen must be HOST:PORT, got \"" + debug_listen + "\"");
  }
  server::ServiceOptions so;
  if (!keys_file.empty()) {
    auto keys = server::ApiKeys::Load(keys_file);
    if (!keys.ok()) return Fail(keys.detail());
    so.api_keys = std::move(keys).value();
  } else if (!anonymous) {
    return Fail("--api-keys FILE is required (or --allow-anonymous for development)");
  }

  // --- identity: what this server is ------------------------------------------
  auto attester = app::OpenAttester(tee, sim_key);
  if (!attester.ok()) return Fail(attester.detail());
  auto binary_digest = crypto::Sha256File("/proc/self/exe");
  if (!binary_digest.ok()) return Fail("hashing the executable: " + binary_digest.detail());
  log::info("hashing model {}", model_path);
  auto model_digest = crypto::Sha256File(model_path);
  if (!model_digest.ok()) return Fail(model_digest.detail());
  auto model = engine::Model::Open(model_path);
  if (!model.ok()) return Fail(std::string(engine::ModelErrcName(model.code())) + ": " + model.detail());
  if (model_name.empty()) model_name = std::filesystem::path(model_path).stem().string();

  channel::ServerClaims claims{*binary_digest, *model_digest, model_name};
  channel::IssuerOptions io;
  io.validity = std::chrono::seconds(validity_s);
  auto issuer = std::make_shared<channel::RaTlsIssuer>(*attester, claims, io);
  auto identity = issuer->Issue(std::chrono::system_clock::now());
  if (!identity.ok()) return Fail(std::string(channel::ChannelErrcName(identity.code())) + ": " + identity.detail());
  Bytes spki = identity->cert.GetPublicKey()->ToSpkiDer();
  crypto::PeerVerifier client_verifier;
  if (!client_policy_file.empty()) {
    auto cp = attestation::LoadPolicy(client_policy_file);
    if (!cp.ok()) return Fail(cp.detail());
    // Each handshake verifies the client's certificate evidence like a client
    // verifies ours; a refused client never gets to send a request.
    client_verifier = channel::MakePeerVerifier(std::move(cp).value(), std::make_shared<channel::PeerVerdict>());
    log::info("mutual RA-TLS: clients must present evidence satisfying {}", client_policy_file);
  }
  auto tls = crypto::TlsContext::Server(*identity, client_verifier);
  if (!tls.ok()) return Fail("TLS: " + tls.detail());

  // --- serving -------------------------------------------------------------------
  so.model_name = model_name;
  so.scheduler.max_active = max_active;
  so.scheduler.max_queued = max_queued;
  so.scheduler.context_length = context;
  so.limits.max_tokens_cap = std::max(1, std::min(so.limits.max_tokens_cap, context > 0 ? context : 8192));
  server::Service service(**model, so);
  service.SetAttestation(issuer);
  service.SetServedSpki(spki);
  server::HttpLimits limits;
  limits.max_body_bytes = so.limits.max_body_bytes;
  auto https = server::HttpServer::Start(host, port, service.Handler(), limits, *tls);
  if (!https.ok()) return Fail(https.detail());
  std::unique_ptr<server::HttpServer> plain;
  if (!debug_listen.empty()) {
    auto p = server::HttpServer::Start(debug_host, debug_port, service.Handler(), limits);
    if (!p.ok()) return Fail(p.detail());
    plain = std::move(p).value();
    log::warn("plain HTTP debug listener on {}:{} — NOT attested, NOT encrypted", debug_host, plain->port());
  }
  log::info("serving {} ({} platform{}) on https://{}:{} — binary {} model {}", model_name,
            attestation::PlatformName(issuer->platform()),
            issuer->platform() == attestation::Platform::kSim ? ", SIMULATED TEE" : "", host, (*https)->port(),
            HexEncode(*binary_digest).substr(0, 16), HexEncode(*model_digest).substr(0, 16));
  if (!ready_file.empty()) {
    nlohmann::json j = {{"port", (*https)->port()},
                        {"debug_port", plain ? plain->port() : 0},
                        {"binary_digest", HexEncode(*binary_digest)},
                        {"model_digest", HexEncode(*model_digest)},
                        {"model_name", model_name}};
    std::ofstream(ready_file) << j.dump() << "\n";
  }

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  // Rotate the certificate at half its lifetime; new handshakes get the new one.
  auto next_rotation = std::chrono::steady_clock::now() + io.validity / 2;
  while (g_signal == 0) {
    std::unique_lock<std::mutex> lock(g_mu);
    g_cv.wait_for(lock, std::chrono::milliseconds(200));
    if (std::chrono::steady_clock::now() < next_rotation) continue;
    auto fresh = issuer->Issue(std::chrono::system_clock::now());
    if (fresh.ok()) {
      Bytes fresh_spki = fresh->cert.GetPublicKey()->ToSpkiDer();
      if ((*tls)->SetIdentity(*fresh).ok()) service.SetServedSpki(fresh_spki);
      log::info("RA-TLS certificate rotated");
    } else {
      log::error("certificate rotation failed (keeping the current one): {}", fresh.detail());
    }
    next_rotation = std::chrono::steady_clock::now() + io.validity / 2;
  }
  log::info("shutting down (signal {})", static_cast<int>(g_signal));
  service.Shutdown();  // running generations end; their clients get what was produced
  (*https)->Stop();
  if (plain) plain->Stop();
  return 0;
}
