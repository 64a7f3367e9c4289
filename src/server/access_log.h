// access_log.h — one JSON line per request, written off the I/O threads.
//
// A line says who asked what route, how it ended and how long each phase
// took — never any prompt or response text, nor anything derived from it
// (token ids, pieces): sizes and counts only (base/log.h's rule). Fields:
//
//   {"time":"2026-12-02T16:04:28.123Z","request_id":"chatcmpl-…","method":"POST",
//    "route":"/v1/chat/completions","status":200,"user":"alice","client":"127.0.0.1",
//    "prompt_tokens":12,"completion_tokens":40,"cached_tokens":0,"finish":"length",
//    "queue_wait_ms":0.2,"ttft_ms":31.5,"duration_ms":402.7,"bytes_in":180,"bytes_out":9120}
//
// Token, finish and latency fields appear for completions only;
// cached_tokens (prompt tokens from the user's prompt cache); "client_gone":true when the
// client left before the whole response was sent. Write never blocks: lines go to
// a bounded queue that one thread writes out; when the sink falls behind
// (more than kMaxQueued lines waiting) lines are dropped and counted.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "base/result.h"

namespace cllm::server {

struct AccessRecord {
  std::chrono::system_clock::time_point time;  // when the request was handled
  std::string request_id;
  std::string method;
  std::string route;   // the path, without the query
  int status = 0;      // 0: the client left before any response
  std::string user;    // the API key's user name ("": anonymous or not authenticated)
  std::string client;  // peer address
  std::optional<int> prompt_tokens, completion_tokens, cached_tokens;
  std::string finish;  // how the sequence ended (engine::FinishKindName); "" for other routes
  std::optional<double> queue_wait_ms, ttft_ms;
  double duration_ms = 0;
  uint64_t bytes_in = 0, bytes_out = 0;  // request and response bodies
  bool client_gone = false;              // the client left before the response was complete
};

// AccessLine renders `r` as one line of JSON (no newline). Bytes that are
// not UTF-8 (a hostile path) are replaced, never passed through.
std::string AccessLine(const AccessRecord& r);

class AccessLog {
 public:
  static constexpr size_t kMaxQueued = 8192;

  // Open starts a log to `target`: a file (appended to, created 0600), or
  // "-" for stderr. kIo when the file cannot be opened.
  static Result<std::unique_ptr<AccessLog>> Open(const std::string& target);
  // The destructor writes every queued line, then closes the file.
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Write queues the line of `r`; it never waits for the sink.
  void Write(const AccessRecord& r);
  uint64_t dropped() const;

 private:
  AccessLog(std::FILE* out, bool owned);
  void Run();

  std::FILE* out_;
  bool owned_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::string> queue_;
  bool stop_ = false;
  uint64_t dropped_ = 0;
  std::thread writer_;
};

}  // namespace cllm::server
