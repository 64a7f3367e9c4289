#include "client/split/random_source.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/check.h"

namespace cllm::split {

void SystemRandom::Fill(std::span<uint8_t> out) { crypto::RandomBytes(out); }

void SeededRandom::Fill(std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    if (used_ == buffer_.size()) {
      stream_.Fill(buffer_);
      used_ = 0;
    }
    const size_t n = std::min(out.size() - done, buffer_.size() - used_);
    std::memcpy(out.data() + done, buffer_.data() + used_, n);
    used_ += n;
    done += n;
  }
}

double SampleLaplace(RandomSource& random, double scale) {
  CLLM_CHECK(std::isfinite(scale) && scale > 0);
  uint8_t bytes[8];
  random.Fill(bytes);
  uint64_t bits = 0;
  for (uint8_t b : bytes) bits = (bits << 8) | b;
  const bool negative = (bits >> 63) != 0;
  const uint64_t m = bits & ((uint64_t{1} << 53) - 1);
  // (m + 1) ≤ 2^53 is exact in a double, and so is the division by 2^53.
  const double v = static_cast<double>(m + 1) * 0x1p-53;
  const double magnitude = -scale * std::log(v);
  return negative ? -magnitude : magnitude;
}

}  // namespace cllm::split
