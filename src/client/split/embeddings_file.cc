#include "client/split/embeddings_file.h"

#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "engine/kernels/kernels.h"

namespace cllm::split {
namespace {

SplitResult<std::vector<float>> ReadRows(const engine::GgufTensorInfo& t, uint32_t* n_vocab,
                                         uint32_t* dim) {
  const engine::TypeTraits* traits = engine::GetTypeTraits(t.type);
  if (traits == nullptr || !traits->supported) {
    return MakeError(SplitErrc::kInvalidArgument, std::string(kTokenEmbdTensor) + " has type " +
                                                      (traits ? traits->name : "unknown") +
                                                      ", which the engine does not compute with");
  }
  if (t.ne.size() != 2 || t.ne[0] <= 0 || t.ne[1] <= 0 ||
      t.ne[0] > std::numeric_limits<uint32_t>::max() ||
      t.ne[1] > std::numeric_limits<uint32_t>::max()) {
    return MakeError(SplitErrc::kInvalidArgument,
                     std::string(kTokenEmbdTensor) + " is not a 2-D matrix [n_embd, n_vocab]");
  }
  *dim = static_cast<uint32_t>(t.ne[0]);
  *n_vocab = static_cast<uint32_t>(t.ne[1]);
  // The GGUF reader checked that the rows are whole blocks and that
  // n_bytes = rows × row size lies inside the file.
  const size_t row_bytes = engine::RowSizeBytes(t.type, t.ne[0]);
  uint64_t count = 0;
  if (!CheckedMul(*n_vocab, *dim, &count) || count > std::vector<float>().max_size() ||
      static_cast<uint64_t>(row_bytes) * *n_vocab != t.n_bytes) {
    return MakeError(SplitErrc::kShape,
                     std::string(kTokenEmbdTensor) + " size does not match its shape");
  }
  std::vector<float> rows(count);
  for (uint32_t r = 0; r < *n_vocab; ++r) {
    engine::DequantizeRow(t.type, t.data + static_cast<size_t>(r) * row_bytes,
                          rows.data() + static_cast<size_t>(r) * *dim, *dim);
  }
  return rows;
}

SplitResult<std::vector<uint32_t>> ReadNeighbours(const engine::GgufTensorInfo& t, uint32_t n_vocab,
                                                  uint32_t* k) {
  if (t.type != engine::GgmlType::kI32 || t.ne.size() != 2 || t.ne[1] != n_vocab || t.ne[0] <= 0 ||
      t.ne[0] > n_vocab) {
    return MakeError(SplitErrc::kInvalidArgument,
                     std::string(kNeighboursTensor) + " must be I32 [k, n_vocab " +
                         std::to_string(n_vocab) + "] with 1 ≤ k ≤ n_vocab");
  }
  *k = static_cast<uint32_t>(t.ne[0]);
  const uint64_t count = static_cast<uint64_t>(*k) * n_vocab;  // ≤ n_vocab², fits
  if (t.n_bytes != count * 4) {
    return MakeError(SplitErrc::kShape,
                     std::string(kNeighboursTensor) + " size does not match its shape");
  }
  std::vector<uint32_t> ids(count);
  for (uint64_t i = 0; i < count; ++i) {
    const uint8_t* p = t.data + i * 4;
    const uint32_t bits =
        uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
    // A negative I32 becomes ≥ 2^31 > n_vocab: SetNeighbours refuses it.
    ids[i] = bits;
  }
  return ids;
}

}  // namespace

SplitResult<SplitModel> LoadEmbeddingsFromGguf(const engine::GgufFile& file) {
  const engine::GgufTensorInfo* embd = file.FindTensor(kTokenEmbdTensor);
  if (embd == nullptr) {
    return MakeError(SplitErrc::kInvalidArgument, std::string("no tensor ") + kTokenEmbdTensor +
                                                      " (not a model or embeddings file)");
  }
  uint32_t n_vocab = 0, dim = 0;
  CLLM_ASSIGN_OR_RETURN(std::vector<float> rows, ReadRows(*embd, &n_vocab, &dim));

  auto tokenizer = engine::Tokenizer::FromGguf(file);
  if (!tokenizer.ok()) {
    return MakeError(SplitErrc::kInvalidArgument, std::string("tokenizer: ") +
                                                      engine::TokenizerErrcName(tokenizer.code()) +
                                                      ": " + tokenizer.detail());
  }
  if ((*tokenizer)->n_vocab() < 0 || static_cast<uint32_t>((*tokenizer)->n_vocab()) != n_vocab) {
    return MakeError(SplitErrc::kShape, "tokenizer has " + std::to_string((*tokenizer)->n_vocab()) +
                                            " tokens, " + kTokenEmbdTensor + " " +
                                            std::to_string(n_vocab) + " rows");
  }

  CLLM_ASSIGN_OR_RETURN(EmbeddingTable table,
                        EmbeddingTable::Create(n_vocab, dim, std::move(rows)));
  if (const engine::GgufTensorInfo* nb = file.FindTensor(kNeighboursTensor); nb != nullptr) {
    uint32_t k = 0;
    CLLM_ASSIGN_OR_RETURN(std::vector<uint32_t> lists, ReadNeighbours(*nb, n_vocab, &k));
    CLLM_RETURN_IF_ERROR(table.SetNeighbours(k, std::move(lists)));
  }
  SplitModel model{std::move(table), std::move(tokenizer).value(), "", ""};
  model.name = file.GetString("general.name").value_or("");
  model.arch = file.GetString("general.architecture").value_or("");
  return model;
}

SplitResult<SplitModel> LoadEmbeddingsFromMemory(std::shared_ptr<const engine::ByteSource> bytes) {
  auto file = engine::GgufFile::FromMemory(std::move(bytes));
  if (!file.ok()) {
    return MakeError(SplitErrc::kInvalidArgument, std::string("embeddings file: ") +
                                                      engine::GgufErrcName(file.code()) + ": " +
                                                      file.detail());
  }
  return LoadEmbeddingsFromGguf(*file);
}

SplitResult<SplitModel> LoadEmbeddings(const std::filesystem::path& path) {
  auto file = engine::GgufFile::Open(path);
  if (!file.ok()) {
    return MakeError(
        SplitErrc::kInvalidArgument,
        path.string() + ": " + engine::GgufErrcName(file.code()) + ": " + file.detail());
  }
  return LoadEmbeddingsFromGguf(*file);
}

}  // namespace cllm::split
