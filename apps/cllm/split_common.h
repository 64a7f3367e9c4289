// split_common.h — `--split` for the client commands (cllm chat, cllm proxy):
// the user's text is embedded on this machine and only noisy embedding rows
// are sent (docs/split-inference.md, "The client").
#pragma once

#include <memory>
#include <string>

#include "apps/cllm/remote_common.h"
#include "client/split/split_request.h"

namespace cllm::app {

struct SplitArgs {
  bool enabled = false;      // --split
  std::string epsilon;       // --epsilon E (a number > 0, or "inf")
  uint32_t k = 20;           // --split-k
  std::string mask = "all";  // --split-mask all|digits|words:FILE
  std::string embeddings;    // --split-embeddings FILE
  std::string token_policy = "client";  // --split-token-policy: attestation policy for the embeddings key
};

// SplitKeyArgs are the command's own flags a sealed --split-embeddings file
// needs: the key goes only to this client attested to cllm-trust.
struct SplitKeyArgs {
  std::string trust_url, trust_ca;        // --trust, --trust-ca
  std::string client_tee, client_sim_key;  // --client-tee, --client-sim-key
};

// AddSplitFlags adds --split, --epsilon, --split-k, --split-mask, --split-embeddings.
void AddSplitFlags(CLI::App* cmd, SplitArgs* a);

// SplitSetup is what a split client holds: the embeddings, the mechanism's
// options and the mask policy.
struct SplitSetup {
  std::unique_ptr<split::SplitModel> model;
  split::RnmOptions options;
  split::MaskPolicy policy;
  std::string description;  // one line for the banner: file, shape, ε, k, mask
};

// LoadSplit checks the flags and loads --split-embeddings; errors are
// printed and become exit code 2. A sealed file (`cllm model seal --part
// embeddings`) is unsealed into locked memory with a key cllm-trust releases
// to this client after it attests (`key`; split/embeddings_key.h); a refusal
// is exit code 1.
OrExit<SplitSetup> LoadSplit(const SplitArgs& a, const SplitKeyArgs& key);

// SplitSetupFromModel is LoadSplit for a model loaded elsewhere (the hook
// for sealed embeddings: the key-release path decrypts the file into memory,
// split::LoadEmbeddingsFromMemory parses it, and this finishes the setup).
OrExit<SplitSetup> SplitSetupFromModel(const SplitArgs& a, std::unique_ptr<split::SplitModel> model,
                                       const std::string& source);

// EpsilonText prints ε for humans ("inf" for no noise).
std::string EpsilonText(double epsilon);

}  // namespace cllm::app
