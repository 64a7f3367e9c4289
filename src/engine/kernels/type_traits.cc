// Block sizes and byte sizes of the GGUF tensor types (public facts of the
// GGUF/ggml format; see docs/engine.md for the block layouts).
#include "base/check.h"
#include "engine/kernels/kernels.h"

namespace cllm::engine {
namespace {

struct Entry {
  uint32_t id;
  TypeTraits traits;
};

// supported = the engine can compute with it (kernels exist).
constexpr Entry kTypes[] = {
    {0, {"f32", 1, 4, true}},       {1, {"f16", 1, 2, true}},
    {2, {"q4_0", 32, 18, true}},    {3, {"q4_1", 32, 20, true}},
    {6, {"q5_0", 32, 22, true}},    {7, {"q5_1", 32, 24, true}},
    {8, {"q8_0", 32, 34, true}},    {9, {"q8_1", 32, 36, false}},
    {10, {"q2_K", 256, 84, false}}, {11, {"q3_K", 256, 110, false}},
    {12, {"q4_K", 256, 144, true}}, {13, {"q5_K", 256, 176, true}},
    {14, {"q6_K", 256, 210, true}}, {15, {"q8_K", 256, 292, false}},
    {24, {"i8", 1, 1, false}},      {25, {"i16", 1, 2, false}},
    {26, {"i32", 1, 4, false}},     {27, {"i64", 1, 8, false}},
    {28, {"f64", 1, 8, false}},     {30, {"bf16", 1, 2, true}},
};

}  // namespace

const TypeTraits* GetTypeTraitsById(uint32_t id) {
  for (const auto& e : kTypes) {
    if (e.id == id) return &e.traits;
  }
  return nullptr;
}

const TypeTraits* GetTypeTraits(GgmlType type) {
  static constexpr TypeTraits kQ8_0x16Traits{"q8_0x16", 32, 34, true};  // a load-time layout (kernels.h)
  static constexpr TypeTraits kQ4_Kx8Traits{"q4_Kx8", 256, 144, true};
  if (type == kQ8_0x16) return &kQ8_0x16Traits;
  static constexpr TypeTraits kQ6_Kx8Traits{"q6_Kx8", 256, 210, true};
  if (type == kQ4_Kx8) return &kQ4_Kx8Traits;
  if (type == kQ6_Kx8) return &kQ6_Kx8Traits;
  return GetTypeTraitsById(static_cast<uint32_t>(type));
}

size_t RowSizeBytes(GgmlType type, int64_t n) {
  const TypeTraits* t = GetTypeTraits(type);
  CLLM_CHECK(t != nullptr && n >= 0 && n % t->block_size == 0);
  return static_cast<size_t>(n / t->block_size) * t->type_size;
}

}  // namespace cllm::engine
