// Attack: the host controls the disk and serves the plain GGUF model's bytes
// twice: the real model when cllm-server hashes it (the digest goes into the
// evidence clients pin), other bytes when the engine reads it (a second open,
// or pages of a mapping evicted and read back). Before the fix the server
// hashed by path and then mmap'd the file, so the attested digest named bytes
// it did not serve. Now the file is read once into locked anonymous memory and
// hashed there (crypto/hashed_file.h, apps/cllm-server/boot.h LoadPlainModel).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/cllm-server/boot.h"
#include "attestation/sim/sim_attester.h"
#include "base/encoding.h"
#include "client/client.h"
#include "crypto/digest.h"
#include "crypto/hashed_file.h"
#include "engine/gguf/mapped_file.h"
#include "support/process.h"
#include "support/shared_data.h"

namespace cllm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class ServedBytesAttackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cllm_served_bytes_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Overwrite replaces bytes [from, size) of `path` in place (same inode, same
  // size): what a host does to a file the guest has open or mapped.
  static void Overwrite(const fs::path& path, uint64_t from, uint8_t value) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(from));
    const std::string junk(static_cast<size_t>(fs::file_size(path) - from), static_cast<char>(value));
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  static std::array<uint8_t, 32> Digest(ByteSpan b) { return crypto::Sha256(b); }
  std::string SimKey() const {
    std::ofstream(dir_ / "plat.key") << attestation::sim::GenerateSimPlatformKey()->ToPem();
    return (dir_ / "plat.key").string();
  }

  fs::path dir_;
};

// The old sequence, kept as the attack's reference: hash by path, then map.
// A change in between is served under the old digest.
TEST_F(ServedBytesAttackTest, HashThenMapServesOtherBytesThanTheDigest) {
  const fs::path f = dir_ / "m.bin";
  std::ofstream(f, std::ios::binary) << std::string(1 << 20, 'a');
  auto digest = crypto::Sha256File(f);
  ASSERT_TRUE(digest.ok());
  Overwrite(f, 4096, 'b');  // between the hash and the open
  auto mapped = engine::MapFile(f);
  ASSERT_TRUE(mapped.ok());
  EXPECT_NE(Digest((*mapped)->bytes()), *digest) << "the attack this file guards against";
}

// The fix: whatever the file does during or after the read, the digest is of
// the buffer, and the buffer never changes again.
TEST_F(ServedBytesAttackTest, ReadOnceDigestIsOfTheBytesInMemoryWhileTheFileChanges) {
  const fs::path f = dir_ / "m.bin";
  const uint64_t size = (uint64_t{8} << 20) * 2 + 12345;  // three read pieces
  std::ofstream(f, std::ios::binary) << std::string(size, 'a');
  int calls = 0;
  auto read = crypto::ReadFileHashed(f, [&](uint64_t done, uint64_t total) {
    EXPECT_EQ(total, size);
    if (++calls == 1) Overwrite(f, done, 'b');  // change what is still to be read
  });
  ASSERT_TRUE(read.ok()) << read.detail();
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(Digest(read->bytes.span()), read->sha256);
  Overwrite(f, 0, 'c');  // after the read: the buffer is not backed by the file
  EXPECT_EQ(Digest(read->bytes.span()), read->sha256);
  EXPECT_EQ(read->bytes.span()[0], 'a');
  EXPECT_TRUE(read->bytes.excluded_from_dumps());
}

TEST_F(ServedBytesAttackTest, ReadOnceRefusesAFileThatShrinksWhileRead) {
  const fs::path f = dir_ / "m.bin";
  std::ofstream(f, std::ios::binary) << std::string((8 << 20) + 100, 'a');
  auto read = crypto::ReadFileHashed(f, [&](uint64_t, uint64_t) { fs::resize_file(f, 10); });
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.code(), Errc::kIo);
  EXPECT_NE(read.detail().find("changed while being read"), std::string::npos) << read.detail();
}

// The server's loader: the engine's bytes are the digested bytes, even when
// the host rewrites the model's weights during and after loading. The engine
// repacks weight matrices in place into its kernels' layouts (AVX-512), so
// the bytes it computes with are checked by rebuilding the file from them
// (Model::FileImage unpacks every repacked matrix): that image must be
// exactly the digested file, and the repacking must leave everything else.
TEST_F(ServedBytesAttackTest, LoadPlainModelServesExactlyTheDigestedBytes) {
  CLLM_SHARED_PATH(model, "models/qwen3-tiny-random-q8_0.gguf");
  const fs::path copy = dir_ / "model.gguf";
  fs::copy_file(model, copy);
  bool changed = false;  // the rest of the file, once, after the first piece
  auto loaded = app::LoadPlainModel(copy, [&](uint64_t done, uint64_t total) {
    if (!changed && done < total) Overwrite(copy, done, 0x7f);
    changed = true;
  });
  ASSERT_TRUE(loaded.ok()) << loaded.detail();
  EXPECT_EQ(Digest(loaded->model->FileImage()), loaded->digest);
  Overwrite(copy, 4096, 0);
  EXPECT_EQ(Digest(loaded->model->FileImage()), loaded->digest);
  EXPECT_NE(*crypto::Sha256File(copy), loaded->digest);
  // without repacking (another CPU, CLLM_REPACK=0) the buffer is the file itself
  const bool repacked = loaded->model->packed_bytes() > 0;
  EXPECT_EQ(Digest(loaded->model->file().bytes()) == loaded->digest, !repacked);
}

// A sealed model whose file is swapped after its header was inspected (and
// its digest attested) is refused before anything is decrypted.
TEST_F(ServedBytesAttackTest, SealedModelSwappedAfterInspectionIsRefused) {
  CLLM_SHARED_PATH(model, "models/stories260K-q4_0.gguf");
  SecretBytes key(Bytes(32, 7));
  crypto::SealOptions so;
  so.key_id = "model-key";
  auto sealed = crypto::SealFile(model, dir_ / "m.cllmseal", key.span(), so);
  ASSERT_TRUE(sealed.ok()) << sealed.detail();
  auto inspected = app::InspectModel(dir_ / "m.cllmseal");
  ASSERT_TRUE(inspected.ok());
  std::array<uint8_t, 32> other = inspected->digest;
  other[0] ^= 1;  // as if the attested header named another model
  auto m = app::LoadSealedModel(dir_ / "m.cllmseal", key.span(), other);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.detail().find("digest_mismatch"), std::string::npos) << m.detail();
  EXPECT_TRUE(app::LoadSealedModel(dir_ / "m.cllmseal", key.span(), inspected->digest).ok());
}

// The whole server: after it is ready, the host overwrites the model file's
// weights in place. The ready file's digest is the original file's, and
// generation is unchanged (an mmap'd model would now compute with the new
// bytes: old code answered differently here, or crashed).
TEST_F(ServedBytesAttackTest, ServerKeepsServingTheAttestedBytesAfterTheFileIsOverwritten) {
  CLLM_SHARED_PATH(model, "models/stories260K-f16.gguf");
  const fs::path copy = dir_ / "model.gguf";
  fs::copy_file(model, copy);
  const auto original = *crypto::Sha256File(copy);
  testing::Process server({testing::Bin("cllm-server"), "-m", copy.string(), "--tee", "sim", "--sim-key",
                           SimKey(), "--listen", "127.0.0.1:0", "--debug-listen", "127.0.0.1:0",
                           "--allow-anonymous", "--ready-file", (dir_ / "ready.json").string(), "--log-level",
                           "warn"},
                          dir_ / "server");
  const json ready = testing::WaitReady(server, dir_ / "ready.json");
  ASSERT_FALSE(ready.is_null()) << server.err();
  EXPECT_EQ(ready["model_digest"], HexEncode(original));
  EXPECT_EQ(ready["model_loading"], "read-once");

  auto complete = [&]() -> std::string {
    auto c = client::ConnectPlain(client::Url{false, "127.0.0.1", ready["debug_port"].get<uint16_t>(), ""});
    if (!c.ok()) return "connect: " + c.detail();
    json body = {{"prompt", "Once upon a time"}, {"max_tokens", 24}, {"temperature", 0}};
    auto r = (*c)->Request("POST", "/v1/completions", body.dump(), {});
    if (!r.ok()) return "request: " + r.detail();
    return r->status == 200 ? json::parse(r->body)["choices"][0]["text"].get<std::string>() : r->body;
  };
  const std::string before = complete();
  ASSERT_FALSE(before.empty());
  Overwrite(copy, 64 << 10, 0x3c);  // the weights, past the GGUF header
  ASSERT_NE(*crypto::Sha256File(copy), original);
  EXPECT_EQ(complete(), before);
  EXPECT_TRUE(server.running()) << server.err();
}

}  // namespace
}  // namespace cllm
