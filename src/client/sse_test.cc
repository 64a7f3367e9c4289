#include "client/sse.h"

#include <gtest/gtest.h>

#include <vector>

namespace cllm::client {
namespace {

std::vector<SseEvent> ParseAll(SseParser& p, const std::vector<std::string>& pieces, bool* ok = nullptr) {
  std::vector<SseEvent> out;
  bool all_ok = true;
  for (const auto& piece : pieces) all_ok = p.Feed(piece, [&](const SseEvent& e) { out.push_back(e); }) && all_ok;
  if (ok != nullptr) *ok = all_ok;
  return out;
}

TEST(SseParserTest, SplitsEventsAtBlankLines) {
  SseParser p;
  auto events = ParseAll(p, {"data: {\"a\":1}\n\ndata: [DONE]\n\n"});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].data, "{\"a\":1}");
  EXPECT_EQ(events[1].data, "[DONE]");
}

TEST(SseParserTest, HandlesEveryLineEndingAndArbitrarySplits) {
  const std::string stream = "data: one\r\n\r\ndata:two\r\rdata: three\n\n";
  // Every split point, including between CR and LF.
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    SseParser p;
    auto events = ParseAll(p, {stream.substr(0, cut), stream.substr(cut)});
    ASSERT_EQ(events.size(), 3u) << "cut at " << cut;
    EXPECT_EQ(events[0].data, "one");
    EXPECT_EQ(events[1].data, "two");  // no space after the colon: nothing to strip
    EXPECT_EQ(events[2].data, "three");
  }
}

TEST(SseParserTest, JoinsDataLinesAndKeepsTheEventType) {
  SseParser p;
  auto events = ParseAll(p, {": keep-alive\n\nevent: error\ndata: a\ndata:  b\nid: 7\nretry: 10\n\n"});
  ASSERT_EQ(events.size(), 1u);  // the comment-only block has no data: dropped
  EXPECT_EQ(events[0].type, "error");
  EXPECT_EQ(events[0].data, "a\n b");  // only the first space after the colon is stripped
}

TEST(SseParserTest, AnEventWithoutATerminatingBlankLineIsNotDispatched) {
  SseParser p;
  EXPECT_TRUE(ParseAll(p, {"data: partial\n"}).empty());
}

TEST(SseParserTest, StopsAtAnOversizedEvent) {
  SseParser p(64);
  bool ok = true;
  auto events = ParseAll(p, {"data: " + std::string(100, 'x'), "\n\ndata: later\n\n"}, &ok);
  EXPECT_FALSE(ok);
  EXPECT_TRUE(p.failed());
  EXPECT_TRUE(events.empty());
  // Comments between events do not add up to the limit.
  SseParser q(64);
  std::string keepalives;
  for (int i = 0; i < 20; ++i) keepalives += ": ping\n";
  EXPECT_EQ(ParseAll(q, {keepalives + "data: x\n\n"}).size(), 1u);
  EXPECT_FALSE(q.failed());
}

TEST(SseParserTest, ClassifiesOpenAiCompletionEvents) {
  using Kind = CompletionEvent::Kind;
  auto c = [](std::string data, std::string type = "") { return ClassifyCompletionEvent({std::move(type), std::move(data)}); };
  auto text = c(R"({"choices":[{"index":0,"delta":{"content":"Hi"}}]})");
  EXPECT_EQ(text.kind, Kind::kText);
  EXPECT_EQ(text.text, "Hi");
  EXPECT_EQ(c(R"({"choices":[{"text":"yo"}]})").text, "yo");
  EXPECT_EQ(c(R"({"choices":[{"delta":{"role":"assistant"}}]})").kind, Kind::kText);
  EXPECT_EQ(c("[DONE]").kind, Kind::kDone);
  auto usage = c(R"({"choices":[],"usage":{"completion_tokens":12}})");
  EXPECT_EQ(usage.kind, Kind::kUsage);
  EXPECT_EQ(usage.completion_tokens, 12);
  auto err = c(R"({"error":{"message":"queue full","type":"rate_limit_error"}})");
  EXPECT_EQ(err.kind, Kind::kError);
  EXPECT_EQ(err.error_type, "rate_limit_error");
  EXPECT_EQ(err.text, "queue full");
  EXPECT_EQ(c("boom", "error").kind, Kind::kError);
  // Hostile shapes are invalid, never an exception.
  for (const char* bad : {"not json", "[]", R"({"choices":[1]})", R"({"choices":[{"delta":{"content":5}}]})",
                          R"({"usage":{"completion_tokens":"x"}})", R"({"error":7})"}) {
    EXPECT_NO_THROW(c(bad)) << bad;
  }
  EXPECT_EQ(c("not json").kind, Kind::kInvalid);
  EXPECT_EQ(c(R"({"choices":[1]})").kind, Kind::kInvalid);
}

}  // namespace
}  // namespace cllm::client
