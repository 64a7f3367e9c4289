// byte_reader.h — a bounds-checked cursor over untrusted bytes.
//
// Every read checks that enough bytes remain; nothing reads past the end and
// nothing aborts. Errors are Errc::kOutOfRange with a detail naming the
// absolute offset, how much was needed and how much was left, so a parser can
// wrap it in its own domain error ("tensor 3 name: need 17 bytes at 0x1a4, 9 left").
//
// Sub-readers (Sub) cover a slice and report offsets relative to the root
// buffer, which keeps error messages meaningful in nested structures.
#pragma once

#include <array>
#include <cstring>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"

namespace cllm {

class ByteReader {
 public:
  explicit ByteReader(ByteSpan data, size_t base_offset = 0)
      : data_(data), base_offset_(base_offset) {}

  // offset returns the absolute offset of the next byte to read.
  size_t offset() const { return base_offset_ + pos_; }
  size_t remaining() const { return data_.size() - pos_; }
  bool empty() const { return pos_ == data_.size(); }
  // rest returns the unread bytes without consuming them.
  ByteSpan rest() const { return data_.subspan(pos_); }

  Result<uint8_t> U8();
  Result<uint16_t> U16Le();
  Result<uint32_t> U32Le();
  Result<uint64_t> U64Le();
  Result<uint16_t> U16Be();
  Result<uint32_t> U32Be();
  Result<uint64_t> U64Be();
  Result<int8_t> I8();
  Result<int16_t> I16Le();
  Result<int32_t> I32Le();
  Result<int64_t> I64Le();
  Result<float> F32Le();
  Result<double> F64Le();

  // Bytes consumes `n` bytes and returns a view into the underlying buffer.
  Result<ByteSpan> Bytes(uint64_t n);
  // String consumes `n` bytes as a string_view (no UTF-8 validation).
  Result<std::string_view> String(uint64_t n);
  // Array copies exactly N bytes into a fixed-size array.
  template <size_t N>
  Result<std::array<uint8_t, N>> Array() {
    CLLM_ASSIGN_OR_RETURN(ByteSpan b, Bytes(N));
    std::array<uint8_t, N> out;
    std::memcpy(out.data(), b.data(), N);
    return out;
  }
  // Sub consumes `n` bytes and returns a reader over them.
  Result<ByteReader> Sub(uint64_t n);
  // Skip consumes `n` bytes.
  Status<> Skip(uint64_t n);
  // SeekTo moves to an absolute offset within this reader's slice.
  Status<> SeekTo(uint64_t absolute_offset);
  // AlignTo skips forward to the next multiple of `alignment` (absolute
  // offsets); `alignment` must be non-zero.
  Status<> AlignTo(uint64_t alignment);

 private:
  Status<> Need(uint64_t n) const;
  template <typename T, bool kBigEndian>
  Result<T> ReadInt();

  ByteSpan data_;
  size_t pos_ = 0;
  size_t base_offset_ = 0;
};

// Little/big-endian stores for writers (serialising our own formats).
void PutU16Le(Bytes& out, uint16_t v);
void PutU32Le(Bytes& out, uint32_t v);
void PutU64Le(Bytes& out, uint64_t v);
void PutU32Be(Bytes& out, uint32_t v);
void PutU64Be(Bytes& out, uint64_t v);

}  // namespace cllm
