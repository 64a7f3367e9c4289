#include "engine/kernels/thread_pool.h"

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "base/check.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CLLM_CPU_RELAX() _mm_pause()
#else
#define CLLM_CPU_RELAX() std::this_thread::yield()
#endif

namespace cllm::engine {
namespace {

// About 20–50 µs of spinning (PAUSE is ~40–140 cycles depending on the
// core): longer than the gap between two kernels of one forward pass,
// short enough not to steal a shared core for long when idle.
constexpr int kSpinIterations = 4000;

constexpr int64_t kChunksPerThread = 8;

thread_local bool t_inside_job = false;

}  // namespace

constexpr int kChunkBits = 20;
constexpr uint64_t kChunkMask = (uint64_t{1} << kChunkBits) - 1;

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads) {
  CLLM_CHECK(n_threads >= 1);
  workers_.reserve(static_cast<size_t>(n_threads - 1));
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::ClaimAndRun() {
  uint64_t c = claim_.load(std::memory_order_acquire);
  for (;;) {
    const uint64_t n = (c >> kChunkBits) & kChunkMask, next = c & kChunkMask;
    if (next >= n) return;
    if (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    const int64_t total = static_cast<int64_t>(n);
    (*job_)(static_cast<int64_t>(next));
    if (chunks_done_.fetch_add(1, std::memory_order_acq_rel) + 1 == total) {
      std::lock_guard lock(mu_);  // pairs with the predicate check in Run
      done_.notify_one();
    }
    c = claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::Run(int64_t n_chunks, const std::function<void(int64_t)>& fn) {
  CLLM_CHECK(n_chunks >= 0 && static_cast<uint64_t>(n_chunks) <= kChunkMask);
  auto inline_all = [&] {
    for (int64_t c = 0; c < n_chunks; ++c) fn(c);
  };
  if (n_threads_ == 1 || n_chunks <= 1 || t_inside_job) return inline_all();
  std::unique_lock run_lock(run_mu_, std::try_to_lock);
  if (!run_lock.owns_lock()) return inline_all();

  job_ = &fn;
  chunks_done_.store(0, std::memory_order_relaxed);
  serial_ = (serial_ + 1) & ((uint64_t{1} << 24) - 1);
  claim_.store(serial_ << (2 * kChunkBits) | static_cast<uint64_t>(n_chunks) << kChunkBits,
               std::memory_order_release);
  {
    std::lock_guard lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();

  t_inside_job = true;
  ClaimAndRun();
  t_inside_job = false;

  for (int i = 0; i < kSpinIterations && chunks_done_.load(std::memory_order_acquire) != n_chunks; ++i) {
    CLLM_CPU_RELAX();
  }
  if (chunks_done_.load(std::memory_order_acquire) != n_chunks) {
    std::unique_lock lock(mu_);
    done_.wait(lock, [&] { return chunks_done_.load(std::memory_order_acquire) == n_chunks; });
  }
}

void ThreadPool::WorkerLoop() {
  t_inside_job = true;  // a job that calls Run runs it inline
  uint64_t seen = 0;
  for (;;) {
    for (int i = 0; i < kSpinIterations && generation_.load(std::memory_order_acquire) == seen; ++i) {
      CLLM_CPU_RELAX();
    }
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      if (stop_) return;
      seen = generation_.load(std::memory_order_acquire);
    }
    ClaimAndRun();
  }
}

int DefaultNumThreads() {
  if (const char* env = std::getenv("CLLM_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1 && n <= 1024) return n;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n >= 1) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

namespace {

std::mutex g_pool_mu;
std::unique_ptr<ThreadPool> g_pool;

}  // namespace

void SetNumThreads(int n) {
  std::lock_guard lock(g_pool_mu);
  g_pool.reset();
  g_pool = std::make_unique<ThreadPool>(n <= 0 ? DefaultNumThreads() : n);
}

int NumThreads() { return EnginePool().size(); }

ThreadPool& EnginePool() {
  std::lock_guard lock(g_pool_mu);
  if (!g_pool) g_pool = std::make_unique<ThreadPool>(DefaultNumThreads());
  return *g_pool;
}

void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = grain < 1 ? 1 : grain;
  const int64_t units = (n + grain - 1) / grain;
  ThreadPool& pool = EnginePool();
  if (units == 1 || pool.size() == 1) return fn(0, n);
  // A few chunks per thread: small enough to rebalance around a descheduled
  // worker, large enough that claiming (one atomic) stays negligible.
  const int64_t n_chunks = std::min<int64_t>(units, int64_t{pool.size()} * kChunksPerThread);
  pool.Run(n_chunks, [&](int64_t c) {
    const int64_t b = units * c / n_chunks * grain, e = std::min(n, units * (c + 1) / n_chunks * grain);
    if (b < e) fn(b, e);
  });
}

}  // namespace cllm::engine
