// `cllm split fetch-embeddings`: a split-inference client obtains the sealed
// embedding table's key from cllm-trust and unseals it in memory
// (client/split/embeddings_key.h). It prints what it got; with -o it writes
// the plaintext GGUF (mode 0600) — only for a client whose disk is inside its
// TEE, since the point of sealing is that nothing outside one reads it.
//
//   cllm split fetch-embeddings emb.cllm --trust URL --trust-ca F --client-tee sim --client-sim-key K
//        [--client-token-policy client] [-o emb.gguf]
#include <cstdio>

#include "apps/cllm/command.h"
#include "apps/common/tee.h"
#include "base/encoding.h"
#include "base/file.h"
#include "client/split/embeddings_export.h"
#include "client/split/embeddings_key.h"
#include "engine/gguf/gguf.h"

namespace cllm::app {
namespace {

struct FetchArgs {
  std::string sealed, trust_url, trust_ca, tee, sim_key, policy = "client", out;
};

int FetchEmbeddings(const FetchArgs& a) {
  auto ep = trust::LoadTrustEndpoint(a.trust_url, a.trust_ca);
  if (!ep.ok()) return Fail(ep.detail(), 2);
  auto attester = OpenAttester(a.tee, a.sim_key);
  if (!attester.ok()) return Fail("--client-tee: " + attester.detail(), 2);
  split::EmbeddingsKeySource source{std::move(ep).value(), std::move(attester).value(), a.policy};
  auto header = split::ReadSealedHeader(a.sealed);
  if (!header.ok()) return Fail(header.detail(), 2);
  auto plain = split::UnsealEmbeddings(a.sealed, source);
  if (!plain.ok()) return Fail(plain.detail(), plain.code() == Errc::kPermission ? 1 : 2);
  auto gguf = engine::GgufFile::FromBytes(plain->span());
  if (!gguf.ok()) return Fail(a.sealed + ": the unsealed file is not GGUF: " + gguf.detail());
  std::printf("released and unsealed %s\n  key id           %s\n  plaintext sha256 %s\n", a.sealed.c_str(),
              header->key_id.c_str(), HexEncode(header->plaintext_digest).c_str());
  for (const auto& t : gguf->tensors()) {
    std::string shape;
    for (int64_t n : t.ne) shape += (shape.empty() ? "" : " × ") + std::to_string(n);
    std::printf("  tensor           %s [%s]\n", t.name.c_str(), shape.c_str());
  }
  if (!gguf->FindTensor(split::kTokenEmbdTensor)) {
    return Fail("the sealed file holds no " + std::string(split::kTokenEmbdTensor) + ": not a --part embeddings file");
  }
  if (!a.out.empty()) {
    auto st = WriteNewSecretFile(a.out, plain->span());
    if (!st.ok()) return Fail(st.detail());
    std::printf("  wrote            %s (mode 0600)\n", a.out.c_str());
  }
  return 0;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  CLI::App* group = SubcommandGroup(app, "split", "Split inference: the client embeds the prompt (docs/split-inference.md)");
  auto* fetch = group->add_subcommand(
      "fetch-embeddings",
      "Attest this client to cllm-trust, obtain the embedding table's key (released only to attested clients) and "
      "unseal the table in memory");
  static FetchArgs a;
  fetch->add_option("sealed", a.sealed, "The sealed embeddings (cllm model seal --part embeddings)")
      ->required()
      ->check(CLI::ExistingFile);
  fetch->add_option("--trust", a.trust_url, "cllm-trust URL")->required();
  fetch->add_option("--trust-ca", a.trust_ca, "cllm-trust's certificate (pinned)")->required();
  fetch->add_option("--client-tee", a.tee, "This client's TEE: sim, snp, tdx, csv, auto")->required();
  fetch->add_option("--client-sim-key", a.sim_key, "--client-tee sim: the simulated platform key file");
  fetch->add_option("--client-token-policy", a.policy,
                    "The cllm-trust attestation policy to attest under (one with \"role\": \"client\")")
      ->capture_default_str();
  fetch->add_option("-o,--output", a.out,
                    "Also write the plaintext GGUF (mode 0600, never overwritten): only on a disk inside the TEE");
  fetch->callback([&ctx] { ctx.exit_code = FetchEmbeddings(a); });
}

CommandRegistration reg{"split-key", 48, Setup};

}  // namespace
}  // namespace cllm::app
