// work_gate.h — one user's large requests are prepared one at a time.
//
// Before a completion is admitted (the user's token budget, its sequence
// slots), its handler renders the template, tokenizes the prompt and
// compiles a schema on one of the server's few handler threads. For a large
// body that is real work, and a user sending many at once held every
// handler thread while each was refused later (found by review). WorkGate lets each user prepare one large request at a time;
// another large one from the same user meanwhile is answered 429 at once,
// before any work. Small requests (under `large_bytes`) always pass: their
// preparation is short.
#pragma once

#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>

namespace cllm::server {

class WorkGate {
 public:
  explicit WorkGate(size_t large_bytes = 64 << 10) : large_bytes_(large_bytes) {}

  // Pass holds the user's place while it lives (none for a small request).
  class Pass {
   public:
    Pass(Pass&& o) noexcept : gate_(std::exchange(o.gate_, nullptr)), user_(std::move(o.user_)) {}
    Pass& operator=(Pass&&) = delete;
    ~Pass() {
      if (gate_ != nullptr) gate_->Leave(user_);
    }

   private:
    friend class WorkGate;
    Pass(WorkGate* gate, std::string user) : gate_(gate), user_(std::move(user)) {}
    WorkGate* gate_;
    std::string user_;
  };

  // Enter: nothing when `user` is already preparing a large request and this
  // one (of `body_bytes`) is large too.
  std::optional<Pass> Enter(const std::string& user, size_t body_bytes) {
    if (body_bytes < large_bytes_) return Pass(nullptr, "");
    std::lock_guard<std::mutex> lock(mu_);
    if (!preparing_.insert(user).second) return std::nullopt;
    return Pass(this, user);
  }

 private:
  void Leave(const std::string& user) {
    std::lock_guard<std::mutex> lock(mu_);
    preparing_.erase(user);
  }

  const size_t large_bytes_;
  std::mutex mu_;
  std::unordered_set<std::string> preparing_;  // users preparing a large request
};

}  // namespace cllm::server
