// tokenizer_impl.h — the two tokenizer implementations behind Tokenizer.
#pragma once

#include <memory>

#include "engine/tokenizer/vocab.h"

typedef struct pcre2_real_code_8 pcre2_code_8;

namespace cllm::engine {

class VocabTokenizer : public Tokenizer {
 public:
  explicit VocabTokenizer(Vocab v) : v_(std::move(v)) {}
  int32_t n_vocab() const override { return static_cast<int32_t>(v_.tokens.size()); }
  TokenId bos() const override { return v_.bos; }
  TokenId eos() const override { return v_.eos; }
  bool IsEog(TokenId id) const override;
  TokenType GetTokenType(TokenId id) const override;
  const std::string& TokenText(TokenId id) const override;
  std::vector<TokenId> Encode(std::string_view text, bool add_special, bool parse_special) const override;
  std::vector<TokenId> EncodeWithMarkup(std::string_view text, std::span<const TextSpan> markup,
                                        bool add_special) const override;

 protected:
  // EncodeFragments tokenizes partitioned text (vocab.h PartitionSpecial).
  virtual std::vector<TokenId> EncodeFragments(const std::vector<Fragment>& fragments, bool add_special) const = 0;
  Vocab v_;
};

class SpmTokenizer : public VocabTokenizer {
 public:
  using VocabTokenizer::VocabTokenizer;
  std::string TokenToPiece(TokenId id, bool render_special) const override;

 protected:
  std::vector<TokenId> EncodeFragments(const std::vector<Fragment>& fragments, bool add_special) const override;
};

class BpeTokenizer : public VocabTokenizer {
 public:
  // Create compiles the pre-tokenizer regex for v.pre.
  static TokenizerResult<std::unique_ptr<Tokenizer>> Create(Vocab v);
  ~BpeTokenizer() override;
  std::string TokenToPiece(TokenId id, bool render_special) const override;

 protected:
  std::vector<TokenId> EncodeFragments(const std::vector<Fragment>& fragments, bool add_special) const override;

 private:
  BpeTokenizer(Vocab v, pcre2_code_8* re, bool ignore_merges)
      : VocabTokenizer(std::move(v)), re_(re), ignore_merges_(ignore_merges) {}
  void EncodeWord(std::string_view word, std::vector<TokenId>& out) const;
  pcre2_code_8* re_;
  // Llama 3 (Hugging Face "ignore_merges"): a piece that is itself in the
  // vocabulary is that token, even where the merges would split it.
  bool ignore_merges_;
};

}  // namespace cllm::engine
