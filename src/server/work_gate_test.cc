// WorkGate: one large request per user in preparation; small ones and other
// users pass; a place is given back when its pass ends.
#include "server/work_gate.h"

#include <gtest/gtest.h>

namespace cllm::server {
namespace {

TEST(WorkGateTest, OneLargeRequestPerUserAtATime) {
  WorkGate gate(1000);
  auto alice = gate.Enter("alice", 5000);
  ASSERT_TRUE(alice);
  EXPECT_FALSE(gate.Enter("alice", 5000));
  EXPECT_TRUE(gate.Enter("alice", 999));  // small: always passes
  auto bob = gate.Enter("bob", 5000);
  EXPECT_TRUE(bob);
  {
    WorkGate::Pass moved = std::move(*alice);  // the place moves with the pass
    alice.reset();
    EXPECT_FALSE(gate.Enter("alice", 5000));
  }
  EXPECT_TRUE(gate.Enter("alice", 5000));  // given back when the pass ended
}

}  // namespace
}  // namespace cllm::server
