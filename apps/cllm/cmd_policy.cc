// `cllm policy pin -o POLICY.json …`: write a client policy from reference
// values the user supplies or computes — never from what a server reports.
//
//   --snp-measurement V   SNP MEASUREMENT of the published image (48 bytes)
//   --tdx-mrtd V          TDX MRTD (48 bytes), --tdx-rtmr0..3 V (48 bytes each)
//   --csv-measurement V   CSV launch digest (32 bytes)
//   --tpm-pcr-digest V    digest of the quoted PCRs
//   --tpm-hcl-snp-measurement V, --tpm-hcl-tdx-measurement V  the launch
//                         measurement of the paravisor providing the vTPM
//   --model FILE          model digest computed as cllm-server computes it:
//                         SHA-256 of a .gguf file, or the plaintext digest in
//                         a sealed .cllm file's header
//   --model-digest HEX, --binary FILE, --binary-digest HEX
//   --chat-template FILE  accept a server that renders prompts with this chat
//                         template instead of its model's own (SHA-256 of the
//                         file, as cllm-server --chat-template hashes it);
//                         --chat-template-digest HEX
//   --allow-untrusted-disk-model  accept servers that map their model from
//                         a disk the host controls (--mmap-untrusted-disk)
//   --allow-unlocked-memory  accept servers whose memory is not locked
//                         (--allow-unlocked-memory: development machines)
//   --min-stream-pad N    accept servers padding TLS records to N-byte blocks
//                         or more (default 512; 0 also accepts padding off)
//   --allow-debug-listener  accept servers that also serve plain HTTP
//                         (--debug-listen: unattested, /metrics open there)
//   --allow-metrics-keys  accept servers that give /metrics (every user's
//                         token counts) to holders of any keys (--metrics-keys)
//   --metrics-keys FILE   or only when each key such a server names is in
//                         this keys file (the file a server is started with:
//                         it holds key digests, not keys); --metrics-reader
//                         HEX names one key's SHA-256
//   --sim-platform-key PUB  accept the simulated TEE signed by this key
//   --min-tcb COMPONENT=N  TCB floor (e.g. snp.microcode=115); the platform is
//                         the component's prefix. SNP and CSV have no TCB
//                         status source: their evidence is accepted only with
//                         a floor (docs/attestation.md#tcb-status-and-floors)
// V is hex or @FILE (a file holding the hex, e.g. a publisher's reference
// value, or the raw bytes). An existing -o file is extended: lists gain the
// new values, each pinned platform joins "platforms". The result is checked
// with the same parser every client uses before it is written; the command
// then says what is still unpinned for each platform the policy allows.
//
// Exit codes: 0 written; 2 usage or input error.
#include <nlohmann/json.hpp>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <tuple>

#include "apps/cllm/command.h"
#include "attestation/pinning.h"
#include "attestation/policy.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/digest.h"
#include "crypto/sealed_model.h"
#include "server/api_keys.h"

namespace cllm::app {
namespace {

using nlohmann::json;

struct PinArgs {
  std::string out;
  std::string snp_measurement, tdx_mrtd, csv_measurement, tpm_pcr_digest;
  std::string tpm_hcl_snp_measurement, tpm_hcl_tdx_measurement;
  std::string tdx_rtmr[4];
  std::vector<std::string> models, model_digests, binaries, binary_digests;
  std::vector<std::string> chat_templates, chat_template_digests;
  bool allow_untrusted_disk_model = false;
  bool allow_unlocked_memory = false;
  bool allow_debug_listener = false;
  bool allow_metrics_keys = false;
  std::vector<std::string> metrics_keys_files, metrics_readers;
  int min_stream_pad = -1;  // -1: not given
  int min_stream_coalesce_ms = -1;  // -1: not given
  std::string sim_platform_key;
  std::vector<std::string> min_tcb;  // COMPONENT=N
};

// ReferenceValue reads "HEX" or "@FILE" (hex text, or exactly `want_len`
// raw bytes); `want_len` 0 accepts any length from 16 to 64 bytes.
Result<std::string> ReferenceValue(const std::string& flag, const std::string& v, size_t want_len) {
  std::string text = v;
  if (!v.empty() && v[0] == '@') {
    auto bytes = ReadFile(v.substr(1), 1 << 16);
    if (!bytes.ok()) return MakeError(Errc::kIo, flag + ": " + v.substr(1) + ": " + bytes.detail());
    if (want_len != 0 && bytes->size() == want_len) return HexEncode(*bytes);
    text.assign(bytes->begin(), bytes->end());
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  size_t start = 0;
  while (start < text.size() && std::isspace(static_cast<unsigned char>(text[start]))) ++start;
  text = text.substr(start);
  if (text.rfind("0x", 0) == 0) text = text.substr(2);
  auto bytes = HexDecode(text);
  if (!bytes.ok()) return MakeError(Errc::kParse, flag + ": not hex (or @FILE): " + bytes.detail());
  const bool len_ok = want_len != 0 ? bytes->size() == want_len : bytes->size() >= 16 && bytes->size() <= 64;
  if (!len_ok) {
    return MakeError(Errc::kParse, flag + ": expected " + (want_len ? std::to_string(want_len) : "16-64") +
                                       " bytes, got " + std::to_string(bytes->size()));
  }
  return HexEncode(*bytes);
}

// ModelDigest is the digest cllm-server attests for a model file
// (apps/cllm-server/boot.cc InspectModel): the header's plaintext digest of a
// sealed file, else SHA-256 of the file's bytes.
Result<std::string> ModelDigest(const std::string& path) {
  Bytes head(64 << 10);
  {
    std::ifstream f(path, std::ios::binary);
    if (!f) return MakeError(Errc::kNotFound, "--model: cannot open " + path);
    f.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<size_t>(f.gcount()));
  }
  if (head.size() >= 8 && std::memcmp(head.data(), "CLLMSEAL", 8) == 0) {
    auto h = crypto::ParseSealedHeader(head);
    if (!h.ok()) return MakeError(Errc::kParse, "--model " + path + ": " + h.detail());
    return HexEncode(h->plaintext_digest);
  }
  auto d = crypto::Sha256File(path);
  if (!d.ok()) return MakeError(Errc::kIo, "--model " + path + ": " + d.detail());
  return HexEncode(*d);
}

void AddUnique(json& doc, const std::string& key, const std::string& value) {
  if (!doc.contains(key) || !doc[key].is_array()) doc[key] = json::array();
  for (const auto& v : doc[key]) {
    if (v.is_string() && v.get<std::string>() == value) return;
  }
  doc[key].push_back(value);
}

int Pin(const PinArgs& a) {
  // --- the policy to extend ---------------------------------------------------
  json doc = {{"version", 1}, {"platforms", json::array()}};
  if (std::filesystem::exists(a.out)) {
    auto existing = attestation::LoadPolicy(a.out);  // must be valid before we touch it
    if (!existing.ok()) return Fail(existing.detail(), 2);
    auto text = ReadTextFile(a.out, 1 << 20);
    if (!text.ok()) return Fail(a.out + ": " + text.detail(), 2);
    doc = json::parse(*text, nullptr, false);
  }
  std::vector<std::string> pinned;  // what this run added, for the summary
  auto platform = [&](const std::string& name) -> json& {
    AddUnique(doc, "platforms", name);
    if (!doc.contains(name) || !doc[name].is_object()) doc[name] = json::object();
    return doc[name];
  };

  // --- launch measurements ------------------------------------------------------
  struct Launch {
    const char* flag;
    const std::string& value;
    const char* platform;
    size_t len;
  };
  const Launch launches[] = {{"--snp-measurement", a.snp_measurement, "snp", 48},
                             {"--tdx-mrtd", a.tdx_mrtd, "tdx", 48},
                             {"--csv-measurement", a.csv_measurement, "csv", 32},
                             {"--tpm-pcr-digest", a.tpm_pcr_digest, "tpm", 0}};
  for (const auto& l : launches) {
    if (l.value.empty()) continue;
    auto hex = ReferenceValue(l.flag, l.value, l.len);
    if (!hex.ok()) return Fail(hex.detail(), 2);
    AddUnique(platform(l.platform), "measurements", *hex);
    pinned.push_back(std::string(l.platform) + " measurement " + *hex);
  }
  // The vTPM provider (an Azure-style paravisor): its TEE's launch measurement.
  for (const auto& [flag, value, tee] : {std::tuple<const char*, const std::string&, const char*>{
                                             "--tpm-hcl-snp-measurement", a.tpm_hcl_snp_measurement, "snp"},
                                         {"--tpm-hcl-tdx-measurement", a.tpm_hcl_tdx_measurement, "tdx"}}) {
    if (value.empty()) continue;
    auto hex = ReferenceValue(flag, value, 48);
    if (!hex.ok()) return Fail(hex.detail(), 2);
    platform("tpm")["fields"][std::string(tee) + ".measurement"] = *hex;
    pinned.push_back(std::string("tpm vTPM provider ") + tee + " measurement " + *hex);
  }
  for (int i = 0; i < 4; ++i) {
    if (a.tdx_rtmr[i].empty()) continue;
    const std::string flag = "--tdx-rtmr" + std::to_string(i);
    auto hex = ReferenceValue(flag, a.tdx_rtmr[i], 48);
    if (!hex.ok()) return Fail(hex.detail(), 2);
    platform("tdx")["fields"]["rtmr" + std::to_string(i)] = *hex;
    pinned.push_back("tdx rtmr" + std::to_string(i) + " " + *hex);
  }

  // --- digests --------------------------------------------------------------------
  for (const auto& m : a.models) {
    auto hex = ModelDigest(m);
    if (!hex.ok()) return Fail(hex.detail(), 2);
    AddUnique(doc, "model_digests", *hex);
    pinned.push_back("model digest " + *hex + " (" + m + ")");
  }
  for (const auto& d : a.model_digests) {
    auto hex = ReferenceValue("--model-digest", d, 32);
    if (!hex.ok()) return Fail(hex.detail(), 2);
    AddUnique(doc, "model_digests", *hex);
    pinned.push_back("model digest " + *hex);
  }
  for (const auto& b : a.binaries) {
    auto d = crypto::Sha256File(b);  // as cllm-server hashes /proc/self/exe
    if (!d.ok()) return Fail("--binary " + b + ": " + d.detail(), 2);
    AddUnique(doc, "binary_digests", HexEncode(*d));
    pinned.push_back("binary digest " + HexEncode(*d) + " (" + b + ")");
  }
  for (const auto& d : a.binary_digests) {
    auto hex = ReferenceValue("--binary-digest", d, 32);
    if (!hex.ok()) return Fail(hex.detail(), 2);
    AddUnique(doc, "binary_digests", *hex);
    pinned.push_back("binary digest " + *hex);
  }
  for (const auto& t : a.chat_templates) {
    auto d = crypto::Sha256File(t);  // as cllm-server hashes its --chat-template file
    if (!d.ok()) return Fail("--chat-template " + t + ": " + d.detail(), 2);
    AddUnique(doc, "chat_template_digests", HexEncode(*d));
    pinned.push_back("chat template " + HexEncode(*d) + " (" + t + ")");
  }
  for (const auto& d : a.chat_template_digests) {
    auto hex = ReferenceValue("--chat-template-digest", d, 32);
    if (!hex.ok()) return Fail(hex.detail(), 2);
    AddUnique(doc, "chat_template_digests", *hex);
    pinned.push_back("chat template " + *hex);
  }
  if (a.allow_untrusted_disk_model) {
    doc["allow_untrusted_disk_model"] = true;
    pinned.push_back("servers whose model is mapped from an untrusted disk (--mmap-untrusted-disk) are accepted");
  }
  if (a.min_stream_pad >= 0) {
    doc["min_stream_pad"] = a.min_stream_pad;
    pinned.push_back(a.min_stream_pad == 0
                         ? std::string("servers that do not pad their TLS records (--stream-pad 0) are accepted")
                         : "TLS record padding of at least " + std::to_string(a.min_stream_pad) + " bytes");
  }
  if (a.min_stream_coalesce_ms >= 0) {
    doc["min_stream_coalesce_ms"] = a.min_stream_coalesce_ms;
    pinned.push_back(a.min_stream_coalesce_ms == 0
                         ? std::string("servers that stream token by token are accepted")
                         : "streamed text held at least " + std::to_string(a.min_stream_coalesce_ms) +
                               " ms per event (--stream-coalesce-ms)");
  }
  if (a.allow_unlocked_memory) {
    doc["allow_unlocked_memory"] = true;
    pinned.push_back("servers whose memory is not locked (--allow-unlocked-memory) are accepted");
  }
  if (a.allow_debug_listener) {
    doc["allow_debug_listener"] = true;
    pinned.push_back("servers that also serve plain HTTP (--debug-listen) are accepted");
  }
  if (a.allow_metrics_keys) {
    doc["allow_metrics_keys"] = true;
    pinned.push_back("servers that give /metrics to holders of any keys (--metrics-keys) are accepted");
  }
  const bool pins_readers = !a.metrics_keys_files.empty() || !a.metrics_readers.empty();
  if (pins_readers && doc.contains("allow_metrics_keys") && doc["allow_metrics_keys"] == true) {
    return Fail("--metrics-keys / --metrics-reader pin the /metrics readers, but " +
                    std::string(a.allow_metrics_keys ? "--allow-metrics-keys" : a.out + " (\"allow_metrics_keys\")") +
                    " accepts any: give one",
                2);
  }
  for (const auto& file : a.metrics_keys_files) {
    auto keys = server::ApiKeys::LoadMetricsKeys(file);
    if (!keys.ok()) return Fail("--metrics-keys: " + keys.detail(), 2);
    for (const auto& d : keys->Digests()) AddUnique(doc, "metrics_readers", HexEncode(d));
    pinned.push_back("/metrics readers: the " + std::to_string(keys->size()) + " key(s) of " + file);
  }
  for (const auto& d : a.metrics_readers) {
    auto hex = ReferenceValue("--metrics-reader", d, 32);
    if (!hex.ok()) return Fail(hex.detail(), 2);
    AddUnique(doc, "metrics_readers", *hex);
    pinned.push_back("/metrics reader key " + *hex);
  }
  for (const auto& f : a.min_tcb) {
    const size_t eq = f.find('=');
    const size_t dot = f.find('.');
    const std::string component = f.substr(0, eq);
    const std::string platform_name = f.substr(0, dot);
    const std::string n = eq == std::string::npos ? "" : f.substr(eq + 1);
    if (eq == std::string::npos || dot == std::string::npos || dot > eq || n.empty() || n.size() > 19 ||
        n.find_first_not_of("0123456789") != std::string::npos || !attestation::ParsePlatformName(platform_name)) {
      return Fail("--min-tcb " + f + ": expected COMPONENT=N with COMPONENT like snp.microcode, csv.api_minor", 2);
    }
    platform(platform_name)["min_tcb"][component] = std::stoull(n);
    pinned.push_back("TCB floor " + component + " >= " + n);
  }
  if (!a.sim_platform_key.empty()) {
    auto pem = ReadTextFile(a.sim_platform_key, 1 << 16);
    if (!pem.ok()) return Fail("--sim-platform-key " + a.sim_platform_key + ": " + pem.detail(), 2);
    AddUnique(platform("sim"), "platform_keys", *pem);
    pinned.push_back("sim platform key " + a.sim_platform_key + " (SIMULATED TEE, development only)");
  }
  if (pinned.empty()) return Fail("nothing to pin: give at least one reference value (see --help)", 2);

  // --- check with the clients' own parser, then write ----------------------------
  const std::string text = doc.dump(2) + "\n";
  auto policy = attestation::ParsePolicy(text);
  if (!policy.ok()) return Fail("the resulting policy is invalid: " + policy.detail(), 2);
  auto st = WriteFileAtomic(a.out, AsBytes(text), 0644);
  if (!st.ok()) return Fail(a.out + ": " + st.detail(), 2);

  std::printf("%s: pinned\n", a.out.c_str());
  for (const auto& p : pinned) std::printf("  + %s\n", p.c_str());
  // What a client using this file will still refuse (pinning.h), per platform.
  for (attestation::Platform p : policy->platforms) {
    attestation::PinningSubject probe;
    probe.platform = p;
    probe.model_digest = Bytes(32, 0);
    for (const auto& u : attestation::FindUnpinned(*policy, probe)) {
      std::printf("  ! %s: %s still not pinned — clients refuse such servers until you pin it\n",
                  attestation::PlatformName(p), u.name.c_str());
    }
  }
  return 0;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  CLI::App* group = SubcommandGroup(app, "policy", "Client policies: the reference values a server must match");
  auto* cmd = group->add_subcommand("pin", "Create or extend a client policy with reference values you supply or compute");
  static PinArgs a;
  cmd->add_option("-o,--out", a.out, "Policy file to create or extend")->required();
  cmd->add_option("--snp-measurement", a.snp_measurement, "SNP MEASUREMENT of your published image: HEX or @FILE");
  cmd->add_option("--min-tcb", a.min_tcb,
                  "TCB floor COMPONENT=N (snp.microcode=115, csv.api_minor=3); repeatable; SNP/CSV need one");
  cmd->add_option("--tdx-mrtd", a.tdx_mrtd, "TDX MRTD (TD firmware) of your image: HEX or @FILE");
  for (int i = 0; i < 4; ++i) {
    cmd->add_option("--tdx-rtmr" + std::to_string(i), a.tdx_rtmr[i],
                    "TDX RTMR" + std::to_string(i) + " of your image: HEX or @FILE");
  }
  cmd->add_option("--csv-measurement", a.csv_measurement, "CSV launch digest of your image: HEX or @FILE");
  cmd->add_option("--tpm-pcr-digest", a.tpm_pcr_digest, "Digest of the quoted PCRs of your image: HEX or @FILE");
  cmd->add_option("--tpm-hcl-snp-measurement", a.tpm_hcl_snp_measurement,
                  "vTPM on SEV-SNP (Azure-style paravisor): the SNP launch measurement of the paravisor that provides "
                  "the vTPM: HEX or @FILE");
  cmd->add_option("--tpm-hcl-tdx-measurement", a.tpm_hcl_tdx_measurement,
                  "vTPM on TDX (Azure-style paravisor): the MRTD of the paravisor that provides the vTPM: HEX or "
                  "@FILE");
  cmd->add_option("--model", a.models, "Model file (.gguf, or sealed .cllm): its digest is computed; repeatable");
  cmd->add_option("--model-digest", a.model_digests, "Model digest (SHA-256 hex); repeatable");
  cmd->add_option("--binary", a.binaries, "cllm-server binary: its SHA-256 is computed; repeatable");
  cmd->add_option("--binary-digest", a.binary_digests, "cllm-server binary digest (SHA-256 hex); repeatable");
  cmd->add_option("--chat-template", a.chat_templates,
                  "Chat template file a server may use instead of its model's own (after you have read it): its "
                  "SHA-256 is computed; repeatable");
  cmd->add_option("--chat-template-digest", a.chat_template_digests, "Chat template SHA-256 (hex); repeatable");
  cmd->add_flag("--allow-untrusted-disk-model", a.allow_untrusted_disk_model,
                "Accept servers that map their model from a disk the host controls (--mmap-untrusted-disk): the "
                "model digest then does not prove the bytes served");
  cmd->add_option("--min-stream-pad", a.min_stream_pad,
                  "Smallest TLS record padding block a server may use (its --stream-pad; default 512); 0 also "
                  "accepts servers that do not pad, whose streamed token lengths a network observer reads")
      ->check(CLI::Range(0, 16384));
  cmd->add_option("--min-stream-coalesce-ms", a.min_stream_coalesce_ms,
                  "Require servers to hold streamed text at least this long per event (their --stream-coalesce-ms), "
                  "so a network observer does not read each token's timing; default 0: not required")
      ->check(CLI::Range(0, 10000));
  cmd->add_flag("--allow-unlocked-memory", a.allow_unlocked_memory,
                "Accept servers whose memory is not locked (--allow-unlocked-memory): prompts may be swapped to "
                "the host's disk; for development machines");
  cmd->add_flag("--allow-debug-listener", a.allow_debug_listener,
                "Accept servers that also serve plain HTTP (--debug-listen): unattested and unencrypted, with "
                "/metrics (every user's token counts) open there; for benchmarks and development");
  cmd->add_flag("--allow-metrics-keys", a.allow_metrics_keys,
                "Accept servers that give /metrics (every user's token counts) to the holders of keys in a file "
                "they were started with (--metrics-keys), whoever those are");
  cmd->add_option("--metrics-keys", a.metrics_keys_files,
                  "Accept servers whose /metrics readers (--metrics-keys) are all keys of this keys file (the "
                  "--api-keys format: key digests, no secrets); repeatable")
      ->check(CLI::ExistingFile);
  cmd->add_option("--metrics-reader", a.metrics_readers,
                  "A /metrics reader key's SHA-256 (hex, as in a keys file; `cllm apikey add` prints it); repeatable");
  cmd->add_option("--sim-platform-key", a.sim_platform_key,
                  "Accept the SIMULATED TEE signed by this public key (FILE.pub from `cllm attest sim-keygen`)");
  cmd->callback([&ctx] { ctx.exit_code = Pin(a); });
}

CommandRegistration reg{"policy", 44, Setup};

}  // namespace
}  // namespace cllm::app
