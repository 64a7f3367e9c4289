#include "server/token_budget.h"

#include <algorithm>
#include <cmath>

namespace cllm::server {

TokenBudget::TokenBudget(std::function<Clock::time_point()> clock)
    : clock_(clock ? std::move(clock) : [] { return Clock::now(); }) {}

TokenBudget::Bucket& TokenBudget::Refilled(const std::string& user, int64_t per_minute, Clock::time_point now) {
  const double capacity = static_cast<double>(per_minute);
  auto [it, fresh] = users_.try_emplace(user, Bucket{capacity, now});
  Bucket& b = it->second;
  if (!fresh && now > b.updated) {
    const double seconds = std::chrono::duration<double>(now - b.updated).count();
    b.tokens = std::min(capacity, b.tokens + seconds * capacity / 60.0);
  }
  b.tokens = std::min(b.tokens, capacity);  // the budget may have been lowered since
  b.updated = std::max(b.updated, now);
  return b;
}

TokenBudget::Decision TokenBudget::Admit(const std::string& user, int64_t per_minute, int64_t prompt_tokens) {
  if (per_minute <= 0) return {true, 0};
  std::lock_guard<std::mutex> lock(mu_);
  Bucket& b = Refilled(user, per_minute, clock_());
  const double need = static_cast<double>(std::min(prompt_tokens, per_minute));
  if (b.tokens >= need) {
    b.tokens -= static_cast<double>(prompt_tokens);
    return {true, 0};
  }
  const double rate = static_cast<double>(per_minute) / 60.0;  // tokens per second
  const double wait = std::ceil((need - b.tokens) / rate);
  return {false, static_cast<int>(std::clamp(wait, 1.0, 86400.0))};
}

void TokenBudget::Charge(const std::string& user, int64_t per_minute, int64_t tokens) {
  if (per_minute <= 0 || tokens == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  Bucket& b = Refilled(user, per_minute, clock_());
  b.tokens = std::min(static_cast<double>(per_minute), b.tokens - static_cast<double>(tokens));
}

}  // namespace cllm::server
