#include "base/locked_buffer.h"

#include <gtest/gtest.h>

namespace cllm {
namespace {

TEST(LockedBufferTest, AllocatesZeroedMemoryAndMoves) {
  auto b = LockedBuffer::Allocate(10000);
  ASSERT_TRUE(b.ok()) << b.detail();
  EXPECT_EQ(b->size(), 10000u);
  for (size_t i = 0; i < b->size(); ++i) ASSERT_EQ(b->data()[i], 0);
  b->data()[5] = 7;
  EXPECT_TRUE(b->excluded_from_dumps());
  LockedBuffer moved = std::move(*b);
  EXPECT_EQ(moved.data()[5], 7);
  EXPECT_EQ(b->data(), nullptr);  // NOLINT(bugprone-use-after-move): specified moved-from state
  EXPECT_EQ(b->size(), 0u);
}

TEST(LockedBufferTest, ZeroSizeIsValid) {
  auto b = LockedBuffer::Allocate(0);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->size(), 0u);
  EXPECT_NE(b->data(), nullptr);
}

TEST(LockedBufferTest, ImpossibleSizeIsAnError) {
  EXPECT_EQ(LockedBuffer::Allocate(size_t{1} << 62).code(), Errc::kIo);
}

}  // namespace
}  // namespace cllm
