// generator.h — text in, tokens out, for one sequence: tokenize, prefill in
// one batch, then sample token by token until end-of-generation or a limit.
// The callback receives each token and its text as soon as it is produced
// (incomplete UTF-8 is held back until the character is complete).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/model/model.h"
#include "engine/model/sampler.h"

namespace cllm::engine {

struct GenerateOptions {
  int max_tokens = 128;
  SamplingParams sampling;
  KvType kv_type = KvType::kF16;
  bool stop_at_eog = true;
  bool parse_special = true;   // special-token texts in the prompt become their ids
  // constraint, when set, masks each step's logits before sampling and is
  // told every chosen token (structured output, engine/grammar).
  std::shared_ptr<TokenConstraint> constraint;
};

struct GenerateResult {
  std::vector<TokenId> prompt_tokens;
  std::vector<TokenId> tokens;
  std::string text;
  bool stopped_at_eog = false;
};

// TokenCallback returns false to stop generation early.
using TokenCallback = std::function<bool(TokenId id, std::string_view text)>;

ModelResult<GenerateResult> Generate(const Model& model, std::string_view prompt, const GenerateOptions& options,
                                     const TokenCallback& on_token = nullptr);

// Utf8Holdback returns how many trailing bytes of `s` form an incomplete
// UTF-8 sequence that must wait for the next piece.
size_t Utf8Holdback(std::string_view s);

}  // namespace cllm::engine
