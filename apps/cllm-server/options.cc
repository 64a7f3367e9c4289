#include "apps/cllm-server/options.h"

#include <algorithm>

#include "apps/common/env_config.h"
#include "base/utf8.h"
#include "channel/payload.h"
#include "net/server.h"

namespace cllm::app {

void AddServerFlags(CLI::App& app, ServerFlags& f) {
  f.max_connections = net::ServerOptions{}.max_connections;
  // --- model and identity --------------------------------------------------------
  app.add_option("-m,--model", f.model_path, "GGUF model file")->required()->check(CLI::ExistingFile);
  app.add_option("--model-name", f.model_name, "Name served in /v1/models (default: the file name)");
  app.add_option("--chat-template", f.chat_template_file,
                 "Jinja chat template to use instead of the model's tokenizer.chat_template")
      ->check(CLI::ExistingFile);
  app.add_option("--tee", f.tee, "sim, snp, tdx, csv or auto")
      ->check(CLI::IsMember({"sim", "snp", "tdx", "csv", "auto"}))
      ->capture_default_str();
  app.add_option("--sim-key", f.sim_key, "Simulated-TEE platform key (with --tee sim)");
  app.add_option("--cert-validity", f.validity_s, "RA-TLS certificate lifetime in seconds")
      ->check(CLI::Range(60, 86400))
      ->capture_default_str();
  app.add_option("--trust", f.trust_url,
                 "cllm-trust URL: attest there, put its token in the certificate, and fetch the sealed model's key");
  app.add_option("--trust-ca", f.trust_ca, "cllm-trust's certificate (its STATE_DIR/trust-ca.pem), pinned")
      ->check(CLI::ExistingFile);
  app.add_option("--trust-policy", f.trust_policy, "Reference-value policy name at cllm-trust")->capture_default_str();
  app.add_option("--key-id", f.key_id, "Model key id at cllm-trust (default: the sealed header's)");
  app.add_flag("--allow-unlocked-memory", f.allow_unlocked_memory,
               "Start even when memory cannot be locked (prompts, KV cache and weights may be swapped to "
               "host-visible disk)");
  app.add_flag("--mmap-untrusted-disk", f.mmap_untrusted_disk,
               "Hash the plain model by path and mmap it (faster start); the disk can then serve other bytes "
               "than the attested digest: only for a disk you trust, never for attested integrity");

  // --- listeners and clients ------------------------------------------------------
  app.add_option("--listen", f.listen, "RA-TLS listen address HOST:PORT (port 0: any free port)")
      ->capture_default_str();
  app.add_option("--debug-listen", f.debug_listen,
                 "Also serve plain HTTP here (NOT attested, /metrics open; benchmarks/debugging). The evidence says "
                 "so: clients refuse the server unless their policy sets allow_debug_listener");
  app.add_option("--api-keys", f.keys_file, "API keys file (SHA-256 digests → user ids)")->check(CLI::ExistingFile);
  app.add_flag("--allow-anonymous", f.anonymous, "Serve without API keys (development only)");
  app.add_option("--metrics-keys", f.metrics_keys_file,
                 "Keys file (the --api-keys format, 1 to 16 keys) whose keys may read /metrics; without it /metrics "
                 "is served on --debug-listen only. The evidence names each key (its SHA-256): clients refuse the "
                 "server unless their policy lists them (metrics_readers) or sets allow_metrics_keys")
      ->check(CLI::ExistingFile);
  app.add_option("--client-policy", f.client_policy_file,
                 "Mutual RA-TLS: require every client to present evidence satisfying this policy")
      ->check(CLI::ExistingFile);
  app.add_flag("--client-via-token", f.client_via_token,
               "Mutual mode: accept clients on their cllm-trust token (needs --trust) instead of local evidence");
  app.add_flag("--e2e", f.e2e,
               "Encrypted bodies: fetch the fleet HPKE keys cllm-trust releases to this attested node (needs --trust) "
               "and open requests sealed to them, on any listener");
  app.add_option("--e2e-listen", f.e2e_listen,
                 "With --e2e: a plain HTTP listener HOST:PORT for a TLS-terminating gateway; it takes only encrypted "
                 "bodies (and GET /v1/e2e/keys, /health, /ready)");
  app.add_option("--e2e-client-token-policy", f.e2e_client_token_policies,
                 "With --e2e: mutual mode — accept requests sealed in HPKE auth mode by clients holding a cllm-trust "
                 "token of this attestation policy (repeat for several)");
  app.add_option("--e2e-client-policy", f.e2e_client_policy_file,
                 "With --e2e-client-token-policy: also appraise each client's token under this attestation policy "
                 "(platforms, measurements, TCB, debug; as for evidence), refusing clients it does not accept")
      ->check(CLI::ExistingFile);
  app.add_flag("--e2e-require-client-token", f.e2e_require_client_token,
               "With --e2e: refuse encrypted requests without a client token (mutual mode only)");
  app.add_option("--prompt-embeds", f.prompt_embeds,
                 "Who may send prompts as embedding rows (prompt_embeds; split inference): off, api-key (keys "
                 "whose keys-file entry has \"prompt_embeds\": true) or mutual (those, and e2e mutual-mode requests "
                 "from attested clients)")
      ->check(CLI::IsMember({"off", "api-key", "mutual"}))
      ->capture_default_str();
  app.add_option("--max-connections", f.max_connections,
                 "Open connections per listener; at the limit the oldest idle one is closed for a newcomer "
                 "(an idle TLS connection holds ~77 KB)")
      ->check(CLI::Range(16, 1 << 20))
      ->capture_default_str();
  app.add_option("--max-connections-per-address", f.max_connections_per_address,
                 "Open connections from one client address (IPv6: one /64) per listener; past it the address's own "
                 "oldest connection not handling a request is closed, or the newcomer refused. 0: no limit. Leave 0 "
                 "behind a TCP relay or NAT, where every client has the relay's address")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  app.add_option("--drain-timeout", f.drain_timeout_s,
                 "On SIGTERM, let running requests finish for up to this many seconds, then cancel the rest")
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();
  app.add_option("--stream-pad", f.stream_pad,
                 "Pad every RA-TLS record to a multiple of BYTES so record sizes do not reveal token lengths; "
                 "0 turns padding OFF (the text of streamed answers becomes guessable from the traffic)")
      ->check(CLI::Range(0, 16384))
      ->capture_default_str();
  app.add_option("--stream-coalesce-ms", f.stream_coalesce_ms,
                 "Hold streamed text this long and send it as one event (hides the per-token timing; adds "
                 "up to this much latency); 0: send each token at once")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str();
  app.add_option("--ready-file", f.ready_file, "Write {\"port\":…, \"debug_port\":…} here once listening");

  // --- engine and scheduling --------------------------------------------------------
  app.add_option("--threads", f.threads,
                 "Engine threads for the forward pass (0: the CPUs this process may run on)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app.add_option("--kv-type", f.kv_type, "KV cache element type: f16 (half the memory) or f32")
      ->check(CLI::IsMember({"f16", "f32"}))
      ->capture_default_str();
  app.add_option("--prompt-cache-mib", f.prompt_cache_mib,
                 "KV memory kept for reusing each user's earlier prompt prefixes (never across users), in equal shares per "
                 "API key (no key's traffic evicts another's); 0: off. Default: 256; off with --allow-anonymous, which "
                 "refuses any other value (all callers are one user)")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--context", f.context, "Context length per sequence (0: the model's, at most 8192)")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  app.add_option("--max-active", f.max_active, "Sequences generated together")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--prefill-stall-factor", f.prefill_stall_factor,
                 "While streams run, keep a step carrying prompt tokens within this factor of a decode-only step "
                 "(a long prompt then prefills in smaller pieces); 0 or 1: off")
      ->check(CLI::Range(0.0, 1000.0))
      ->capture_default_str();
  app.add_option("--max-queued", f.max_queued, "Waiting requests of all users together before 429")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  app.add_option("--user-max-active", f.user_max_active, "Requests one user (API key) has generating at once")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--user-max-queued", f.user_max_queued, "Requests one user has waiting beyond those before 429")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  app.add_option("--user-tokens-per-minute", f.user_tokens_per_minute,
                 "Prompt + completion tokens per minute per user before 429 (0: unlimited)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40))
      ->capture_default_str();

  // --- logs ---------------------------------------------------------------------------
  app.add_option("--log-level", f.log_level, "trace, debug, info, warn, error")->capture_default_str();
  app.add_option("--access-log", f.access_log,
                 "One JSON line per request (never prompt or answer text) to this file, - (stderr) or off")
      ->capture_default_str();

  BindEnvironmentAndConfig(app);
}

Result<int> PromptCacheMib(const ServerFlags& f, bool have_api_keys) {
  if (have_api_keys) return f.prompt_cache_mib.value_or(256);
  if (f.prompt_cache_mib.value_or(0) > 0) {
    return MakeError(Errc::kInvalidArgument, "--prompt-cache-mib " + std::to_string(*f.prompt_cache_mib) +
                     " with --allow-anonymous: every caller is then one user, so the cache would be shared between "
                     "callers (they could tell which prompts others sent); give --api-keys FILE (cllm apikey add) for "
                     "a cache per user");
  }
  return 0;
}

Status<Errc> CheckModelName(const std::string& name) {
  const bool control = std::any_of(name.begin(), name.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
  if (name.empty() || name.size() > channel::kMaxModelNameSize || !IsValidUtf8(name) || control) {
    return MakeError(Errc::kInvalidArgument, "the model name (--model-name, else the model file's) must be 1-" +
                                                 std::to_string(channel::kMaxModelNameSize) +
                                                 " bytes of UTF-8 without control characters");
  }
  return OkStatus();
}

}  // namespace cllm::app
