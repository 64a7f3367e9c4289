#include "base/byte_reader.h"

#include <bit>
#include <cinttypes>
#include <cstdio>
#include <string>

namespace cllm {

Status<> ByteReader::Need(uint64_t n) const {
  if (n <= remaining()) return OkStatus();
  char buf[128];
  std::snprintf(buf, sizeof buf, "need %" PRIu64 " bytes at offset %zu, %zu left", n, offset(),
                remaining());
  return MakeError(Errc::kOutOfRange, buf);
}

template <typename T, bool kBigEndian>
Result<T> ByteReader::ReadInt() {
  CLLM_RETURN_IF_ERROR(Need(sizeof(T)));
  using U = std::make_unsigned_t<T>;
  U v = 0;
  const uint8_t* p = data_.data() + pos_;
  for (size_t i = 0; i < sizeof(T); ++i) {
    size_t shift = kBigEndian ? (sizeof(T) - 1 - i) * 8 : i * 8;
    v |= static_cast<U>(static_cast<U>(p[i]) << shift);
  }
  pos_ += sizeof(T);
  return static_cast<T>(v);
}

Result<uint8_t> ByteReader::U8() { return ReadInt<uint8_t, false>(); }
Result<uint16_t> ByteReader::U16Le() { return ReadInt<uint16_t, false>(); }
Result<uint32_t> ByteReader::U32Le() { return ReadInt<uint32_t, false>(); }
Result<uint64_t> ByteReader::U64Le() { return ReadInt<uint64_t, false>(); }
Result<uint16_t> ByteReader::U16Be() { return ReadInt<uint16_t, true>(); }
Result<uint32_t> ByteReader::U32Be() { return ReadInt<uint32_t, true>(); }
Result<uint64_t> ByteReader::U64Be() { return ReadInt<uint64_t, true>(); }
Result<int8_t> ByteReader::I8() { return ReadInt<int8_t, false>(); }
Result<int16_t> ByteReader::I16Le() { return ReadInt<int16_t, false>(); }
Result<int32_t> ByteReader::I32Le() { return ReadInt<int32_t, false>(); }
Result<int64_t> ByteReader::I64Le() { return ReadInt<int64_t, false>(); }

Result<float> ByteReader::F32Le() {
  CLLM_ASSIGN_OR_RETURN(uint32_t bits, U32Le());
  return std::bit_cast<float>(bits);
}

Result<double> ByteReader::F64Le() {
  CLLM_ASSIGN_OR_RETURN(uint64_t bits, U64Le());
  return std::bit_cast<double>(bits);
}

Result<ByteSpan> ByteReader::Bytes(uint64_t n) {
  CLLM_RETURN_IF_ERROR(Need(n));
  ByteSpan out = data_.subspan(pos_, static_cast<size_t>(n));
  pos_ += static_cast<size_t>(n);
  return out;
}

Result<std::string_view> ByteReader::String(uint64_t n) {
  CLLM_ASSIGN_OR_RETURN(ByteSpan b, Bytes(n));
  return AsChars(b);
}

Result<ByteReader> ByteReader::Sub(uint64_t n) {
  size_t start = offset();
  CLLM_ASSIGN_OR_RETURN(ByteSpan b, Bytes(n));
  return ByteReader(b, start);
}

Status<> ByteReader::Skip(uint64_t n) {
  CLLM_RETURN_IF_ERROR(Need(n));
  pos_ += static_cast<size_t>(n);
  return OkStatus();
}

Status<> ByteReader::SeekTo(uint64_t absolute_offset) {
  if (absolute_offset < base_offset_ || absolute_offset - base_offset_ > data_.size()) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "seek to offset %" PRIu64 " outside [%zu, %zu]", absolute_offset,
                  base_offset_, base_offset_ + data_.size());
    return MakeError(Errc::kOutOfRange, buf);
  }
  pos_ = static_cast<size_t>(absolute_offset - base_offset_);
  return OkStatus();
}

Status<> ByteReader::AlignTo(uint64_t alignment) {
  CLLM_CHECK(alignment != 0);
  uint64_t misalign = offset() % alignment;
  if (misalign == 0) return OkStatus();
  return Skip(alignment - misalign);
}

namespace {
template <typename T>
void PutLe(Bytes& out, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
template <typename T>
void PutBe(Bytes& out, T v) {
  for (size_t i = sizeof(T); i-- > 0;) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
}  // namespace

void PutU16Le(Bytes& out, uint16_t v) { PutLe(out, v); }
void PutU32Le(Bytes& out, uint32_t v) { PutLe(out, v); }
void PutU64Le(Bytes& out, uint64_t v) { PutLe(out, v); }
void PutU32Be(Bytes& out, uint32_t v) { PutBe(out, v); }
void PutU64Be(Bytes& out, uint64_t v) { PutBe(out, v); }

bool ConstantTimeEqual(ByteSpan a, ByteSpan b) {
  if (a.size() != b.size()) return false;
  volatile uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = diff | (a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace cllm
