#include "server/stop_matcher.h"

#include <gtest/gtest.h>

namespace cllm::server {
namespace {

std::string FeedAll(StopMatcher& m, std::initializer_list<const char*> pieces) {
  std::string out;
  for (const char* p : pieces) out += m.Feed(p);
  return out + m.Flush();
}

TEST(StopMatcherTest, NoStopsPassesEverythingThrough) {
  StopMatcher m({});
  EXPECT_EQ(m.Feed("abc"), "abc");
  EXPECT_EQ(m.Flush(), "");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcherTest, StopInsideOnePiece) {
  StopMatcher m({"END"});
  EXPECT_EQ(FeedAll(m, {"hello END world"}), "hello ");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.Feed("more"), "");
}

TEST(StopMatcherTest, StopStraddlingPiecesIsHeldBackThenCut) {
  StopMatcher m({"\n\n"});
  EXPECT_EQ(m.Feed("line\n"), "line");  // "\n" might start the stop sequence
  EXPECT_EQ(m.Feed("\nnext"), "");
  EXPECT_TRUE(m.stopped());
}

TEST(StopMatcherTest, FalseStartIsReleased) {
  StopMatcher m({"ABC"});
  EXPECT_EQ(m.Feed("xA"), "x");
  EXPECT_EQ(m.Feed("B"), "");
  EXPECT_EQ(m.Feed("D"), "ABD");
  EXPECT_EQ(m.Flush(), "");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcherTest, EarliestOfSeveralStopsWins) {
  StopMatcher m({"world", "lo"});
  EXPECT_EQ(FeedAll(m, {"hello world"}), "hel");
}

TEST(StopMatcherTest, HeldTailFlushedAtEnd) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(m.Feed("abcST"), "abc");
  EXPECT_EQ(m.Flush(), "ST");
}

}  // namespace
}  // namespace cllm::server
