#include "engine/quant/model_quantize.h"

#include <algorithm>

#include "engine/gguf/gguf_stream_writer.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/kernels/kernels.h"
#include "engine/quant/quantize.h"

namespace cllm::engine {

const char* QuantErrcName(QuantErrc code) {
  switch (code) {
    case QuantErrc::kIo: return "io";
    case QuantErrc::kBadInput: return "bad_input";
  }
  return "unknown";
}

void CopyMetadataExcept(const GgufFile& in, GgufWriter& out, const std::function<bool(const std::string&)>& skip) {
  for (const auto& [key, value] : in.metadata()) {
    if (!skip(key)) out.Add(key, value);
  }
}

namespace {

bool IsFloatType(GgmlType t) { return t == GgmlType::kF32 || t == GgmlType::kF16 || t == GgmlType::kBF16; }

}  // namespace

QuantResult<std::vector<TensorPlanEntry>> PlanQuantization(const GgufFile& in, QuantScheme scheme) {
  int n_layer = 0;
  for (const auto& t : in.tensors()) n_layer = std::max(n_layer, LayerIndex(t.name) + 1);
  const bool has_output = in.FindTensor("output.weight") != nullptr;
  std::vector<TensorPlanEntry> plan;
  for (const auto& t : in.tensors()) {
    TensorPlanEntry e{t.name, t.type, t.type, t.n_bytes};
    const std::optional<GgmlType> to = ChooseTensorType(scheme, {t.name, t.ne, n_layer, has_output});
    if (to.has_value()) {
      if (!IsFloatType(t.type)) {
        return MakeError(QuantErrc::kBadInput, "tensor '" + t.name + "' is already " + GetTypeTraits(t.type)->name +
                                                   " (quantize from an F32, F16 or BF16 file)");
      }
      e.to = *to;
      int64_t rows = 1;
      for (size_t i = 1; i < t.ne.size(); ++i) rows *= t.ne[i];
      e.n_bytes = RowSizeBytes(e.to, t.ne[0]) * static_cast<uint64_t>(rows);
    }
    plan.push_back(std::move(e));
  }
  return plan;
}

int64_t RowChunk(int64_t n_cols) { return std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(1, n_cols)); }

QuantResult<std::vector<TensorPlanEntry>> QuantizeModel(const GgufFile& in, const std::filesystem::path& out_path,
                                                        QuantScheme scheme, const QuantProgress& progress,
                                                        int n_threads) {
  if (n_threads <= 0) n_threads = DefaultQuantThreads();
  CLLM_ASSIGN_OR_RETURN(std::vector<TensorPlanEntry> plan, PlanQuantization(in, scheme));
  GgufWriter header(in.alignment());
  CopyMetadataExcept(in, header, [](const std::string& key) {
    return key == "general.alignment" || key == "general.file_type" || key == "general.quantization_version";
  });
  header.AddU32("general.quantization_version", 2);  // ggml's current block layouts
  header.AddU32("general.file_type", QuantSchemeFileType(scheme));
  for (size_t i = 0; i < plan.size(); ++i) header.DeclareTensor(plan[i].name, plan[i].to, in.tensors()[i].ne);

  auto writer = GgufStreamWriter::Create(out_path, header);
  if (!writer.ok()) return MakeError(QuantErrc::kIo, writer.detail());
  std::vector<float> rows;   // [chunk, n_cols] fp32
  Bytes encoded;             // [chunk × RowSizeBytes(to, n_cols)]
  for (size_t i = 0; i < plan.size(); ++i) {
    const GgufTensorInfo& t = in.tensors()[i];
    const TensorPlanEntry& e = plan[i];
    GgufResult<Ok> st = OkStatus();
    if (e.to == e.from) {
      st = (*writer)->Write(ByteSpan(t.data, t.n_bytes));
    } else {
      const int64_t n_cols = t.ne[0];
      const int64_t n_rows = t.n_elements() / n_cols;
      const size_t in_row = RowSizeBytes(t.type, n_cols), out_row = RowSizeBytes(e.to, n_cols);
      const int64_t chunk = std::min(n_rows, RowChunk(n_cols));
      rows.resize(static_cast<size_t>(chunk * n_cols));
      encoded.resize(static_cast<size_t>(chunk) * out_row);
      for (int64_t r0 = 0; r0 < n_rows && st.ok(); r0 += chunk) {
        const int64_t n = std::min(chunk, n_rows - r0);
        for (int64_t r = 0; r < n; ++r) {
          DequantizeRow(t.type, t.data + static_cast<size_t>(r0 + r) * in_row, &rows[static_cast<size_t>(r * n_cols)], n_cols);
        }
        QuantizeRows(e.to, rows.data(), encoded.data(), n, n_cols, n_threads);
        st = (*writer)->Write(ByteSpan(encoded.data(), static_cast<size_t>(n) * out_row));
      }
    }
    if (st.ok()) st = (*writer)->EndTensor();
    if (!st.ok()) return MakeError(QuantErrc::kIo, st.detail());
    if (progress) progress(i, plan.size(), e);
  }
  auto st = (*writer)->Commit();
  if (!st.ok()) return MakeError(QuantErrc::kIo, st.detail());
  return plan;
}

}  // namespace cllm::engine
