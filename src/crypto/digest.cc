#include "crypto/digest.h"

#include <fstream>
#include <vector>

#include "base/check.h"
#include "crypto/ossl.h"

namespace cllm::crypto {

namespace ossl {
const EVP_MD* Md(int alg) {
  switch (static_cast<HashAlg>(alg)) {
    case HashAlg::kSha256: return EVP_sha256();
    case HashAlg::kSha384: return EVP_sha384();
    case HashAlg::kSha512: return EVP_sha512();
    case HashAlg::kSm3: return EVP_sm3();
  }
  return nullptr;
}
}  // namespace ossl

namespace {
const EVP_MD* MdOf(HashAlg alg) {
  const EVP_MD* md = ossl::Md(static_cast<int>(alg));
  CLLM_CHECK(md != nullptr);
  return md;
}
}  // namespace

size_t DigestSize(HashAlg alg) {
  switch (alg) {
    case HashAlg::kSha256: return 32;
    case HashAlg::kSha384: return 48;
    case HashAlg::kSha512: return 64;
    case HashAlg::kSm3: return 32;
  }
  return 0;
}

const char* HashAlgName(HashAlg alg) {
  switch (alg) {
    case HashAlg::kSha256: return "SHA-256";
    case HashAlg::kSha384: return "SHA-384";
    case HashAlg::kSha512: return "SHA-512";
    case HashAlg::kSm3: return "SM3";
  }
  return "unknown";
}

Bytes Digest(HashAlg alg, ByteSpan data) {
  Bytes out(DigestSize(alg));
  unsigned int len = 0;
  CLLM_CHECK(EVP_Digest(data.data(), data.size(), out.data(), &len, MdOf(alg), nullptr) == 1);
  CLLM_CHECK(len == out.size());
  return out;
}

template <size_t N>
static std::array<uint8_t, N> FixedDigest(HashAlg alg, ByteSpan data) {
  std::array<uint8_t, N> out;
  unsigned int len = 0;
  CLLM_CHECK(EVP_Digest(data.data(), data.size(), out.data(), &len, MdOf(alg), nullptr) == 1);
  CLLM_CHECK(len == N);
  return out;
}

std::array<uint8_t, 32> Sha256(ByteSpan d) { return FixedDigest<32>(HashAlg::kSha256, d); }
std::array<uint8_t, 48> Sha384(ByteSpan d) { return FixedDigest<48>(HashAlg::kSha384, d); }
std::array<uint8_t, 64> Sha512(ByteSpan d) { return FixedDigest<64>(HashAlg::kSha512, d); }
std::array<uint8_t, 32> Sm3(ByteSpan d) { return FixedDigest<32>(HashAlg::kSm3, d); }

struct Hasher::Impl {
  ossl::MdCtxPtr ctx{EVP_MD_CTX_new()};
};

Hasher::Hasher(HashAlg alg) : alg_(alg), impl_(std::make_unique<Impl>()) {
  CLLM_CHECK(impl_->ctx && EVP_DigestInit_ex(impl_->ctx.get(), MdOf(alg), nullptr) == 1);
}
Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::Update(ByteSpan data) {
  CLLM_CHECK(EVP_DigestUpdate(impl_->ctx.get(), data.data(), data.size()) == 1);
}

Bytes Hasher::Finish() {
  Bytes out(DigestSize(alg_));
  unsigned int len = 0;
  CLLM_CHECK(EVP_DigestFinal_ex(impl_->ctx.get(), out.data(), &len) == 1);
  CLLM_CHECK(EVP_DigestInit_ex(impl_->ctx.get(), MdOf(alg_), nullptr) == 1);
  return out;
}

}  // namespace cllm::crypto

namespace cllm::crypto {

CryptoResult<std::array<uint8_t, 32>> Sha256File(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError(CryptoErrc::kInvalidArgument, "cannot open " + path.string());
  Hasher h(HashAlg::kSha256);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    auto n = static_cast<size_t>(in.gcount());
    if (n > 0) h.Update(ByteSpan(reinterpret_cast<const uint8_t*>(buf.data()), n));
  }
  if (in.bad()) return MakeError(CryptoErrc::kInvalidArgument, "cannot read " + path.string());
  Bytes d = h.Finish();
  std::array<uint8_t, 32> out{};
  std::copy(d.begin(), d.end(), out.begin());
  return out;
}

}  // namespace cllm::crypto
