#include "engine/model/generator.h"

#include "base/utf8.h"

namespace cllm::engine {

size_t Utf8Holdback(std::string_view s) {
  // Look back at most 3 bytes for a lead byte whose sequence is unfinished.
  for (size_t back = 1; back <= std::min<size_t>(3, s.size()); ++back) {
    auto c = static_cast<uint8_t>(s[s.size() - back]);
    if ((c & 0xc0) == 0x80) continue;  // continuation byte: keep looking
    size_t len = Utf8SequenceLength(c);
    return len > back ? back : 0;
  }
  return 0;
}

ModelResult<GenerateResult> Generate(const Model& model, std::string_view prompt, const GenerateOptions& options,
                                     const TokenCallback& on_token) {
  const Tokenizer& tok = model.tokenizer();
  GenerateResult r;
  r.prompt_tokens = tok.Encode(prompt, true, options.parse_special);
  if (r.prompt_tokens.empty()) return MakeError(ModelErrc::kBadBatch, "the prompt produced no tokens");
  const int n_prompt = static_cast<int>(r.prompt_tokens.size());
  KvCache cache(model.config(), options.kv_type, n_prompt + std::max(0, options.max_tokens));

  std::vector<BatchEntry> batch;
  for (int i = 0; i < n_prompt; ++i) batch.push_back({0, i, r.prompt_tokens[i], i + 1 == n_prompt});
  std::vector<float> logits;
  CLLM_RETURN_IF_ERROR(model.Forward(batch, cache, &logits));

  Sampler sampler(options.sampling);
  std::vector<TokenId> history = r.prompt_tokens;
  std::string pending;  // bytes held back until their UTF-8 character completes
  for (int step = 0; step < options.max_tokens; ++step) {
    if (options.constraint) options.constraint->Mask(logits);
    TokenId next = sampler.Sample(logits, history, r.prompt_tokens.size());
    if (options.constraint) options.constraint->Accept(next);
    if (options.stop_at_eog && tok.IsEog(next)) {
      r.stopped_at_eog = true;
      break;
    }
    r.tokens.push_back(next);
    history.push_back(next);
    std::string piece = tok.TokenToPiece(next);
    r.text += piece;
    pending += piece;
    size_t hold = Utf8Holdback(pending);
    std::string ready = pending.substr(0, pending.size() - hold);
    pending.erase(0, pending.size() - hold);
    if (on_token && !on_token(next, ready)) break;
    if (step + 1 == options.max_tokens) break;
    logits.clear();
    CLLM_RETURN_IF_ERROR(model.Forward({{0, n_prompt + step, next, true}}, cache, &logits));
  }
  if (on_token && !pending.empty()) on_token(-1, pending);
  cache.Release(0);
  return r;
}

}  // namespace cllm::engine
