// GGUF parsing. The file is hostile: every count, length, offset and size is
// checked before it is used, and running out of bytes is an error, never a
// read past the end. Layout (GGUF v2/v3, little-endian):
//
//   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv × { string key | u32 type | value }
//   n_tensors × { string name | u32 n_dims | u64 ne[n_dims] | u32 type | u64 offset }
//   padding to general.alignment | tensor data (offsets relative to here)
//
// string = u64 length | bytes;  array = u32 elem type | u64 count | elems.
#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "base/byte_reader.h"
#include "base/utf8.h"
#include "engine/gguf/gguf.h"
#include "engine/gguf/mapped_file.h"
#include "engine/kernels/kernels.h"

namespace cllm::engine {

class GgufParser {
 public:
  GgufParser(GgufFile& f, ByteSpan data) : f_(f), data_(data), r_(data) {}

  GgufResult<Ok> Parse() {
    CLLM_RETURN_IF_ERROR(ParseHeader());
    for (uint64_t i = 0; i < n_kv_; ++i) CLLM_RETURN_IF_ERROR(ParseKv(i));
    for (uint64_t i = 0; i < n_tensors_; ++i) CLLM_RETURN_IF_ERROR(ParseTensorInfo(i));
    return PlaceTensors();
  }

 private:
  // --- helpers -------------------------------------------------------------
  Error<GgufErrc> Fail(GgufErrc code, const std::string& what) const {
    char where[48];
    std::snprintf(where, sizeof where, " (at offset %zu)", r_.offset());
    return MakeError(code, what + where);
  }

  // Need distinguishes a plausible structure cut short (kTruncated) from a
  // length no file of this size could hold (kTooLarge).
  GgufResult<Ok> Need(uint64_t n, const std::string& what) const {
    if (n <= r_.remaining()) return OkStatus();
    if (n > data_.size()) return Fail(GgufErrc::kTooLarge, what + ": length " + std::to_string(n) + " exceeds the file size");
    return Fail(GgufErrc::kTruncated, what + ": file ends early");
  }

  template <typename T>
  GgufResult<T> Read(Result<T> (ByteReader::*fn)(), const std::string& what) {
    auto v = (r_.*fn)();
    if (!v.ok()) return Fail(GgufErrc::kTruncated, what + ": file ends early");
    return *v;
  }

  GgufResult<std::string> ReadString(const std::string& what) {
    CLLM_ASSIGN_OR_RETURN(uint64_t len, Read(&ByteReader::U64Le, what + " length"));
    CLLM_RETURN_IF_ERROR(Need(len, what));
    std::string s(r_.String(len).value());
    if (!IsValidUtf8(s)) return Fail(GgufErrc::kBadString, what + " is not valid UTF-8");
    return s;
  }

  // --- header --------------------------------------------------------------
  GgufResult<Ok> ParseHeader() {
    if (data_.size() < 4) return Fail(GgufErrc::kTruncated, "file shorter than the GGUF magic");
    auto magic = r_.U32Le().value();
    if (magic != 0x46554747) return Fail(GgufErrc::kBadMagic, "not a GGUF file (bad magic)");
    CLLM_ASSIGN_OR_RETURN(f_.version_, Read(&ByteReader::U32Le, "version"));
    // v1 used 32-bit counts and is obsolete; v2 and v3 share this layout.
    if (f_.version_ != 2 && f_.version_ != 3) {
      return Fail(GgufErrc::kBadVersion, "GGUF version " + std::to_string(f_.version_) + " (supported: 2, 3)");
    }
    CLLM_ASSIGN_OR_RETURN(n_tensors_, Read(&ByteReader::U64Le, "tensor count"));
    CLLM_ASSIGN_OR_RETURN(n_kv_, Read(&ByteReader::U64Le, "metadata count"));
    // Counts beyond any real model are rejected outright. Nothing is reserved
    // from a count, so a plausible count in a file cut short simply runs into
    // its first short read (kTruncated).
    if (n_kv_ > kMaxCount || n_tensors_ > kMaxCount) {
      return Fail(GgufErrc::kTooLarge, "metadata count " + std::to_string(n_kv_) + " / tensor count " +
                                           std::to_string(n_tensors_) + " cannot fit in the file");
    }
    return OkStatus();
  }

  // --- metadata ------------------------------------------------------------
  static uint64_t ScalarSize(GgufValueType t) {
    switch (t) {
      case GgufValueType::kU8: case GgufValueType::kI8: case GgufValueType::kBool: return 1;
      case GgufValueType::kU16: case GgufValueType::kI16: return 2;
      case GgufValueType::kU32: case GgufValueType::kI32: case GgufValueType::kF32: return 4;
      case GgufValueType::kU64: case GgufValueType::kI64: case GgufValueType::kF64: return 8;
      case GgufValueType::kString: return 8;  // at least the length field
      case GgufValueType::kArray: return 12;
    }
    return 0;
  }

  static bool KnownType(uint32_t t) { return t <= 12; }
  static constexpr uint64_t kMaxCount = uint64_t{1} << 24;
  // Array elements: a vocabulary and its merges are a few hundred thousand;
  // each element takes 8 to 32 bytes of memory however few it takes on disk.
  static constexpr uint64_t kMaxArrayLength = uint64_t{1} << 22;

  GgufResult<GgufValue> ReadScalar(GgufValueType t, const std::string& what) {
    GgufValue v;
    v.type = t;
    switch (t) {
      case GgufValueType::kU8: { CLLM_ASSIGN_OR_RETURN(uint8_t x, Read(&ByteReader::U8, what)); v.value = uint64_t{x}; break; }
      case GgufValueType::kI8: { CLLM_ASSIGN_OR_RETURN(int8_t x, Read(&ByteReader::I8, what)); v.value = int64_t{x}; break; }
      case GgufValueType::kU16: { CLLM_ASSIGN_OR_RETURN(uint16_t x, Read(&ByteReader::U16Le, what)); v.value = uint64_t{x}; break; }
      case GgufValueType::kI16: { CLLM_ASSIGN_OR_RETURN(int16_t x, Read(&ByteReader::I16Le, what)); v.value = int64_t{x}; break; }
      case GgufValueType::kU32: { CLLM_ASSIGN_OR_RETURN(uint32_t x, Read(&ByteReader::U32Le, what)); v.value = uint64_t{x}; break; }
      case GgufValueType::kI32: { CLLM_ASSIGN_OR_RETURN(int32_t x, Read(&ByteReader::I32Le, what)); v.value = int64_t{x}; break; }
      case GgufValueType::kU64: { CLLM_ASSIGN_OR_RETURN(uint64_t x, Read(&ByteReader::U64Le, what)); v.value = x; break; }
      case GgufValueType::kI64: { CLLM_ASSIGN_OR_RETURN(int64_t x, Read(&ByteReader::I64Le, what)); v.value = x; break; }
      case GgufValueType::kF32: { CLLM_ASSIGN_OR_RETURN(float x, Read(&ByteReader::F32Le, what)); v.value = double{x}; break; }
      case GgufValueType::kF64: { CLLM_ASSIGN_OR_RETURN(double x, Read(&ByteReader::F64Le, what)); v.value = x; break; }
      case GgufValueType::kBool: {
        CLLM_ASSIGN_OR_RETURN(uint8_t x, Read(&ByteReader::U8, what));
        if (x > 1) return Fail(GgufErrc::kBadValue, what + ": bool value " + std::to_string(x));
        v.value = uint64_t{x};
        break;
      }
      case GgufValueType::kString: { CLLM_ASSIGN_OR_RETURN(std::string s, ReadString(what)); v.value = std::move(s); break; }
      case GgufValueType::kArray: return Fail(GgufErrc::kUnknownValueType, what + ": nested arrays are not supported");
    }
    return v;
  }

  GgufResult<GgufValue> ReadArray(const std::string& what) {
    CLLM_ASSIGN_OR_RETURN(uint32_t et, Read(&ByteReader::U32Le, what + " element type"));
    if (!KnownType(et)) return Fail(GgufErrc::kUnknownValueType, what + ": element type " + std::to_string(et));
    auto elem = static_cast<GgufValueType>(et);
    if (elem == GgufValueType::kArray) return Fail(GgufErrc::kUnknownValueType, what + ": nested arrays are not supported");
    CLLM_ASSIGN_OR_RETURN(uint64_t n, Read(&ByteReader::U64Le, what + " length"));
    if (n > kMaxArrayLength) {
      return Fail(GgufErrc::kTooLarge, what + ": array of " + std::to_string(n) + " elements (at most " +
                                           std::to_string(kMaxArrayLength) + ")");
    }
    uint64_t min_bytes = 0;
    if (!CheckedMul(n, ScalarSize(elem), &min_bytes)) {
      return Fail(GgufErrc::kTooLarge, what + ": array length " + std::to_string(n) + " overflows");
    }
    CLLM_RETURN_IF_ERROR(Need(min_bytes, what + " (array of " + std::to_string(n) + ")"));
    GgufArray arr;
    arr.elem_type = elem;
    for (uint64_t i = 0; i < n; ++i) {
      CLLM_ASSIGN_OR_RETURN(GgufValue e, ReadScalar(elem, what + "[" + std::to_string(i) + "]"));
      if (auto* s = std::get_if<std::string>(&e.value)) {
        arr.strings.push_back(std::move(*s));
      } else if (auto* u = std::get_if<uint64_t>(&e.value)) {
        arr.uints.push_back(*u);
      } else if (auto* x = std::get_if<int64_t>(&e.value)) {
        arr.ints.push_back(*x);
      } else {
        arr.floats.push_back(std::get<double>(e.value));
      }
    }
    GgufValue v;
    v.type = GgufValueType::kArray;
    v.value = std::move(arr);
    return v;
  }

  GgufResult<Ok> ParseKv(uint64_t index) {
    std::string what = "metadata entry " + std::to_string(index);
    CLLM_ASSIGN_OR_RETURN(std::string key, ReadString(what + " key"));
    if (key.empty()) return Fail(GgufErrc::kBadString, what + ": empty key");
    what = "metadata '" + key + "'";
    if (f_.metadata_index_.count(key)) return Fail(GgufErrc::kDuplicateKey, "duplicate " + what);
    CLLM_ASSIGN_OR_RETURN(uint32_t type, Read(&ByteReader::U32Le, what + " type"));
    if (!KnownType(type)) return Fail(GgufErrc::kUnknownValueType, what + ": value type " + std::to_string(type));
    auto t = static_cast<GgufValueType>(type);
    GgufValue value;
    if (t == GgufValueType::kArray) {
      CLLM_ASSIGN_OR_RETURN(value, ReadArray(what));
    } else {
      CLLM_ASSIGN_OR_RETURN(value, ReadScalar(t, what));
    }
    if (key == "general.alignment") {
      // The spec requires a u32 power of two.
      const uint64_t* a = std::get_if<uint64_t>(&value.value);
      if (t != GgufValueType::kU32 || a == nullptr || *a == 0 || (*a & (*a - 1)) != 0) {
        return Fail(GgufErrc::kBadAlignment, "general.alignment must be a u32 power of two");
      }
      f_.alignment_ = *a;
    }
    f_.metadata_index_[key] = f_.metadata_.size();
    f_.metadata_.emplace_back(std::move(key), std::move(value));
    return OkStatus();
  }

  // --- tensors -------------------------------------------------------------
  GgufResult<Ok> ParseTensorInfo(uint64_t index) {
    std::string what = "tensor " + std::to_string(index);
    GgufTensorInfo t;
    CLLM_ASSIGN_OR_RETURN(t.name, ReadString(what + " name"));
    if (t.name.empty()) return Fail(GgufErrc::kBadString, what + ": empty name");
    what += " '" + t.name + "'";
    if (f_.tensor_index_.count(t.name)) return Fail(GgufErrc::kDuplicateTensor, "duplicate " + what);
    CLLM_ASSIGN_OR_RETURN(uint32_t n_dims, Read(&ByteReader::U32Le, what + " dimension count"));
    if (n_dims == 0 || n_dims > 4) return Fail(GgufErrc::kBadShape, what + ": " + std::to_string(n_dims) + " dimensions (1-4)");
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      CLLM_ASSIGN_OR_RETURN(uint64_t ne, Read(&ByteReader::U64Le, what + " dimension"));
      if (ne == 0 || ne > static_cast<uint64_t>(INT64_MAX) || !CheckedMul(n_elements, ne, &n_elements) ||
          n_elements > static_cast<uint64_t>(INT64_MAX)) {
        return Fail(GgufErrc::kBadShape, what + ": dimension " + std::to_string(ne) + " is zero or overflows");
      }
      t.ne.push_back(static_cast<int64_t>(ne));
    }
    CLLM_ASSIGN_OR_RETURN(uint32_t type, Read(&ByteReader::U32Le, what + " type"));
    const TypeTraits* traits = GetTypeTraitsById(type);
    if (traits == nullptr) return Fail(GgufErrc::kUnknownTensorType, what + ": tensor type " + std::to_string(type));
    t.type = static_cast<GgmlType>(type);
    if (t.ne[0] % traits->block_size != 0) {
      return Fail(GgufErrc::kBadShape, what + ": row of " + std::to_string(t.ne[0]) + " is not a multiple of the " +
                                           traits->name + " block size " + std::to_string(traits->block_size));
    }
    // bytes = (elements / block) × block bytes; elements ≤ 2^63 so the division is exact per row.
    if (!CheckedMul(n_elements / static_cast<uint64_t>(traits->block_size), traits->type_size, &t.n_bytes)) {
      return Fail(GgufErrc::kTooLarge, what + ": byte size overflows");
    }
    CLLM_ASSIGN_OR_RETURN(t.offset, Read(&ByteReader::U64Le, what + " offset"));
    f_.tensor_index_[t.name] = f_.tensors_.size();
    f_.tensors_.push_back(std::move(t));
    return OkStatus();
  }

  GgufResult<Ok> PlaceTensors() {
    uint64_t a = f_.alignment_;
    uint64_t start = r_.offset();
    uint64_t aligned = 0;
    if (!CheckedAdd(start, a - 1, &aligned)) return Fail(GgufErrc::kTooLarge, "data offset overflows");
    f_.data_offset_ = aligned / a * a;
    const uint64_t size = data_.size();
    std::vector<size_t> order(f_.tensors_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    for (auto& t : f_.tensors_) {
      uint64_t begin = 0, end = 0;
      if (t.offset % a != 0) {
        return MakeError(GgufErrc::kMisaligned, "tensor '" + t.name + "': offset " + std::to_string(t.offset) +
                                                    " is not a multiple of the alignment " + std::to_string(a));
      }
      if (!CheckedAdd(f_.data_offset_, t.offset, &begin) || !CheckedAdd(begin, t.n_bytes, &end) || end > size) {
        return MakeError(GgufErrc::kOutOfBounds, "tensor '" + t.name + "': data [" + std::to_string(t.offset) +
                                                     ", +" + std::to_string(t.n_bytes) +
                                                     ") ends past the end of the file (" + std::to_string(size) + " bytes)");
      }
      t.data = data_.data() + begin;
    }
    std::sort(order.begin(), order.end(),
              [&](size_t x, size_t y) { return f_.tensors_[x].offset < f_.tensors_[y].offset; });
    for (size_t k = 1; k < order.size(); ++k) {
      const auto& prev = f_.tensors_[order[k - 1]];
      const auto& cur = f_.tensors_[order[k]];
      if (cur.offset < prev.offset + prev.n_bytes) {
        return MakeError(GgufErrc::kOutOfBounds, "tensors '" + prev.name + "' and '" + cur.name + "' overlap");
      }
    }
    return OkStatus();
  }

  GgufFile& f_;
  ByteSpan data_;
  ByteReader r_;
  uint64_t n_tensors_ = 0;
  uint64_t n_kv_ = 0;
};

// ---------------------------------------------------------------------------
// GgufFile
// ---------------------------------------------------------------------------

GgufResult<GgufFile> GgufFile::FromMemory(std::shared_ptr<const ByteSource> source) {
  GgufFile f;
  f.source_ = std::move(source);
  GgufParser parser(f, f.source_->bytes());
  CLLM_RETURN_IF_ERROR(parser.Parse());
  return f;
}

GgufResult<GgufFile> GgufFile::Open(const std::filesystem::path& path) {
  CLLM_ASSIGN_OR_RETURN(auto source, MapFile(path));
  return FromMemory(std::move(source));
}

GgufResult<GgufFile> GgufFile::FromBytes(ByteSpan data) {
  return FromMemory(std::make_shared<OwnedBytes>(data));
}

const GgufValue* GgufFile::Find(std::string_view key) const {
  auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

const GgufTensorInfo* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
Error<GgufErrc> Missing(std::string_view key) {
  return MakeError(GgufErrc::kMissingKey, "missing metadata key '" + std::string(key) + "'");
}
Error<GgufErrc> WrongType(std::string_view key, const char* want, GgufValueType got) {
  return MakeError(GgufErrc::kWrongType, "metadata '" + std::string(key) + "' is " + GgufValueTypeName(got) +
                                             ", expected " + want);
}
}  // namespace

GgufResult<std::string> GgufFile::GetString(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(key);
  if (v->type != GgufValueType::kString) return WrongType(key, "string", v->type);
  return std::get<std::string>(v->value);
}

GgufResult<uint64_t> GgufFile::GetUint(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(key);
  if (v->type == GgufValueType::kBool) return WrongType(key, "an unsigned integer", v->type);
  if (auto* u = std::get_if<uint64_t>(&v->value)) return *u;
  if (auto* i = std::get_if<int64_t>(&v->value); i && *i >= 0) return static_cast<uint64_t>(*i);
  return WrongType(key, "a non-negative integer", v->type);
}

GgufResult<int64_t> GgufFile::GetInt(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(key);
  if (v->type == GgufValueType::kBool) return WrongType(key, "an integer", v->type);
  if (auto* i = std::get_if<int64_t>(&v->value)) return *i;
  if (auto* u = std::get_if<uint64_t>(&v->value); u && *u <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(*u);
  }
  return WrongType(key, "an integer", v->type);
}

GgufResult<double> GgufFile::GetFloat(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(key);
  if (auto* d = std::get_if<double>(&v->value)) return *d;
  return WrongType(key, "a float", v->type);
}

GgufResult<bool> GgufFile::GetBool(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(key);
  if (v->type != GgufValueType::kBool) return WrongType(key, "bool", v->type);
  return std::get<uint64_t>(v->value) != 0;
}

GgufResult<const GgufArray*> GgufFile::GetArray(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(key);
  if (v->type != GgufValueType::kArray) return WrongType(key, "array", v->type);
  return &std::get<GgufArray>(v->value);
}

size_t GgufArray::size() const { return ints.size() + uints.size() + floats.size() + strings.size(); }

int64_t GgufTensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;  // checked at parse time
  return n;
}

const char* GgufErrcName(GgufErrc code) {
  switch (code) {
    case GgufErrc::kIo: return "io";
    case GgufErrc::kBadMagic: return "bad_magic";
    case GgufErrc::kBadVersion: return "bad_version";
    case GgufErrc::kTruncated: return "truncated";
    case GgufErrc::kTooLarge: return "too_large";
    case GgufErrc::kBadString: return "bad_string";
    case GgufErrc::kUnknownValueType: return "unknown_value_type";
    case GgufErrc::kUnknownTensorType: return "unknown_tensor_type";
    case GgufErrc::kDuplicateKey: return "duplicate_key";
    case GgufErrc::kDuplicateTensor: return "duplicate_tensor";
    case GgufErrc::kBadAlignment: return "bad_alignment";
    case GgufErrc::kMisaligned: return "misaligned";
    case GgufErrc::kOutOfBounds: return "out_of_bounds";
    case GgufErrc::kBadShape: return "bad_shape";
    case GgufErrc::kMissingKey: return "missing_key";
    case GgufErrc::kWrongType: return "wrong_type";
    case GgufErrc::kBadValue: return "bad_value";
  }
  return "unknown";
}

const char* GgufValueTypeName(GgufValueType t) {
  switch (t) {
    case GgufValueType::kU8: return "u8";
    case GgufValueType::kI8: return "i8";
    case GgufValueType::kU16: return "u16";
    case GgufValueType::kI16: return "i16";
    case GgufValueType::kU32: return "u32";
    case GgufValueType::kI32: return "i32";
    case GgufValueType::kF32: return "f32";
    case GgufValueType::kBool: return "bool";
    case GgufValueType::kString: return "string";
    case GgufValueType::kArray: return "array";
    case GgufValueType::kU64: return "u64";
    case GgufValueType::kI64: return "i64";
    case GgufValueType::kF64: return "f64";
  }
  return "unknown";
}

}  // namespace cllm::engine
