// sse.h — server-sent events (text/event-stream) as an OpenAI streaming
// client reads them.
//
// SseParser follows the WHATWG HTML "event stream interpretation" rules
// (section 9.2.6): lines end in CRLF, LF or CR; a line "field: value" (one
// optional space after the colon) sets a field; `data` lines of one event are
// joined with "\n"; a line starting with ':' is a comment (keep-alive); an
// empty line dispatches the event, and an event without data is dropped.
// Bytes arrive in arbitrary pieces (a chunk may end mid-line or between CR
// and LF). The stream is the server's, so it is bounded: an event whose text
// grows past `max_event_bytes` stops the parser (Feed returns false) instead
// of growing memory.
//
// ClassifyCompletionEvent reads one event of an OpenAI completion stream:
// the "[DONE]" sentinel, an error object, or a chunk with generated text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace cllm::client {

struct SseEvent {
  std::string type;  // the `event:` field; "" means the default type "message"
  std::string data;  // the `data:` lines joined with "\n"
};

class SseParser {
 public:
  explicit SseParser(size_t max_event_bytes = 1 << 20) : max_event_bytes_(max_event_bytes) {}
  // Feed parses `bytes` and calls `on_event` for each event they complete.
  // Returns false (and ignores all later input) once an event is over the
  // limit; the caller should treat the stream as broken.
  [[nodiscard]] bool Feed(std::string_view bytes, const std::function<void(const SseEvent&)>& on_event);
  bool failed() const { return failed_; }

 private:
  void Line(const std::function<void(const SseEvent&)>& on_event);

  size_t max_event_bytes_;
  std::string line_;        // the current line, without its terminator
  bool after_cr_ = false;   // the last byte was CR: a following LF belongs to it
  SseEvent event_;          // fields of the event being assembled
  bool has_data_ = false;   // a data line was seen (data may still be "")
  size_t event_bytes_ = 0;  // bytes of the event so far, all lines counted
  bool failed_ = false;
};

// What one event of an OpenAI completion stream means to a client.
struct CompletionEvent {
  enum class Kind {
    kText,    // a chunk: `text` is the generated piece (may be empty: role or finish chunk)
    kUsage,   // the usage chunk: completion_tokens set
    kDone,    // "[DONE]": the stream ended normally
    kError,   // {"error": {...}}: `error_type` and `text` (the message)
    kInvalid  // not JSON, or JSON without choices/usage/error
  };
  Kind kind = Kind::kInvalid;
  std::string text;
  std::string error_type;
  int64_t completion_tokens = 0;
};
// ClassifyCompletionEvent reads a chat (`choices[0].delta.content`) or text
// (`choices[0].text`) completion event. Never throws on malformed JSON.
CompletionEvent ClassifyCompletionEvent(const SseEvent& event);

}  // namespace cllm::client
