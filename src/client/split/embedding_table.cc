#include "client/split/embedding_table.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "base/bytes.h"
#include "base/check.h"

namespace cllm::split {

const char* SplitErrcName(SplitErrc code) {
  switch (code) {
    case SplitErrc::kInvalidArgument:
      return "invalid_argument";
    case SplitErrc::kShape:
      return "shape";
    case SplitErrc::kNonFinite:
      return "non_finite";
    case SplitErrc::kZeroVector:
      return "zero_vector";
    case SplitErrc::kOutOfRange:
      return "out_of_range";
  }
  return "unknown";
}

float Dot(std::span<const float> a, std::span<const float> b) {
  CLLM_CHECK(a.size() == b.size());
  float acc[8] = {};
  size_t i = 0;
  for (; i + 8 <= a.size(); i += 8) {
    for (size_t l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
  }
  float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < a.size(); ++i) sum += a[i] * b[i];
  return sum;
}

namespace {

// InverseNorm checks `v` and returns 1/‖v‖ as a finite float. The norm is
// summed in double so that neither tiny nor large (finite) entries under- or
// overflow on the way; a norm whose inverse is not a finite float (0, or a
// denormal-sized vector) has no usable direction.
SplitResult<float> InverseNorm(std::span<const float> v, const char* what, uint64_t index) {
  double sum = 0;
  for (float x : v) {
    if (!std::isfinite(x)) {
      return MakeError(SplitErrc::kNonFinite,
                       std::string(what) + " " + std::to_string(index) + " holds NaN or Inf");
    }
    sum += static_cast<double>(x) * x;
  }
  const double inv = 1.0 / std::sqrt(sum);
  if (sum == 0 || !(inv <= std::numeric_limits<float>::max())) {
    return MakeError(SplitErrc::kZeroVector,
                     std::string(what) + " " + std::to_string(index) + " has norm 0");
  }
  return static_cast<float>(inv);
}

// Better orders neighbours: higher cosine first, then smaller id.
bool Better(const Neighbour& a, const Neighbour& b) {
  if (a.cosine != b.cosine) return a.cosine > b.cosine;
  return a.id < b.id;
}

}  // namespace

SplitResult<EmbeddingTable> EmbeddingTable::Create(uint32_t n_vocab, uint32_t dim,
                                                   std::vector<float> rows) {
  uint64_t count = 0;
  if (n_vocab == 0 || dim == 0 || !CheckedMul(n_vocab, dim, &count) || count != rows.size()) {
    return MakeError(SplitErrc::kShape, "embedding matrix holds " + std::to_string(rows.size()) +
                                            " floats, expected n_vocab " + std::to_string(n_vocab) +
                                            " × dim " + std::to_string(dim) + " (both > 0)");
  }
  std::vector<float> inv_norm(n_vocab);
  for (uint32_t id = 0; id < n_vocab; ++id) {
    const std::span<const float> row(rows.data() + static_cast<size_t>(id) * dim, dim);
    CLLM_ASSIGN_OR_RETURN(inv_norm[id], InverseNorm(row, "embedding row", id));
  }
  return EmbeddingTable(n_vocab, dim, std::move(rows), std::move(inv_norm));
}

std::span<const float> EmbeddingTable::Row(uint32_t id) const {
  CLLM_CHECK(id < n_vocab_);
  return std::span<const float>(rows_.data() + static_cast<size_t>(id) * dim_, dim_);
}

SplitResult<std::vector<float>> EmbeddingTable::Gather(std::span<const uint32_t> ids) const {
  uint64_t count = 0;
  if (!CheckedMul(ids.size(), dim_, &count) || count > std::vector<float>().max_size()) {
    return MakeError(SplitErrc::kShape,
                     std::to_string(ids.size()) + " rows of " + std::to_string(dim_) + " overflow");
  }
  std::vector<float> out;
  out.reserve(count);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] >= n_vocab_) {
      return MakeError(SplitErrc::kOutOfRange, "token id " + std::to_string(ids[i]) +
                                                   " at position " + std::to_string(i) +
                                                   " ≥ n_vocab " + std::to_string(n_vocab_));
    }
    const std::span<const float> row = Row(ids[i]);
    out.insert(out.end(), row.begin(), row.end());
  }
  return out;
}

float EmbeddingTable::Cosine(uint32_t a, uint32_t b) const {
  if (a == b) return 1.0f;
  // Scale one side first: the raw dot of two large finite rows could overflow.
  const std::span<const float> ra = Row(a);
  const std::span<const float> rb = Row(b);
  double dot = 0;
  for (uint32_t i = 0; i < dim_; ++i) dot += static_cast<double>(ra[i]) * rb[i];
  const double c = dot * inv_norm_[a] * inv_norm_[b];
  return static_cast<float>(std::clamp(c, -1.0, 1.0));
}

std::vector<float> EmbeddingTable::UnitRow(std::span<const float> row, float inv_norm) const {
  // A unit query keeps every partial sum within ‖row‖ (Cauchy–Schwarz), which
  // is a finite float by construction.
  std::vector<float> unit(row.begin(), row.end());
  for (float& x : unit) x *= inv_norm;
  return unit;
}

float EmbeddingTable::ScanCosine(std::span<const float> unit, uint32_t id) const {
  return std::clamp(Dot(Row(id), unit) * inv_norm_[id], -1.0f, 1.0f);
}

std::vector<Neighbour> EmbeddingTable::TopK(std::span<const float> query, float query_inv_norm,
                                            uint32_t k, uint32_t skip) const {
  const std::vector<float> unit = UnitRow(query, query_inv_norm);

  // heap: the k best so far, worst at the front (std heap with Better as "less").
  std::vector<Neighbour> heap;
  heap.reserve(k + 1);
  for (uint32_t id = 0; id < n_vocab_ && k > 0; ++id) {
    if (id == skip) continue;
    const Neighbour n{id, ScanCosine(unit, id)};
    if (heap.size() < k) {
      heap.push_back(n);
      std::push_heap(heap.begin(), heap.end(), Better);
    } else if (Better(n, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), Better);
      heap.back() = n;
      std::push_heap(heap.begin(), heap.end(), Better);
    }
  }
  std::sort(heap.begin(), heap.end(), Better);
  return heap;
}

SplitResult<std::vector<Neighbour>> EmbeddingTable::Nearest(uint32_t id, uint32_t k) const {
  if (id >= n_vocab_) {
    return MakeError(SplitErrc::kOutOfRange,
                     "token id " + std::to_string(id) + " ≥ n_vocab " + std::to_string(n_vocab_));
  }
  if (k == 0 || k > n_vocab_) {
    return MakeError(
        SplitErrc::kInvalidArgument,
        "k = " + std::to_string(k) + " outside [1, n_vocab " + std::to_string(n_vocab_) + "]");
  }
  std::vector<Neighbour> out;
  out.reserve(k);
  out.push_back(Neighbour{id, 1.0f});
  std::vector<Neighbour> rest = TopK(Row(id), inv_norm_[id], k - 1, id);
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

SplitResult<std::vector<Neighbour>> EmbeddingTable::Nearest(std::span<const float> vector,
                                                            uint32_t k) const {
  if (vector.size() != dim_) {
    return MakeError(SplitErrc::kShape, "vector of length " + std::to_string(vector.size()) +
                                            ", expected dim " + std::to_string(dim_));
  }
  if (k == 0 || k > n_vocab_) {
    return MakeError(
        SplitErrc::kInvalidArgument,
        "k = " + std::to_string(k) + " outside [1, n_vocab " + std::to_string(n_vocab_) + "]");
  }
  CLLM_ASSIGN_OR_RETURN(const float inv, InverseNorm(vector, "query vector", 0));
  return TopK(vector, inv, k, n_vocab_);
}

SplitResult<Ok> EmbeddingTable::SetNeighbours(uint32_t k, std::vector<uint32_t> lists) {
  if (k == 0) return MakeError(SplitErrc::kInvalidArgument, "neighbour lists of length 0");
  uint64_t count = 0;
  if (!CheckedMul(n_vocab_, k, &count) || count != lists.size()) {
    return MakeError(SplitErrc::kShape, "neighbour lists hold " + std::to_string(lists.size()) +
                                            " ids, expected n_vocab " + std::to_string(n_vocab_) +
                                            " × k " + std::to_string(k));
  }
  std::vector<uint32_t> sorted(k);
  for (uint32_t id = 0; id < n_vocab_; ++id) {
    const uint32_t* row = lists.data() + static_cast<size_t>(id) * k;
    for (uint32_t j = 0; j < k; ++j) {
      if (row[j] >= n_vocab_) {
        return MakeError(SplitErrc::kOutOfRange, "neighbour list of token " + std::to_string(id) +
                                                     " names id " + std::to_string(row[j]) +
                                                     " ≥ n_vocab " + std::to_string(n_vocab_));
      }
    }
    // The token heads its own candidate set (Nearest's contract): RNM must
    // be able to keep it.
    if (row[0] != id) {
      return MakeError(SplitErrc::kInvalidArgument,
                       "neighbour list of token " + std::to_string(id) + " does not start with it");
    }
    sorted.assign(row, row + k);
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
      return MakeError(SplitErrc::kInvalidArgument,
                       "neighbour list of token " + std::to_string(id) + " names an id twice");
    }
  }
  neighbours_k_ = k;
  neighbours_ = std::move(lists);
  return OkStatus();
}

SplitResult<std::vector<Neighbour>> EmbeddingTable::Candidates(uint32_t id, uint32_t k) const {
  if (neighbours_k_ == 0) return Nearest(id, k);
  if (id >= n_vocab_) {
    return MakeError(SplitErrc::kOutOfRange,
                     "token id " + std::to_string(id) + " ≥ n_vocab " + std::to_string(n_vocab_));
  }
  if (k == 0 || k > neighbours_k_) {
    return MakeError(SplitErrc::kInvalidArgument,
                     "k = " + std::to_string(k) + " outside [1, " + std::to_string(neighbours_k_) +
                         "] (the length of the precomputed neighbour lists)");
  }
  const std::vector<float> unit = UnitRow(Row(id), inv_norm_[id]);
  const uint32_t* row = neighbours_.data() + static_cast<size_t>(id) * neighbours_k_;
  std::vector<Neighbour> out;
  out.reserve(k);
  out.push_back(Neighbour{id, 1.0f});
  for (uint32_t j = 1; j < k; ++j) out.push_back(Neighbour{row[j], ScanCosine(unit, row[j])});
  return out;
}

}  // namespace cllm::split
