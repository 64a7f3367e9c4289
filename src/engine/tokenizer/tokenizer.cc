#include "engine/tokenizer/tokenizer.h"

#include <algorithm>

#include "engine/tokenizer/tokenizer_impl.h"

namespace cllm::engine {

const char* TokenizerErrcName(TokenizerErrc code) {
  switch (code) {
    case TokenizerErrc::kMissingVocab: return "missing_vocab";
    case TokenizerErrc::kUnsupportedModel: return "unsupported_model";
    case TokenizerErrc::kBadVocab: return "bad_vocab";
    case TokenizerErrc::kBadMerges: return "bad_merges";
    case TokenizerErrc::kRegex: return "regex";
  }
  return "unknown";
}

TokenizerResult<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const GgufFile& file) {
  CLLM_ASSIGN_OR_RETURN(Vocab v, LoadVocab(file));
  if (v.model == "llama") return std::unique_ptr<Tokenizer>(new SpmTokenizer(std::move(v)));
  return BpeTokenizer::Create(std::move(v));
}

std::string Tokenizer::Decode(std::span<const TokenId> ids, bool render_special) const {
  std::string out;
  for (TokenId id : ids) out += TokenToPiece(id, render_special);
  return out;
}

std::vector<TokenId> VocabTokenizer::Encode(std::string_view text, bool add_special, bool parse_special) const {
  return EncodeFragments(PartitionSpecial(v_, text, parse_special), add_special);
}

std::vector<TokenId> VocabTokenizer::EncodeWithMarkup(std::string_view text, std::span<const TextSpan> markup,
                                                      bool add_special) const {
  return EncodeFragments(PartitionMarkup(v_, text, markup), add_special);
}

bool VocabTokenizer::IsEog(TokenId id) const {
  return std::find(v_.eog.begin(), v_.eog.end(), id) != v_.eog.end();
}

TokenType VocabTokenizer::GetTokenType(TokenId id) const {
  return id >= 0 && id < n_vocab() ? v_.types[id] : TokenType::kUndefined;
}

const std::string& VocabTokenizer::TokenText(TokenId id) const {
  static const std::string kEmpty;
  return id >= 0 && id < n_vocab() ? v_.tokens[id] : kEmpty;
}

}  // namespace cllm::engine
