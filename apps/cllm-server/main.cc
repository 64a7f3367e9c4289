// cllm-server: serve one model over RA-TLS with an OpenAI-compatible API.
//
//   cllm-server -m MODEL.gguf --tee sim --sim-key plat.key --listen 127.0.0.1:8443 --api-keys keys.json
//
// At start it hashes its own executable (binary digest) and the model (model
// digest), asks the TEE for evidence binding both and a fresh TLS key, and
// serves only over TLS 1.3 with that certificate (rotated at half its
// lifetime). A plain GGUF model is read once into locked memory and the
// digest is of those bytes; the process never dumps core and locks its
// memory, or refuses to start (base/hardening.h). `--debug-listen` adds a
// plain-HTTP listener for benchmarks and debugging; it is not attested and
// says so. Prompts and completions are never logged.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <thread>

#include "apps/cllm-server/boot.h"
#include "apps/cllm-server/tee.h"
#include "base/encoding.h"
#include "base/hardening.h"
#include "base/host_port.h"
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

int Fail(const std::string& msg) {
  std::fprintf(stderr, "cllm-server: error: %s\n", msg.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cllm-server — attested LLM inference (OpenAI-compatible API over RA-TLS)"};
  app.set_version_flag("--version", std::string("cllm-server ") + CLLM_VERSION);
  std::string model_path, model_name, tee = "auto", sim_key, listen = "127.0.0.1:8443", debug_listen, keys_file,
                              ready_file, log_level = "info", client_policy_file, trust_url, trust_ca,
                              trust_policy = "default", key_id;
  bool client_via_token = false;
  bool anonymous = false;
  bool allow_unlocked_memory = false, mmap_untrusted_disk = false;
  int max_active = 8, max_queued = 64, context = 0, validity_s = 600;
  // Every TLS record is padded to a multiple of this (issue #11 item 7): a
  // streamed token event is ~200-250 bytes, so one block holds one event.
  int stream_pad = 512, stream_coalesce_ms = 0;
  std::string metrics_keys_file;
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
  app.add_option("--stream-pad", stream_pad,
                 "Pad every RA-TLS record to a multiple of BYTES so record sizes do not reveal token lengths; "
                 "0 turns padding OFF (the text of streamed answers becomes guessable from the traffic)")
      ->check(CLI::Range(0, 16384))
      ->capture_default_str();
  app.add_option("--stream-coalesce-ms", stream_coalesce_ms,
                 "Hold streamed text this long and send it as one event (hides the per-token timing; adds "
                 "up to this much latency); 0: send each token at once")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str();
  app.add_option("--metrics-keys", metrics_keys_file,
                 "Keys file (the --api-keys format) whose keys may read /metrics; without it /metrics is served "
                 "on --debug-listen only")
      ->check(CLI::ExistingFile);
  app.add_option("--cert-validity", validity_s, "RA-TLS certificate lifetime in seconds")->check(CLI::Range(60, 86400));
  app.add_option("--client-policy", client_policy_file,
                 "Mutual RA-TLS: require every client to present evidence satisfying this policy")
      ->check(CLI::ExistingFile);
  app.add_flag("--client-via-token", client_via_token,
               "Mutual mode: accept clients on their cllm-trust token (needs --trust) instead of local evidence");
  app.add_option("--trust", trust_url, "cllm-trust URL: attest there, put its token in the certificate, and "
                 "fetch the sealed model's key");
  app.add_option("--trust-ca", trust_ca, "cllm-trust's certificate (its STATE_DIR/trust-ca.pem), pinned")
      ->check(CLI::ExistingFile);
  app.add_option("--trust-policy", trust_policy, "Reference-value policy name at cllm-trust")->capture_default_str();
  app.add_option("--key-id", key_id, "Model key id at cllm-trust (default: the sealed header's)");
  app.add_flag("--allow-unlocked-memory", allow_unlocked_memory,
               "Start even when memory cannot be locked (prompts, KV cache and weights may be swapped to "
               "host-visible disk)");
  app.add_flag("--mmap-untrusted-disk", mmap_untrusted_disk,
               "Hash the plain model by path and mmap it (faster start); the disk can then serve other bytes "
               "than the attested digest: only for a disk you trust, never for attested integrity");
  app.add_option("--ready-file", ready_file, "Write {\"port\":…, \"debug_port\":…} here once listening");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  CLI11_PARSE(app, argc, argv);

  auto level = log::ParseLevel(log_level);
  if (!level.ok()) return Fail(level.detail());
  log::Init(*level);

  // First, before any secret exists: no core dumps, all memory locked.
  HardeningOptions hardening_options;
  hardening_options.allow_unlocked_memory = allow_unlocked_memory;
  auto hardening = HardenProcess(hardening_options);
  if (!hardening.ok()) return Fail(hardening.detail());
  if (!hardening->memory_locked) {
    log::warn("memory is NOT locked ({}); --allow-unlocked-memory: prompts, KV cache and weights may be swapped to "
              "host-visible disk", hardening->unlocked_reason);
  }

  std::string host, debug_host;
  uint16_t port = 0, debug_port = 0;
  if (!ParseHostPort(listen, &host, &port)) return Fail("--listen must be HOST:PORT, got \"" + listen + "\"");
  if (!debug_listen.empty() && !ParseHostPort(debug_listen, &debug_host, &debug_port)) {
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
  if (!metrics_keys_file.empty()) {
    auto keys = server::ApiKeys::Load(metrics_keys_file);
    if (!keys.ok()) return Fail("--metrics-keys: " + keys.detail());
    so.metrics_keys = std::move(keys).value();
  }
  if (stream_pad > 0 && stream_pad < 32) {
    return Fail("--stream-pad must be 0 (off) or 32 to 16384 bytes; smaller blocks hide nothing");
  }
  so.stream_coalesce = std::chrono::milliseconds(stream_coalesce_ms);

  // --- identity: what this server is ------------------------------------------
  auto attester = app::OpenAttester(tee, sim_key);
  if (!attester.ok()) return Fail(attester.detail());
  auto binary_digest = crypto::Sha256File("/proc/self/exe");
  if (!binary_digest.ok()) return Fail("hashing the executable: " + binary_digest.detail());
  auto input = app::InspectModel(model_path, /*hash_plain=*/mmap_untrusted_disk);
  if (!input.ok()) return Fail(input.detail());
  // A plain model is read and hashed now, before its digest goes into any
  // evidence: the digest is that of the bytes in memory the engine serves.
  std::unique_ptr<engine::Model> model;
  if (!input->sealed && !mmap_untrusted_disk) {
    auto m = app::LoadPlainModel(model_path, app::StderrProgress("reading model"));
    if (!m.ok()) return Fail(m.detail());
    input->digest = m->digest;
    model = std::move(m->model);
    if (!m->locked && hardening->memory_locked) return Fail("the model could not be locked in memory");
  } else if (!input->sealed) {
    log::warn("--mmap-untrusted-disk: the model is hashed by path and mapped from disk; a host controlling the disk "
              "can serve other bytes than the attested digest {}", HexEncode(input->digest).substr(0, 16));
  }
  if (input->sealed && trust_url.empty()) {
    return Fail("the model is sealed: its key comes only from cllm-trust after attestation (--trust URL --trust-ca "
                "FILE)");
  }
  if (!trust_url.empty() && trust_ca.empty()) return Fail("--trust needs --trust-ca (the service's certificate)");
  if (model_name.empty()) model_name = input->default_name;

  channel::ServerClaims claims{*binary_digest, input->digest, model_name};
  channel::IssuerOptions io;
  io.validity = std::chrono::seconds(validity_s);
  auto issuer = std::make_shared<channel::RaTlsIssuer>(*attester, claims, io);

  // --- preparation: attestation, token, model key -------------------------------
  std::unique_ptr<app::TrustBoot> trust;
  std::optional<app::NodeIdentity> node;
  if (!trust_url.empty()) {
    auto tb = app::TrustBoot::Create(trust_url, trust_ca, trust_policy);
    if (!tb.ok()) return Fail(tb.detail());
    trust = std::move(tb).value();
    auto n = trust->Attest(*issuer);
    if (!n.ok()) return Fail(n.detail());
    node = std::move(n).value();
    log::info("attested to cllm-trust {} (policy {}); token valid for {} s", trust_url, trust_policy,
              node->token.expires_at - std::chrono::duration_cast<std::chrono::seconds>(
                                           std::chrono::system_clock::now().time_since_epoch()).count());
  }
  if (input->sealed) {
    const std::string kid = key_id.empty() ? input->header.key_id : key_id;
    auto key = trust->ModelKey(*node, kid);
    if (!key.ok()) return Fail(key.detail());
    log::info("model key {} released by cllm-trust; unsealing in memory", kid);
    auto m = app::LoadSealedModel(model_path, key->span(), input->digest, app::StderrProgress("unsealing model"));
    if (!m.ok()) return Fail(m.detail());
    model = std::move(m).value();
  } else if (!model) {
    auto m = engine::Model::Open(model_path);
    if (!m.ok()) return Fail(std::string(engine::ModelErrcName(m.code())) + ": " + m.detail());
    model = std::move(m).value();
  }

  // The RA-TLS identity: with cllm-trust, the attested node key carries the
  // token (cnf = this key) and the certificate ends when the token does.
  auto make_identity = [&](std::optional<app::NodeIdentity> n) -> channel::ChannelResult<crypto::TlsIdentity> {
    const auto now = std::chrono::system_clock::now();
    if (!n) return issuer->Issue(now);
    return issuer->IssueWithKey(now, n->key, n->token.jwt,
                                std::chrono::system_clock::time_point(std::chrono::seconds(n->token.expires_at)));
  };
  auto identity = make_identity(std::move(node));
  if (!identity.ok()) return Fail(std::string(channel::ChannelErrcName(identity.code())) + ": " + identity.detail());
  Bytes spki = identity->cert.GetPublicKey()->ToSpkiDer();
  crypto::PeerVerifier client_verifier;
  std::shared_ptr<trust::JwksSource> client_jwks;  // refreshed at every certificate renewal
  if (client_via_token && client_policy_file.empty()) return Fail("--client-via-token needs --client-policy FILE");
  if (!client_policy_file.empty()) {
    auto cp = attestation::LoadPolicy(client_policy_file);
    if (!cp.ok()) return Fail(cp.detail());
    // Each handshake verifies the client's certificate evidence like a client
    // verifies ours; a refused client never gets to send a request.
    if (client_via_token) {
      if (!trust) return Fail("--client-via-token needs --trust (the cllm-trust whose tokens clients present)");
      auto jwks = trust->Jwks();
      if (!jwks.ok()) return Fail(jwks.detail());
      client_jwks = std::make_shared<trust::JwksSource>(std::move(jwks).value());
      client_verifier = trust::MakeTokenVerifier(client_jwks, std::move(cp).value(),
                                                 std::make_shared<trust::TokenVerdict>());
      log::info("mutual RA-TLS: clients must present a cllm-trust token satisfying {}", client_policy_file);
    } else {
      client_verifier = channel::MakePeerVerifier(std::move(cp).value(), std::make_shared<channel::PeerVerdict>());
      log::info("mutual RA-TLS: clients must present evidence satisfying {}", client_policy_file);
    }
  }
  auto tls = crypto::TlsContext::Server(*identity, client_verifier);
  if (!tls.ok()) return Fail("TLS: " + tls.detail());
  if (auto st = (*tls)->SetRecordPadding(static_cast<size_t>(stream_pad)); !st.ok()) {
    return Fail("--stream-pad: " + st.detail());
  }
  if (stream_pad == 0) {
    log::warn("--stream-pad 0: TLS record padding is OFF — a network observer sees the length of every streamed "
              "token and can reconstruct answers");
  }

  // --- serving -------------------------------------------------------------------
  so.model_name = model_name;
  so.scheduler.max_active = max_active;
  so.scheduler.max_queued = max_queued;
  so.scheduler.context_length = context;
  so.limits.max_tokens_cap = std::max(1, std::min(so.limits.max_tokens_cap, context > 0 ? context : 8192));
  server::Service service(*model, so);
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
            HexEncode(*binary_digest).substr(0, 16), HexEncode(input->digest).substr(0, 16));
  if (!ready_file.empty()) {
    nlohmann::json j = {{"port", (*https)->port()},
                        {"debug_port", plain ? plain->port() : 0},
                        {"binary_digest", HexEncode(*binary_digest)},
                        {"model_digest", HexEncode(input->digest)},
                         // what the model digest describes: the bytes served
                         // ("read-once", "sealed"), or the file when it was
                         // hashed ("mmap-untrusted-disk": not attested integrity)
                         {"model_loading", input->sealed        ? "sealed"
                                           : mmap_untrusted_disk ? "mmap-untrusted-disk"
                                                                 : "read-once"},
                         {"memory_locked", hardening->memory_locked},
                         {"model_name", model_name},
                         {"stream_pad", stream_pad}};
    std::ofstream(ready_file) << j.dump() << "\n";
  }

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  // Rotate the certificate at half its lifetime (with cllm-trust: re-attest
  // for a fresh token first); new handshakes get the new one. A failed
  // renewal keeps the current certificate and retries in 10 s.
  auto half_life = [](const crypto::Certificate& c) {
    return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        (c.NotAfter() - std::chrono::system_clock::now()) / 2);
  };
  auto next_rotation = std::chrono::steady_clock::now() + half_life(identity->cert);
  while (g_signal == 0) {
    std::unique_lock<std::mutex> lock(g_mu);
    g_cv.wait_for(lock, std::chrono::milliseconds(200));
    if (std::chrono::steady_clock::now() < next_rotation) continue;
    std::optional<app::NodeIdentity> renewed;
    if (trust) {
      auto n = trust->Attest(*issuer);
      if (!n.ok()) {
        log::error("token renewal failed (keeping the current certificate, retrying): {}", n.detail());
        next_rotation = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        continue;
      }
      renewed = std::move(n).value();
      if (client_jwks) {
        if (auto j = trust->Jwks(); j.ok()) client_jwks->Set(std::move(j).value());
      }
    }
    auto fresh = make_identity(std::move(renewed));
    if (fresh.ok() && (*tls)->SetIdentity(*fresh).ok()) {
      service.SetServedSpki(fresh->cert.GetPublicKey()->ToSpkiDer());
      log::info("RA-TLS certificate rotated{}", trust ? " with a fresh cllm-trust token" : "");
      next_rotation = std::chrono::steady_clock::now() + half_life(fresh->cert);
    } else {
      log::error("certificate rotation failed (keeping the current one): {}", fresh.ok() ? "TLS" : fresh.detail());
      next_rotation = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    }
  }
  log::info("shutting down (signal {})", static_cast<int>(g_signal));
  service.Shutdown();  // running generations end; their clients get what was produced
  (*https)->Stop();
  if (plain) plain->Stop();
  return 0;
}
