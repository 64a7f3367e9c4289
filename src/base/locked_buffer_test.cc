#include "base/locked_buffer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

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

// VmFlags of the mapping holding `p`, from /proc/self/smaps ("" if not found).
std::string VmFlagsOf(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto at = reinterpret_cast<uintptr_t>(p);
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-') {
      inside = lo <= at && at < hi;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return "";
}

// Weights and KV blocks (2 MiB or more) are advised for huge pages (smaps
// VmFlags "hg"); small buffers (keys) are not.
TEST(LockedBufferTest, LargeBuffersAskForHugePages) {
  if (!std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled")) {
    GTEST_SKIP() << "SKIPPED: this kernel has no transparent huge pages";
  }
  auto big = LockedBuffer::Allocate(size_t{4} << 20);
  ASSERT_TRUE(big.ok());
  auto small = LockedBuffer::Allocate(4096);
  ASSERT_TRUE(small.ok());
  const std::string big_flags = VmFlagsOf(big->data()), small_flags = VmFlagsOf(small->data());
  if (big_flags.empty()) GTEST_SKIP() << "SKIPPED: /proc/self/smaps has no VmFlags here";
  EXPECT_NE((big_flags + " ").find(" hg "), std::string::npos) << big_flags;
  EXPECT_EQ((small_flags + " ").find(" hg "), std::string::npos) << small_flags;
  EXPECT_NE((big_flags + " ").find(" dd "), std::string::npos) << big_flags;  // MADV_DONTDUMP as before
}

}  // namespace
}  // namespace cllm
