#include "server/completion.h"

#include <algorithm>

#include "server/chat_response.h"

namespace cllm::server {

std::shared_ptr<Completion> Completion::Create(std::shared_ptr<net::ResponseWriter> writer, CompletionOptions options,
                                               Ended ended) {
  return std::shared_ptr<Completion>(new Completion(std::move(writer), std::move(options), std::move(ended)));
}

Completion::Completion(std::shared_ptr<net::ResponseWriter> writer, CompletionOptions options, Ended ended)
    : writer_(std::move(writer)), options_(std::move(options)), ended_(std::move(ended)), stops_(options_.stop) {
  if (options_.output) parser_.emplace(*options_.output);
}

void Completion::Attach(engine::SequenceRequest& sr) {
  auto self = shared_from_this();
  sr.on_token = [self](engine::TokenId id, std::string_view piece) { return self->OnToken(id, piece); };
  sr.on_done = [self](const engine::SequenceOutcome& o) { self->OnDone(o); };
  if (options_.logprobs) sr.on_logprobs = [self](const engine::StepLogprobs& s) { self->OnLogprobs(s); };
  // The writer keeps this callback until the response completes: a weak
  // reference, so a finished completion is not kept alive by it.
  // The flag reaches a sequence that is still waiting or prefilling, whose
  // on_token has not run yet.
  sr.cancelled = cancel_;
  std::weak_ptr<Completion> weak = self;
  writer_->OnClientGone([weak, cancel = cancel_] {
    cancel->store(true);
    if (auto c = weak.lock()) c->gone_ = true;
  });
}

void Completion::Begin() {
  std::lock_guard<std::mutex> lock(mu_);
  BeginLocked();
}

void Completion::BeginLocked() {
  if (begun_ || !options_.stream) return;
  begun_ = true;
  if (gone_ || !writer_->BeginStream(200, "text/event-stream")) {
    gone_ = true;
    return;
  }
  if (options_.meta.chat) Write(StreamRoleEvent(options_.meta));
}

void Completion::Write(const std::string& event) {
  if (!gone_ && !writer_->Write(event)) gone_ = true;
}

bool Completion::OnToken(engine::TokenId id, std::string_view piece) {
  std::lock_guard<std::mutex> lock(mu_);
  BeginLocked();  // the worker may get here before the handler's Begin
  if (gone_ || stops_.stopped()) return false;
  std::string marked;
  if (auto it = options_.marker_tokens.find(id); it != options_.marker_tokens.end()) {
    marked = std::string(piece) + it->second;
    piece = marked;
  }
  if (piece.empty()) return !gone_;
  if (parser_) {
    Route(parser_->Feed(piece));
  } else {
    Emit(stops_.Feed(piece));
    if (stops_.stopped()) TrimLogprobsAtStop();
  }
  return !gone_ && !stops_.stopped();
}

void Completion::Route(const OutputDelta& d) {
  Emit(d.content.empty() ? std::string() : stops_.Feed(d.content), d.reasoning);
  if (d.tool_calls.empty() || stops_.stopped() || gone_) return;
  // The content before a call is whole: what the stops held goes out first.
  Emit(stops_.Flush());
  tool_calls_ = true;
  if (!options_.stream) return reply_.Add(OutputDelta{{}, {}, d.tool_calls});
  SendHeld();
  for (const auto& call : d.tool_calls) Write(StreamToolCallEvent(options_.meta, call));
}

void Completion::OnLogprobs(const engine::StepLogprobs& step) {
  std::lock_guard<std::mutex> lock(mu_);
  if (gone_ || stops_.stopped()) return;
  LogprobEntry e{step.chosen.piece, step.chosen.logprob, {}, logprob_offset_};
  for (const auto& t : step.top) e.top.push_back({t.piece, t.logprob});
  logprob_offset_ += step.chosen.piece.size();
  logprobs_.push_back(std::move(e));
}

bool Completion::PastText(const LogprobEntry& e) const { return e.text_offset + e.token.size() > text_emitted_; }

void Completion::TrimLogprobsAtStop() {
  // The text ends before the stop sequence; a token that reaches past that
  // point is not part of the answer, so neither is its logprob (nor the
  // text it would show).
  std::erase_if(logprobs_, [&](const LogprobEntry& e) { return PastText(e); });
}

void Completion::Emit(const std::string& text, const std::string& reasoning) {
  text_emitted_ += text.size();
  if ((text.empty() && reasoning.empty()) || gone_) return;
  if (!options_.stream) {
    reply_.content += text;
    reply_.reasoning += reasoning;
    return;
  }
  held_ += text;
  held_reasoning_ += reasoning;
  if (options_.coalesce.count() == 0) return SendHeld();
  if (flush_pending_) return;
  // Each event is one write, so one TLS record, padded by the listener's
  // TLS context; the timer decides when, not the tokens.
  flush_pending_ = true;
  std::weak_ptr<Completion> weak = shared_from_this();
  writer_->After(options_.coalesce, [weak] {
    if (auto c = weak.lock()) {
      std::lock_guard<std::mutex> lock(c->mu_);
      c->flush_pending_ = false;
      if (!c->done_) c->SendHeld();
    }
  });
}

void Completion::SendHeld() {
  if (!held_reasoning_.empty()) {
    Write(StreamChatTextEvent(options_.meta, held_, held_reasoning_));
  } else if (held_.empty()) {
    return;  // logprobs of held-back tokens wait for their text
  } else if (options_.logprobs) {
    // Only the tokens whose text is all out: the stop matcher may hold a
    // token's tail back, and a stop sequence there ends the text before it.
    auto whole = logprobs_.end();
    if (!parser_) {
      whole = std::find_if(logprobs_.begin(), logprobs_.end(), [&](const LogprobEntry& e) { return PastText(e); });
    }
    std::vector<LogprobEntry> sent(logprobs_.begin(), whole);
    logprobs_.erase(logprobs_.begin(), whole);
    Write(StreamTextEventWithLogprobs(options_.meta, held_, sent));
  } else {
    Write(StreamTextEvent(options_.meta, held_));
  }
  held_.clear();
  held_reasoning_.clear();
}

void Completion::OnDone(const engine::SequenceOutcome& outcome) {
  bool gone = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    BeginLocked();
    if (parser_ && !stops_.stopped()) Route(parser_->Finish());
    if (!stops_.stopped()) Emit(stops_.Flush());
    if (options_.stream) SendHeld();
    done_ = true;
    gone = gone_;
    if (gone) {
      // Nothing more can be sent; the writer reports the failure. A
      // non-streaming writer dropped without a response answers 500 to a
      // client that is no longer there.
    } else if (outcome.finish == engine::FinishKind::kError) {
      ApiError e = MakeError(ApiErrc::kInternal, "generation failed");
      if (options_.stream) {
        Write(StreamErrorEvent(e));
        writer_->EndStream();
      } else {
        writer_->Send(HttpStatus(e.code), "application/json", ErrorBody(e));
      }
    } else {
      // A sequence cancelled by shutdown ends like a stop: its client gets
      // what was produced.
      const bool length = outcome.finish == engine::FinishKind::kLength && !stops_.stopped();
      const FinishReason finish = length ? FinishReason::kLength
                                  : tool_calls_ ? FinishReason::kToolCalls
                                                : FinishReason::kStop;
      const Usage usage{outcome.prompt_tokens, outcome.completion_tokens, outcome.cached_tokens};
      if (options_.stream) {
        Write(StreamFinishEvent(options_.meta, finish));
        if (options_.include_usage) Write(StreamUsageEvent(options_.meta, usage));
        Write(std::string(kStreamDone));
        writer_->EndStream();
      } else {
        // A plain reply keeps the plain body; reasoning or calls need the chat
        // one (which carries no logprobs: docs/server.md).
        const bool plain = reply_.reasoning.empty() && reply_.tool_calls.empty();
        writer_->Send(200, "application/json",
                      !plain              ? ChatCompletionBody(options_.meta, reply_, finish, usage)
                      : options_.logprobs ? CompletionBodyWithLogprobs(options_.meta, reply_.content, finish, usage,
                                                                       logprobs_)
                                          : CompletionBody(options_.meta, reply_.content, finish, usage));
      }
    }
  }
  if (ended_) ended_(outcome, gone);
}

}  // namespace cllm::server
