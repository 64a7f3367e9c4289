// work_gate.h — one user's large requests are prepared one at a time.
//
// Before a completion is admitted (the user's token budget, its sequence
// slots), its handler renders the template, tokenizes the prompt and
// compiles a schema on one of the server's few handler threads. For a large
// body that is real work (~1 s for 1 MB of text), and a user sending many at
// once held every handler thread while each was refused later (found by
// review). WorkGate lets each user prepare one large request at a time;
// another large one from the same user meanwhile is answered 429 at once,
// before any work. Small requests (under `large_bytes`) always pass: their
// preparation is short.
#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace cllm::server {

class WorkGate {
 public:
  explicit WorkGate(size_t large_bytes = 64 << 10) : large_bytes_(large_bytes) {}

  // Pass holds a place while it lives (none for a small request).
  class Pass {
   public:
    Pass() = default;
    Pass(Pass&& o) noexcept : gate_(o.gate_), user_(std::move(o.user_)) { o.gate_ = nullptr; }
    Pass& operator=(Pass&& o) noexcept {
      if (this != &o) {
        if (gate_ != nullptr) gate_->Leave(user_);
        gate_ = o.gate_;
        user_ = std::move(o.user_);
        o.gate_ = nullptr;
      }
      return *this;
    }
    ~Pass() {
      if (gate_ != nullptr) gate_->Leave(user_);
    }

   private:
    friend class WorkGate;
    Pass(WorkGate* gate, std::string user) : gate_(gate), user_(std::move(user)) {}
    WorkGate* gate_ = nullptr;
    std::string user_;
  };

  // Enter: false when `user` is already preparing a large request and this
  // one (of `body_bytes`) is large too.
  bool Enter(const std::string& user, size_t body_bytes, Pass* pass) {
    if (body_bytes < large_bytes_) return true;
    std::lock_guard<std::mutex> lock(mu_);
    int& n = preparing_[user];
    if (n > 0) return false;
    ++n;
    *pass = Pass(this, user);
    return true;
  }

 private:
  void Leave(const std::string& user) {
    std::lock_guard<std::mutex> lock(mu_);
    if (--preparing_[user] <= 0) preparing_.erase(user);
  }

  const size_t large_bytes_;
  std::mutex mu_;
  std::unordered_map<std::string, int> preparing_;
};

}  // namespace cllm::server
