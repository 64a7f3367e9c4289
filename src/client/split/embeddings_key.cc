#include "client/split/embeddings_key.h"

#include <fstream>

#include "channel/ratls.h"
#include "crypto/digest.h"
#include "crypto/keys.h"

namespace cllm::split {
namespace {

Errc ErrcOf(client::ClientErrc c) {
  switch (c) {
    case client::ClientErrc::kHttp:
    case client::ClientErrc::kAttestation:
      return Errc::kPermission;
    case client::ClientErrc::kProtocol:
      return Errc::kParse;
    default:
      return Errc::kIo;
  }
}

}  // namespace

Result<crypto::SealedHeader> ReadSealedHeader(const std::filesystem::path& sealed) {
  std::ifstream f(sealed, std::ios::binary);
  if (!f) return MakeError(Errc::kIo, "cannot read " + sealed.string());
  Bytes prefix(1024);
  f.read(reinterpret_cast<char*>(prefix.data()), static_cast<std::streamsize>(prefix.size()));
  prefix.resize(static_cast<size_t>(f.gcount()));
  auto h = crypto::ParseSealedHeader(prefix);
  if (!h.ok()) {
    return MakeError(Errc::kParse, sealed.string() + ": " + crypto::SealErrcName(h.code()) + ": " + h.detail());
  }
  return std::move(h).value();
}

Result<SecretBytes> FetchEmbeddingsKey(const EmbeddingsKeySource& source, const crypto::SealedHeader& header) {
  if (!source.attester) return MakeError(Errc::kInvalidArgument, "no attester: the client must run in a TEE");
  // The claims the evidence binds: this executable, and the file it will
  // unseal as its "model" — the key's release policy pins that digest.
  channel::ServerClaims claims;
  if (auto exe = crypto::Sha256File("/proc/self/exe"); exe.ok()) claims.binary_digest = *exe;
  claims.model_digest = header.plaintext_digest;
  claims.model_name = "cllm-client";
  channel::RaTlsIssuer issuer(source.attester, claims);
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256);
  if (!key.ok()) return MakeError(Errc::kCrypto, key.detail());

  auto conn = client::ConnectPinned(source.trust.url, source.trust.ca);
  if (!conn.ok()) return MakeError(Errc::kIo, "cllm-trust: " + conn.detail());
  auto token = trust::ObtainToken(**conn, issuer, *key, source.token_policy);
  if (!token.ok()) {
    return MakeError(ErrcOf(token.code()), std::string("this client's attestation to cllm-trust was refused: ") +
                                               client::ClientErrcName(token.code()) + ": " + token.detail());
  }
  auto released = trust::FetchModelKey(**conn, *token, *key, header.key_id);
  if (!released.ok()) {
    return MakeError(ErrcOf(released.code()), "the embeddings key \"" + header.key_id + "\": " +
                                                  client::ClientErrcName(released.code()) + ": " + released.detail());
  }
  if (released->size() != 32) return MakeError(Errc::kParse, "the released key is not 32 bytes");
  return std::move(released).value();
}

Result<LockedBuffer> UnsealEmbeddings(const std::filesystem::path& sealed, const EmbeddingsKeySource& source) {
  CLLM_ASSIGN_OR_RETURN(crypto::SealedHeader header, ReadSealedHeader(sealed));
  CLLM_ASSIGN_OR_RETURN(SecretBytes key, FetchEmbeddingsKey(source, header));
  // The digest attested to: a file swapped after its header was read fails here.
  auto plain = crypto::UnsealFile(sealed, key.span(), nullptr, &header.plaintext_digest);
  if (!plain.ok()) {
    return MakeError(Errc::kCrypto, sealed.string() + ": " + crypto::SealErrcName(plain.code()) + ": " + plain.detail());
  }
  return std::move(plain).value();
}

}  // namespace cllm::split
