#include "engine/gguf/gguf_stream_writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "base/file.h"

namespace cllm::engine {
namespace {

std::filesystem::path TempPath(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("cllm_stream_" + std::to_string(::getpid()) + "_" + name);
}

// Streaming the same tensors gives exactly the bytes of the in-memory writer.
TEST(GgufStreamWriterTest, MatchesInMemoryWriter) {
  const std::vector<uint8_t> a(3 * 4, 0x11), b(34 * 2, 0x22);  // F32[3], Q8_0 [32, 2]
  GgufWriter mem(64), decl(64);
  for (GgufWriter* w : {&mem, &decl}) w->AddString("general.name", "t");
  mem.AddTensor("a", GgmlType::kF32, {3}, a);
  mem.AddTensor("b", GgmlType::kQ8_0, {32, 2}, b);
  decl.DeclareTensor("a", GgmlType::kF32, {3});
  decl.DeclareTensor("b", GgmlType::kQ8_0, {32, 2});
  const auto path = TempPath("same.gguf");
  auto w = GgufStreamWriter::Create(path, decl).value();
  ASSERT_TRUE(w->Write(a).ok());
  ASSERT_TRUE(w->EndTensor().ok());
  ASSERT_TRUE(w->Write(ByteSpan(b).subspan(0, 34)).ok());  // a tensor may come in pieces
  ASSERT_TRUE(w->Write(ByteSpan(b).subspan(34)).ok());
  ASSERT_TRUE(w->EndTensor().ok());
  ASSERT_TRUE(w->Commit().ok());
  EXPECT_TRUE(ReadFile(path).value() == mem.Finish());
  EXPECT_TRUE(GgufFile::Open(path).ok());
  std::filesystem::remove(path);
}

TEST(GgufStreamWriterTest, RejectsWrongSizesAndLeavesNoPartialFile) {
  GgufWriter decl;
  decl.DeclareTensor("a", GgmlType::kF32, {4});
  const auto path = TempPath("bad.gguf");
  {
    auto w = GgufStreamWriter::Create(path, decl).value();
    const std::vector<uint8_t> too_many(20);
    auto st = w->Write(too_many);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.code(), GgufErrc::kOutOfBounds);
    ASSERT_TRUE(w->Write(ByteSpan(too_many).subspan(0, 8)).ok());
    auto end = w->EndTensor();
    ASSERT_FALSE(end.ok());
    EXPECT_EQ(end.code(), GgufErrc::kTruncated);
    auto commit = w->Commit();
    ASSERT_FALSE(commit.ok());
    EXPECT_EQ(commit.code(), GgufErrc::kTruncated);
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path.string() + ".tmp"));
}

}  // namespace
}  // namespace cllm::engine
