// payload.h — the RA-TLS attestation payload and its report_data binding.
//
// A server's short-lived certificate carries, in the X.509 extension
// kAttestationExtensionOid, an AttestationPayload: the TEE evidence and the
// claims that evidence binds (binary digest, model digest, model name,
// freshness, optional token). The evidence's 64-byte report_data is
//
//   SHA-512("cllm-evidence-v1" ‖ SHA-256(SPKI DER) ‖ binary_digest[32] ‖
//           model_digest[32] ‖ u16be(len name) ‖ name ‖ u16be(len freshness) ‖ freshness
//           [‖ "serving" ‖ u8(flags) ‖ chat_template_digest[32] if flags & 1
//                        ‖ u16be(stream_pad) if flags & 8
//                        ‖ u8(n) ‖ metrics_reader[32] × n if flags & 32
//                        ‖ u16be(stream_coalesce_ms) if flags & 64]   (flag 16: no value)
//           [‖ "e2e" ‖ u8(n) ‖ key_config_digest[32] × n])
//
// The "serving" part is present only when the server departs from serving
// its model as attested by the model digest (ServingClaims): a chat template
// the host supplied instead of the model's own, a model mapped from a disk
// the host controls, memory the host may swap to its disk, TLS records
// padded to another block than the default, a plain (unattested) listener
// beside the attested one, /metrics readable on the attested listener by
// the holders of named keys (their SHA-256 digests), or streamed text held
// and sent in timed events (which hides each token's timing). The "e2e" part is present only when the server
// holds fleet HPKE keys for encrypted bodies (docs/protocol.md, "Encrypted
// bodies"): the SHA-256 digests of their key configs, so the evidence names
// the keys it decrypts with.
//
// so a client that recomputes it from the certificate it actually received
// knows the evidence speaks for that TLS key and those claims. The byte
// format is specified in docs/protocol.md.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace cllm::channel {

// A UUID-based OID (ITU-T X.667, arc 2.25) allocated for cllm's RA-TLS
// payload: 92a4fe43-28fd-4b46-8981-e054822fcd27.
inline constexpr char kAttestationExtensionOid[] = "2.25.194923981122409259258916185190203116839";

inline constexpr char kBindingDomain[] = "cllm-evidence-v1";
inline constexpr size_t kDigestSize = 32;
inline constexpr size_t kMaxModelNameSize = 256;
inline constexpr size_t kMaxFreshnessSize = 64;
inline constexpr size_t kMaxEvidenceSize = 1 << 20;  // quotes with embedded chains are ~10 KB
inline constexpr size_t kMaxTokenSize = 16 << 10;
inline constexpr size_t kMaxE2eKeys = 8;

enum class PayloadErrc {
  kMalformed = 1,  // bad magic, truncated, duplicate or missing field, trailing bytes
  kUnsupportedVersion,
  kTooLarge,       // a field longer than its limit
};
const char* PayloadErrcName(PayloadErrc code);

template <typename T>
using PayloadResult = Result<T, PayloadErrc>;

// ServingClaims: how the server serves its model, where that is not already
// fixed by the binary and model digests. The defaults (the model's own chat
// template, the model read once into memory) are encoded as nothing at all.
// The TLS record padding block a server uses by default (--stream-pad).
inline constexpr uint32_t kDefaultStreamPad = 512;
inline constexpr uint32_t kMinStreamPad = 32;  // smaller blocks hide nothing: 0 (off) or 32..16384
inline constexpr uint32_t kMaxStreamPad = 16384;
// The most /metrics reader keys a server may name (--metrics-keys).
inline constexpr size_t kMaxMetricsReaders = 16;
// The longest a server holds streamed text to send it as one event
// (--stream-coalesce-ms; 0: each token at once, the default).
inline constexpr uint32_t kMaxStreamCoalesceMs = 10000;

struct ServingClaims {
  // SHA-256 of the chat template text used instead of the model's
  // tokenizer.chat_template (cllm-server --chat-template FILE), if any.
  std::optional<std::array<uint8_t, kDigestSize>> chat_template_digest;
  // The model is mapped from a disk the host controls and was hashed by path
  // (--mmap-untrusted-disk): the model digest names the file as it was read
  // once, not necessarily the bytes the engine computes with.
  bool model_from_untrusted_disk = false;
  // The server's memory is not locked (--allow-unlocked-memory): prompts,
  // answers, KV cache and weights may be swapped to a disk the host reads.
  bool memory_unlocked = false;
  // The block its RA-TLS records are padded to (--stream-pad; 0: off, so a
  // network observer reads each streamed token's length).
  uint32_t stream_pad = kDefaultStreamPad;
  // The server also serves plain HTTP (--debug-listen): the same service,
  // unattested and unencrypted, with /metrics (every user's token counts)
  // open to whoever reaches it unless metrics keys are set.
  bool debug_listener = false;
  // /metrics is served on the attested listener to the holders of these
  // keys (--metrics-keys FILE): the SHA-256 digest of each key, as the keys
  // file stores it, in ascending order without repeats, at most
  // kMaxMetricsReaders. Empty: /metrics is closed there.
  std::vector<std::array<uint8_t, kDigestSize>> metrics_readers;
  // Streamed text is held this long and sent as one event
  // (--stream-coalesce-ms, 1..kMaxStreamCoalesceMs; 0: each token at once,
  // so a network observer reads the timing of every token).
  uint32_t stream_coalesce_ms = 0;

  bool is_default() const {
    return !chat_template_digest && !model_from_untrusted_disk && !memory_unlocked &&
           stream_pad == kDefaultStreamPad && !debug_listener && metrics_readers.empty() && stream_coalesce_ms == 0;
  }
  bool operator==(const ServingClaims&) const = default;
};

struct AttestationPayload {
  std::string platform;                         // "sim", "snp", "tdx", "csv", "tpm"
  Bytes evidence;                               // the report / quote as the platform produced it
  std::array<uint8_t, kDigestSize> binary_digest{};  // SHA-256 of the server executable
  std::array<uint8_t, kDigestSize> model_digest{};   // SHA-256 of the plaintext model
  std::string model_name;
  Bytes freshness;                              // nonce or timestamp, ≤ 64 bytes
  std::optional<std::string> token;             // a cllm-trust token (JWT), if any
  std::optional<Bytes> endorsements;            // certificates the verifier may need (VCEK …)
  // SHA-256 of each e2e key config the server decrypts with (≤ kMaxE2eKeys).
  std::vector<std::array<uint8_t, kDigestSize>> e2e_key_digests;
  ServingClaims serving;  // encoded (and bound) only when not the default
};

// EncodePayload serialises `p`; field sizes must be within the limits above
// (a broken invariant of the caller otherwise).
Bytes EncodePayload(const AttestationPayload& p);

// DecodePayload parses untrusted bytes from a peer certificate.
PayloadResult<AttestationPayload> DecodePayload(ByteSpan data);

// ComputeReportData returns the 64-byte binding described above.
std::array<uint8_t, 64> ComputeReportData(ByteSpan spki_der, const AttestationPayload& p);

}  // namespace cllm::channel
