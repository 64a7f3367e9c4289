#include "engine/gguf/gguf_writer.h"

#include <bit>

#include "base/byte_reader.h"
#include "base/check.h"
#include "base/file.h"
#include "engine/kernels/kernels.h"

namespace cllm::engine {
namespace {

void PutString(Bytes& out, const std::string& s) {
  PutU64Le(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

// PutElement writes one scalar of type `t` whose value is held (widened) in
// the int/uint/double/string forms GgufValue uses.
void PutElement(Bytes& out, GgufValueType t, int64_t i, uint64_t u, double d, const std::string* s) {
  switch (t) {
    case GgufValueType::kU8: case GgufValueType::kBool: out.push_back(static_cast<uint8_t>(u)); break;
    case GgufValueType::kI8: out.push_back(static_cast<uint8_t>(i)); break;
    case GgufValueType::kU16: PutU16Le(out, static_cast<uint16_t>(u)); break;
    case GgufValueType::kI16: PutU16Le(out, static_cast<uint16_t>(i)); break;
    case GgufValueType::kU32: PutU32Le(out, static_cast<uint32_t>(u)); break;
    case GgufValueType::kI32: PutU32Le(out, static_cast<uint32_t>(i)); break;
    case GgufValueType::kU64: PutU64Le(out, u); break;
    case GgufValueType::kI64: PutU64Le(out, static_cast<uint64_t>(i)); break;
    case GgufValueType::kF32: PutU32Le(out, std::bit_cast<uint32_t>(static_cast<float>(d))); break;
    case GgufValueType::kF64: PutU64Le(out, std::bit_cast<uint64_t>(d)); break;
    case GgufValueType::kString: PutString(out, *s); break;
    case GgufValueType::kArray: CLLM_CHECK_MSG(false, "nested arrays"); break;
  }
}

void PutValue(Bytes& out, const GgufValue& v) {
  PutU32Le(out, static_cast<uint32_t>(v.type));
  if (v.type == GgufValueType::kArray) {
    const auto& a = std::get<GgufArray>(v.value);
    PutU32Le(out, static_cast<uint32_t>(a.elem_type));
    PutU64Le(out, a.size());
    for (int64_t x : a.ints) PutElement(out, a.elem_type, x, 0, 0, nullptr);
    for (uint64_t x : a.uints) PutElement(out, a.elem_type, 0, x, 0, nullptr);
    for (double x : a.floats) PutElement(out, a.elem_type, 0, 0, x, nullptr);
    for (const auto& x : a.strings) PutElement(out, a.elem_type, 0, 0, 0, &x);
    return;
  }
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, int64_t>) PutElement(out, v.type, x, 0, 0, nullptr);
        if constexpr (std::is_same_v<T, uint64_t>) PutElement(out, v.type, 0, x, 0, nullptr);
        if constexpr (std::is_same_v<T, double>) PutElement(out, v.type, 0, 0, x, nullptr);
        if constexpr (std::is_same_v<T, std::string>) PutElement(out, v.type, 0, 0, 0, &x);
      },
      v.value);
}

void Pad(Bytes& out, uint64_t alignment) {
  while (out.size() % alignment != 0) out.push_back(0);
}

}  // namespace

GgufWriter::GgufWriter(uint64_t alignment) : alignment_(alignment) {
  CLLM_CHECK(alignment != 0 && (alignment & (alignment - 1)) == 0);
  if (alignment != 32) AddU32("general.alignment", static_cast<uint32_t>(alignment));
}

void GgufWriter::Add(std::string key, GgufValue value) { kv_.emplace_back(std::move(key), std::move(value)); }
void GgufWriter::AddString(std::string key, std::string v) { Add(std::move(key), {GgufValueType::kString, std::move(v)}); }
void GgufWriter::AddU32(std::string key, uint32_t v) { Add(std::move(key), {GgufValueType::kU32, uint64_t{v}}); }
void GgufWriter::AddI32(std::string key, int32_t v) { Add(std::move(key), {GgufValueType::kI32, int64_t{v}}); }
void GgufWriter::AddU64(std::string key, uint64_t v) { Add(std::move(key), {GgufValueType::kU64, v}); }
void GgufWriter::AddF32(std::string key, float v) { Add(std::move(key), {GgufValueType::kF32, double{v}}); }
void GgufWriter::AddBool(std::string key, bool v) { Add(std::move(key), {GgufValueType::kBool, uint64_t{v}}); }

void GgufWriter::AddStringArray(std::string key, std::vector<std::string> v) {
  GgufArray a;
  a.elem_type = GgufValueType::kString;
  a.strings = std::move(v);
  Add(std::move(key), {GgufValueType::kArray, std::move(a)});
}

void GgufWriter::AddF32Array(std::string key, std::vector<float> v) {
  GgufArray a;
  a.elem_type = GgufValueType::kF32;
  a.floats.assign(v.begin(), v.end());
  Add(std::move(key), {GgufValueType::kArray, std::move(a)});
}

void GgufWriter::AddI32Array(std::string key, std::vector<int32_t> v) {
  GgufArray a;
  a.elem_type = GgufValueType::kI32;
  a.ints.assign(v.begin(), v.end());
  Add(std::move(key), {GgufValueType::kArray, std::move(a)});
}

namespace {

uint64_t TensorBytes(GgmlType type, const std::vector<int64_t>& ne) {
  CLLM_CHECK(!ne.empty());
  uint64_t rows = 1;
  for (size_t i = 1; i < ne.size(); ++i) rows *= static_cast<uint64_t>(ne[i]);
  return RowSizeBytes(type, ne[0]) * rows;
}

}  // namespace

void GgufWriter::AddTensor(std::string name, GgmlType type, std::vector<int64_t> ne, ByteSpan data) {
  const uint64_t n_bytes = TensorBytes(type, ne);
  CLLM_CHECK(data.size() == n_bytes);
  tensors_.push_back({std::move(name), type, std::move(ne), n_bytes, true, Bytes(data.begin(), data.end())});
}

void GgufWriter::DeclareTensor(std::string name, GgmlType type, std::vector<int64_t> ne) {
  const uint64_t n_bytes = TensorBytes(type, ne);
  tensors_.push_back({std::move(name), type, std::move(ne), n_bytes, false, {}});
}

std::vector<uint64_t> GgufWriter::tensor_sizes() const {
  std::vector<uint64_t> out;
  for (const auto& t : tensors_) out.push_back(t.n_bytes);
  return out;
}

Bytes GgufWriter::HeaderBytes() const {
  Bytes out;
  PutU32Le(out, 0x46554747);  // "GGUF"
  PutU32Le(out, 3);
  PutU64Le(out, tensors_.size());
  PutU64Le(out, kv_.size());
  for (const auto& [key, value] : kv_) {
    PutString(out, key);
    PutValue(out, value);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    PutString(out, t.name);
    PutU32Le(out, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) PutU64Le(out, static_cast<uint64_t>(d));
    PutU32Le(out, static_cast<uint32_t>(t.type));
    PutU64Le(out, offset);
    offset += (t.n_bytes + alignment_ - 1) / alignment_ * alignment_;
  }
  Pad(out, alignment_);
  return out;
}

Bytes GgufWriter::Finish() const {
  Bytes out = HeaderBytes();
  for (const auto& t : tensors_) {
    CLLM_CHECK_MSG(t.has_data, "Finish on a declared-only tensor: use GgufStreamWriter");
    out.insert(out.end(), t.data.begin(), t.data.end());
    Pad(out, alignment_);
  }
  return out;
}

GgufResult<Ok> GgufWriter::WriteFile(const std::filesystem::path& path) const {
  auto st = WriteFileAtomic(path, Finish());
  if (!st.ok()) return MakeError(GgufErrc::kIo, st.detail());
  return OkStatus();
}

}  // namespace cllm::engine
