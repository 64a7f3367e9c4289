// split_request.h — turning a user's text into what a split-inference client
// sends: the rows of its (partly replaced) tokens as a base64 float32 matrix,
// never the text or the token ids (docs/split-inference.md, "The client").
//
//   text ─tokenize (no BOS, no special-token parsing)→ ids ─mask policy→ which
//   positions are perturbed ─ApplyRnm→ ids' ─Gather→ rows ─float32 LE, base64→
//   {"type": "prompt_embeds", "prompt_embeds": "…", "prompt_embeds_dtype": "float32"}
//
// The wire format is fixed by the server (docs/split-inference.md, "Wire
// format"). SplitRewriter does the same to whole OpenAI requests (cllm proxy
// --split).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "client/split/embeddings_file.h"
#include "client/split/rnm.h"

namespace cllm::split {

// Which positions RNM perturbs. Control tokens (BOS and the like) are public
// and never perturbed, whatever the policy.
enum class MaskKind {
  kAll,     // every token of the user's text
  kDigits,  // tokens whose text contains an ASCII digit
  kWords,   // tokens overlapping a user-supplied sensitive word (MaskWords)
};

struct MaskPolicy {
  MaskKind kind = MaskKind::kAll;
  std::vector<std::string> words;  // kWords: the user's list (ParseWordList)
};

// ParseWordList splits a words file: one word or phrase per line; blank lines
// and lines starting with '#' are skipped; a trailing CR is dropped.
std::vector<std::string> ParseWordList(std::string_view text);

// MaskPolicyFromSpec parses the command-line form "all", "digits" or
// "words:FILE" (FILE read here). Errors: kInvalidArgument (unknown form,
// unreadable file, a list with no word).
SplitResult<MaskPolicy> MaskPolicyFromSpec(std::string_view spec);

// BuildMask returns one byte per position of `ids`, the tokens of `text`
// (1 = perturb) under `policy`. Control tokens (BOS) are 0 under every policy.
std::vector<uint8_t> BuildMask(const MaskPolicy& policy, std::string_view text,
                               std::span<const uint32_t> ids, const engine::Tokenizer& tokenizer);

// SplitEmbeds is one embedded text and its privacy accounting.
struct SplitEmbeds {
  std::vector<float> rows;  // [n_rows × dim] row-major float32
  uint32_t n_rows = 0;
  uint32_t dim = 0;
  uint32_t num_perturbed = 0;  // positions RNM ran at
  double epsilon_total = 0;    // num_perturbed · ε (+∞ for ε = ∞ with a position selected)
  // Positions whose token RNM replaced: for evaluation and tests only, it
  // says which rows are original, so it must never travel with the rows.
  uint32_t num_replaced = 0;
};

// EmbedText tokenizes `text` (add_bos: with the tokenizer's BOS/EOS as its
// metadata says, as the server does for a /v1/completions text prompt; chat
// content is embedded without them, the server renders the template around
// it), applies RNM at the positions `policy` selects and returns the rows.
// Errors: kInvalidArgument (empty tokenization: the server refuses 0 rows),
// ApplyRnm's errors.
SplitResult<SplitEmbeds> EmbedText(const SplitModel& model, std::string_view text, bool add_bos,
                                   const RnmOptions& options, const MaskPolicy& policy,
                                   RandomSource& random);

// EncodeRowsBase64 is the wire form of a matrix: float32 little-endian,
// standard base64 with padding.
std::string EncodeRowsBase64(std::span<const float> rows);

// PromptEmbedsPart is the chat content part standing for `embeds`.
nlohmann::json PromptEmbedsPart(const SplitEmbeds& embeds);

// SplitRewriter rewrites OpenAI requests for split mode (cllm proxy --split):
//  - POST /v1/chat/completions: each user message's text (a string content,
//    or each text part of an array) becomes a prompt_embeds part; other
//    roles are left as text (the server reads them in clear: only user
//    content is protected); other part types are refused;
//  - POST /v1/completions: a string `prompt` becomes `prompt_embeds` (with
//    BOS, as the server would add it); arrays and token-id prompts are refused;
//  - any other POST is refused (it could carry text the server would see),
//    as is any other method than GET or HEAD, a GET or HEAD with a body, and
//    any query string; a bodiless GET or HEAD passes unchanged.
// A text seen before (same bytes, same options) is sent as the same rows
// again: a client re-sending a conversation's history must not give the
// server fresh noisy copies to average, nor spend the budget again. The
// cache keeps up to `cache_entries` texts (by SHA-256), oldest evicted.
// Thread-safe (one request at a time).
class SplitRewriter {
 public:
  struct Outcome {
    bool ok = true;
    int status = 200;            // when !ok: the HTTP status to answer with
    std::string error_code;      // when !ok: OpenAI error code
    std::string message;         // when !ok: why (never the request's text)
    std::string body;            // when ok and rewritten: the request body to forward
    bool rewritten = false;      // false: forwarded unchanged (a bodiless GET or HEAD)
    uint32_t n_rows = 0;         // rows embedded in this request
    uint32_t num_perturbed = 0;  // positions perturbed now (not reused)
    double epsilon_spent = 0;    // privacy spent by this request (reused texts cost nothing)
    uint32_t reused = 0;         // texts sent as cached rows
  };

  SplitRewriter(const SplitModel& model, RnmOptions options, MaskPolicy policy,
                RandomSource& random, size_t cache_entries = 4096);
  // `target` is the request's path and query, as received.
  Outcome Rewrite(std::string_view method, std::string_view target, std::string_view body);

 private:
  struct Cached {
    nlohmann::json embeds;  // the base64 string
    uint32_t n_rows = 0;
  };
  // Embed returns the wire base64 of `text`, from the cache or newly built
  // (then adding to `out`'s accounting).
  SplitResult<Cached> Embed(std::string_view text, bool add_bos, Outcome& out);

  const SplitModel& model_;
  const RnmOptions options_;
  const MaskPolicy policy_;
  RandomSource& random_;
  const size_t cache_entries_;
  std::mutex mu_;
  std::map<std::string, Cached> cache_;  // key: add_bos byte + SHA-256(text)
  std::deque<std::string> order_;        // insertion order, for eviction
};

}  // namespace cllm::split
