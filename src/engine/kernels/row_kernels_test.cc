// The element-wise row kernels (F32ToF16Row, SoftmaxRow, SwiGluRow) on every
// instruction set against the scalar reference: F16 conversion bit for bit,
// exp-based kernels within a few fp32 ulps, at lengths with and without a
// tail below the vector width.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "engine/kernels/kernels.h"

namespace cllm::engine {
namespace {

class RowKernelTest : public ::testing::Test {
 protected:
  void TearDown() override { SetActiveIsa(saved_); }
  Isa saved_ = ActiveIsa();
};

TEST_F(RowKernelTest, F32ToF16RowIsExactOnEveryIsa) {
  std::mt19937 rng(11);
  std::vector<float> x;
  // Specials: zeros, subnormal halves, the rounding midpoints, overflow, inf, NaN.
  for (float f : {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 65520.0f, 1e6f, 5.9604645e-8f, 2.9802322e-8f, 2.98e-8f,
                  6.1035156e-5f, 6.09e-5f, 1.00048828125f, 1.00146484375f, std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                  std::bit_cast<float>(0x7f812345u), std::bit_cast<float>(0xffc00001u)}) {
    x.push_back(f);
  }
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 4000; ++i) x.push_back(std::bit_cast<float>(bits(rng)));  // every exponent
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (int i = 0; i < 1003; ++i) x.push_back(normal(rng));
  std::vector<uint16_t> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = F32ToF16(x[i]);
  for (Isa isa : AvailableIsas()) {
    SetActiveIsa(isa);
    for (size_t offset : {size_t{0}, size_t{3}}) {  // the NaN groups land in different 8-lane groups
      std::vector<uint16_t> got(x.size() - offset);
      F32ToF16Row(x.data() + offset, got.data(), static_cast<int64_t>(got.size()));
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i], want[i + offset]) << IsaName(isa) << " element " << i + offset << " bits "
                                            << std::bit_cast<uint32_t>(x[i + offset]);
      }
    }
  }
}

TEST_F(RowKernelTest, SoftmaxRowMatchesReference) {
  std::mt19937 rng(12);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (int64_t n : {1, 5, 8, 13, 64, 203}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = normal(rng);
    x[0] = -200.0f;  // far below the max: exp underflows
    SetActiveIsa(Isa::kScalar);
    std::vector<float> want = x;
    SoftmaxRow(want.data(), n);
    for (Isa isa : AvailableIsas()) {
      SetActiveIsa(isa);
      std::vector<float> got = x;
      SoftmaxRow(got.data(), n);
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_NEAR(got[i], want[i], 2e-6 * want[i] + 1e-30) << IsaName(isa) << " n " << n << " i " << i;
        sum += got[i];
      }
      EXPECT_NEAR(sum, 1.0, 1e-5) << IsaName(isa);
    }
  }
}

TEST_F(RowKernelTest, SwiGluRowMatchesReference) {
  std::mt19937 rng(13);
  std::normal_distribution<float> normal(0.0f, 5.0f);
  for (int64_t n : {1, 7, 16, 203}) {
    std::vector<float> gate(static_cast<size_t>(n)), up(gate.size());
    for (auto& v : gate) v = normal(rng);
    for (auto& v : up) v = normal(rng);
    gate[0] = -120.0f;  // e^120 overflows fp32 in the reference: silu → −0
    if (n > 1) gate[1] = 95.0f;
    SetActiveIsa(Isa::kScalar);
    std::vector<float> want(gate.size());
    SwiGluRow(gate.data(), up.data(), n, want.data());
    for (Isa isa : AvailableIsas()) {
      SetActiveIsa(isa);
      std::vector<float> got(gate.size());
      SwiGluRow(gate.data(), up.data(), n, got.data());
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_NEAR(got[i], want[i], 2e-6 * std::fabs(want[i]) + 1e-30) << IsaName(isa) << " n " << n << " i " << i;
      }
    }
  }
}

}  // namespace
}  // namespace cllm::engine
