// vocab.h — tokenizer vocabulary from GGUF metadata, shared by the SPM and
// BPE tokenizers: token texts, scores, types, merges, special ids, and the
// special-token partition of input text.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/tokenizer/tokenizer.h"

namespace cllm::engine {

struct Vocab {
  std::string model;                     // "llama" (SPM) or "gpt2" (byte-level BPE)
  std::string pre;                       // pre-tokenizer name for BPE ("qwen2", ...)
  std::vector<std::string> tokens;       // [n_vocab]
  std::vector<float> scores;             // [n_vocab], SPM merge priority
  std::vector<TokenType> types;          // [n_vocab]
  std::unordered_map<std::string, TokenId> token_to_id;
  std::unordered_map<std::string, int> merge_rank;  // "left right" → rank (BPE)
  TokenId bos = -1, eos = -1, eot = -1, unk = -1, pad = -1;
  bool add_bos = false, add_eos = false;
  bool add_space_prefix = true;          // SPM: prefix raw text with a space
  std::vector<TokenId> specials;         // control / user-defined / unknown, longest text first
  std::vector<TokenId> eog;              // end-of-generation ids

  TokenId Find(std::string_view text) const;  // -1 if absent
};

// LoadVocab reads every tokenizer.ggml.* key and validates it.
TokenizerResult<Vocab> LoadVocab(const GgufFile& file);

// A piece of input after special-token partitioning: either raw text or a
// special token id.
struct Fragment {
  TokenId token = -1;    // ≥ 0 for a special token
  std::string_view text; // raw text otherwise
};

// PartitionSpecial splits `text` at occurrences of special tokens. With
// parse_special false only USER_DEFINED tokens are split out (control and
// unknown token texts stay plain text), as llama.cpp and Hugging Face do.
std::vector<Fragment> PartitionSpecial(const Vocab& v, std::string_view text, bool parse_special);
// PartitionMarkup partitions with parse_special inside the `markup` spans
// only (tokenizer.h EncodeWithMarkup); adjacent raw fragments are joined so
// the text between markers is one run, as PartitionSpecial would leave it.
std::vector<Fragment> PartitionMarkup(const Vocab& v, std::string_view text, std::span<const TextSpan> markup);

}  // namespace cllm::engine
