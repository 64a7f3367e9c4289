// `cllm model seal` / `cllm model keygen`: encrypt a model for deployment.
//
//   cllm model keygen -o model.key
//   cllm model seal model.gguf -o model.cllm --key-file model.key [--key-id ID] [--name NAME]
//   cllm model seal model.gguf -o model.cllm --register --key-id ID --trust URL --trust-ca F --admin-token-file T
//   cllm model seal model.gguf --part embeddings [--neighbours K] -o emb.cllm --register --key-id ID …
//   cllm model sealed-info model.cllm [--json]
//
// --part embeddings seals only what a split-inference client may hold
// (token_embd.weight, the tokenizer, optionally the neighbour lists:
// client/split/embeddings_export.h) under a key of its own, registered with
// "audience": "client" so cllm-trust releases it only to attested clients
// (docs/split-inference.md, "The embedding table for clients").
//
// Key files hold 64 hex characters (32 bytes), created with mode 0600. The
// plaintext never leaves this process except as the sealed file; unsealing
// happens only inside cllm-server, into locked memory.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "apps/cllm/command.h"
#include "apps/cllm/trust_common.h"
#include "base/encoding.h"
#include "base/file.h"
#include "base/secure.h"
#include "client/split/embeddings_export.h"
#include "crypto/random.h"
#include "crypto/sealed_model.h"
#include "engine/gguf/gguf.h"
#include "server/api_keys.h"

namespace cllm::app {
namespace {

namespace fs = std::filesystem;

Result<SecretBytes> ReadKeyFile(const fs::path& path) { return ReadHexSecretFile(path, 32); }

int Keygen(const fs::path& out) {
  // Never overwrite a key that may already protect a sealed model.
  SecretBytes key(32);
  crypto::RandomBytes(key.mutable_span());
  std::string hex = HexEncode(key.span()) + "\n";
  auto st = WriteNewSecretFile(out, ByteSpan(reinterpret_cast<const uint8_t*>(hex.data()), hex.size()));
  SecureZero(hex.data(), hex.size());
  if (!st.ok()) return Fail(st.detail() + " (keygen never overwrites)");
  std::printf("wrote a new 256-bit model key to %s (mode 0600)\n", out.c_str());
  return 0;
}

void PrintProgress(uint64_t done, uint64_t total) {
  static int last = -1;
  int pct = total == 0 ? 100 : static_cast<int>(done * 100 / total);
  if (pct != last) {
    std::fprintf(stderr, "\rsealing: %3d%% (%llu / %llu MiB)", pct,
                 static_cast<unsigned long long>(done >> 20), static_cast<unsigned long long>(total >> 20));
    last = pct;
  }
}

struct RegisterArgs {
  bool enabled = false;
  TrustAdminArgs admin;
  std::string release_policy_file;
  bool allow_simulated = false;
  bool allow_unlocked_memory = false;
  bool allow_debug_listener = false;
  bool allow_metrics_keys = false;
  std::vector<std::string> metrics_keys_files;  // --metrics-keys: the readers a node may name
  std::string client_policy = "client";  // --client-policy (--part embeddings)
};

struct PartArgs {
  std::string part = "model";  // --part model|embeddings
  uint32_t neighbours = 0;     // --neighbours K
  unsigned threads = 2;
};

void PrintNeighbourProgress(uint64_t done, uint64_t total) {
  std::fprintf(stderr, "\rneighbours: %llu / %llu tokens", static_cast<unsigned long long>(done),
               static_cast<unsigned long long>(total));
  if (done == total) std::fputc('\n', stderr);
}

// ExtractEmbeddings writes the client's part of `in` to a new file `tmp`
// (mode 0600, removed by the caller once sealed).
int ExtractEmbeddings(const fs::path& in, const fs::path& tmp, const PartArgs& part) {
  auto model = engine::GgufFile::Open(in);
  if (!model.ok()) return Fail(in.string() + ": " + engine::GgufErrcName(model.code()) + ": " + model.detail());
  split::EmbeddingsExportOptions o;
  o.neighbours = part.neighbours;
  o.threads = part.threads;
  if (part.neighbours > 0) o.progress = PrintNeighbourProgress;
  auto w = split::BuildEmbeddingsGguf(*model, o);
  if (!w.ok()) return Fail(in.string() + ": " + w.detail());
  Bytes bytes = w->Finish();
  auto st = WriteNewSecretFile(tmp, bytes);
  SecureZero(bytes.data(), bytes.size());
  if (!st.ok()) return Fail(st.detail());
  std::printf("extracted %s%s from %s (%llu bytes, nothing else of the model)\n", split::kTokenEmbdTensor,
              part.neighbours ? (std::string(" + ") + split::kNeighboursTensor + " (K = " +
                                 std::to_string(part.neighbours) + ")").c_str() : "",
              in.c_str(), static_cast<unsigned long long>(bytes.size()));
  return 0;
}

int SealFileOrPart(const fs::path& in, const fs::path& out, const fs::path& key_file, std::string key_id,
                   std::string name, uint32_t chunk_mib, const RegisterArgs& reg, bool embeddings);

int Seal(const fs::path& in, const fs::path& out, const fs::path& key_file, std::string key_id, std::string name,
         uint32_t chunk_mib, const RegisterArgs& reg, const PartArgs& part) {
  if (reg.enabled == !key_file.empty()) {
    return Fail("give exactly one of --key-file K (a key you keep) or --register (a fresh key that only "
                "cllm-trust keeps)", 2);
  }
  if (part.part == "model") {
    if (part.neighbours) return Fail("--neighbours needs --part embeddings", 2);
    return SealFileOrPart(in, out, key_file, std::move(key_id), std::move(name), chunk_mib, reg, false);
  }
  // The plaintext part exists only for the sealing run, next to the output.
  fs::path tmp = out;
  tmp += ".plain-" + std::to_string(::getpid());
  if (int rc = ExtractEmbeddings(in, tmp, part); rc != 0) return rc;
  if (name.empty()) name = in.stem().string() + "-embeddings";
  int rc = SealFileOrPart(tmp, out, key_file, std::move(key_id), std::move(name), chunk_mib, reg, true);
  std::error_code ec;
  fs::remove(tmp, ec);
  if (!key_file.empty() && rc == 0) {
    std::printf("  note: the client's key must not be the full model's (a client holding it could open the model):"
                " use a key file of its own (cllm model keygen) or --register\n");
  }
  return rc;
}

int SealFileOrPart(const fs::path& in, const fs::path& out, const fs::path& key_file, std::string key_id,
                   std::string name, uint32_t chunk_mib, const RegisterArgs& reg, bool embeddings) {
  std::optional<TrustAdmin> admin;
  SecretBytes fresh;
  std::vector<std::string> readers;  // --metrics-keys: read before the long sealing run
  if (reg.enabled) {
    if (key_id.empty()) return Fail("--register needs --key-id", 2);
    if (reg.allow_metrics_keys && !reg.metrics_keys_files.empty()) {
      return Fail("--allow-metrics-keys accepts any /metrics readers and --metrics-keys names them: give one", 2);
    }
    for (const auto& file : reg.metrics_keys_files) {
      auto keys = server::ApiKeys::LoadMetricsKeys(file);
      if (!keys.ok()) return Fail("--metrics-keys: " + keys.detail(), 2);
      for (const auto& d : keys->Digests()) {
        const std::string hex = HexEncode(d);
        if (std::find(readers.begin(), readers.end(), hex) == readers.end()) readers.push_back(hex);
      }
    }
    auto a = TrustAdmin::Open(reg.admin);  // fail before the long sealing run
    if (!a.ok()) return Fail(a.detail(), 2);
    admin = std::move(a).value();
    fresh = SecretBytes(32);
    crypto::RandomBytes(fresh.mutable_span());
  }
  auto key = reg.enabled ? Result<SecretBytes>(std::move(fresh)) : ReadKeyFile(key_file);
  if (!key.ok()) return Fail(key.detail());
  if (key_id.empty()) key_id = key_file.stem().string();
  if (name.empty()) name = in.stem().string();
  crypto::SealOptions opts{.key_id = key_id, .model_name = name, .chunk_size = chunk_mib << 20,
                           .progress = isatty(STDERR_FILENO) ? crypto::SealProgress(PrintProgress) : nullptr};
  auto h = crypto::SealFile(in, out, key->span(), opts);
  if (opts.progress) std::fputc('\n', stderr);
  if (!h.ok()) return Fail(std::string(crypto::SealErrcName(h.code())) + ": " + h.detail());
  std::printf("sealed %s → %s\n  model name       %s\n  key id           %s\n  plaintext size   %llu bytes\n"
              "  plaintext sha256 %s\n  chunks           %llu × %u MiB\n",
              in.c_str(), out.c_str(), h->model_name.c_str(), h->key_id.c_str(),
              static_cast<unsigned long long>(h->plaintext_size), HexEncode(h->plaintext_digest).c_str(),
              static_cast<unsigned long long>(h->num_chunks()), chunk_mib);
  if (!reg.enabled) return 0;

  // The key goes to cllm-trust and nowhere else; the release policy pins the
  // plaintext digest unless a policy file says more.
  nlohmann::json rp = {{"model_digests", {HexEncode(h->plaintext_digest)}}};
  if (!reg.release_policy_file.empty()) {
    auto text = ReadTextFile(reg.release_policy_file, 1 << 20);
    if (!text.ok()) return Fail(text.detail(), 2);
    rp = nlohmann::json::parse(*text, nullptr, false);
    if (rp.is_discarded() || !rp.is_object()) {
      fs::remove(out);
      return Fail(reg.release_policy_file + ": not a JSON object (sealed file removed)", 2);
    }
  }
  if (reg.allow_simulated) rp["allow_simulated"] = true;
  if (reg.allow_unlocked_memory) rp["allow_unlocked_memory"] = true;
  if (reg.allow_debug_listener) rp["allow_debug_listener"] = true;
  if (reg.allow_metrics_keys) rp["allow_metrics_keys"] = true;
  if (!readers.empty()) {
    if (!rp.contains("metrics_readers")) rp["metrics_readers"] = nlohmann::json::array();
    auto& listed = rp["metrics_readers"];
    if (!listed.is_array()) {
      fs::remove(out);
      return Fail(reg.release_policy_file + ": \"metrics_readers\" is not a list (sealed file removed)", 2);
    }
    for (const auto& hex : readers) {
      if (std::find(listed.begin(), listed.end(), hex) == listed.end()) listed.push_back(hex);
    }
  }
  // Who may hold the key (release_policy.h, "Audience"): the embeddings go to
  // clients only, everything else to servers only.
  std::string audience = "server";
  if (rp.is_object() && rp.contains("audience") && rp["audience"].is_string()) audience = rp["audience"];
  if (embeddings) {
    if (audience != "client" && rp.contains("audience")) {
      fs::remove(out);
      return Fail("--part embeddings: the release policy says \"audience\": \"" + audience +
                  "\"; the embeddings key is for clients (sealed file removed)", 2);
    }
    rp["audience"] = "client";
    if (reg.release_policy_file.empty()) rp["policies"] = nlohmann::json::array({reg.client_policy});
  } else if (audience == "client") {
    fs::remove(out);
    return Fail("the release policy says \"audience\": \"client\": only --part embeddings may be released to "
                "clients, never a whole model (sealed file removed)", 2);
  }
  nlohmann::json body = {{"key_id", key_id}, {"key", HexEncode(key->span())}, {"release_policy", rp}};
  auto r = admin->Call("POST", "/v1/admin/keys", body);
  std::string& hex = body["key"].get_ref<std::string&>();
  SecureZero(hex.data(), hex.size());
  if (!r.ok()) {
    fs::remove(out);  // without its key the sealed file is useless
    return Fail("registering the key at cllm-trust: " + r.detail() + " (sealed file removed)");
  }
  std::printf("  registered key \"%s\" at cllm-trust; release policy %s%s\n", key_id.c_str(),
              (*r)["release_policy"].dump().c_str(),
              reg.allow_simulated ? "  [allows the SIMULATED TEE: development only]" : "");
  if (embeddings) {
    std::printf("  released only to split-inference clients: tokens of an attestation policy with \"role\": "
                "\"client\"\n");
  }
  return 0;
}

int SealedInfo(const fs::path& in, bool json) {
  // Only the header is read: sealed models are gigabytes.
  std::ifstream f(in, std::ios::binary);
  std::error_code ec;
  uint64_t file_size = fs::file_size(in, ec);
  if (!f || ec) return Fail("cannot read " + in.string());
  Bytes prefix(1024);
  f.read(reinterpret_cast<char*>(prefix.data()), static_cast<std::streamsize>(prefix.size()));
  prefix.resize(static_cast<size_t>(f.gcount()));
  auto h = crypto::ParseSealedHeader(prefix);
  if (!h.ok()) return Fail(in.string() + ": " + crypto::SealErrcName(h.code()) + ": " + h.detail());
  bool size_ok = file_size == h->SealedSize();
  if (json) {
    nlohmann::json j = {{"version", h->version},           {"model_name", h->model_name},
                        {"key_id", h->key_id},             {"chunk_size", h->chunk_size},
                        {"plaintext_size", h->plaintext_size},
                        {"plaintext_sha256", HexEncode(h->plaintext_digest)},
                        {"header_sha256", HexEncode(h->header_digest)},
                        {"file_size_ok", size_ok}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("sealed model %s (format v%u)\n  model name       %s\n  key id           %s\n"
                "  plaintext size   %llu bytes\n  plaintext sha256 %s\n  header sha256    %s\n"
                "  chunk size       %u bytes\n  file size        %s\n",
                in.c_str(), h->version, h->model_name.c_str(), h->key_id.c_str(),
                static_cast<unsigned long long>(h->plaintext_size), HexEncode(h->plaintext_digest).c_str(),
                HexEncode(h->header_digest).c_str(), h->chunk_size,
                size_ok ? "matches header" : "DOES NOT MATCH header (truncated or extended)");
  }
  return size_ok ? 0 : 1;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  CLI::App* model = SubcommandGroup(app, "model", "Inspect, convert and seal model files");

  auto* keygen = model->add_subcommand("keygen", "Create a new random model key file (hex, mode 0600)");
  static std::string keygen_out;
  keygen->add_option("-o,--output", keygen_out, "Key file to create (never overwritten)")->required();
  keygen->callback([&ctx] { ctx.exit_code = Keygen(keygen_out); });

  auto* seal = model->add_subcommand(
      "seal", "Encrypt a GGUF model for deployment (AES-256-GCM chunks); --part embeddings seals only the token "
              "embeddings and tokenizer, for split-inference clients");
  static std::string in, out, key_file, key_id, name;
  static uint32_t chunk_mib = 4;
  seal->add_option("input", in, "Plaintext model file")->required()->check(CLI::ExistingFile);
  seal->add_option("-o,--output", out, "Sealed output file")->required();
  seal->add_option("--key-file", key_file, "Model key file (see `cllm model keygen`)");
  static RegisterArgs reg;
  seal->add_flag("--register", reg.enabled,
                 "Seal with a fresh key and register it at cllm-trust (the key is never written to disk)");
  seal->add_option("--release-policy", reg.release_policy_file,
                   "With --register: release policy JSON (default: this model's digest only)");
  seal->add_flag("--allow-simulated", reg.allow_simulated, "With --register: release to the simulated TEE too");
  seal->add_flag("--allow-unlocked-memory", reg.allow_unlocked_memory,
                 "With --register: release to servers whose memory is not locked too (--allow-unlocked-memory: "
                 "development machines)");
  seal->add_flag("--allow-debug-listener", reg.allow_debug_listener,
                 "With --register: release to servers that also serve plain HTTP too (--debug-listen)");
  seal->add_flag("--allow-metrics-keys", reg.allow_metrics_keys,
                 "With --register: release to servers that give /metrics to any key holders too (--metrics-keys)");
  seal->add_option("--metrics-keys", reg.metrics_keys_files,
                   "With --register: release to servers whose /metrics readers (--metrics-keys) are all keys of this "
                   "keys file too; repeatable")
      ->check(CLI::ExistingFile);
  static PartArgs part;
  seal->add_option("--part", part.part,
                   "model: the whole file; embeddings: a GGUF of token_embd.weight (original type), the tokenizer.* "
                   "keys, general.architecture/name and <arch>.embedding_length only, sealed under its own key that "
                   "cllm-trust releases only to attested split-inference clients (\"audience\": \"client\")")
      ->check(CLI::IsMember({"model", "embeddings"}))
      ->capture_default_str();
  seal->add_option("--neighbours", part.neighbours,
                   "--part embeddings: add tensor split.neighbours (I32, K × n_vocab): each token's K nearest tokens "
                   "by cosine, itself first (the Report-Noisy-Max candidates)")
      ->check(CLI::Range(1u, 1024u));
  seal->add_option("--threads", part.threads, "--neighbours: threads")->check(CLI::Range(1u, 64u))->capture_default_str();
  seal->add_option("--client-policy", reg.client_policy,
                   "--part embeddings --register without --release-policy: the cllm-trust attestation policy "
                   "(one with \"role\": \"client\") whose tokens may get the key")
      ->capture_default_str();
  AddTrustAdminOptions(seal, reg.admin);
  seal->add_option("--key-id", key_id, "Key identifier recorded in the header (default: key file name)");
  seal->add_option("--name", name, "Model name recorded in the header (default: input file name)");
  seal->add_option("--chunk-mib", chunk_mib, "Chunk size in MiB (1-64)")->check(CLI::Range(1, 64))
      ->capture_default_str();
  seal->callback([&ctx] { ctx.exit_code = Seal(in, out, key_file, key_id, name, chunk_mib, reg, part); });

  auto* info = model->add_subcommand("sealed-info", "Show the authenticated header of a sealed model");
  static std::string info_in;
  static bool json = false;
  info->add_option("input", info_in, "Sealed model file")->required();
  info->add_flag("--json", json, "Print one JSON object");
  info->callback([&ctx] { ctx.exit_code = SealedInfo(info_in, json); });
}

CommandRegistration reg{"model-seal", 12, Setup};

}  // namespace
}  // namespace cllm::app
