// e2e_response.h — the sealed, chunked response of an encrypted request
// (docs/protocol.md "Encrypted bodies"; the framing follows chunked OHTTP).
//
//   response = response_nonce(32) ‖ frame_0 ‖ frame_1 ‖ … ‖ frame_n
//   prk   = Extract(salt = enc ‖ response_nonce, ikm = secret)   (the suite's HKDF)
//   key   = Expand(prk, "key", Nk);  base = Expand(prk, "nonce", Nn)
//   frame_i = I2OSP(final << 31 | len(ct_i), 4) ‖ ct_i
//   ct_i  = AEAD.Seal(key, base XOR I2OSP(i, Nn), aad = I2OSP(final,1) ‖ I2OSP(i,8), pt_i)
//
// frame 0 is the head {"status":N,"content_type":"…"[,"headers":{…}]}, never
// final; the others carry the body (one SSE event each when streaming); the
// last is final. Because i is in the nonce and the aad, a reordered,
// dropped or duplicated frame fails to open (kDecryptFailed); the final bit
// in the aad stops a frame from being passed off as the last one; input that
// ends before a final frame is kTruncated; bytes after it kMalformed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "channel/e2e.h"
#include "crypto/aead_key.h"

namespace cllm::channel::e2e {

inline constexpr size_t kResponseNonceSize = 32;
inline constexpr size_t kFrameHeaderSize = 4;
inline constexpr size_t kMaxFramePlaintext = 1u << 20;  // 1 MiB; larger writes are split
inline constexpr size_t kMaxHeadSize = 16 << 10;

// The first frame's plaintext.
struct ResponseHead {
  int status = 200;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. retry-after
};
std::string EncodeResponseHead(const ResponseHead& head);
// ParseResponseHead: a JSON object with an integer status in [100, 599] and
// a string content_type; optional "headers" object of strings. kMalformed.
E2eResult<ResponseHead> ParseResponseHead(std::string_view text);

// ResponseSealer (server) seals frames in order. Seal's first output starts
// with the response nonce.
class ResponseSealer {
 public:
  // Create draws a random response nonce; CreateWithNonce is the test hook.
  static E2eResult<ResponseSealer> Create(const ResponseSecret& secret);
  static E2eResult<ResponseSealer> CreateWithNonce(const ResponseSecret& secret, ByteSpan response_nonce);

  // Seal returns the bytes of the next frame (preceded by the nonce the
  // first time). kOversized over kMaxFramePlaintext; kMalformed after the
  // final frame.
  E2eResult<Bytes> Seal(ByteSpan plaintext, bool final);
  bool finished() const { return finished_; }

 private:
  ResponseSealer() = default;
  std::optional<crypto::AeadKey> key_;
  Bytes base_nonce_;
  Bytes response_nonce_;
  uint64_t next_ = 0;
  bool started_ = false;
  bool finished_ = false;
};

struct ResponseFrame {
  uint64_t index = 0;
  bool final = false;
  SecretBytes plaintext;
};

// ResponseOpener (client) takes the response bytes as they arrive. Errors
// are sticky: after one, every call returns it again.
class ResponseOpener {
 public:
  static E2eResult<ResponseOpener> Create(const ResponseSecret& secret);

  // Feed consumes `bytes` and returns the frames completed by them (maybe
  // none). kDecryptFailed, kOversized (frame length over the limit),
  // kMalformed (bytes after the final frame, a final head frame).
  E2eResult<std::vector<ResponseFrame>> Feed(ByteSpan bytes);
  // Finish says the input ended: ok after the final frame, else kTruncated.
  E2eStatus Finish();
  bool finished() const { return finished_; }

 private:
  ResponseOpener() = default;
  E2eStatus Fail(E2eErrc code, std::string detail);

  ResponseSecret secret_;  // kept until the nonce arrives
  size_t n_t_ = 0;
  std::optional<crypto::AeadKey> key_;
  Bytes base_nonce_;
  Bytes pending_;  // bytes not yet forming a whole frame (or the nonce)
  bool have_nonce_ = false;
  uint64_t next_ = 0;
  bool finished_ = false;
  std::optional<Error<E2eErrc>> error_;
};

}  // namespace cllm::channel::e2e
