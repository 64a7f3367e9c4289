#include "trust/secret_box.h"

#include <cstdlib>
#include <cstring>
#include <string_view>

#include <unistd.h>

#include "base/encoding.h"
#include "base/check.h"
#include "base/file.h"
#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "crypto/random.h"

namespace cllm::trust {
namespace {

constexpr char kDomain[] = "cllm-trust-secret-v1";
constexpr size_t kNonce = 12;

Bytes Aad(std::string_view label) {
  Bytes aad(kDomain, kDomain + sizeof(kDomain) - 1);
  aad.push_back(static_cast<uint8_t>(label.size() >> 8));
  aad.push_back(static_cast<uint8_t>(label.size()));
  aad.insert(aad.end(), label.begin(), label.end());
  return aad;
}

}  // namespace

Result<SecretBox> SecretBox::FromKey(ByteSpan master_key) {
  if (master_key.size() != 32) return MakeError(Errc::kInvalidArgument, "the master key must be 32 bytes");
  SecretBox box;
  box.key_ = SecretBytes(master_key);
  return box;
}

namespace {

// ScrubMasterKeyVariable overwrites CLLM_TRUST_MASTER_KEY's value where it
// lies (unsetenv alone leaves it in the block /proc/<pid>/environ shows, for
// the process's lifetime) and removes the variable, so no later reader,
// crash dump or child process finds it.
void ScrubMasterKeyVariable() {
  // Every entry of that name (an environment may hold it twice; getenv
  // finds only the first, unsetenv removes them all).
  constexpr std::string_view kName = "CLLM_TRUST_MASTER_KEY=";
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, kName.data(), kName.size()) != 0) continue;
    char* value = *e + kName.size();
    SecureZero(value, std::strlen(value));
  }
  ::unsetenv("CLLM_TRUST_MASTER_KEY");
}

}  // namespace

Result<SecretBox> SecretBox::Load(const std::filesystem::path& file) {
  if (!file.empty()) {
    ScrubMasterKeyVariable();  // set as well, but the file wins: not left behind either
    CLLM_ASSIGN_OR_RETURN(SecretBytes key, ReadHexSecretFile(file, 32));
    return FromKey(key.span());
  }
  const char* env = std::getenv("CLLM_TRUST_MASTER_KEY");
  if (env == nullptr || *env == '\0') {
    return MakeError(Errc::kNotFound, "no master key: give --master-key-file or set CLLM_TRUST_MASTER_KEY");
  }
  auto key = HexDecode(env);
  ScrubMasterKeyVariable();  // read once
  if (!key.ok() || key->size() != 32) {
    if (key.ok()) SecureZero(key->data(), key->size());
    return MakeError(Errc::kParse, "CLLM_TRUST_MASTER_KEY must be 64 hex characters (32 bytes)");
  }
  auto box = FromKey(*key);
  SecureZero(key->data(), key->size());
  return box;
}

Status<Errc> SecretBox::CreateKeyFile(const std::filesystem::path& file) {
  SecretBytes key(32);
  crypto::RandomBytes(key.mutable_span());
  std::string hex = HexEncode(key.span()) + "\n";
  auto st = WriteNewSecretFile(file, ByteSpan(reinterpret_cast<const uint8_t*>(hex.data()), hex.size()));
  SecureZero(hex.data(), hex.size());
  return st;
}

Bytes SecretBox::Seal(std::string_view label, ByteSpan secret) const {
  Bytes nonce(kNonce);
  crypto::RandomBytes(nonce);
  auto sealed = crypto::Aes256GcmSeal(key_.span(), nonce, Aad(label), secret);
  CLLM_CHECK(sealed.ok());  // only fails on a broken invariant (key/nonce size)
  nonce.insert(nonce.end(), sealed->begin(), sealed->end());
  return nonce;
}

Result<SecretBytes> SecretBox::Open(std::string_view label, ByteSpan blob) const {
  if (blob.size() < kNonce + 16) return MakeError(Errc::kParse, "sealed secret \"" + std::string(label) + "\" too short");
  auto out = crypto::Aes256GcmOpen(key_.span(), blob.subspan(0, kNonce), Aad(label), blob.subspan(kNonce));
  if (!out.ok()) {
    return MakeError(Errc::kCrypto, "sealed secret \"" + std::string(label) +
                                        "\" does not open: wrong master key, or the stored value was altered");
  }
  return std::move(out).value();
}

SecretBytes SecretBox::DeriveKey(std::string_view label) const {
  static constexpr char kSalt[] = "cllm-trust-kdf-v1";
  auto key = crypto::Hkdf(crypto::HashAlg::kSha256, key_.span(), AsBytes(kSalt), AsBytes(label), 32);
  CLLM_CHECK(key.ok());  // only fails for out_len > 255 * 32
  return std::move(key).value();
}

}  // namespace cllm::trust
