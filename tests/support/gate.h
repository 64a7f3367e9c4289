// gate.h — holds the engine scheduler's worker thread inside a callback until
// a test opens it: whatever is submitted meanwhile is queued before any
// further admission, so admission order is decided by the scheduler alone,
// not by timing. Used by the scheduler and service tests.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>

namespace cllm::testing {

class Gate {
 public:
  // Holder is what a callback calls to wait at the gate; it keeps the
  // gate's state alive however long the worker holds it.
  std::function<void()> Holder() const {
    return [s = s_] {
      std::unique_lock<std::mutex> lock(s->mu);
      s->held = true;
      s->cv.notify_all();
      s->cv.wait(lock, [&] { return s->open; });
    };
  }
  bool WaitHeld() const {
    std::unique_lock<std::mutex> lock(s_->mu);
    return s_->cv.wait_for(lock, std::chrono::seconds(20), [&] { return s_->held; });
  }
  void Open() const {
    std::lock_guard<std::mutex> lock(s_->mu);
    s_->open = true;
    s_->cv.notify_all();
  }
  // Leaving the test (also by a failed assertion) opens the gate, so the
  // worker is never left waiting and the scheduler can stop.
  ~Gate() { Open(); }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool held = false, open = false;
  };
  std::shared_ptr<State> s_ = std::make_shared<State>();
};

}  // namespace cllm::testing
