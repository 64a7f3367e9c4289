#include "crypto/random.h"

#include <openssl/rand.h>

#include <algorithm>
#include <climits>

#include "base/check.h"
#include "crypto/ossl.h"

namespace cllm::crypto {

void RandomBytes(std::span<uint8_t> out) {
  if (out.empty()) return;
  // A failing system RNG is not recoverable and not input-dependent.
  CLLM_CHECK_MSG(RAND_bytes(out.data(), static_cast<int>(out.size())) == 1, "RAND_bytes failed");
}

Bytes RandomBytes(size_t n) {
  Bytes out(n);
  RandomBytes(std::span<uint8_t>(out));
  return out;
}

struct SeededStream::Impl {
  ossl::CipherCtxPtr ctx;
};

SeededStream::SeededStream(const std::array<uint8_t, 32>& seed) : impl_(std::make_unique<Impl>()) {
  impl_->ctx.reset(EVP_CIPHER_CTX_new());
  CLLM_CHECK_MSG(impl_->ctx != nullptr, "EVP_CIPHER_CTX_new failed");
  const std::array<uint8_t, 16> iv{};  // counter block 0
  // Fixed algorithm and sizes: a failure here is an OpenSSL fault, not input.
  CLLM_CHECK_MSG(
      EVP_EncryptInit_ex(impl_->ctx.get(), EVP_aes_256_ctr(), nullptr, seed.data(), iv.data()) == 1,
      "AES-256-CTR init failed");
}

SeededStream::~SeededStream() = default;
SeededStream::SeededStream(SeededStream&&) noexcept = default;
SeededStream& SeededStream::operator=(SeededStream&&) noexcept = default;

void SeededStream::Fill(std::span<uint8_t> out) {
  // CTR keystream = encryption of zeros; encrypt in place in int-sized pieces.
  std::fill(out.begin(), out.end(), uint8_t{0});
  size_t done = 0;
  while (done < out.size()) {
    const size_t piece = std::min<size_t>(out.size() - done, INT_MAX / 2);
    int out_len = 0;
    CLLM_CHECK_MSG(EVP_EncryptUpdate(impl_->ctx.get(), out.data() + done, &out_len,
                                     out.data() + done, static_cast<int>(piece)) == 1 &&
                       static_cast<size_t>(out_len) == piece,
                   "AES-256-CTR keystream failed");
    done += piece;
  }
}

}  // namespace cllm::crypto
