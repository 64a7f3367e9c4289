// random_source.h — where the split client's noise comes from.
//
// Production draws from the OpenSSL DRBG (RAND_bytes, through crypto::RandomBytes);
// tests and rerunnable evaluations draw from the AES-256-CTR keystream of a
// 32-byte seed (crypto::SeededStream). Nothing here uses a statistical PRNG
// (std::mt19937 and kin): the noise is what hides the prompt, so whoever can
// predict it can undo it.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "crypto/random.h"

namespace cllm::split {

// RandomSource is a stream of uniformly random bytes.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  // Fill writes out.size() random bytes.
  virtual void Fill(std::span<uint8_t> out) = 0;
};

// SystemRandom: the OpenSSL DRBG, for every real request.
class SystemRandom final : public RandomSource {
 public:
  void Fill(std::span<uint8_t> out) override;
};

// SeededRandom: deterministic, for tests and reproducible evaluation only.
class SeededRandom final : public RandomSource {
 public:
  explicit SeededRandom(const std::array<uint8_t, 32>& seed) : stream_(seed) {}
  void Fill(std::span<uint8_t> out) override;

 private:
  crypto::SeededStream stream_;
  std::array<uint8_t, 4096> buffer_{};  // keystream drawn ahead, consumed from `used_`
  size_t used_ = sizeof(buffer_);
};

// SampleLaplace returns one draw of Laplace(0, scale) (density e^{−|x|/scale}/(2·scale)),
// scale > 0 and finite (CLLM_CHECK). From 64 random bits: one is the sign, 53
// give v = (m + 1)/2^53 ∈ (0, 1] exactly in a double, and the magnitude is the
// exponential inverse CDF −scale·ln v. Because v is never 0 the logarithm is
// always finite (the u = 0 edge of the textbook two-sided inverse CDF), the
// largest magnitude is scale·53·ln 2 ≈ 36.7·scale, and ±0 both occur (v = 1).
double SampleLaplace(RandomSource& random, double scale);

}  // namespace cllm::split
