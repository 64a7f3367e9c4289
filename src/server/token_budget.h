// token_budget.h — tokens per minute, per user.
//
// Each user has a bucket holding up to `per_minute` tokens that refills
// continuously (per_minute / 60 each second). A request is admitted when the
// bucket holds what it may cost — its prompt tokens and max_tokens, per
// choice (more than the whole budget needs a full bucket) — which is taken
// at once; what it did not generate is given back when it ends. So
// concurrent requests cannot all spend the same budget, and a request larger
// than the budget takes the bucket below zero: the user's next request then
// waits until the debt is repaid. A refusal says how many
// seconds until enough budget returns (the Retry-After header). Buckets are
// per user id, and user ids come from the API keys file, so the table is
// bounded by it. The clock is injected so tests run without sleeping.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

namespace cllm::server {

class TokenBudget {
 public:
  using Clock = std::chrono::steady_clock;

  explicit TokenBudget(std::function<Clock::time_point()> clock = nullptr);

  struct Decision {
    bool admitted = false;
    int retry_after_s = 0;  // when refused: seconds until the bucket holds enough (at least 1)
  };
  // Admit takes `prompt_tokens` (what the request may cost) from `user`'s
  // bucket of `per_minute` tokens when it holds them; per_minute 0 means no
  // limit (always admitted).
  Decision Admit(const std::string& user, int64_t per_minute, int64_t prompt_tokens);
  // Charge takes `tokens` more; a negative count gives tokens back (the
  // unused part of a reservation, or a request admitted here but refused by
  // the scheduler).
  void Charge(const std::string& user, int64_t per_minute, int64_t tokens);

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point updated;
  };
  Bucket& Refilled(const std::string& user, int64_t per_minute, Clock::time_point now);  // holds mu_

  std::function<Clock::time_point()> clock_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> users_;
};

}  // namespace cllm::server
