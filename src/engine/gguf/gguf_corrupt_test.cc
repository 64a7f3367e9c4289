// The corrupt-GGUF suite: a valid small file, then every structural damage a
// hostile file could carry, each expecting its specific error — never a crash.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "engine/gguf/gguf.h"
#include "engine/gguf/gguf_writer.h"

namespace cllm::engine {
namespace {

// A small valid file: two KV entries and two tensors (F32 and Q8_0).
Bytes ValidFile() {
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddStringArray("tokenizer.ggml.tokens", {"<unk>", "hello"});
  w.AddBool("flag", true);
  Bytes f32(8 * 2 * 4, 0);
  w.AddTensor("tensor_alpha", GgmlType::kF32, {8, 2}, f32);
  Bytes q8(34, 0);
  w.AddTensor("tensor_beta", GgmlType::kQ8_0, {32}, q8);
  return w.Finish();
}

size_t Find(const Bytes& b, std::string_view s) {
  auto it = std::search(b.begin(), b.end(), s.begin(), s.end());
  EXPECT_NE(it, b.end()) << s;
  return static_cast<size_t>(it - b.begin());
}

void PutU64(Bytes& b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
void PutU32(Bytes& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

// Offsets inside a tensor info record, located through its (unique) name.
struct TensorInfoAt {
  size_t n_dims, dim0, type, offset;
};
TensorInfoAt Locate(const Bytes& b, std::string_view name, int n_dims) {
  size_t p = Find(b, name) + name.size();
  return {p, p + 4, p + 4 + 8 * static_cast<size_t>(n_dims), p + 4 + 8 * static_cast<size_t>(n_dims) + 4};
}

GgufErrc Code(const Bytes& b) {
  auto f = GgufFile::FromBytes(b);
  EXPECT_FALSE(f.ok());
  return f.ok() ? GgufErrc::kIo : f.code();
}

TEST(GgufCorruptTest, ValidFileParses) {
  auto f = GgufFile::FromBytes(ValidFile());
  ASSERT_TRUE(f.ok()) << f.detail();
  EXPECT_EQ(f->tensors().size(), 2u);
}

TEST(GgufCorruptTest, TruncationAtEveryByte) {
  Bytes good = ValidFile();
  auto info = Locate(good, "tensor_beta", 1);
  size_t infos_end = info.offset + 8;
  auto parsed = GgufFile::FromBytes(good).value();
  size_t data_end = 0;
  for (const auto& t : parsed.tensors()) {
    data_end = std::max<size_t>(data_end, parsed.data_offset() + t.offset + t.n_bytes);
  }
  // Cutting only trailing padding leaves a valid file.
  EXPECT_TRUE(GgufFile::FromBytes(ByteSpan(good).first(data_end)).ok());
  for (size_t n = 0; n < data_end; ++n) {
    auto f = GgufFile::FromBytes(ByteSpan(good).first(n));
    ASSERT_FALSE(f.ok()) << "prefix " << n;
    // Cut inside the structure: truncated; cut in padding or data: the tensor
    // data lies past the end of the file.
    GgufErrc want = n < infos_end ? GgufErrc::kTruncated : GgufErrc::kOutOfBounds;
    ASSERT_EQ(f.code(), want) << "prefix " << n << ": " << f.detail();
  }
}

TEST(GgufCorruptTest, BadMagicAndVersions) {
  Bytes b = ValidFile();
  b[0] = 'X';
  EXPECT_EQ(Code(b), GgufErrc::kBadMagic);
  for (uint32_t v : {0u, 1u, 4u, 0xffffffffu}) {
    b = ValidFile();
    PutU32(b, 4, v);
    EXPECT_EQ(Code(b), GgufErrc::kBadVersion) << v;
  }
}

TEST(GgufCorruptTest, HugeCountsAndLengths) {
  Bytes b = ValidFile();
  PutU64(b, 8, uint64_t{1} << 60);  // n_tensors
  EXPECT_EQ(Code(b), GgufErrc::kTooLarge);
  b = ValidFile();
  PutU64(b, 16, ~uint64_t{0});  // n_kv
  EXPECT_EQ(Code(b), GgufErrc::kTooLarge);
  b = ValidFile();
  PutU64(b, 24, uint64_t{1} << 62);  // first key's length
  EXPECT_EQ(Code(b), GgufErrc::kTooLarge);
  b = ValidFile();
  size_t arr = Find(b, "tokenizer.ggml.tokens") + std::strlen("tokenizer.ggml.tokens");
  PutU64(b, arr + 4 + 4, uint64_t{1} << 61);  // array length (after value type, elem type)
  EXPECT_EQ(Code(b), GgufErrc::kTooLarge);
  b = ValidFile();
  PutU64(b, arr + 4 + 4, ~uint64_t{0});  // overflows count × element size
  EXPECT_EQ(Code(b), GgufErrc::kTooLarge);
}

// An array whose elements are all in the file but far more than any model
// needs: each byte element would take 8 bytes of memory, a string 32 (found
// by review).
TEST(GgufCorruptTest, ArraysLongerThanAnyModelNeedsAreRefused) {
  GgufWriter w;
  GgufArray a;
  a.elem_type = GgufValueType::kU8;
  a.uints.assign((size_t{1} << 22) + 1, 7);
  w.Add("junk", GgufValue{GgufValueType::kArray, std::move(a)});
  const Bytes file = w.Finish();
  auto f = GgufFile::FromBytes(file);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.code(), GgufErrc::kTooLarge) << f.detail();
}

TEST(GgufCorruptTest, UnknownTypesAndNestedArrays) {
  Bytes b = ValidFile();
  size_t key0 = Find(b, "general.architecture") + std::strlen("general.architecture");
  PutU32(b, key0, 13);  // value type
  EXPECT_EQ(Code(b), GgufErrc::kUnknownValueType);
  b = ValidFile();
  size_t arr = Find(b, "tokenizer.ggml.tokens") + std::strlen("tokenizer.ggml.tokens");
  PutU32(b, arr + 4, 9);  // array of arrays
  EXPECT_EQ(Code(b), GgufErrc::kUnknownValueType);
  b = ValidFile();
  PutU32(b, Locate(b, "tensor_alpha", 2).type, 19);  // an IQ type we do not know
  EXPECT_EQ(Code(b), GgufErrc::kUnknownTensorType);
  b = ValidFile();
  PutU32(b, Locate(b, "tensor_alpha", 2).type, 1000);
  EXPECT_EQ(Code(b), GgufErrc::kUnknownTensorType);
}

TEST(GgufCorruptTest, DuplicatesAndBadValues) {
  GgufWriter w;
  w.AddString("k", "a");
  w.AddString("k", "b");
  EXPECT_EQ(Code(w.Finish()), GgufErrc::kDuplicateKey);
  GgufWriter t;
  t.AddTensor("x", GgmlType::kF32, {4}, Bytes(16, 0));
  t.AddTensor("x", GgmlType::kF32, {4}, Bytes(16, 0));
  EXPECT_EQ(Code(t.Finish()), GgufErrc::kDuplicateTensor);
  Bytes b = ValidFile();
  b[Find(b, "flag") + 4 + 4] = 2;  // bool value after its type field
  EXPECT_EQ(Code(b), GgufErrc::kBadValue);
  b = ValidFile();
  b[Find(b, "general.architecture")] = 0xff;  // invalid UTF-8 in a key
  EXPECT_EQ(Code(b), GgufErrc::kBadString);
}

TEST(GgufCorruptTest, AlignmentKey) {
  for (uint32_t a : {0u, 3u, 48u}) {
    GgufWriter w;
    w.AddU32("general.alignment", a);
    EXPECT_EQ(Code(w.Finish()), GgufErrc::kBadAlignment) << a;
  }
  GgufWriter w;
  w.AddU64("general.alignment", 32);  // must be u32
  EXPECT_EQ(Code(w.Finish()), GgufErrc::kBadAlignment);
}

TEST(GgufCorruptTest, TensorPlacement) {
  Bytes b = ValidFile();
  PutU64(b, Locate(b, "tensor_beta", 1).offset, 1);
  EXPECT_EQ(Code(b), GgufErrc::kMisaligned);
  b = ValidFile();
  PutU64(b, Locate(b, "tensor_beta", 1).offset, 32 * 1000);
  EXPECT_EQ(Code(b), GgufErrc::kOutOfBounds);
  b = ValidFile();
  PutU64(b, Locate(b, "tensor_beta", 1).offset, ~uint64_t{0} - 31);  // aligned, overflows
  EXPECT_EQ(Code(b), GgufErrc::kOutOfBounds);
  b = ValidFile();
  PutU64(b, Locate(b, "tensor_beta", 1).offset, 32);  // inside tensor_alpha [0, 64)
  EXPECT_EQ(Code(b), GgufErrc::kOutOfBounds);
}

TEST(GgufCorruptTest, TensorShapes) {
  Bytes b = ValidFile();
  PutU32(b, Locate(b, "tensor_alpha", 2).n_dims, 5);
  EXPECT_EQ(Code(b), GgufErrc::kBadShape);
  b = ValidFile();
  PutU32(b, Locate(b, "tensor_alpha", 2).n_dims, 0);
  EXPECT_EQ(Code(b), GgufErrc::kBadShape);
  b = ValidFile();
  PutU64(b, Locate(b, "tensor_alpha", 2).dim0, 0);
  EXPECT_EQ(Code(b), GgufErrc::kBadShape);
  b = ValidFile();
  auto at = Locate(b, "tensor_alpha", 2);
  PutU64(b, at.dim0, uint64_t{1} << 40);
  PutU64(b, at.dim0 + 8, uint64_t{1} << 40);  // product overflows int64
  EXPECT_EQ(Code(b), GgufErrc::kBadShape);
  b = ValidFile();
  PutU64(b, Locate(b, "tensor_beta", 1).dim0, 33);  // not a multiple of the Q8_0 block (32)
  EXPECT_EQ(Code(b), GgufErrc::kBadShape);
  b = ValidFile();
  PutU64(b, Locate(b, "tensor_alpha", 2).dim0, uint64_t{1} << 40);  // huge but representable
  EXPECT_EQ(Code(b), GgufErrc::kOutOfBounds);
}

TEST(GgufCorruptTest, MissingFileIsIo) {
  EXPECT_EQ(GgufFile::Open("/nonexistent/model.gguf").code(), GgufErrc::kIo);
  EXPECT_EQ(GgufFile::Open("/").code(), GgufErrc::kIo);
}

}  // namespace
}  // namespace cllm::engine
