// rnm.h — Report-Noisy-Max over nearby tokens: the differential-privacy step
// a split-inference client applies to prompt tokens before their embeddings
// leave it (issue 16; CMIF, DASFAA 2025). docs/split-inference.md, "The
// mechanism", states the guarantee; in short:
//
//   candidates  C(x) = the k tokens nearest to x by cosine (x itself included)
//   utility     u(x, y) = cos(e_x, e_y) ∈ [−1, 1], so Δu = 2
//   output      argmax_{y ∈ C(x)} u(x, y) + Lap(b),  b = 2·Δu/ε = 4/ε, one draw per candidate
//   guarantee   for inputs x, x' with C(x) = C(x'): P[M(x) = y] ≤ e^ε · P[M(x') = y]
//   prompt      n perturbed positions → n·ε (basic sequential composition)
//
// ε = +∞ is the identity (no randomness is drawn): the plain path.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "client/split/embedding_table.h"
#include "client/split/random_source.h"

namespace cllm::split {

// Δu: the width of cosine's range [−1, 1]. Any two inputs' utilities for one
// candidate differ by at most this much.
inline constexpr double kUtilitySensitivity = 2.0;
inline constexpr double kNoNoise = std::numeric_limits<double>::infinity();
// The smallest finite ε accepted. Below it b = 2·Δu/ε, or a Laplace draw of
// up to 37·b (−ln 2^−53), is no longer a finite double; such an ε is all
// noise anyway (b > 10^300 on utilities within [−1, 1]).
inline constexpr double kMinEpsilon = 1e-300;

struct RnmOptions {
  double epsilon = 1.0;  // per perturbed token, > 0; kNoNoise turns the mechanism off
  uint32_t k = 20;       // candidates per token, the token itself included; 1 ≤ k ≤ n_vocab
};

// RnmNoiseScale returns the Laplace scale b = 2·Δu/ε for a finite ε > 0.
double RnmNoiseScale(double epsilon);

// RnmSelect is the mechanism on given utilities: it adds an independent
// Laplace(0, scale) draw to each utility and returns the index of the largest
// sum (the first on an exact tie, an event of probability 0). One candidate
// returns 0 without drawing. CLLM_CHECK: utilities non-empty, scale > 0.
size_t RnmSelect(std::span<const float> utilities, double scale, RandomSource& random);

// RnmResult is the perturbed prompt and its privacy accounting.
struct RnmResult {
  std::vector<uint32_t> ids;   // one per input position
  uint32_t num_perturbed = 0;  // positions the mechanism ran at (the mask's ones)
  double epsilon_total = 0;    // num_perturbed·ε; +∞ when ε = +∞ and a position was selected
  // Positions whose id changed. For evaluation only: it says which tokens
  // are original, so it must never travel with the embeddings.
  uint32_t num_replaced = 0;
};

// ApplyRnm runs the mechanism at each position whose `perturb` byte is
// non-zero (an empty span selects every position) and copies the others.
// Candidate sets come from table.Candidates: the precomputed neighbour lists
// when the table has them (then k ≤ their length), a scan otherwise.
// Errors: kInvalidArgument (ε NaN or below kMinEpsilon, k outside [1, n_vocab], perturb
// neither empty nor ids.size() long), kOutOfRange (any id ≥ n_vocab, checked
// before anything is drawn).
SplitResult<RnmResult> ApplyRnm(const EmbeddingTable& table, std::span<const uint32_t> ids,
                                std::span<const uint8_t> perturb, const RnmOptions& options,
                                RandomSource& random);

// ---------------------------------------------------------------------------
// Which positions are perturbed. The caller builds one byte per position from
// what it knows of the tokens (ids, or the tokenizer's pieces) and may OR masks
// together. Template and special tokens are public; the caller leaves them 0.
// ---------------------------------------------------------------------------

// MaskWords marks every position whose piece overlaps an occurrence of one of
// `words` in `text` (byte ranges; case-sensitive substrings, so "Al" also
// marks "Alps"). A phrase counts as its whitespace-separated parts, each
// matched on its own ("Tom Smith" marks "Smith" alone too). `pieces` are the tokens' texts as the tokenizer decodes them;
// their concatenation must be `text`, with at most whitespace in front (the
// space SentencePiece adds). Where it is not (a tokenizer that normalizes the
// text), no span can be trusted and every position is marked: a word is
// never sent unperturbed because the pieces could not be placed. A word
// matches whatever tokens its context gives it: after a newline, a quote or a
// bracket its tokens differ from those of " word", but its bytes do not.
std::vector<uint8_t> MaskWords(std::string_view text, std::span<const std::string> pieces,
                               std::span<const std::string> words);

// MaskDigits marks the positions whose piece (the token's text as the
// tokenizer decodes it) contains an ASCII digit 0–9.
std::vector<uint8_t> MaskDigits(std::span<const std::string> pieces);

// MaskOr returns a | b position by position (CLLM_CHECK equal sizes).
std::vector<uint8_t> MaskOr(std::span<const uint8_t> a, std::span<const uint8_t> b);

}  // namespace cllm::split
