#include "engine/quant/quant_plan.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "engine/kernels/blocks.h"

namespace cllm::engine {
namespace {

bool Contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

// Fallback replaces a type whose blocks do not tile a row of `n_cols`.
GgmlType Fallback(GgmlType type, int64_t n_cols) {
  if (type == GgmlType::kQ4_K && n_cols % kQKK != 0) type = GgmlType::kQ5_0;
  if (type == GgmlType::kQ6_K && n_cols % kQKK != 0) type = GgmlType::kQ8_0;
  const bool legacy = type == GgmlType::kQ4_0 || type == GgmlType::kQ5_0 || type == GgmlType::kQ8_0;
  if (legacy && n_cols % kQK != 0) type = GgmlType::kF16;
  return type;
}

GgmlType BaseType(QuantScheme s) {
  switch (s) {
    case QuantScheme::kF16: return GgmlType::kF16;
    case QuantScheme::kQ8_0: return GgmlType::kQ8_0;
    case QuantScheme::kQ4_0: return GgmlType::kQ4_0;
    case QuantScheme::kQ4_K: return GgmlType::kQ4_K;
    case QuantScheme::kQ6_K: return GgmlType::kQ6_K;
    case QuantScheme::kQ4_K_M: return GgmlType::kQ4_K;
  }
  return GgmlType::kF16;
}

}  // namespace

std::optional<QuantScheme> ParseQuantScheme(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (QuantScheme s : {QuantScheme::kF16, QuantScheme::kQ8_0, QuantScheme::kQ4_0, QuantScheme::kQ4_K,
                        QuantScheme::kQ6_K, QuantScheme::kQ4_K_M}) {
    if (lower == QuantSchemeName(s)) return s;
  }
  return std::nullopt;
}

const char* QuantSchemeName(QuantScheme s) {
  switch (s) {
    case QuantScheme::kF16: return "f16";
    case QuantScheme::kQ8_0: return "q8_0";
    case QuantScheme::kQ4_0: return "q4_0";
    case QuantScheme::kQ4_K: return "q4_k";
    case QuantScheme::kQ6_K: return "q6_k";
    case QuantScheme::kQ4_K_M: return "q4_k_m";
  }
  return "?";
}

uint32_t QuantSchemeFileType(QuantScheme s) {
  switch (s) {
    case QuantScheme::kF16: return 1;
    case QuantScheme::kQ4_0: return 2;
    case QuantScheme::kQ8_0: return 7;
    case QuantScheme::kQ4_K: return 14;
    case QuantScheme::kQ4_K_M: return 15;
    case QuantScheme::kQ6_K: return 18;
  }
  return 0;
}

bool UseMoreBits(int layer, int n_layer) {
  return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

int LayerIndex(std::string_view name) {
  constexpr std::string_view kPrefix = "blk.";
  if (name.substr(0, kPrefix.size()) != kPrefix) return -1;
  name.remove_prefix(kPrefix.size());
  int layer = -1;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), layer);
  if (ec != std::errc() || end == name.data() || end == name.data() + name.size() || *end != '.') return -1;
  return layer;
}

std::optional<GgmlType> ChooseTensorType(QuantScheme scheme, const TensorPlanInput& t) {
  if (t.ne.size() < 2) return std::nullopt;
  const int64_t n_cols = t.ne[0];
  GgmlType type = BaseType(scheme);
  const bool is_output = t.name == "output.weight" || (!t.has_output && t.name == "token_embd.weight");
  if (is_output) {
    // The logits projection is the most quantization-sensitive matrix.
    if (scheme == QuantScheme::kF16 || scheme == QuantScheme::kQ8_0) return Fallback(type, n_cols);
    return Fallback(GgmlType::kQ6_K, n_cols);
  }
  if (scheme == QuantScheme::kQ4_K_M && (Contains(t.name, "attn_v.weight") || Contains(t.name, "ffn_down"))) {
    const int layer = LayerIndex(t.name);
    if (layer >= 0 && UseMoreBits(layer, t.n_layer)) type = GgmlType::kQ6_K;
  }
  return Fallback(type, n_cols);
}

}  // namespace cllm::engine
