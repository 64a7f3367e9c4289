#include "client/split/rnm.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "base/check.h"

namespace cllm::split {

double RnmNoiseScale(double epsilon) {
  CLLM_CHECK(std::isfinite(epsilon) && epsilon > 0);
  // Dwork & Roth, The Algorithmic Foundations of Differential Privacy, §3.3:
  // with Lap(Δ/ε) per score, Report-Noisy-Max is ε-DP when scores are
  // monotone (counts: all move the same way between neighbours). Cosine
  // utilities are not: between inputs x and x' candidate i's score can fall by
  // Δ while a rival's rises by Δ, moving i's winning threshold by 2Δ, which
  // costs e^{2Δ/b}. b = 2Δ/ε bounds that by e^ε.
  return 2.0 * kUtilitySensitivity / epsilon;
}

size_t RnmSelect(std::span<const float> utilities, double scale, RandomSource& random) {
  CLLM_CHECK(!utilities.empty());
  if (utilities.size() == 1) return 0;
  size_t best = 0;
  double best_score = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < utilities.size(); ++i) {
    // Every candidate draws its noise, the winner included: skipping draws
    // would change the distribution the privacy argument is about.
    const double score = static_cast<double>(utilities[i]) + SampleLaplace(random, scale);
    if (score > best_score) {
      best_score = score;
      best = i;
    }
  }
  return best;
}

SplitResult<RnmResult> ApplyRnm(const EmbeddingTable& table, std::span<const uint32_t> ids,
                                std::span<const uint8_t> perturb, const RnmOptions& options,
                                RandomSource& random) {
  // --- options and input, all before any randomness is drawn -------------
  if (std::isnan(options.epsilon) || options.epsilon < kMinEpsilon) {
    return MakeError(SplitErrc::kInvalidArgument,
                     "epsilon must be at least 1e-300 (or +inf for no noise)");
  }
  if (options.k == 0 || options.k > table.n_vocab()) {
    return MakeError(SplitErrc::kInvalidArgument, "k = " + std::to_string(options.k) +
                                                      " outside [1, n_vocab " +
                                                      std::to_string(table.n_vocab()) + "]");
  }
  if (table.neighbours_k() != 0 && options.k > table.neighbours_k()) {
    return MakeError(SplitErrc::kInvalidArgument,
                     "k = " + std::to_string(options.k) + " exceeds the precomputed neighbour lists (" +
                         std::to_string(table.neighbours_k()) + " per token)");
  }
  if (!perturb.empty() && perturb.size() != ids.size()) {
    return MakeError(SplitErrc::kInvalidArgument,
                     "perturb mask has " + std::to_string(perturb.size()) + " entries for " +
                         std::to_string(ids.size()) + " tokens");
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!table.Contains(ids[i])) {
      return MakeError(SplitErrc::kOutOfRange, "token id " + std::to_string(ids[i]) +
                                                   " at position " + std::to_string(i) +
                                                   " ≥ n_vocab " + std::to_string(table.n_vocab()));
    }
  }

  RnmResult result;
  result.ids.assign(ids.begin(), ids.end());
  const bool noise = std::isfinite(options.epsilon);
  const double scale = noise ? RnmNoiseScale(options.epsilon) : 0;

  // A prompt repeats tokens; their candidate sets (one full scan each, or a
  // list lookup) are computed once per call.
  std::unordered_map<uint32_t, std::pair<std::vector<uint32_t>, std::vector<float>>> candidates;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!perturb.empty() && perturb[i] == 0) continue;
    ++result.num_perturbed;
    if (!noise) continue;
    auto it = candidates.find(ids[i]);
    if (it == candidates.end()) {
      CLLM_ASSIGN_OR_RETURN(std::vector<Neighbour> near, table.Candidates(ids[i], options.k));
      std::pair<std::vector<uint32_t>, std::vector<float>> entry;
      for (const Neighbour& n : near) {
        entry.first.push_back(n.id);
        entry.second.push_back(n.cosine);
      }
      it = candidates.emplace(ids[i], std::move(entry)).first;
    }
    const size_t pick = RnmSelect(it->second.second, scale, random);
    result.ids[i] = it->second.first[pick];
    if (result.ids[i] != ids[i]) ++result.num_replaced;
  }
  if (result.num_perturbed > 0) result.epsilon_total = result.num_perturbed * options.epsilon;
  return result;
}

std::vector<uint8_t> MaskWords(std::string_view text, std::span<const std::string> pieces,
                               std::span<const std::string> words) {
  // Where each piece lies in `text`: the concatenation minus its whitespace
  // prefix must be the text itself.
  std::string joined;
  for (const std::string& p : pieces) joined += p;
  const bool aligned = joined.size() >= text.size() &&
                       std::string_view(joined).substr(joined.size() - text.size()) == text &&
                       std::all_of(joined.begin(), joined.end() - static_cast<ptrdiff_t>(text.size()),
                                   [](char c) { return c == ' ' || c == '\t' || c == '\n'; });
  if (!aligned) return std::vector<uint8_t>(pieces.size(), 1);
  const size_t shift = joined.size() - text.size();

  // Byte-wise: covered[b] = 1 when text byte b is part of an occurrence.
  // A phrase is matched part by part (each run of non-whitespace on its
  // own), so stray spaces in a line, or a phrase wrapped or spaced
  // differently in the text, still mark every word of it.
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  std::vector<uint8_t> covered(text.size(), 0);
  for (const std::string& phrase : words) {
    size_t i = 0;
    while (i < phrase.size()) {
      while (i < phrase.size() && is_space(phrase[i])) ++i;
      size_t j = i;
      while (j < phrase.size() && !is_space(phrase[j])) ++j;
      const std::string_view w = std::string_view(phrase).substr(i, j - i);
      i = j;
      if (w.empty()) continue;
      size_t filled = 0;  // covered up to here already: overlapping hits fill only what is new
      for (size_t at = text.find(w); at != std::string_view::npos; at = text.find(w, at + 1)) {
        std::fill(covered.begin() + static_cast<ptrdiff_t>(std::max(at, filled)),
                  covered.begin() + static_cast<ptrdiff_t>(at + w.size()), 1);
        filled = at + w.size();
      }
    }
  }
  std::vector<uint8_t> mask(pieces.size(), 0);
  size_t begin = 0;  // of the piece in `joined`
  for (size_t i = 0; i < pieces.size(); ++i) {
    const size_t end = begin + pieces[i].size();
    // The piece's bytes in `text` are [max(begin, shift), end) − shift.
    for (size_t b = std::max(begin, shift); b < end && mask[i] == 0; ++b) mask[i] = covered[b - shift];
    begin = end;
  }
  return mask;
}

std::vector<uint8_t> MaskDigits(std::span<const std::string> pieces) {
  std::vector<uint8_t> mask(pieces.size(), 0);
  for (size_t i = 0; i < pieces.size(); ++i) {
    mask[i] =
        std::any_of(pieces[i].begin(), pieces[i].end(), [](char c) { return c >= '0' && c <= '9'; })
            ? 1
            : 0;
  }
  return mask;
}

std::vector<uint8_t> MaskOr(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  CLLM_CHECK(a.size() == b.size());
  std::vector<uint8_t> out(a.size());
  for (size_t i = 0; i < a.size(); ++i) out[i] = (a[i] != 0 || b[i] != 0) ? 1 : 0;
  return out;
}

}  // namespace cllm::split
