#include "crypto/sealed_model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "base/file.h"
#include "crypto/random.h"

namespace cllm::crypto {
namespace {

namespace fs = std::filesystem;

class SealedModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cllm_seal_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    key_ = RandomBytes(32);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Seals `size` random bytes with 4 KiB chunks; returns (plaintext, sealed bytes).
  std::pair<Bytes, Bytes> Make(size_t size, const std::string& name = "m") {
    Bytes plain = RandomBytes(size);
    EXPECT_TRUE(WriteFileAtomic(dir_ / (name + ".gguf"), plain).ok());
    SealOptions opts{.key_id = "model-key-1", .model_name = "tiny", .chunk_size = kMinChunkSize,
                     .progress = nullptr};
    auto h = SealFile(dir_ / (name + ".gguf"), dir_ / (name + ".cllm"), key_, opts);
    EXPECT_TRUE(h.ok()) << h.detail();
    return {plain, ReadFile(dir_ / (name + ".cllm")).value()};
  }

  fs::path dir_;
  Bytes key_;
};

TEST_F(SealedModelTest, RoundTripFromFileAndMemory) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{4096}, size_t{4096 * 3 + 123}}) {
    auto [plain, sealed] = Make(size);
    auto h = ParseSealedHeader(sealed);
    ASSERT_TRUE(h.ok()) << h.detail();
    EXPECT_EQ(h->plaintext_size, size);
    EXPECT_EQ(h->key_id, "model-key-1");
    EXPECT_EQ(h->model_name, "tiny");
    EXPECT_EQ(sealed.size(), h->SealedSize());
    auto mem = Unseal(sealed, key_);
    ASSERT_TRUE(mem.ok()) << mem.detail();
    EXPECT_EQ(Bytes(mem->span().begin(), mem->span().end()), plain);
    std::vector<uint64_t> seen;
    auto file = UnsealFile(dir_ / "m.cllm", key_, [&](uint64_t done, uint64_t) { seen.push_back(done); });
    ASSERT_TRUE(file.ok()) << file.detail();
    EXPECT_EQ(Bytes(file->span().begin(), file->span().end()), plain);
    EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
    if (!seen.empty()) {
      EXPECT_EQ(seen.back(), size);
    }
  }
}

TEST_F(SealedModelTest, WrongKeyFailsAuthentication) {
  auto [plain, sealed] = Make(10000);
  EXPECT_EQ(Unseal(sealed, RandomBytes(32)).code(), SealErrc::kAuthFailed);
  EXPECT_EQ(Unseal(sealed, RandomBytes(16)).code(), SealErrc::kInvalidArgument);
}

TEST_F(SealedModelTest, EveryFlippedByteIsRejected) {
  auto [plain, sealed] = Make(4096 + 100);
  // Sampling stride keeps this fast; header bytes are all covered.
  auto h = ParseSealedHeader(sealed).value();
  for (size_t i = 0; i < sealed.size(); i += (i < h.header_size ? 1 : 37)) {
    Bytes bad = sealed;
    bad[i] ^= 0x40;
    auto r = Unseal(bad, key_);
    ASSERT_FALSE(r.ok()) << "flip at " << i;
    EXPECT_TRUE(r.code() == SealErrc::kAuthFailed || r.code() == SealErrc::kMalformed ||
                r.code() == SealErrc::kTruncated || r.code() == SealErrc::kUnsupportedVersion)
        << i << ": " << SealErrcName(r.code());
  }
}

TEST_F(SealedModelTest, TruncationAndDroppedChunksAreRejected) {
  auto [plain, sealed] = Make(4096 * 3);
  auto h = ParseSealedHeader(sealed).value();
  EXPECT_EQ(Unseal(ByteSpan(sealed).first(sealed.size() - 1), key_).code(), SealErrc::kTruncated);
  // Drop the whole last chunk and shrink the claimed size accordingly: the
  // header changes, so its digest, the key and every AAD change.
  EXPECT_EQ(Unseal(ByteSpan(sealed).first(sealed.size() - (4096 + 16)), key_).code(), SealErrc::kTruncated);
  Bytes extended = sealed;
  extended.push_back(0);
  EXPECT_EQ(Unseal(extended, key_).code(), SealErrc::kTruncated);
  EXPECT_EQ(Unseal(ByteSpan(sealed).first(h.header_size - 1), key_).code(), SealErrc::kMalformed);
}

TEST_F(SealedModelTest, ReorderedOrTransplantedChunksAreRejected) {
  auto [plain_a, a] = Make(4096 * 3, "a");
  auto [plain_b, b] = Make(4096 * 3, "b");
  size_t hs = ParseSealedHeader(a).value().header_size;
  size_t cs = 4096 + 16;
  Bytes swapped = a;  // chunks 0 and 1 exchanged
  std::copy(a.begin() + hs + cs, a.begin() + hs + 2 * cs, swapped.begin() + hs);
  std::copy(a.begin() + hs, a.begin() + hs + cs, swapped.begin() + hs + cs);
  EXPECT_EQ(Unseal(swapped, key_).code(), SealErrc::kAuthFailed);
  Bytes transplanted = a;  // chunk 1 of b (same key, same index) into a
  std::copy(b.begin() + hs + cs, b.begin() + hs + 2 * cs, transplanted.begin() + hs + cs);
  EXPECT_EQ(Unseal(transplanted, key_).code(), SealErrc::kAuthFailed);
}

TEST_F(SealedModelTest, RejectsBadOptionsAndMissingFiles) {
  ASSERT_TRUE(WriteFileAtomic(dir_ / "x", Bytes{1, 2, 3}).ok());
  SealOptions opts{.key_id = "", .model_name = "", .chunk_size = kMinChunkSize, .progress = nullptr};
  EXPECT_EQ(SealFile(dir_ / "x", dir_ / "y", key_, opts).code(), SealErrc::kInvalidArgument);
  opts.key_id = "ok";
  opts.chunk_size = 100;
  EXPECT_EQ(SealFile(dir_ / "x", dir_ / "y", key_, opts).code(), SealErrc::kInvalidArgument);
  opts.chunk_size = kMinChunkSize;
  EXPECT_EQ(SealFile(dir_ / "missing", dir_ / "y", key_, opts).code(), SealErrc::kIo);
  EXPECT_EQ(SealFile(dir_ / "x", dir_ / "y", Bytes(5, 0), opts).code(), SealErrc::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir_ / "y"));
  EXPECT_FALSE(fs::exists(dir_ / "y.partial"));
  EXPECT_EQ(UnsealFile(dir_ / "missing", key_).code(), SealErrc::kIo);
  EXPECT_EQ(UnsealFile(dir_ / "x", key_).code(), SealErrc::kMalformed);
}

// The header's model name is UTF-8 (it reaches the evidence's claims and
// JSON before anything is decrypted): sealing refuses another, and so does
// reading a header someone altered (found by review).
TEST_F(SealedModelTest, TheModelNameIsUtf8) {
  ASSERT_TRUE(WriteFileAtomic(dir_ / "x", Bytes(100, 1)).ok());
  SealOptions opts{.key_id = "k", .model_name = "ti\xffy", .chunk_size = kMinChunkSize, .progress = nullptr};
  EXPECT_EQ(SealFile(dir_ / "x", dir_ / "y", key_, opts).code(), SealErrc::kInvalidArgument);
  auto [plain, sealed] = Make(100);
  const std::string tiny = "tiny";
  auto at = std::search(sealed.begin(), sealed.end(), tiny.begin(), tiny.end());
  ASSERT_NE(at, sealed.end());
  ASSERT_TRUE(ParseSealedHeader(sealed).ok());
  at[2] = 0xff;
  auto h = ParseSealedHeader(sealed);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.code(), SealErrc::kMalformed);
}

}  // namespace
}  // namespace cllm::crypto
