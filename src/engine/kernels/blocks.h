// blocks.h — quantized block layouts exactly as stored in GGUF files.
//
// Each struct is one block; `static_assert`s pin the on-disk sizes. fp16
// fields are raw IEEE binary16 bits. QK_K = 256 for the K-quants.
#pragma once

#include <cstdint>

namespace cllm::engine {

inline constexpr int kQK = 32;    // elements per block, legacy quants
inline constexpr int kQKK = 256;  // elements per super-block, K-quants

struct BlockQ4_0 {
  uint16_t d;            // scale
  uint8_t qs[kQK / 2];   // x[j] = (lo nibble of qs[j] - 8)·d, x[j+16] = (hi nibble - 8)·d
};
static_assert(sizeof(BlockQ4_0) == 18);

struct BlockQ4_1 {
  uint16_t d, m;         // x = q·d + m
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ4_1) == 20);

struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];         // 5th bits: bit j of the LE u32 for x[j], bit j+16 for x[j+16]
  uint8_t qs[kQK / 2];   // low 4 bits, same nibble order as Q4_0; x = (q - 16)·d
};
static_assert(sizeof(BlockQ5_0) == 22);

struct BlockQ5_1 {
  uint16_t d, m;         // x = q·d + m
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ5_1) == 24);

struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK];        // x = q·d
};
static_assert(sizeof(BlockQ8_0) == 34);

// Q4_K: 8 sub-blocks of 32, each with a 6-bit scale and 6-bit min packed in
// scales[12]; x = d·sc·q − dmin·m, q the 4-bit value. Sub-blocks 2i and 2i+1
// share the 32 bytes qs[32i..32i+32) (low nibbles, then high nibbles).
struct BlockQ4_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qs[kQKK / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

// Q5_K: Q4_K plus a 5th bit per element in qh (bit pair per 64 elements).
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[kQKK / 8];
  uint8_t qs[kQKK / 2];
};
static_assert(sizeof(BlockQ5_K) == 176);

// Q6_K: 16 sub-blocks of 16 with int8 scales; 6-bit q = 4 low bits (ql) and
// 2 high bits (qh); x = d·scale·(q − 32).
struct BlockQ6_K {
  uint8_t ql[kQKK / 2];
  uint8_t qh[kQKK / 4];
  int8_t scales[kQKK / 16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210);

}  // namespace cllm::engine
