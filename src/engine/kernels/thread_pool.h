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

  // Run calls fn(c) once for every chunk c in [0, n_chunks) and returns when
  // all calls have returned. The caller and the workers claim chunks one at
  // a time, so a worker the OS has descheduled (a shared machine) delays the
  // job by at most one chunk instead of by its whole share. A Run from
  // inside a job, or while another thread's Run is in progress, runs every
  // chunk inline. n_chunks < 2^20.
  void Run(int64_t n_chunks, const std::function<void(int64_t)>& fn);

 private:
  void WorkerLoop();
  // ClaimAndRun runs chunks of the current job until none is left.
  void ClaimAndRun();

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex run_mu_;  // one Run at a time

  // claim_ packs (job serial : 24 | n_chunks : 20 | next chunk : 20), so a
  // compare-and-swap claims a chunk only of the job it read; job_ is valid
  // while any chunk of that job is unfinished.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> chunks_done_{0};
  const std::function<void(int64_t)>* job_ = nullptr;
  uint64_t serial_ = 0;

  std::mutex mu_;  // the sleeping side of generation_ / stop_ / chunks_done_
  std::condition_variable wake_;
  std::condition_variable done_;
  std::atomic<uint64_t> generation_{0};  // bumped once per job
  bool stop_ = false;
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
