#include "engine/quant/synth_model.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/gguf/gguf_stream_writer.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/kernels/kernels.h"
#include "engine/quant/quantize.h"

namespace cllm::engine {
namespace {

// SplitMix64: tiny, fast, and identical on every platform (std::normal_
// distribution is not specified bit-for-bit across standard libraries).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Normal4 fills out[0..4) with approximately normal values of standard
  // deviation `std`: each is a sum of four 16-bit uniforms (Irwin–Hall), in
  // integer arithmetic so the bits never depend on libm.
  void Normal4(float std, float* out) {
    // Var of one uniform on {0..65535} = (65536² − 1)/12; four of them summed.
    static const float kInvSd = static_cast<float>(1.0 / std::sqrt(4.0 * (65536.0 * 65536.0 - 1.0) / 12.0));
    for (int k = 0; k < 4; ++k) {
      const uint64_t r = Next();
      const int64_t sum = static_cast<int64_t>((r & 0xffff) + (r >> 16 & 0xffff) + (r >> 32 & 0xffff) + (r >> 48));
      out[k] = static_cast<float>(2 * sum - 4 * 65535) * 0.5f * kInvSd * std;
    }
  }

 private:
  uint64_t state_;
};

// TensorSeed gives each tensor its own stream, so values do not depend on
// the order tensors are generated in.
uint64_t TensorSeed(uint64_t seed, const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ull;
  return seed ^ h;
}

struct TensorSpec {
  std::string name;
  std::vector<int64_t> ne;
  bool is_norm;  // filled with 1.0 instead of random values
};

std::vector<TensorSpec> Qwen3Tensors(const SynthPreset& p, int64_t n_vocab) {
  const int64_t q_dim = int64_t{p.n_head} * p.head_dim, kv_dim = int64_t{p.n_head_kv} * p.head_dim;
  std::vector<TensorSpec> out;
  out.push_back({"token_embd.weight", {p.n_embd, n_vocab}, false});  // tied: also the output projection
  for (int i = 0; i < p.n_layer; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    out.push_back({b + "attn_norm.weight", {p.n_embd}, true});
    out.push_back({b + "attn_q.weight", {p.n_embd, q_dim}, false});
    out.push_back({b + "attn_k.weight", {p.n_embd, kv_dim}, false});
    out.push_back({b + "attn_v.weight", {p.n_embd, kv_dim}, false});
    out.push_back({b + "attn_q_norm.weight", {p.head_dim}, true});
    out.push_back({b + "attn_k_norm.weight", {p.head_dim}, true});
    out.push_back({b + "attn_output.weight", {q_dim, p.n_embd}, false});
    out.push_back({b + "ffn_norm.weight", {p.n_embd}, true});
    out.push_back({b + "ffn_gate.weight", {p.n_embd, p.n_ff}, false});
    out.push_back({b + "ffn_up.weight", {p.n_embd, p.n_ff}, false});
    out.push_back({b + "ffn_down.weight", {p.n_ff, p.n_embd}, false});
  }
  out.push_back({"output_norm.weight", {p.n_embd}, true});
  return out;
}

void AddQwen3Hparams(const SynthPreset& p, QuantScheme scheme, GgufWriter& w) {
  w.AddString("general.architecture", "qwen3");
  w.AddString("general.name", "cllm synthetic " + p.name + " (random weights)");
  w.AddU32("general.file_type", QuantSchemeFileType(scheme));
  w.AddU32("general.quantization_version", 2);
  w.AddU32("qwen3.block_count", static_cast<uint32_t>(p.n_layer));
  w.AddU32("qwen3.context_length", static_cast<uint32_t>(p.n_ctx));
  w.AddU32("qwen3.embedding_length", static_cast<uint32_t>(p.n_embd));
  w.AddU32("qwen3.feed_forward_length", static_cast<uint32_t>(p.n_ff));
  w.AddU32("qwen3.attention.head_count", static_cast<uint32_t>(p.n_head));
  w.AddU32("qwen3.attention.head_count_kv", static_cast<uint32_t>(p.n_head_kv));
  w.AddU32("qwen3.attention.key_length", static_cast<uint32_t>(p.head_dim));
  w.AddU32("qwen3.attention.value_length", static_cast<uint32_t>(p.head_dim));
  w.AddF32("qwen3.rope.freq_base", p.rope_base);
  w.AddF32("qwen3.attention.layer_norm_rms_epsilon", p.rms_eps);
}

}  // namespace

std::optional<SynthPreset> FindSynthPreset(std::string_view name) {
  // name, layers, hidden, ffn, q heads, kv heads, head_dim, context
  if (name == "tiny") return SynthPreset{"tiny", 2, 256, 768, 4, 2, 64, 2048, 1e6f, 1e-6f};
  if (name == "qwen3-0.6b") return SynthPreset{"qwen3-0.6b", 28, 1024, 3072, 16, 8, 128, 40960, 1e6f, 1e-6f};
  if (name == "qwen3-1.7b") return SynthPreset{"qwen3-1.7b", 28, 2048, 6144, 16, 8, 128, 40960, 1e6f, 1e-6f};
  return std::nullopt;
}

QuantResult<std::vector<TensorPlanEntry>> SynthesizeModel(const SynthOptions& options, const GgufFile& vocab,
                                                          const std::filesystem::path& out_path,
                                                          const QuantProgress& progress) {
  const SynthPreset& p = options.preset;
  auto tokens = vocab.GetArray("tokenizer.ggml.tokens");
  if (!tokens.ok()) return MakeError(QuantErrc::kBadInput, "vocabulary file: " + tokens.detail());
  const auto n_vocab = static_cast<int64_t>((*tokens)->size());
  if (p.n_layer <= 0 || p.n_embd <= 0 || p.n_head <= 0 || p.n_head_kv <= 0 || p.n_head % p.n_head_kv != 0) {
    return MakeError(QuantErrc::kBadInput, "preset '" + p.name + "' has inconsistent shapes");
  }

  GgufWriter header;
  AddQwen3Hparams(p, options.scheme, header);
  CopyMetadataExcept(vocab, header, [](const std::string& key) { return key.rfind("tokenizer.", 0) != 0; });

  const std::vector<TensorSpec> specs = Qwen3Tensors(p, n_vocab);
  std::vector<TensorPlanEntry> plan;
  for (const TensorSpec& s : specs) {
    const std::optional<GgmlType> to = ChooseTensorType(options.scheme, {s.name, s.ne, p.n_layer, false});
    const GgmlType type = to.value_or(GgmlType::kF32);
    int64_t rows = 1;
    for (size_t i = 1; i < s.ne.size(); ++i) rows *= s.ne[i];
    plan.push_back({s.name, GgmlType::kF32, type, RowSizeBytes(type, s.ne[0]) * static_cast<uint64_t>(rows)});
    header.DeclareTensor(s.name, type, s.ne);
  }

  auto writer = GgufStreamWriter::Create(out_path, header);
  if (!writer.ok()) return MakeError(QuantErrc::kIo, writer.detail());
  const int n_threads = options.n_threads > 0 ? options.n_threads : DefaultQuantThreads();
  std::vector<float> rows;  // [chunk, n_cols] fp32
  Bytes encoded;            // [chunk × RowSizeBytes(type, n_cols)]
  std::vector<float> row;   // [n_cols rounded up to a multiple of 4]: Normal4 fills 4 at a time
  for (size_t i = 0; i < specs.size(); ++i) {
    const TensorSpec& s = specs[i];
    const int64_t n_cols = s.ne[0];
    const int64_t n_rows = s.ne.size() > 1 ? s.ne[1] : 1;
    const size_t out_row = RowSizeBytes(plan[i].to, n_cols);
    const int64_t chunk = std::min(n_rows, RowChunk(n_cols));
    rows.assign(static_cast<size_t>(chunk * n_cols), 1.0f);
    row.assign(static_cast<size_t>((n_cols + 3) / 4 * 4), 1.0f);
    encoded.resize(static_cast<size_t>(chunk) * out_row);
    Rng rng(TensorSeed(options.seed, s.name));
    GgufResult<Ok> st = OkStatus();
    for (int64_t r0 = 0; r0 < n_rows && st.ok(); r0 += chunk) {
      const int64_t n = std::min(chunk, n_rows - r0);
      if (!s.is_norm) {
        for (int64_t r = 0; r < n; ++r) {  // the random stream runs row by row, as before chunking
          for (size_t c = 0; c < row.size(); c += 4) rng.Normal4(options.weight_std, &row[c]);
          std::copy(row.begin(), row.begin() + n_cols, rows.begin() + r * n_cols);
        }
      }
      QuantizeRows(plan[i].to, rows.data(), encoded.data(), n, n_cols, n_threads);
      st = (*writer)->Write(ByteSpan(encoded.data(), static_cast<size_t>(n) * out_row));
    }
    if (st.ok()) st = (*writer)->EndTensor();
    if (!st.ok()) return MakeError(QuantErrc::kIo, st.detail());
    if (progress) progress(i, specs.size(), plan[i]);
  }
  auto st = (*writer)->Commit();
  if (!st.ok()) return MakeError(QuantErrc::kIo, st.detail());
  return plan;
}

}  // namespace cllm::engine
