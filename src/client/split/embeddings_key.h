// embeddings_key.h — a split-inference client obtains the embedding table
// (issue 16 item 1): the model owner sealed it on its own
// (`cllm model seal --part embeddings`, embeddings_export.h) under a key
// cllm-trust releases only to attested clients ("audience": "client",
// trust/release_policy.h). The client, in its TEE:
//
//   1. reads the sealed file's authenticated header (key id, plaintext digest);
//   2. attests to cllm-trust under a client attestation policy (one with
//      "role": "client"): evidence binding a fresh P-256 key, this executable's
//      digest and, as its model digest, the plaintext digest of the file it
//      will unseal — so the key's release policy can pin that file;
//   3. asks POST /v1/keys/{key id} with a proof of possession of that key and
//      opens the JWE (trust::FetchModelKey);
//   4. unseals the file into locked memory, checking the plaintext digest it
//      attested to; the plaintext never touches disk.
//
// The result is the GGUF bytes (token_embd.weight, tokenizer.*, optionally
// split.neighbours); the caller parses them (engine::GgufFile::FromMemory or
// its own reader) and builds split::EmbeddingTable. This target links the
// trust client (HTTP, JOSE, attestation), never the engine.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "attestation/attester.h"
#include "base/locked_buffer.h"
#include "base/result.h"
#include "base/secure.h"
#include "crypto/sealed_model.h"
#include "trust/trust_client.h"

namespace cllm::split {

struct EmbeddingsKeySource {
  trust::TrustEndpoint trust;                        // cllm-trust, certificate pinned
  std::shared_ptr<attestation::Attester> attester;   // this client's TEE (apps/common/tee.h)
  std::string token_policy = "client";               // the attestation policy to attest under
};

// ReadSealedHeader reads and parses the authenticated header of a sealed file
// (only its first KiB is read). kParse when it is not one.
Result<crypto::SealedHeader> ReadSealedHeader(const std::filesystem::path& sealed);

// FetchEmbeddingsKey is steps 2–3 for the file whose header is `header`.
// kPermission when cllm-trust refuses the attestation or the release (the
// reason in the detail: "release_refused: audience: …"), kIo when it cannot be
// reached, kParse for answers that do not parse.
Result<SecretBytes> FetchEmbeddingsKey(const EmbeddingsKeySource& source, const crypto::SealedHeader& header);

// UnsealEmbeddings is steps 1–4: the plaintext GGUF in locked memory.
Result<LockedBuffer> UnsealEmbeddings(const std::filesystem::path& sealed, const EmbeddingsKeySource& source);

}  // namespace cllm::split
