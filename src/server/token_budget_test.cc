#include "server/token_budget.h"

#include <gtest/gtest.h>

namespace cllm::server {
namespace {

struct FakeClock {
  TokenBudget::Clock::time_point now{std::chrono::seconds(1000)};
  std::function<TokenBudget::Clock::time_point()> fn() {
    return [this] { return now; };
  }
};

TEST(TokenBudgetTest, AdmitsWithinTheBudgetAndSaysWhenEnoughReturns) {
  FakeClock clock;
  TokenBudget budget(clock.fn());
  // 600 tokens a minute: 10 a second.
  EXPECT_TRUE(budget.Admit("alice", 600, 100).admitted);
  budget.Charge("alice", 600, 400);  // its completion: 500 of 600 spent
  EXPECT_TRUE(budget.Admit("alice", 600, 100).admitted);  // exactly the rest
  auto refused = budget.Admit("alice", 600, 50);
  EXPECT_FALSE(refused.admitted);
  EXPECT_EQ(refused.retry_after_s, 5);  // 50 tokens at 10/s
  EXPECT_TRUE(budget.Admit("bob", 600, 600).admitted);  // every user has their own bucket
  clock.now += std::chrono::seconds(4);
  EXPECT_EQ(budget.Admit("alice", 600, 50).retry_after_s, 1);  // 40 back, 10 to go
  clock.now += std::chrono::seconds(1);
  EXPECT_TRUE(budget.Admit("alice", 600, 50).admitted);
}

TEST(TokenBudgetTest, DebtFromALongGenerationDelaysTheNextRequest) {
  FakeClock clock;
  TokenBudget budget(clock.fn());
  ASSERT_TRUE(budget.Admit("alice", 60, 10).admitted);
  budget.Charge("alice", 60, 110);  // 120 used of a 60-token budget: 60 in debt
  auto refused = budget.Admit("alice", 60, 10);
  EXPECT_FALSE(refused.admitted);
  EXPECT_EQ(refused.retry_after_s, 70);  // repay 60, then 10 more, at 1/s
  clock.now += std::chrono::seconds(70);
  EXPECT_TRUE(budget.Admit("alice", 60, 10).admitted);
}

TEST(TokenBudgetTest, PromptsOverTheBudgetNeedAFullBucketAndZeroIsUnlimited) {
  FakeClock clock;
  TokenBudget budget(clock.fn());
  EXPECT_TRUE(budget.Admit("alice", 60, 500).admitted);  // full bucket: admitted, 440 in debt
  EXPECT_EQ(budget.Admit("alice", 60, 500).retry_after_s, 500);  // back to full (60) from -440
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(budget.Admit("bob", 0, 1 << 20).admitted);
  // A refund (the scheduler refused the request after admission) restores the bucket.
  ASSERT_TRUE(budget.Admit("carol", 60, 60).admitted);
  budget.Charge("carol", 60, -60);
  EXPECT_TRUE(budget.Admit("carol", 60, 60).admitted);
}

}  // namespace
}  // namespace cllm::server
