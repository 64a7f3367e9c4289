// thread_pool.h — the engine's worker threads, created once.
//
// Kernels split their work by output rows (MatMul) or heads (attention) and
// hand it to Run; the calling thread takes part as worker 0. Workers spin
// briefly for the next job before sleeping, because a forward pass issues
// jobs microseconds apart and a futex wake-up costs more than the job gap.
// Results never depend on the number of threads: every output element is
// computed by exactly one worker with the same arithmetic.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cllm::engine {

class ThreadPool {
 public:
  // ThreadPool starts n_threads - 1 workers (n_threads >= 1).
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Run calls fn(i, n) once for every i in [0, n), n = size(), concurrently,
  // and returns when all calls have returned. The caller runs i = 0. A Run
  // from inside a job, or while another thread's Run is in progress, runs
  // fn(0, 1) inline (same results: work splits never change arithmetic).
  void Run(const std::function<void(int, int)>& fn);

 private:
  void WorkerLoop(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex run_mu_;  // one Run at a time

  std::mutex mu_;  // guards the sleeping side of generation_ / stop_
  std::condition_variable wake_;
  std::condition_variable done_;
  std::atomic<uint64_t> generation_{0};  // bumped once per job
  std::atomic<int> pending_{0};          // workers still running the job
  bool stop_ = false;
  const std::function<void(int, int)>* job_ = nullptr;
};

// DefaultNumThreads is CLLM_THREADS when set (>= 1), else the CPUs this
// process may run on (sched_getaffinity), else hardware_concurrency.
int DefaultNumThreads();

// SetNumThreads replaces the engine-wide pool (n <= 0: the default). Call it
// while no forward pass runs (start-up, tests, benchmarks).
void SetNumThreads(int n);
int NumThreads();

// EnginePool is the engine-wide pool, created with DefaultNumThreads() on
// first use.
ThreadPool& EnginePool();

// ParallelFor splits [0, n) into contiguous ranges, one per worker, and calls
// fn(begin, end) for each non-empty range. `grain` rounds range boundaries to
// a multiple (e.g. rows per tile).
void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace cllm::engine
