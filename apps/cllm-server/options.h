// options.h — cllm-server's flags, apart from main() so a test can parse
// them without starting a server.
//
// Every flag is also read from the environment (CLLM_ + the long name,
// upper case, '-' → '_': `--kv-type` ↔ CLLM_KV_TYPE) and from the file of
// `--config FILE` (TOML/INI: `kv-type = "f32"`); the command line wins over
// the environment, which wins over the file (apps/common/env_config.h).
// deploy/cllm-server.toml is an example.
#pragma once

#include <CLI/CLI.hpp>

#include "base/result.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cllm::app {

struct ServerFlags {
  // --- model and identity
  std::string model_path, model_name;
  std::string chat_template_file;  // overrides the model's tokenizer.chat_template
  std::string tee = "auto", sim_key;
  std::string trust_url, trust_ca, trust_policy = "default", key_id;
  int validity_s = 600;
  bool allow_unlocked_memory = false, mmap_untrusted_disk = false;
  // --- listeners and clients
  std::string listen = "127.0.0.1:8443", debug_listen, ready_file;
  std::string keys_file, metrics_keys_file, client_policy_file, e2e_client_policy_file;
  bool anonymous = false, client_via_token = false;
  // Encrypted bodies (e2e_boot.h): fleet keys from cllm-trust, a plain listener
  // for a TLS-terminating gateway, mutual mode with client tokens.
  bool e2e = false, e2e_require_client_token = false;
  std::string e2e_listen;
  std::vector<std::string> e2e_client_token_policies;
  // Who may send prompts as embedding rows (split inference): off, api-key
  // (keys whose entry has "prompt_embeds": true) or mutual (those, and e2e
  // mutual-mode requests).
  std::string prompt_embeds = "off";
  int max_connections = 0;  // set from net::ServerOptions by AddServerFlags
  int max_connections_per_address = 0;  // 0: no limit (behind a relay every client has its address)
  int drain_timeout_s = 30;
  // Every TLS record is padded to a multiple of this (issue #11 item 7): a
  // streamed token event is ~200-250 bytes, so one block holds one event.
  int stream_pad = 512, stream_coalesce_ms = 0;
  // --- engine and scheduling
  int threads = 0;  // 0: engine::DefaultNumThreads()
  std::string kv_type = "f16";
  int max_active = 8, max_queued = 1024, context = 0;
  // Per-user defaults; a key's "limits" in the keys file override them.
  int user_max_active = 4, user_max_queued = 16;
  int64_t user_tokens_per_minute = 0;
  // Per-user prompt cache (docs/server.md); unset: 256 with API keys, 0 (off)
  // with --allow-anonymous, where every caller would share one cache.
  std::optional<int> prompt_cache_mib;
  double prefill_stall_factor = 2.0;  // engine::SchedulerOptions::prefill_stall_factor
  // --- logs
  std::string log_level = "info";
  std::string access_log = "-";  // a file, "-" (stderr) or "off"
};

// AddServerFlags defines every cllm-server flag on `app`, bound to `flags`,
// with its environment variable and `--config FILE`.
void AddServerFlags(CLI::App& app, ServerFlags& flags);

// PromptCacheMib is the prompt cache's budget: --prompt-cache-mib, else 256
// with API keys and 0 without. Without API keys every caller is the one user
// "", so a cache would be shared between callers (cached_tokens and timing
// tell which prefixes others sent): a budget above 0 is then refused.
Result<int> PromptCacheMib(const ServerFlags& flags, bool have_api_keys);

// CheckModelName: the served name (--model-name, else the file's or the
// sealed header's) is 1-256 bytes of UTF-8 without control characters — it
// goes into the evidence, the certificate, JSON bodies and logs.
Status<Errc> CheckModelName(const std::string& name);

}  // namespace cllm::app
