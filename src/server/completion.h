// completion.h — one completion answered asynchronously.
//
// A Completion is what one request shares between three threads: the
// engine's worker (each token, then the end), a server thread running the
// writer's timer (flushing coalesced stream text) and the writer's
// client-gone callback. The handler thread builds it, hands its callbacks
// to the scheduler with the sequence and returns: no thread waits while a
// sequence is queued or generated. Everything it does happens under its own
// mutex, so the writer sees one ordered call at a time, and no writer call
// blocks (net::ResponseWriter queues bytes), so the worker never waits on a
// client.
//
// Cancellation: a client that goes away — a failed Write, or the writer's
// OnClientGone, which also covers a non-streaming request that has written
// nothing yet — makes the next token's callback return false, which ends
// the sequence at once; a sequence still waiting for a slot or prefilling
// its prompt is dropped at the scheduler's next step (its cancel flag). A
// stop sequence ends it the same way.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/serve/scheduler.h"
#include "net/server.h"
#include "server/chat_output.h"
#include "server/openai_api.h"
#include "server/stop_matcher.h"

namespace cllm::server {

struct CompletionOptions {
  ResponseMeta meta;
  bool stream = false;
  bool include_usage = false;
  std::vector<std::string> stop;
  // Streamed text is held this long after its first byte and sent as one
  // event (0: each piece at once).
  std::chrono::milliseconds coalesce{0};
  // Chat: how the reply splits into content, reasoning_content and
  // tool_calls (chat_output.h); absent, all of it is text. Stop sequences
  // apply to the content only, so they never cut a tool call.
  std::optional<OutputParserOptions> output;
  // Control tokens the parser must see as text (the scheduler's pieces leave
  // control tokens out), e.g. Mistral's [TOOL_CALLS].
  std::unordered_map<engine::TokenId, std::string> marker_tokens;
  // Each token's logprobs go with the text that carries it (the sequence's
  // top_logprobs says how many alternatives; Attach asks for them).
  bool logprobs = false;
};

class Completion : public std::enable_shared_from_this<Completion> {
 public:
  // Ended is told, on the worker thread, how the sequence ended and whether
  // the client had gone (metrics, token budgets).
  using Ended = std::function<void(const engine::SequenceOutcome& outcome, bool client_gone)>;

  static std::shared_ptr<Completion> Create(std::shared_ptr<net::ResponseWriter> writer, CompletionOptions options,
                                            Ended ended = nullptr);

  // Attach sets `sr`'s on_token and on_done to this completion's (they keep
  // it alive until the sequence ends) and cancels generation when the
  // client goes away. Call before submitting `sr`.
  void Attach(engine::SequenceRequest& sr);
  // Begin starts the response of a submitted sequence: for a stream, the
  // head (and the chat role event) at once, before the first token.
  void Begin();

 private:
  Completion(std::shared_ptr<net::ResponseWriter> writer, CompletionOptions options, Ended ended);
  bool OnToken(engine::TokenId id, std::string_view piece);
  void OnLogprobs(const engine::StepLogprobs& step);
  void OnDone(const engine::SequenceOutcome& outcome);
  // The rest hold mu_.
  void BeginLocked();
  void Route(const OutputDelta& d);  // a parser delta: reasoning, content through the stops, calls
  void Emit(const std::string& text, const std::string& reasoning = "");
  // PastText: the token reaches past the text let out so far.
  bool PastText(const LogprobEntry& e) const;
  // TrimLogprobsAtStop drops the logprobs of tokens past the end of the text.
  void TrimLogprobsAtStop();
  void SendHeld();
  void Write(const std::string& event);

  std::shared_ptr<net::ResponseWriter> writer_;
  const CompletionOptions options_;
  Ended ended_;
  std::mutex mu_;
  StopMatcher stops_;
  bool begun_ = false;
  std::atomic<bool> gone_{false};  // set without mu_: the writer may call back from inside Write
  // Set when the client goes away; the scheduler drops the sequence at its
  // next step even before the first token (SequenceRequest::cancelled).
  std::shared_ptr<std::atomic<bool>> cancel_ = std::make_shared<std::atomic<bool>>(false);
  bool done_ = false;
  bool flush_pending_ = false;  // a timer will send `held_`
  std::string held_;            // stream text waiting for its coalescing interval
  std::string held_reasoning_;  // likewise, reasoning_content
  std::optional<ChatOutputParser> parser_;
  ParsedOutput reply_;          // the whole answer, when not streaming
  bool tool_calls_ = false;     // the reply made tool calls
  std::vector<LogprobEntry> logprobs_;  // tokens not yet sent (stream) or all of them
  size_t logprob_offset_ = 0;           // bytes of the tokens so far (completions' text_offset)
  size_t text_emitted_ = 0;             // bytes of content let through the stop matcher
};

}  // namespace cllm::server
