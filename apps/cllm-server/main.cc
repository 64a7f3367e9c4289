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
// says so, in its log and in its evidence (a serving claim). Prompts and completions are never logged.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <thread>

#include "apps/cllm-server/boot.h"
#include "apps/cllm-server/e2e_boot.h"
#include "apps/cllm-server/options.h"
#include "apps/common/tee.h"
#include "base/encoding.h"
#include "base/file.h"
#include "base/hardening.h"
#include "base/host_port.h"
#include "base/log.h"
#include "channel/ratls.h"
#include "channel/server_channel.h"
#include "crypto/digest.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/thread_pool.h"
#include "net/server.h"
#include "server/service.h"
#include "trust/e2e_client.h"
#include "trust/token_claims.h"

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
  app::ServerFlags f;
  app::AddServerFlags(app, f);
  CLI11_PARSE(app, argc, argv);

  auto level = log::ParseLevel(f.log_level);
  if (!level.ok()) return Fail(level.detail());
  log::Init(*level);

  // First, before any secret exists: no core dumps, all memory locked.
  HardeningOptions hardening_options;
  hardening_options.allow_unlocked_memory = f.allow_unlocked_memory;
  auto hardening = HardenProcess(hardening_options);
  if (!hardening.ok()) return Fail(hardening.detail());
  if (!hardening->memory_locked) {
    log::warn("memory is NOT locked ({}); --allow-unlocked-memory: prompts, KV cache and weights may be swapped to "
              "host-visible disk", hardening->unlocked_reason);
  }

  std::string host, debug_host;
  uint16_t port = 0, debug_port = 0;
  if (!ParseHostPort(f.listen, &host, &port)) return Fail("--listen must be HOST:PORT, got \"" + f.listen + "\"");
  if (!f.debug_listen.empty() && !ParseHostPort(f.debug_listen, &debug_host, &debug_port)) {
    return Fail("--debug-listen must be HOST:PORT, got \"" + f.debug_listen + "\"");
  }
  std::string e2e_host;
  uint16_t e2e_port = 0;
  if (!f.e2e_listen.empty() && !ParseHostPort(f.e2e_listen, &e2e_host, &e2e_port)) {
    return Fail("--e2e-listen must be HOST:PORT, got \"" + f.e2e_listen + "\"");
  }
  if (!f.e2e && (!f.e2e_listen.empty() || !f.e2e_client_token_policies.empty() || f.e2e_require_client_token)) {
    return Fail("--e2e-listen, --e2e-client-token-policy and --e2e-require-client-token need --e2e");
  }
  if (f.e2e && f.trust_url.empty()) {
    return Fail("--e2e needs --trust URL --trust-ca FILE: the fleet keys come only from cllm-trust after attestation");
  }
  std::optional<attestation::Policy> e2e_client_policy;
  if (!f.e2e_client_policy_file.empty()) {
    if (f.e2e_client_token_policies.empty()) {
      return Fail("--e2e-client-policy needs e2e mutual mode (--e2e-client-token-policy NAME)");
    }
    auto loaded = attestation::LoadPolicy(f.e2e_client_policy_file);
    if (!loaded.ok()) return Fail("--e2e-client-policy: " + loaded.detail());
    e2e_client_policy = std::move(loaded).value();
  }
  if (f.e2e_require_client_token && f.e2e_client_token_policies.empty()) {
    return Fail("--e2e-require-client-token needs --e2e-client-token-policy NAME (whose tokens are accepted)");
  }
  server::ServiceOptions so;
  if (!f.keys_file.empty()) {
    auto keys = server::ApiKeys::Load(f.keys_file);
    if (!keys.ok()) return Fail(keys.detail());
    so.api_keys = std::move(keys).value();
  } else if (!f.anonymous) {
    return Fail("--api-keys FILE is required (or --allow-anonymous for development)");
  }
  if (!f.metrics_keys_file.empty()) {
    auto keys = server::ApiKeys::LoadMetricsKeys(f.metrics_keys_file);
    if (!keys.ok()) return Fail("--metrics-keys: " + keys.detail());
    so.metrics_keys = std::move(keys).value();
  }
  if (f.stream_pad > 0 && f.stream_pad < 32) {
    return Fail("--stream-pad must be 0 (off) or 32 to 16384 bytes; smaller blocks hide nothing");
  }
  so.stream_coalesce = std::chrono::milliseconds(f.stream_coalesce_ms);
  if (f.access_log != "off") {
    auto access_log = server::AccessLog::Open(f.access_log);
    if (!access_log.ok()) return Fail("--access-log: " + access_log.detail());
    so.access_log = std::move(access_log).value();
  }
  engine::SetNumThreads(f.threads);  // 0: the CPUs this process may run on
  so.scheduler.kv_type = f.kv_type == "f32" ? engine::KvType::kF32 : engine::KvType::kF16;

  // --- identity: what this server is ------------------------------------------
  auto attester = app::OpenAttester(f.tee, f.sim_key);
  if (!attester.ok()) return Fail(attester.detail());
  auto binary_digest = crypto::Sha256File("/proc/self/exe");
  if (!binary_digest.ok()) return Fail("hashing the executable: " + binary_digest.detail());
  auto input = app::InspectModel(f.model_path, /*hash_plain=*/f.mmap_untrusted_disk);
  if (!input.ok()) return Fail(input.detail());
  // A plain model is read and hashed now, before its digest goes into any
  // evidence: the digest is that of the bytes in memory the engine serves.
  std::unique_ptr<engine::Model> model;
  if (!input->sealed && !f.mmap_untrusted_disk) {
    auto m = app::LoadPlainModel(f.model_path, app::StderrProgress("reading model"));
    if (!m.ok()) return Fail(m.detail());
    input->digest = m->digest;
    model = std::move(m->model);
    if (!m->locked && hardening->memory_locked) return Fail("the model could not be locked in memory");
  } else if (!input->sealed) {
    log::warn("--mmap-untrusted-disk: the model is hashed by path and mapped from disk; a host controlling the disk "
              "can serve other bytes than the attested digest {}", HexEncode(input->digest).substr(0, 16));
  }
  if (input->sealed && f.trust_url.empty()) {
    return Fail("the model is sealed: its key comes only from cllm-trust after attestation (--trust URL --trust-ca "
                "FILE)");
  }
  if (!f.trust_url.empty() && f.trust_ca.empty()) return Fail("--trust needs --trust-ca (the service's certificate)");
  if (f.model_name.empty()) f.model_name = input->default_name;
  if (auto st = app::CheckModelName(f.model_name); !st.ok()) return Fail(st.detail());

  // A chat template from the host shapes every prompt: its digest is a claim
  // of the evidence (ServingClaims), read here once and used as read.
  std::optional<std::string> template_override;
  if (!f.chat_template_file.empty()) {
    auto text = ReadTextFile(f.chat_template_file, 1 << 20);
    if (!text.ok()) return Fail("--chat-template: " + text.detail());
    template_override = std::move(text).value();
  }
  channel::ServerClaims claims{*binary_digest, input->digest, f.model_name, {}, {}};
  if (template_override) claims.serving.chat_template_digest = crypto::Sha256(AsBytes(*template_override));
  claims.serving.model_from_untrusted_disk = !input->sealed && f.mmap_untrusted_disk;
  claims.serving.memory_unlocked = !hardening->memory_locked;
  claims.serving.stream_pad = static_cast<uint32_t>(f.stream_pad);  // 0..16384 (options.cc)
  claims.serving.stream_coalesce_ms = static_cast<uint32_t>(f.stream_coalesce_ms);  // 0..10000 (options.cc)
  // Who else reads what the server does: a plain listener (everything on it,
  // /metrics included, unattested) and metrics-key holders on this one.
  claims.serving.debug_listener = !f.debug_listen.empty();
  if (so.metrics_keys) claims.serving.metrics_readers = so.metrics_keys->Digests();
  channel::IssuerOptions io;
  io.validity = std::chrono::seconds(f.validity_s);
  auto issuer = std::make_shared<channel::RaTlsIssuer>(*attester, claims, io);

  // --- preparation: attestation, token, model key -------------------------------
  std::unique_ptr<app::TrustBoot> trust;
  std::optional<app::NodeIdentity> node;
  if (!f.trust_url.empty()) {
    auto tb = app::TrustBoot::Create(f.trust_url, f.trust_ca, f.trust_policy);
    if (!tb.ok()) return Fail(tb.detail());
    trust = std::move(tb).value();
    auto n = trust->Attest(*issuer);
    if (!n.ok()) return Fail(n.detail());
    node = std::move(n).value();
    log::info("attested to cllm-trust {} (policy {}); token valid for {} s", f.trust_url, f.trust_policy,
              node->token.expires_at - std::chrono::duration_cast<std::chrono::seconds>(
                                           std::chrono::system_clock::now().time_since_epoch()).count());
  }
  if (input->sealed) {
    const std::string kid = f.key_id.empty() ? input->header.key_id : f.key_id;
    auto key = trust->ModelKey(*node, kid);
    if (!key.ok()) return Fail(key.detail());
    log::info("model key {} released by cllm-trust; unsealing in memory", kid);
    auto m = app::LoadSealedModel(f.model_path, key->span(), input->digest, app::StderrProgress("unsealing model"),
                                  /*require_locked=*/hardening->memory_locked);
    if (!m.ok()) return Fail(m.detail());
    model = std::move(m).value();
  } else if (!model) {
    auto m = engine::Model::Open(f.model_path);
    if (!m.ok()) return Fail(std::string(engine::ModelErrcName(m.code())) + ": " + m.detail());
    model = std::move(m).value();
  }

  // --- encrypted bodies: the fleet keys released to this node (e2e_boot.h) ---------
  std::unique_ptr<app::FleetKeys> fleet;
  struct E2eNode {
    std::mutex mu;
    std::optional<app::NodeIdentity> node;  // the latest attested identity (its token fetches new keys)
  };
  auto e2e_node = std::make_shared<E2eNode>();
  if (f.e2e) {
    auto k = app::FleetKeys::Load(*trust, *node);
    if (!k.ok()) return Fail(k.detail());
    fleet = std::move(k).value();
    issuer->SetE2eKeyDigests(fleet->digests());
    e2e_node->node = *node;
    log::info("e2e: fleet keys released by cllm-trust: {}", fleet->Summary());
  }

  // The RA-TLS identity (channel/server_channel.h owns it and its rotation):
  // with cllm-trust, the attested node key carries the token (cnf = this key),
  // the certificate ends when the token does, and each renewal re-attests.
  auto attested_key = [](app::NodeIdentity n) {
    return channel::AttestedKey{std::move(n.key), std::move(n.token.jwt),
                                crypto::TimePoint(std::chrono::seconds(n.token.expires_at))};
  };
  channel::ReattestFn reattest;
  std::optional<channel::AttestedKey> boot_key;
  if (trust) {
    boot_key = attested_key(std::move(*node));
    reattest = [t = trust.get(), issuer, attested_key, e2e_node,
                e2e = f.e2e]() -> channel::ChannelResult<channel::AttestedKey> {
      auto n = t->Attest(*issuer);
      if (!n.ok()) return MakeError(channel::ChannelErrc::kAttesterFailed, n.detail());
      if (e2e) {
        std::lock_guard<std::mutex> lock(e2e_node->mu);
        e2e_node->node = *n;
      }
      return attested_key(std::move(n).value());
    };
  }
  channel::ServerChannelOptions co;
  co.record_padding = static_cast<size_t>(f.stream_pad);
  std::shared_ptr<trust::JwksSource> client_jwks;  // refreshed at every certificate renewal
  if (f.client_via_token && f.client_policy_file.empty()) return Fail("--client-via-token needs --client-policy FILE");
  if (!f.client_policy_file.empty()) {
    auto cp = attestation::LoadPolicy(f.client_policy_file);
    if (!cp.ok()) return Fail(cp.detail());
    // Each handshake verifies the client's certificate evidence like a client
    // verifies ours; a refused client never gets to send a request.
    if (f.client_via_token) {
      if (!trust) return Fail("--client-via-token needs --trust (the cllm-trust whose tokens clients present)");
      auto jwks = trust->Jwks();
      if (!jwks.ok()) return Fail(jwks.detail());
      client_jwks = std::make_shared<trust::JwksSource>(std::move(jwks).value());
      co.client_verifier = trust::MakeTokenVerifier(client_jwks, std::move(cp).value(),
                                                    std::make_shared<trust::TokenVerdict>(), "cllm-trust",
                                                    channel::PeerRole::kClient);
      co.on_renewal = [t = trust.get(), client_jwks] {
        auto j = t->Jwks();
        if (!j.ok()) return log::warn("client token keys not refreshed (keeping the current ones): {}", j.detail());
        client_jwks->Set(std::move(j).value());
      };
      log::info("mutual RA-TLS: clients must present a cllm-trust token satisfying {}", f.client_policy_file);
    } else {
      co.client_verifier = channel::MakePeerVerifier(std::move(cp).value(), std::make_shared<channel::PeerVerdict>(),
                                                     nullptr, channel::PeerRole::kClient);
      log::info("mutual RA-TLS: clients must present evidence satisfying {}", f.client_policy_file);
    }
  }
  auto created = channel::ServerChannel::Create(issuer, co, channel::ChannelClock::System(), reattest,
                                                std::move(boot_key));
  if (!created.ok()) return Fail(std::string(channel::ChannelErrcName(created.code())) + ": " + created.detail());
  std::shared_ptr<channel::ServerChannel> identity = std::move(created).value();
  if (f.stream_pad == 0) {
    log::warn("--stream-pad 0: TLS record padding is OFF — a network observer sees the length of every streamed "
              "token and can reconstruct answers");
  }

  // --- serving -------------------------------------------------------------------
  // The chat template is parsed and tried once here: a broken one stops the
  // start, rather than failing every chat request later.
  auto chat_template = engine::ChatTemplate::ForModel(model->file(), model->tokenizer(), template_override);
  if (!chat_template.ok()) {
    return Fail((f.chat_template_file.empty() ? std::string("the model's chat template: ")
                                            : "--chat-template " + f.chat_template_file + ": ") +
                chat_template.detail());
  }
  so.chat_template = std::make_shared<const engine::ChatTemplate>(std::move(chat_template).value());
  log::info("chat template: {}", so.chat_template->is_plain() ? std::string("none (plain text)")
                                 : f.chat_template_file.empty()
                                     ? std::string("the model's")
                                     : f.chat_template_file + " (SHA-256 " +
                                           HexEncode(*claims.serving.chat_template_digest).substr(0, 16) +
                                           "…, in the evidence: clients must pin it)");
  so.model_name = f.model_name;
  so.scheduler.max_active = f.max_active;
  so.scheduler.max_queued = f.max_queued;
  so.scheduler.user_limits = {f.user_max_active, f.user_max_queued};
  so.user_tokens_per_minute = f.user_tokens_per_minute;
  so.scheduler.context_length = f.context;
  so.limits.max_tokens_cap = std::max(1, std::min(so.limits.max_tokens_cap, f.context > 0 ? f.context : 8192));
  auto cache_mib = app::PromptCacheMib(f, so.api_keys.has_value());
  if (!cache_mib.ok()) return Fail(cache_mib.detail());
  so.scheduler.prompt_cache_bytes = static_cast<size_t>(*cache_mib) << 20;
  so.scheduler.prefill_stall_factor = f.prefill_stall_factor;
  if (!server::ParsePromptEmbedsPolicy(f.prompt_embeds, &so.prompt_embeds)) {
    return Fail("--prompt-embeds must be off, api-key or mutual");
  }
  if (so.prompt_embeds == server::PromptEmbedsPolicy::kMutual && f.e2e_client_token_policies.empty()) {
    return Fail("--prompt-embeds mutual needs e2e mutual mode (--e2e --e2e-client-token-policy NAME)");
  }
  if (so.prompt_embeds != server::PromptEmbedsPolicy::kOff) {
    // A whole context of float32 rows in base64 must fit in one body (the
    // prompt_embeds field itself is held to the real context's size).
    const int max_context = f.context > 0 ? f.context : 8192;
    so.limits.max_embeds_body_bytes =
        std::max(so.limits.max_body_bytes, server::MaxEmbedsBase64Chars(max_context, model->config().n_embd) + (64 << 10));
    log::info("prompt_embeds accepted ({}); completion bodies of callers who may send them up to {} bytes, others "
              "{} bytes", f.prompt_embeds, so.limits.max_embeds_body_bytes, so.limits.max_body_bytes);
  }
  server::Service service(*model, so);
  service.SetAttestation(identity);
  if (so.scheduler.prompt_cache_bytes > 0) {
    const uint64_t share = service.scheduler().Stats().prompt_cache_user_bytes;
    const size_t keys = so.api_keys ? so.api_keys->size() : 0;
    if (share == 0) {
      log::warn("prompt cache OFF: --prompt-cache-mib {} in equal shares for {} API keys is less than one KV block "
                "per key; raise --prompt-cache-mib to cache prompts",
                *cache_mib, keys);
    } else {
      log::info("prompt cache: {:.1f} MiB per API key ({} keys; no key's traffic evicts another's)",
                static_cast<double>(share) / (1 << 20), keys);
    }
  }
  if (fleet) {
    service.SetE2eKeys(fleet->ring());
    if (!f.e2e_client_token_policies.empty()) {
      auto jwks = trust->Jwks();
      if (!jwks.ok()) return Fail(jwks.detail());
      trust::E2eClientPolicy cp;
      cp.jwks = std::make_shared<trust::JwksSource>(std::move(jwks).value());
      cp.accepted_policies = f.e2e_client_token_policies;
      cp.appraisal = e2e_client_policy;
      if (cp.appraisal) log::info("e2e mutual mode: client tokens appraised under {}", f.e2e_client_policy_file);
      service.SetE2eClientVerifier(trust::MakeE2eClientVerifier(std::move(cp)), f.e2e_require_client_token);
      log::info("e2e mutual mode: client tokens of policy {} accepted{}", f.e2e_client_token_policies.front(),
                f.e2e_require_client_token ? ", and required" : "");
    }
  }
  const net::Handler api_handler = fleet ? app::WithE2eKeys(service.Handler(), *fleet) : service.Handler();
  net::ServerOptions net_options;
  net_options.max_body_bytes = std::max(so.limits.max_body_bytes, so.limits.max_embeds_body_bytes);
  net_options.body_limit = [&service](const net::Request& head) { return service.BodyLimit(head); };
  net_options.max_pending_body_bytes = std::max(net_options.max_pending_body_bytes, 2 * net_options.max_body_bytes);
  net_options.max_connections = f.max_connections;
  net_options.max_connections_per_address = f.max_connections_per_address;
  // Handlers return at once (a completion is answered from the scheduler's
  // worker), so the default few handler threads serve every user.
  auto https = net::Server::Start(host, port, api_handler, net_options, identity->tls());
  if (!https.ok()) return Fail(https.detail());
  std::unique_ptr<net::Server> plain;
  if (!f.debug_listen.empty()) {
    auto p = net::Server::Start(debug_host, debug_port, service.Handler(), net_options);
    if (!p.ok()) return Fail(p.detail());
    plain = std::move(p).value();
    log::warn("plain HTTP debug listener on {}:{} — NOT attested, NOT encrypted", debug_host, plain->port());
  }
  std::unique_ptr<net::Server> e2e_listener;
  if (!f.e2e_listen.empty()) {
    auto p = net::Server::Start(e2e_host, e2e_port, app::E2eListenerHandler(service, *fleet), net_options);
    if (!p.ok()) return Fail(p.detail());
    e2e_listener = std::move(p).value();
    log::info("e2e listener on http://{}:{}: encrypted bodies only (for a TLS-terminating gateway)", e2e_host,
              e2e_listener->port());
  }
  log::info("engine: {} threads, KV cache {}, kernels {}, {:.1f} MiB of weights repacked in place", engine::NumThreads(),
            f.kv_type, engine::IsaName(engine::ActiveIsa()), static_cast<double>(model->packed_bytes()) / (1 << 20));
  log::info("serving {} ({} platform{}) on https://{}:{} — binary {} model {}", f.model_name,
            attestation::PlatformName(issuer->platform()),
            issuer->platform() == attestation::Platform::kSim ? ", SIMULATED TEE" : "", host, (*https)->port(),
            HexEncode(*binary_digest).substr(0, 16), HexEncode(input->digest).substr(0, 16));
  if (!f.ready_file.empty()) {
    nlohmann::json j = {{"port", (*https)->port()},
                        {"debug_port", plain ? plain->port() : 0},
                        {"binary_digest", HexEncode(*binary_digest)},
                        {"model_digest", HexEncode(input->digest)},
                         // what the model digest describes: the bytes served
                         // ("read-once", "sealed"), or the file when it was
                         // hashed ("mmap-untrusted-disk": not attested integrity)
                         {"model_loading", input->sealed        ? "sealed"
                                           : f.mmap_untrusted_disk ? "mmap-untrusted-disk"
                                                                 : "read-once"},
                         {"memory_locked", hardening->memory_locked},
                         {"e2e_port", e2e_listener ? e2e_listener->port() : 0},
                         {"model_name", f.model_name},
                         {"chat_template_digest", claims.serving.chat_template_digest
                                                      ? HexEncode(*claims.serving.chat_template_digest)
                                                      : std::string()},
                         {"stream_pad", f.stream_pad},
                         {"stream_coalesce_ms", f.stream_coalesce_ms},
                         {"metrics_keys", !claims.serving.metrics_readers.empty()},
                         {"metrics_readers", trust::MetricsReadersClaim(claims.serving)}};
    std::ofstream(f.ready_file) << j.dump() << "\n";
  }

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  // The channel renews the certificate at half its lifetime (with
  // cllm-trust: after re-attesting for a fresh token); new handshakes get the
  // new one. A failed renewal keeps the current certificate and retries.
  auto next_key_check = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (g_signal == 0) {
    std::unique_lock<std::mutex> lock(g_mu);
    g_cv.wait_for(lock, std::chrono::milliseconds(200));
    if (fleet && std::chrono::steady_clock::now() >= next_key_check) {
      // Keys published since (a rotation): fetched with the latest token.
      next_key_check = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      std::optional<app::NodeIdentity> n;
      {
        std::lock_guard<std::mutex> nl(e2e_node->mu);
        n = e2e_node->node;
      }
      const auto before = fleet->digests();
      auto added = fleet->Refresh(*trust, *n);
      if (!added.ok()) {
        log::warn("e2e: fleet keys not refreshed (keeping the current ones): {}", added.detail());
      } else if (fleet->digests() != before) {  // a key added, or one retired
        issuer->SetE2eKeyDigests(fleet->digests());
        service.SetE2eKeys(fleet->ring());
        log::info("e2e: now holding {}", fleet->Summary());
      }
    }
    auto rotated = identity->RotateIfDue();
    if (!rotated.ok()) {
      log::error("certificate renewal failed (keeping the current certificate, retrying in {} s): {}",
                 co.retry_interval.count(), rotated.detail());
    } else if (*rotated) {
      log::info("RA-TLS certificate rotated{}", trust ? " with a fresh cllm-trust token" : "");
    }
  }
  // --- drain ---------------------------------------------------------------------
  // New completions get 503 and both listeners close; requests under way
  // finish until --drain-timeout, then what is left is cut off (their
  // clients are gone, which cancels their sequences) and the engine stops.
  log::info("draining (signal {}): running requests may finish within {} s", static_cast<int>(g_signal),
            f.drain_timeout_s);
  service.StopAdmitting();
  const auto deadline = std::chrono::seconds(f.drain_timeout_s);
  int plain_cut = 0;
  std::thread plain_drain;
  if (plain) plain_drain = std::thread([&] { plain_cut = plain->Drain(deadline); });
  int e2e_cut = 0;
  std::thread e2e_drain;
  if (e2e_listener) e2e_drain = std::thread([&] { e2e_cut = e2e_listener->Drain(deadline); });
  int cut = (*https)->Drain(deadline);  // both listeners drain at once
  if (plain_drain.joinable()) plain_drain.join();
  if (e2e_drain.joinable()) e2e_drain.join();
  cut += plain_cut + e2e_cut;
  if (cut > 0) log::warn("drain deadline passed: {} responses cut off", cut);
  service.Shutdown();  // cancels anything still queued or running
  (*https)->Stop();
  if (plain) plain->Stop();
  if (e2e_listener) e2e_listener->Stop();
  log::info("stopped");
  return 0;
}
