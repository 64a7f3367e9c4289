// siphash.h — SipHash-2-4, a keyed 64-bit hash (Aumasson & Bernstein, 2012).
//
// The prompt cache indexes its blocks with it under a per-process random
// key, so nobody outside the process can compute or aim at an index value
// (hash flooding, probing which keys exist).
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace cllm::engine {

using SipKey = std::array<uint8_t, 16>;

// SipHash24 returns SipHash-2-4 of `data` under `key` (the paper's
// little-endian conventions; its Appendix A test vector is in the tests).
uint64_t SipHash24(const SipKey& key, std::span<const uint8_t> data);

// RandomSipKey draws a key from the kernel's generator (getrandom(2)).
SipKey RandomSipKey();

}  // namespace cllm::engine
