// stop_matcher.h — OpenAI `stop` sequences over streamed text.
//
// Generated text is streamed piece by piece; a stop sequence may straddle
// pieces. StopMatcher emits only text that cannot be the start of a stop
// sequence and ends the output just before the first stop sequence found.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cllm::server {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}

  // Feed appends `piece` and returns the text that is now safe to emit.
  // Once a stop sequence is found, stopped() is true, the returned text ends
  // before it, and later calls return "".
  std::string Feed(std::string_view piece);
  // Flush returns whatever is still held back (call when generation ends
  // without a stop sequence).
  std::string Flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace cllm::server
