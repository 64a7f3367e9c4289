#include "client/split/neighbours.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>

#include "base/bytes.h"

namespace cllm::split {

SplitResult<std::vector<int32_t>> ComputeNeighbours(const EmbeddingTable& table, uint32_t k, unsigned threads,
                                                    const NeighbourProgress& progress) {
  const uint32_t n = table.n_vocab();
  uint64_t total = 0;
  if (k == 0 || k > n || !CheckedMul(n, k, &total) || total > (uint64_t{1} << 40)) {
    return MakeError(SplitErrc::kInvalidArgument,
                     "neighbours: k = " + std::to_string(k) + " must be in [1, n_vocab = " + std::to_string(n) + "]");
  }
  // Ids are stored as I32 (the GGUF type); a vocabulary past INT32_MAX cannot be.
  if (n > static_cast<uint32_t>(INT32_MAX)) return MakeError(SplitErrc::kShape, "neighbours: n_vocab exceeds I32");
  std::vector<int32_t> out(total);
  threads = std::clamp(threads, 1u, 64u);
  std::atomic<uint64_t> done{0};
  std::atomic<bool> failed{false};

  // Contiguous ranges: each thread writes only its own rows of `out`.
  auto work = [&](uint32_t begin, uint32_t end, bool reports) {
    for (uint32_t t = begin; t < end && !failed.load(std::memory_order_relaxed); ++t) {
      auto nb = table.Nearest(t, k);
      if (!nb.ok() || nb->size() != k) {  // cannot happen for a valid table and k; never write past the row
        failed = true;
        return;
      }
      for (uint32_t j = 0; j < k; ++j) out[uint64_t{t} * k + j] = static_cast<int32_t>((*nb)[j].id);
      const uint64_t d = done.fetch_add(1, std::memory_order_relaxed) + 1;
      if (reports && progress && (d % 256 == 0)) progress(d, n);
    }
  };
  const uint32_t per = static_cast<uint32_t>((uint64_t{n} + threads - 1) / threads);
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) {
    const uint64_t begin = std::min<uint64_t>(uint64_t{i} * per, n);
    const uint64_t end = std::min<uint64_t>(begin + per, n);
    if (begin < end) pool.emplace_back(work, static_cast<uint32_t>(begin), static_cast<uint32_t>(end), false);
  }
  work(0, std::min(per, n), true);
  for (auto& th : pool) th.join();
  if (failed) return MakeError(SplitErrc::kInvalidArgument, "neighbours: a nearest-neighbour query failed");
  if (progress) progress(n, n);
  return out;
}

}  // namespace cllm::split
