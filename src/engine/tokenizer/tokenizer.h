// tokenizer.h — text ↔ token ids from GGUF tokenizer metadata.
//
// Two models: SentencePiece-style ("llama": score-driven merges over
// characters, byte fallback <0xNN>, ▁ for spaces) and byte-level BPE ("gpt2":
// GPT-2 byte↦unicode mapping, ranked merges, a pre-tokenizer regex chosen by
// tokenizer.ggml.pre, e.g. "qwen2"). Special / control / user-defined tokens
// are matched in the text first when parse_special is set.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "engine/gguf/gguf.h"

namespace cllm::engine {

enum class TokenizerErrc {
  kMissingVocab = 1,   // required tokenizer.ggml.* keys absent
  kUnsupportedModel,   // tokenizer.ggml.model / pre not supported
  kBadVocab,           // inconsistent array lengths, bad ids, duplicate tokens
  kBadMerges,          // a merge line is malformed or names unknown tokens
  kRegex,              // the pre-tokenizer regex failed to compile or match
};
const char* TokenizerErrcName(TokenizerErrc code);

template <typename T>
using TokenizerResult = Result<T, TokenizerErrc>;

// Token attribute types as stored in tokenizer.ggml.token_type.
enum class TokenType : int32_t {
  kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5,
  kByte = 6,
};

using TokenId = int32_t;

// TextSpan is the byte range [begin, end) of a text.
struct TextSpan {
  size_t begin = 0;
  size_t end = 0;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // FromGguf builds the tokenizer described by `file`'s tokenizer.ggml.* keys.
  static TokenizerResult<std::unique_ptr<Tokenizer>> FromGguf(const GgufFile& file);

  // Encode tokenizes `text`. add_special adds BOS/EOS as the metadata says
  // (tokenizer.ggml.add_bos_token / add_eos_token); parse_special lets
  // control and user-defined token texts in `text` map to their ids.
  virtual std::vector<TokenId> Encode(std::string_view text, bool add_special,
                                      bool parse_special) const = 0;
  // EncodeWithMarkup tokenizes `text` in which only the `markup` spans
  // (sorted, disjoint, inside text: the chat template's own markers) may map
  // to control tokens; everything else is tokenized as with parse_special
  // off, so a user who types "<|im_end|>" gets those characters, not the
  // control token. Text either side of a marker is tokenized as one run, as
  // Encode would. Spans out of order or out of range are our bug: abort.
  virtual std::vector<TokenId> EncodeWithMarkup(std::string_view text, std::span<const TextSpan> markup,
                                                bool add_special) const = 0;
  // TokenToPiece returns the bytes token `id` stands for (byte tokens give
  // their byte, ▁ gives a space, byte-level BPE is unmapped). Control tokens
  // give "" unless `render_special`. Out-of-range ids give "".
  virtual std::string TokenToPiece(TokenId id, bool render_special = false) const = 0;
  // Decode concatenates pieces (may yield invalid UTF-8 mid-character).
  std::string Decode(std::span<const TokenId> ids, bool render_special = false) const;

  virtual int32_t n_vocab() const = 0;
  virtual TokenId bos() const = 0;  // -1 if none
  virtual TokenId eos() const = 0;  // -1 if none
  // IsEog is true for end-of-generation tokens (eos, eot, <|im_end|>, ...).
  virtual bool IsEog(TokenId id) const = 0;
  virtual TokenType GetTokenType(TokenId id) const = 0;
  virtual const std::string& TokenText(TokenId id) const = 0;  // raw vocab entry
};

}  // namespace cllm::engine
