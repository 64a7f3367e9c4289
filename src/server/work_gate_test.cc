// WorkGate: one large request per user in preparation; small ones and other
// users pass; a place is given back when its pass ends.
#include "server/work_gate.h"

#include <gtest/gtest.h>

namespace cllm::server {
namespace {

TEST(WorkGateTest, OneLargeRequestPerUserAtATime) {
  WorkGate gate(1000);
  WorkGate::Pass alice;
  ASSERT_TRUE(gate.Enter("alice", 5000, &alice));
  WorkGate::Pass second;
  EXPECT_FALSE(gate.Enter("alice", 5000, &second));
  WorkGate::Pass small;
  EXPECT_TRUE(gate.Enter("alice", 999, &small));  // small: always passes
  WorkGate::Pass bob;
  EXPECT_TRUE(gate.Enter("bob", 5000, &bob));
  {
    WorkGate::Pass moved = std::move(alice);  // the place moves with the pass
    EXPECT_FALSE(gate.Enter("alice", 5000, &second));
  }
  EXPECT_TRUE(gate.Enter("alice", 5000, &second));  // given back when the pass ended
}

}  // namespace
}  // namespace cllm::server
