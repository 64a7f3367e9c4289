#include "engine/tokenizer/vocab.h"

#include <algorithm>

#include "base/check.h"

namespace cllm::engine {
namespace {

Error<TokenizerErrc> Missing(const std::string& what) {
  return MakeError(TokenizerErrc::kMissingVocab, what);
}

}  // namespace

TokenId Vocab::Find(std::string_view text) const {
  auto it = token_to_id.find(std::string(text));
  return it == token_to_id.end() ? -1 : it->second;
}

TokenizerResult<Vocab> LoadVocab(const GgufFile& file) {
  Vocab v;
  auto model = file.GetString("tokenizer.ggml.model");
  if (!model.ok()) return Missing("tokenizer.ggml.model: " + model.detail());
  v.model = *model;
  if (v.model != "llama" && v.model != "gpt2") {
    return MakeError(TokenizerErrc::kUnsupportedModel, "tokenizer model '" + v.model + "' (supported: llama, gpt2)");
  }
  v.pre = file.GetString("tokenizer.ggml.pre").value_or("default");
  auto tokens = file.GetArray("tokenizer.ggml.tokens");
  if (!tokens.ok() || (*tokens)->elem_type != GgufValueType::kString || (*tokens)->strings.empty()) {
    return Missing("tokenizer.ggml.tokens must be a non-empty string array");
  }
  v.tokens = (*tokens)->strings;
  const size_t n = v.tokens.size();
  if (n > (size_t{1} << 24)) return MakeError(TokenizerErrc::kBadVocab, "vocabulary too large");

  v.scores.assign(n, 0.0f);
  if (auto s = file.GetArray("tokenizer.ggml.scores"); s.ok()) {
    if ((*s)->floats.size() != n) return MakeError(TokenizerErrc::kBadVocab, "scores length differs from tokens");
    for (size_t i = 0; i < n; ++i) v.scores[i] = static_cast<float>((*s)->floats[i]);
  }
  v.types.assign(n, TokenType::kNormal);
  if (auto t = file.GetArray("tokenizer.ggml.token_type"); t.ok()) {
    if ((*t)->size() != n) return MakeError(TokenizerErrc::kBadVocab, "token_type length differs from tokens");
    // Integers of either signedness; a float or string array has neither.
    const bool signed_ints = (*t)->ints.size() == n;
    if (!signed_ints && (*t)->uints.size() != n) {
      return MakeError(TokenizerErrc::kBadVocab, "token_type must be an array of integers");
    }
    for (size_t i = 0; i < n; ++i) {
      int64_t x = signed_ints ? (*t)->ints[i] : static_cast<int64_t>(std::min<uint64_t>((*t)->uints[i], INT64_MAX));
      if (x < 0 || x > 6) return MakeError(TokenizerErrc::kBadVocab, "token type " + std::to_string(x));
      v.types[i] = static_cast<TokenType>(x);
    }
  }
  v.token_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) v.token_to_id.emplace(v.tokens[i], static_cast<TokenId>(i));  // first wins

  if (v.model == "gpt2") {
    auto merges = file.GetArray("tokenizer.ggml.merges");
    if (!merges.ok() || (*merges)->elem_type != GgufValueType::kString) return Missing("tokenizer.ggml.merges");
    const auto& m = (*merges)->strings;
    v.merge_rank.reserve(m.size());
    for (size_t i = 0; i < m.size(); ++i) {
      size_t sp = m[i].find(' ', 1);  // the left part may itself start with a space-like char
      if (sp == std::string::npos || sp + 1 >= m[i].size()) {
        return MakeError(TokenizerErrc::kBadMerges, "merge " + std::to_string(i) + " is not 'left right'");
      }
      v.merge_rank.emplace(m[i], static_cast<int>(i));
    }
  }

  auto id = [&](const char* key) -> TokenId {
    auto x = file.GetUint(key);
    return x.ok() && *x < n ? static_cast<TokenId>(*x) : -1;
  };
  v.bos = id("tokenizer.ggml.bos_token_id");
  v.eos = id("tokenizer.ggml.eos_token_id");
  v.eot = id("tokenizer.ggml.eot_token_id");
  v.unk = id("tokenizer.ggml.unknown_token_id");
  v.pad = id("tokenizer.ggml.padding_token_id");
  // Defaults as llama.cpp applies them: SPM adds BOS, BPE does not.
  v.add_bos = file.GetBool("tokenizer.ggml.add_bos_token").value_or(v.model == "llama");
  v.add_eos = file.GetBool("tokenizer.ggml.add_eos_token").value_or(false);
  v.add_space_prefix = file.GetBool("tokenizer.ggml.add_space_prefix").value_or(v.model == "llama");

  for (size_t i = 0; i < n; ++i) {
    TokenType t = v.types[i];
    if (t == TokenType::kControl || t == TokenType::kUserDefined || t == TokenType::kUnknown) {
      if (!v.tokens[i].empty()) v.specials.push_back(static_cast<TokenId>(i));
    }
  }
  std::stable_sort(v.specials.begin(), v.specials.end(),
                   [&](TokenId a, TokenId b) { return v.tokens[a].size() > v.tokens[b].size(); });

  // End of generation: eos, eot, and control tokens conventionally ending a turn.
  for (TokenId t : {v.eos, v.eot}) {
    if (t >= 0) v.eog.push_back(t);
  }
  for (const char* text : {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>", "<|end|>"}) {
    TokenId t = v.Find(text);
    // Phi-3 ends a turn with "<|end|>" (its eos is <|endoftext|>); the text
    // is generic enough to require it to be a control token.
    if (std::string_view(text) == "<|end|>" && (t < 0 || v.types[t] != TokenType::kControl)) continue;
    if (t >= 0 && std::find(v.eog.begin(), v.eog.end(), t) == v.eog.end()) v.eog.push_back(t);
  }
  return v;
}

std::vector<Fragment> PartitionSpecial(const Vocab& v, std::string_view text, bool parse_special) {
  std::vector<Fragment> frags;
  if (!text.empty()) frags.push_back({-1, text});
  for (TokenId id : v.specials) {
    TokenType type = v.types[id];
    if (!parse_special && type != TokenType::kUserDefined) continue;
    const std::string& needle = v.tokens[id];
    std::vector<Fragment> next;
    next.reserve(frags.size());
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      std::string_view rest = f.text;
      for (size_t pos; (pos = rest.find(needle)) != std::string_view::npos;) {
        if (pos > 0) next.push_back({-1, rest.substr(0, pos)});
        next.push_back({id, {}});
        rest.remove_prefix(pos + needle.size());
      }
      if (!rest.empty()) next.push_back({-1, rest});
    }
    frags.swap(next);
  }
  return frags;
}

std::vector<Fragment> PartitionMarkup(const Vocab& v, std::string_view text, std::span<const TextSpan> markup) {
  std::vector<Fragment> out;
  auto add = [&](std::string_view piece, bool parse_special) {
    for (const Fragment& f : PartitionSpecial(v, piece, parse_special)) {
      Fragment* last = out.empty() ? nullptr : &out.back();
      if (f.token < 0 && last != nullptr && last->token < 0 && last->text.data() + last->text.size() == f.text.data()) {
        last->text = std::string_view(last->text.data(), last->text.size() + f.text.size());
      } else {
        out.push_back(f);
      }
    }
  };
  size_t pos = 0;
  for (const TextSpan& m : markup) {
    CLLM_CHECK(m.begin >= pos && m.end >= m.begin && m.end <= text.size());
    add(text.substr(pos, m.begin - pos), /*parse_special=*/false);  // content: never control tokens
    add(text.substr(m.begin, m.end - m.begin), /*parse_special=*/true);
    pos = m.end;
  }
  add(text.substr(pos), /*parse_special=*/false);
  return out;
}

}  // namespace cllm::engine
