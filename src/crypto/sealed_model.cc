#include "crypto/sealed_model.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/byte_reader.h"
#include "base/secure.h"
#include "base/utf8.h"
#include "crypto/aead.h"
#include "crypto/digest.h"
#include "crypto/kdf.h"
#include "crypto/random.h"

namespace cllm::crypto {
namespace {

constexpr char kMagic[] = "CLLMSEAL";
constexpr size_t kMagicLen = 8;
constexpr uint16_t kVersion = 1;
constexpr size_t kMaxKeyId = 64;
constexpr size_t kMaxName = 256;
constexpr size_t kMaxHeader = 1024;

Error<SealErrc> Err(SealErrc code, std::string detail) { return MakeError(code, std::move(detail)); }

Error<SealErrc> OsErr(const std::string& what, const std::filesystem::path& p) {
  return Err(SealErrc::kIo, what + " " + p.string() + ": " + std::strerror(errno));
}

// ReadOnlyFd owns a descriptor opened for reading.
struct ReadOnlyFd {
  int fd;
  explicit ReadOnlyFd(const std::filesystem::path& p) : fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC)) {}
  ~ReadOnlyFd() {
    if (fd >= 0) ::close(fd);
  }
  ReadOnlyFd(const ReadOnlyFd&) = delete;
  ReadOnlyFd& operator=(const ReadOnlyFd&) = delete;
};

bool ValidKeyId(const std::string& id) {
  if (id.empty() || id.size() > kMaxKeyId) return false;
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

Bytes SerializeHeader(const SealedHeader& h) {
  Bytes out(kMagic, kMagic + kMagicLen);
  out.push_back(static_cast<uint8_t>(h.version >> 8));
  out.push_back(static_cast<uint8_t>(h.version));
  size_t size_at = out.size();
  PutU32Be(out, 0);  // header size, patched below
  PutU32Be(out, h.chunk_size);
  PutU64Be(out, h.plaintext_size);
  out.insert(out.end(), h.plaintext_digest.begin(), h.plaintext_digest.end());
  out.insert(out.end(), h.file_id.begin(), h.file_id.end());
  out.push_back(static_cast<uint8_t>(h.key_id.size()));
  out.insert(out.end(), h.key_id.begin(), h.key_id.end());
  out.push_back(static_cast<uint8_t>(h.model_name.size() >> 8));
  out.push_back(static_cast<uint8_t>(h.model_name.size()));
  out.insert(out.end(), h.model_name.begin(), h.model_name.end());
  uint32_t n = static_cast<uint32_t>(out.size());
  for (int i = 0; i < 4; ++i) out[size_at + i] = static_cast<uint8_t>(n >> (24 - 8 * i));
  return out;
}

// FileKey derives the per-file AES key; binding the header digest means any
// header change yields a different key.
SealResult<SecretBytes> FileKey(ByteSpan key, const SealedHeader& h) {
  if (key.size() != kAes256KeySize) {
    return Err(SealErrc::kInvalidArgument, "model key must be 32 bytes, got " + std::to_string(key.size()));
  }
  Bytes info = ToBytes("cllm-sealed-model-v1");
  info.insert(info.end(), h.header_digest.begin(), h.header_digest.end());
  auto k = Hkdf(HashAlg::kSha256, key, h.file_id, info, kAes256KeySize);
  if (!k.ok()) return Err(SealErrc::kInvalidArgument, k.detail());
  return std::move(k).value();
}

std::array<uint8_t, 12> ChunkNonce(uint64_t index) {
  std::array<uint8_t, 12> n{};
  for (int i = 0; i < 8; ++i) n[4 + i] = static_cast<uint8_t>(index >> (56 - 8 * i));
  return n;
}

Bytes ChunkAad(const SealedHeader& h, uint64_t index, bool last) {
  static constexpr char kDomain[] = "cllm-chunk";
  // Sized up front: growing a 10-byte vector by insert trips a GCC 12
  // -Warray-bounds false positive at -O3.
  Bytes aad;
  aad.reserve(sizeof(kDomain) - 1 + h.header_digest.size() + 9);
  aad.assign(kDomain, kDomain + sizeof(kDomain) - 1);
  aad.insert(aad.end(), h.header_digest.begin(), h.header_digest.end());
  PutU64Be(aad, index);
  aad.push_back(last ? 1 : 0);
  return aad;
}

uint64_t ChunkPlainSize(const SealedHeader& h, uint64_t index) {
  uint64_t start = index * h.chunk_size;
  return std::min<uint64_t>(h.chunk_size, h.plaintext_size - start);
}

// ReadChunk fills `out` with the sealed bytes of one chunk.
using ReadChunk = std::function<SealStatus(uint64_t offset, std::span<uint8_t> out)>;

SealResult<LockedBuffer> UnsealWith(const SealedHeader& h, ByteSpan key, const ReadChunk& read,
                                    const SealProgress& progress) {
  CLLM_ASSIGN_OR_RETURN(SecretBytes file_key, FileKey(key, h));
  auto plain = LockedBuffer::Allocate(static_cast<size_t>(h.plaintext_size));
  if (!plain.ok()) return Err(SealErrc::kIo, plain.detail());
  Bytes sealed_chunk;
  Hasher hasher(HashAlg::kSha256);
  uint64_t offset = h.header_size;
  const uint64_t n = h.num_chunks();
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t plain_size = ChunkPlainSize(h, i);
    sealed_chunk.resize(static_cast<size_t>(plain_size + kGcmTagSize));
    CLLM_RETURN_IF_ERROR(read(offset, sealed_chunk));
    auto out = plain->mutable_span().subspan(static_cast<size_t>(i * h.chunk_size),
                                             static_cast<size_t>(plain_size));
    auto nonce = ChunkNonce(i);
    auto st = Aes256GcmOpenInto(file_key.span(), nonce, ChunkAad(h, i, i + 1 == n), sealed_chunk, out);
    if (!st.ok()) {
      // `plain` is wiped by its destructor; no partial plaintext escapes.
      return Err(SealErrc::kAuthFailed, "chunk " + std::to_string(i) + " of " + std::to_string(n) +
                                            " failed authentication: wrong key, or the file was altered");
    }
    hasher.Update(out);
    offset += sealed_chunk.size();
    if (progress) progress(i * h.chunk_size + plain_size, h.plaintext_size);
  }
  Bytes digest = hasher.Finish();
  if (!ConstantTimeEqual(digest, h.plaintext_digest)) {
    return Err(SealErrc::kDigestMismatch, "decrypted model does not match the sealed plaintext digest");
  }
  return std::move(plain).value();
}

}  // namespace

const char* SealErrcName(SealErrc code) {
  switch (code) {
    case SealErrc::kIo: return "io";
    case SealErrc::kInvalidArgument: return "invalid_argument";
    case SealErrc::kMalformed: return "malformed";
    case SealErrc::kUnsupportedVersion: return "unsupported_version";
    case SealErrc::kTruncated: return "truncated";
    case SealErrc::kAuthFailed: return "auth_failed";
    case SealErrc::kDigestMismatch: return "digest_mismatch";
  }
  return "unknown";
}

uint64_t SealedHeader::num_chunks() const {
  if (chunk_size == 0) return 0;
  return plaintext_size == 0 ? 1 : (plaintext_size + chunk_size - 1) / chunk_size;
}

uint64_t SealedHeader::SealedSize() const {
  uint64_t tags = 0, total = 0;
  if (!CheckedMul(num_chunks(), kGcmTagSize, &tags) || !CheckedAdd(header_size, plaintext_size, &total) ||
      !CheckedAdd(total, tags, &total)) {
    return 0;
  }
  return total;
}

SealResult<SealedHeader> ParseSealedHeader(ByteSpan data) {
  ByteReader r(data);
  auto magic = r.Bytes(kMagicLen);
  if (!magic.ok() || std::memcmp(magic->data(), kMagic, kMagicLen) != 0) {
    return Err(SealErrc::kMalformed, "not a sealed cllm model (bad magic)");
  }
  SealedHeader h;
  auto version = r.U16Be();
  auto header_size = r.U32Be();
  if (!version.ok() || !header_size.ok()) return Err(SealErrc::kMalformed, "truncated header");
  if (*version != kVersion) {
    return Err(SealErrc::kUnsupportedVersion, "sealed format version " + std::to_string(*version) +
                                                  " (this build reads version 1)");
  }
  if (*header_size > kMaxHeader || *header_size > data.size()) {
    return Err(SealErrc::kMalformed, "header size " + std::to_string(*header_size) + " out of range");
  }
  h.version = *version;
  h.header_size = *header_size;
  auto chunk = r.U32Be();
  auto size = r.U64Be();
  auto digest = r.Array<32>();
  auto file_id = r.Array<16>();
  auto key_id_len = r.U8();
  if (!chunk.ok() || !size.ok() || !digest.ok() || !file_id.ok() || !key_id_len.ok()) {
    return Err(SealErrc::kMalformed, "truncated header");
  }
  auto key_id = r.String(*key_id_len);
  auto name_len = key_id.ok() ? r.U16Be() : Result<uint16_t>(MakeError(Errc::kOutOfRange, ""));
  auto name = name_len.ok() ? r.String(*name_len) : Result<std::string_view>(MakeError(Errc::kOutOfRange, ""));
  if (!name.ok()) return Err(SealErrc::kMalformed, "truncated header");
  if (r.offset() != h.header_size) {
    return Err(SealErrc::kMalformed, "header fields end at " + std::to_string(r.offset()) +
                                         " but header size says " + std::to_string(h.header_size));
  }
  h.chunk_size = *chunk;
  h.plaintext_size = *size;
  h.plaintext_digest = *digest;
  h.file_id = *file_id;
  h.key_id = std::string(*key_id);
  h.model_name = std::string(*name);
  if (h.chunk_size < kMinChunkSize || h.chunk_size > kMaxChunkSize) {
    return Err(SealErrc::kMalformed, "chunk size " + std::to_string(h.chunk_size) + " out of range");
  }
  if (!ValidKeyId(h.key_id)) return Err(SealErrc::kMalformed, "invalid key id");
  if (h.model_name.size() > kMaxName || !IsValidUtf8(h.model_name)) {
    return Err(SealErrc::kMalformed, "model name too long or not UTF-8");
  }
  if (h.SealedSize() == 0) return Err(SealErrc::kMalformed, "plaintext size overflows");
  h.header_digest = Sha256(data.first(h.header_size));
  return h;
}

SealResult<SealedHeader> SealFile(const std::filesystem::path& in, const std::filesystem::path& out,
                                  ByteSpan key, const SealOptions& options) {
  if (!ValidKeyId(options.key_id)) {
    return Err(SealErrc::kInvalidArgument, "key id must be 1-64 printable ASCII characters");
  }
  if (options.model_name.size() > kMaxName || !IsValidUtf8(options.model_name)) {
    return Err(SealErrc::kInvalidArgument, "model name too long or not UTF-8");
  }
  if (options.chunk_size < kMinChunkSize || options.chunk_size > kMaxChunkSize) {
    return Err(SealErrc::kInvalidArgument, "chunk size must be between 4 KiB and 64 MiB");
  }
  ReadOnlyFd file(in);
  const int fd = file.fd;
  if (fd < 0) return OsErr("cannot open", in);
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return Err(SealErrc::kIo, in.string() + " is not a regular file");

  SealedHeader h;
  h.chunk_size = options.chunk_size;
  h.plaintext_size = static_cast<uint64_t>(st.st_size);
  h.key_id = options.key_id;
  h.model_name = options.model_name;
  RandomBytes(h.file_id);

  // Pass 1: the plaintext digest goes into the header, which every chunk's
  // key and AAD depend on.
  Bytes buf(h.chunk_size);
  Hasher hasher(HashAlg::kSha256);
  for (uint64_t done = 0; done < h.plaintext_size;) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(done));
    if (n <= 0) return OsErr("cannot read", in);
    hasher.Update(ByteSpan(buf.data(), static_cast<size_t>(n)));
    done += static_cast<uint64_t>(n);
    if (options.progress) options.progress(done / 2, h.plaintext_size);
  }
  Bytes digest = hasher.Finish();
  std::memcpy(h.plaintext_digest.data(), digest.data(), 32);
  Bytes header = SerializeHeader(h);
  h.header_size = header.size();
  h.header_digest = Sha256(header);
  CLLM_ASSIGN_OR_RETURN(SecretBytes file_key, FileKey(key, h));

  // Pass 2: encrypt into a temporary file, renamed over `out` at the end.
  std::filesystem::path tmp = out;
  tmp += ".partial";
  int ofd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (ofd < 0) return OsErr("cannot create", tmp);
  auto fail = [&](Error<SealErrc> e) {
    ::close(ofd);
    ::unlink(tmp.c_str());
    return e;
  };
  auto write_all = [&](ByteSpan b) {
    for (size_t off = 0; off < b.size();) {
      ssize_t n = ::write(ofd, b.data() + off, b.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  };
  if (!write_all(header)) return fail(OsErr("cannot write", tmp));
  const uint64_t n_chunks = h.num_chunks();
  for (uint64_t i = 0; i < n_chunks; ++i) {
    uint64_t plain_size = ChunkPlainSize(h, i);
    ssize_t n = plain_size == 0 ? 0 : ::pread(fd, buf.data(), plain_size, static_cast<off_t>(i * h.chunk_size));
    if (n != static_cast<ssize_t>(plain_size)) return fail(Err(SealErrc::kIo, in.string() + " changed while sealing"));
    auto nonce = ChunkNonce(i);
    auto sealed = Aes256GcmSeal(file_key.span(), nonce, ChunkAad(h, i, i + 1 == n_chunks),
                                ByteSpan(buf.data(), static_cast<size_t>(plain_size)));
    if (!sealed.ok()) return fail(Err(SealErrc::kInvalidArgument, sealed.detail()));
    if (!write_all(*sealed)) return fail(OsErr("cannot write", tmp));
    if (options.progress) options.progress(h.plaintext_size / 2 + (i * h.chunk_size + plain_size) / 2, h.plaintext_size);
  }
  SecureZero(buf.data(), buf.size());
  if (::fsync(ofd) != 0 || ::close(ofd) != 0) {
    ::unlink(tmp.c_str());
    return OsErr("cannot flush", tmp);
  }
  if (::rename(tmp.c_str(), out.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return OsErr("cannot rename onto", out);
  }
  return h;
}

SealResult<LockedBuffer> Unseal(ByteSpan sealed, ByteSpan key) {
  CLLM_ASSIGN_OR_RETURN(SealedHeader h, ParseSealedHeader(sealed));
  if (sealed.size() != h.SealedSize()) {
    return Err(SealErrc::kTruncated, "sealed data is " + std::to_string(sealed.size()) +
                                         " bytes, header says " + std::to_string(h.SealedSize()));
  }
  return UnsealWith(h, key, [&](uint64_t offset, std::span<uint8_t> out) -> SealStatus {
    std::memcpy(out.data(), sealed.data() + offset, out.size());
    return OkStatus();
  }, nullptr);
}

SealResult<LockedBuffer> UnsealFile(const std::filesystem::path& in, ByteSpan key,
                                    const SealProgress& progress,
                                    const std::array<uint8_t, 32>* expect_plaintext_digest) {
  ReadOnlyFd file(in);
  const int fd = file.fd;
  if (fd < 0) return OsErr("cannot open", in);
  uint8_t prefix[kMaxHeader];
  ssize_t got = ::pread(fd, prefix, sizeof prefix, 0);
  if (got < 0) return OsErr("cannot read", in);
  CLLM_ASSIGN_OR_RETURN(SealedHeader h, ParseSealedHeader(ByteSpan(prefix, static_cast<size_t>(got))));
  if (expect_plaintext_digest != nullptr && h.plaintext_digest != *expect_plaintext_digest) {
    return Err(SealErrc::kDigestMismatch, in.string() + ": its header now names another plaintext digest than the "
                                                        "one inspected and attested (the file was replaced)");
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) return OsErr("cannot stat", in);
  if (static_cast<uint64_t>(st.st_size) != h.SealedSize()) {
    return Err(SealErrc::kTruncated, in.string() + " is " + std::to_string(st.st_size) +
                                         " bytes, its header says " + std::to_string(h.SealedSize()));
  }
  return UnsealWith(h, key, [&](uint64_t offset, std::span<uint8_t> out) -> SealStatus {
    for (size_t done = 0; done < out.size();) {
      ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Err(SealErrc::kTruncated, in.string() + " ended early");
      done += static_cast<size_t>(n);
    }
    return OkStatus();
  }, progress);
}

}  // namespace cllm::crypto
