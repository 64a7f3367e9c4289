#include "apps/cllm/split_common.h"

#include <cmath>
#include <cstdio>

#include "apps/common/tee.h"
#include "client/split/embeddings_key.h"

namespace cllm::app {

std::string EpsilonText(double epsilon) {
  if (std::isinf(epsilon)) return "inf";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", epsilon);
  return buf;
}

void AddSplitFlags(CLI::App* cmd, SplitArgs* a) {
  cmd->add_flag("--split", a->enabled,
                "Split inference: embed the user's text on this machine and send only embedding "
                "rows, never the "
                "text or token ids; tokens are perturbed by Report-Noisy-Max (needs --epsilon, "
                "--split-embeddings)");
  cmd->add_option(
      "--epsilon", a->epsilon,
      "--split: privacy budget ε per perturbed token (at least 1e-300; smaller = more noise); a message with n "
      "perturbed tokens spends n·ε. \"inf\" sends the exact rows (no noise, no protection)");
  cmd->add_option("--split-k", a->k,
                  "--split: candidates per perturbed token (its k nearest tokens by cosine, "
                  "itself included)")
      ->check(CLI::Range(1u, 65536u))
      ->capture_default_str();
  cmd->add_option(
         "--split-mask", a->mask,
         "--split: which tokens are perturbed: all, digits (tokens containing a digit), or "
         "words:FILE "
         "(tokens of the words/phrases listed one per line in FILE); the others are sent exactly")
      ->capture_default_str();
  cmd->add_option(
      "--split-embeddings", a->embeddings,
      "--split: GGUF file with the model's token embeddings and tokenizer (an embeddings part from "
      "`cllm model seal --part embeddings`, or a whole model file). A sealed file is unsealed with "
      "a key cllm-trust releases to this client once it attests (needs --trust, --trust-ca, --client-tee)");
  cmd->add_option("--split-token-policy", a->token_policy,
                  "--split with sealed embeddings: the cllm-trust attestation policy (a client role) to attest under")
      ->capture_default_str();
}

namespace {

OrExit<double> ParseEpsilon(const std::string& text) {
  if (text.empty()) return ExitWith(Fail("--split needs --epsilon E (a number > 0, or inf)", 2));
  if (text == "inf" || text == "infinity") return split::kNoNoise;
  char* end = nullptr;
  const double e = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0' || !std::isfinite(e) || e <= 0) {
    return ExitWith(Fail("--epsilon must be a number > 0 or inf (got '" + text + "')", 2));
  }
  if (e < split::kMinEpsilon) {
    // 4/ε would not be a finite noise scale; no ε this small protects more.
    return ExitWith(Fail("--epsilon must be at least 1e-300 (got '" + text + "')", 2));
  }
  return e;
}

}  // namespace

OrExit<SplitSetup> SplitSetupFromModel(const SplitArgs& a, std::unique_ptr<split::SplitModel> model,
                                       const std::string& source) {
  SplitSetup s;
  auto epsilon = ParseEpsilon(a.epsilon);
  if (!epsilon.ok()) return ExitWith(epsilon.exit_code());
  s.options.epsilon = *epsilon;
  s.options.k = a.k;
  if (a.k > model->table.n_vocab()) {
    return ExitWith(Fail("--split-k " + std::to_string(a.k) + " exceeds the vocabulary (" +
                             std::to_string(model->table.n_vocab()) + " tokens)",
                         2));
  }
  if (model->table.neighbours_k() != 0 && a.k > model->table.neighbours_k()) {
    return ExitWith(Fail("--split-k " + std::to_string(a.k) +
                             " exceeds the file's precomputed neighbour lists (" +
                             std::to_string(model->table.neighbours_k()) + " per token)",
                         2));
  }
  auto policy = split::MaskPolicyFromSpec(a.mask);
  if (!policy.ok()) return ExitWith(Fail("--split-mask: " + policy.detail(), 2));
  s.policy = std::move(policy).value();
  s.description =
      "embeddings " + source + (model->name.empty() ? "" : " (" + model->name + ")") + ", " +
      std::to_string(model->table.n_vocab()) + " × " + std::to_string(model->table.dim()) +
      (model->table.neighbours_k() ? ", precomputed neighbour lists" : ", neighbours by scan") +
      "; ε = " + EpsilonText(s.options.epsilon) +
      " per perturbed token, k = " + std::to_string(a.k) + ", mask " + a.mask;
  s.model = std::move(model);
  if (std::isinf(s.options.epsilon)) {
    std::fprintf(stderr,
                 "cllm: --epsilon inf: no noise — the rows sent decode to your exact tokens\n");
  }
  return s;
}

namespace {

// LockedBytes holds unsealed embeddings for the GGUF reader; the plaintext
// never touches disk and is zeroed when the table lets go of it.
class LockedBytes final : public engine::ByteSource {
 public:
  explicit LockedBytes(LockedBuffer buffer) : buffer_(std::move(buffer)) {}
  ByteSpan bytes() const override { return buffer_.span(); }

 private:
  LockedBuffer buffer_;
};

OrExit<SplitSetup> LoadSealed(const SplitArgs& a, const SplitKeyArgs& key) {
  if (key.trust_url.empty() || key.trust_ca.empty() || key.client_tee.empty()) {
    return ExitWith(Fail("--split-embeddings " + a.embeddings +
                             " is sealed: its key is released only to an attested client, so --split needs "
                             "--trust URL, --trust-ca FILE and --client-tee TEE",
                         2));
  }
  auto ep = trust::LoadTrustEndpoint(key.trust_url, key.trust_ca);
  if (!ep.ok()) return ExitWith(Fail(ep.detail(), 2));
  auto attester = OpenAttester(key.client_tee, key.client_sim_key);
  if (!attester.ok()) return ExitWith(Fail("--client-tee: " + attester.detail(), 2));
  const split::EmbeddingsKeySource source{std::move(ep).value(), std::move(attester).value(), a.token_policy};
  auto plain = split::UnsealEmbeddings(a.embeddings, source);
  if (!plain.ok()) {
    return ExitWith(Fail("--split-embeddings: " + plain.detail(), plain.code() == Errc::kPermission ? 1 : 2));
  }
  auto m = split::LoadEmbeddingsFromMemory(std::make_shared<LockedBytes>(std::move(plain).value()));
  if (!m.ok()) return ExitWith(Fail("--split-embeddings (unsealed): " + m.detail(), 2));
  return SplitSetupFromModel(a, std::make_unique<split::SplitModel>(std::move(m).value()),
                             a.embeddings + " (sealed, key released by " + key.trust_url + ")");
}

}  // namespace

OrExit<SplitSetup> LoadSplit(const SplitArgs& a, const SplitKeyArgs& key) {
  if (a.embeddings.empty()) return ExitWith(Fail("--split needs --split-embeddings FILE", 2));
  // Check ε before loading a large file.
  if (auto e = ParseEpsilon(a.epsilon); !e.ok()) return ExitWith(e.exit_code());
  if (split::ReadSealedHeader(a.embeddings).ok()) return LoadSealed(a, key);
  auto m = split::LoadEmbeddings(a.embeddings);
  if (!m.ok()) return ExitWith(Fail("--split-embeddings: " + m.detail(), 2));
  return SplitSetupFromModel(a, std::make_unique<split::SplitModel>(std::move(m).value()),
                             a.embeddings);
}

}  // namespace cllm::app
