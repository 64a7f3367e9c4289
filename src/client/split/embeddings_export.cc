#include "client/split/embeddings_export.h"

#include <string>
#include <utility>

#include "base/bytes.h"
#include "engine/kernels/kernels.h"

namespace cllm::split {
namespace {

bool StartsWith(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

// EmbeddingShape checks token_embd.weight against <arch>.embedding_length:
// ne0 = dim (the row), ne1 = n_vocab.
Result<std::pair<const engine::GgufTensorInfo*, uint64_t>> TokenEmbd(const engine::GgufFile& model,
                                                                      const std::string& arch) {
  const engine::GgufTensorInfo* t = model.FindTensor(kTokenEmbdTensor);
  if (!t) return MakeError(Errc::kNotFound, std::string("the model has no ") + kTokenEmbdTensor);
  auto dim = model.GetUint(arch + ".embedding_length");
  if (!dim.ok()) return MakeError(Errc::kNotFound, arch + ".embedding_length: " + dim.detail());
  if (t->ne.size() != 2 || t->ne[0] <= 0 || t->ne[1] <= 0 || static_cast<uint64_t>(t->ne[0]) != *dim ||
      *dim > UINT32_MAX || static_cast<uint64_t>(t->ne[1]) > UINT32_MAX) {
    return MakeError(Errc::kParse, std::string(kTokenEmbdTensor) + ": expected shape [" + std::to_string(*dim) +
                                       ", n_vocab] (" + arch + ".embedding_length)");
  }
  return std::make_pair(t, *dim);
}

}  // namespace

Result<FloatRows> DequantizedEmbeddings(const engine::GgufFile& model) {
  auto arch = model.GetString("general.architecture");
  if (!arch.ok()) return MakeError(Errc::kNotFound, "general.architecture: " + arch.detail());
  CLLM_ASSIGN_OR_RETURN(auto te, TokenEmbd(model, *arch));
  const engine::GgufTensorInfo& t = *te.first;
  FloatRows out;
  out.dim = static_cast<uint32_t>(t.ne[0]);
  out.n_vocab = static_cast<uint32_t>(t.ne[1]);
  uint64_t n = 0;
  if (!CheckedMul(out.n_vocab, out.dim, &n) || n > (uint64_t{1} << 36)) {
    return MakeError(Errc::kParse, std::string(kTokenEmbdTensor) + ": too large to expand");
  }
  const engine::TypeTraits* traits = engine::GetTypeTraits(t.type);
  if (!traits || !traits->supported) {
    return MakeError(Errc::kParse, std::string(kTokenEmbdTensor) + ": type " + (traits ? traits->name : "?") +
                                       " cannot be expanded to float32 by this engine");
  }
  const size_t row_bytes = engine::RowSizeBytes(t.type, out.dim);
  // The reader checked n_bytes = rows × row size; re-check what we index with.
  if (row_bytes == 0 || t.n_bytes / row_bytes != out.n_vocab || t.n_bytes % row_bytes != 0) {
    return MakeError(Errc::kParse, std::string(kTokenEmbdTensor) + ": data size does not match its shape");
  }
  out.rows.resize(n);
  for (uint32_t r = 0; r < out.n_vocab; ++r) {
    engine::DequantizeRow(t.type, t.data + row_bytes * r, out.rows.data() + uint64_t{r} * out.dim, out.dim);
  }
  return out;
}

Result<engine::GgufWriter> BuildEmbeddingsGguf(const engine::GgufFile& model, const EmbeddingsExportOptions& options) {
  auto arch = model.GetString("general.architecture");
  if (!arch.ok()) return MakeError(Errc::kNotFound, "general.architecture: " + arch.detail());
  CLLM_ASSIGN_OR_RETURN(auto te, TokenEmbd(model, *arch));
  const engine::GgufTensorInfo& t = *te.first;
  const std::string dim_key = *arch + ".embedding_length";

  engine::GgufWriter w(model.alignment());
  // An allow-list, in the model's order: nothing is copied unless named here.
  bool has_tokenizer = false;
  for (const auto& [key, value] : model.metadata()) {
    const bool keep = key == "general.architecture" || key == "general.name" || key == dim_key ||
                      StartsWith(key, "tokenizer.");
    if (!keep) continue;
    has_tokenizer |= StartsWith(key, "tokenizer.");
    w.Add(key, value);
  }
  if (!has_tokenizer) return MakeError(Errc::kNotFound, "the model has no tokenizer.* metadata");
  w.AddTensor(kTokenEmbdTensor, t.type, t.ne, ByteSpan(t.data, t.n_bytes));

  if (options.neighbours > 0) {
    CLLM_ASSIGN_OR_RETURN(FloatRows f, DequantizedEmbeddings(model));
    auto table = EmbeddingTable::Create(f.n_vocab, f.dim, std::move(f.rows));
    if (!table.ok()) {
      return MakeError(Errc::kInvalidArgument, std::string("neighbours: the embedding table: ") +
                                                   SplitErrcName(table.code()) + ": " + table.detail());
    }
    auto ids = ComputeNeighbours(*table, options.neighbours, options.threads, options.progress);
    if (!ids.ok()) return MakeError(Errc::kInvalidArgument, ids.detail());
    w.AddTensor(kNeighboursTensor, engine::GgmlType::kI32,
                {static_cast<int64_t>(options.neighbours), static_cast<int64_t>(table->n_vocab())},
                ByteSpan(reinterpret_cast<const uint8_t*>(ids->data()), ids->size() * sizeof(int32_t)));
  }
  return w;
}

Status<> WriteEmbeddingsGguf(const engine::GgufFile& model, const std::filesystem::path& out,
                             const EmbeddingsExportOptions& options) {
  CLLM_ASSIGN_OR_RETURN(engine::GgufWriter w, BuildEmbeddingsGguf(model, options));
  auto st = w.WriteFile(out);
  if (!st.ok()) return MakeError(Errc::kIo, out.string() + ": " + st.detail());
  return OkStatus();
}

}  // namespace cllm::split
