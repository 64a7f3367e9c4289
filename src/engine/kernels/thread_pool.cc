#include "engine/kernels/thread_pool.h"

#include <sched.h>

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

thread_local bool t_inside_job = false;

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads) {
  CLLM_CHECK(n_threads >= 1);
  workers_.reserve(static_cast<size_t>(n_threads - 1));
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
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

void ThreadPool::Run(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1 || t_inside_job) return fn(0, 1);
  std::unique_lock run_lock(run_mu_, std::try_to_lock);
  if (!run_lock.owns_lock()) return fn(0, 1);

  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  {
    std::lock_guard lock(mu_);
    job_ = &fn;
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();

  t_inside_job = true;
  fn(0, n_threads_);
  t_inside_job = false;

  for (int i = 0; i < kSpinIterations && pending_.load(std::memory_order_acquire) != 0; ++i) CLLM_CPU_RELAX();
  if (pending_.load(std::memory_order_acquire) != 0) {
    std::unique_lock lock(mu_);
    done_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  }
}

void ThreadPool::WorkerLoop(int index) {
  t_inside_job = true;  // a job that calls Run runs it inline
  uint64_t seen = 0;
  for (;;) {
    for (int i = 0; i < kSpinIterations && generation_.load(std::memory_order_acquire) == seen; ++i) {
      CLLM_CPU_RELAX();
    }
    const std::function<void(int, int)>* job;
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      if (stop_) return;
      seen = generation_.load(std::memory_order_acquire);
      job = job_;
    }
    (*job)(index, n_threads_);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard lock(mu_);  // pairs with the predicate check in Run
      done_.notify_one();
    }
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
  pool.Run([&](int i, int nt) {
    const int64_t b = units * i / nt * grain, e = std::min(n, units * (i + 1) / nt * grain);
    if (b < e) fn(b, e);
  });
}

}  // namespace cllm::engine
