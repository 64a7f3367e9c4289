// gguf.h — a reader for GGUF v2/v3 model files that treats the file as hostile.
//
// Every count, string length, array length, tensor offset, dimension product
// and alignment is checked for overflow and bounds before use; unknown value
// or tensor types and duplicate keys or tensor names are rejected. Errors are
// typed (GgufErrc) with a detail naming the offset and the item ("tensor 12
// 'blk.0.attn_q.weight': data [0x1000, 0x9000) ends past the file (0x8800)").
//
// The bytes come either from an mmap'd file (Open) or from memory the caller
// owns (FromMemory) — sealed models are decrypted into memory and must never
// touch disk as plaintext. Tensor data pointers stay valid as long as the
// GgufFile (which shares ownership of the bytes) lives.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "engine/ggml_type.h"

namespace cllm::engine {

enum class GgufErrc {
  kIo = 1,             // cannot open / map / read the file
  kBadMagic,           // not "GGUF"
  kBadVersion,         // version other than 2 or 3
  kTruncated,          // a structure runs past the end of the file
  kTooLarge,           // a count or length is implausibly large or overflows
  kBadString,          // a string is not valid UTF-8 or contains NUL where not allowed
  kUnknownValueType,   // metadata value type id not in the spec
  kUnknownTensorType,  // tensor type id not known or not supported
  kDuplicateKey,
  kDuplicateTensor,
  kBadAlignment,       // general.alignment is zero, not a power of two, or not u32
  kMisaligned,         // a tensor offset is not a multiple of the alignment
  kOutOfBounds,        // tensor data outside the data section, or tensors overlapping
  kBadShape,           // zero/negative dims, too many dims, element count overflow, row not a block multiple
  kMissingKey,         // a required metadata key is absent (typed getters)
  kWrongType,          // a metadata key has another type than required (typed getters)
  kBadValue,           // a metadata value is invalid (a bool that is neither 0 nor 1)
};
const char* GgufErrcName(GgufErrc code);

template <typename T>
using GgufResult = Result<T, GgufErrc>;

// Metadata value types as numbered in the GGUF spec.
enum class GgufValueType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};
const char* GgufValueTypeName(GgufValueType t);

// GgufArray holds a homogeneous array; exactly one vector is filled, chosen by
// elem_type (integers of every width widen into `ints` / `uints`, floats into
// `floats`, bools into `uints`, strings into `strings`). Nested arrays are
// rejected by the reader.
struct GgufArray {
  GgufValueType elem_type = GgufValueType::kU8;
  std::vector<int64_t> ints;        // I8, I16, I32, I64
  std::vector<uint64_t> uints;      // U8, U16, U32, U64, BOOL
  std::vector<double> floats;       // F32, F64
  std::vector<std::string> strings; // STRING
  size_t size() const;
};

struct GgufValue {
  GgufValueType type = GgufValueType::kU8;
  // Scalars widen: signed → int64_t, unsigned/bool → uint64_t, float → double.
  std::variant<int64_t, uint64_t, double, std::string, GgufArray> value;
};

struct GgufTensorInfo {
  std::string name;
  GgmlType type = GgmlType::kF32;
  std::vector<int64_t> ne;  // dims, innermost (row length) first, as in GGUF
  uint64_t offset = 0;      // relative to the start of the data section
  uint64_t n_bytes = 0;     // checked: rows × row size of `type`
  const uint8_t* data = nullptr;  // into the mapped / owned bytes
  int64_t n_elements() const;
};

// ByteSource owns the bytes a GgufFile reads (a mapping or a memory buffer).
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual ByteSpan bytes() const = 0;
  // Discard tells the source that bytes [p, p + n) will not be read for a
  // while, so their memory may go; a later read must still see the same
  // bytes (a file mapping drops its pages and reads them again from the
  // file). Returns false where the source cannot (a memory buffer).
  virtual bool Discard(const uint8_t* p, size_t n) const {
    (void)p, (void)n;
    return false;
  }
  // CanDiscard says whether Discard does anything.
  virtual bool CanDiscard() const { return false; }
  // WritableBytes is bytes() as writable memory when the source is a
  // private buffer that only the engine reads after loading (cllm-server's
  // locked copy of a model, hashed before it was parsed): the engine may then
  // rewrite weight matrices in place into its load-time layouts instead of
  // copying them. Null otherwise (file mappings, shared buffers).
  virtual uint8_t* WritableBytes() const { return nullptr; }
};

class GgufFile {
 public:
  // Open maps `path` read-only and parses it.
  static GgufResult<GgufFile> Open(const std::filesystem::path& path);
  // FromMemory parses bytes owned by `source` (kept alive by the GgufFile).
  static GgufResult<GgufFile> FromMemory(std::shared_ptr<const ByteSource> source);
  // FromBytes copies `data` into an owned buffer and parses it (tests, fuzzing).
  static GgufResult<GgufFile> FromBytes(ByteSpan data);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return source_->bytes().size(); }
  // bytes is the whole file as the engine reads it (the mapping or buffer).
  ByteSpan bytes() const { return source_->bytes(); }
  const ByteSource& source() const { return *source_; }

  // Metadata in file order; Find returns nullptr when absent.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* Find(std::string_view key) const;

  // Typed getters: kMissingKey when absent, kWrongType when another type.
  // Integer getters accept any integer type whose value fits.
  GgufResult<std::string> GetString(std::string_view key) const;
  GgufResult<uint64_t> GetUint(std::string_view key) const;
  GgufResult<int64_t> GetInt(std::string_view key) const;
  GgufResult<double> GetFloat(std::string_view key) const;  // F32/F64
  GgufResult<bool> GetBool(std::string_view key) const;
  GgufResult<const GgufArray*> GetArray(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* FindTensor(std::string_view name) const;

 private:
  std::shared_ptr<const ByteSource> source_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::map<std::string, size_t, std::less<>> metadata_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
  friend class GgufParser;
};

}  // namespace cllm::engine
