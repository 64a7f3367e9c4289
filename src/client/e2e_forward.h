// e2e_forward.h — `cllm proxy --e2e`: one sealed answer relayed to a local
// client (upstream_pool.h calls it; the sealing is e2e_session.h).
//
// The outer response is either the sealed answer (200,
// application/cllm-e2e-response) or a clear error from the replica or a
// proxy before it (e2e_key_unknown, 502 …). A sealed answer is opened frame
// by frame: its head decides whether the local client gets a stream (one
// event per frame, as it arrives) or a whole response (sent once the final
// frame opened). A frame that fails to open, or an answer that ends without
// its final frame, is never passed on as if complete: a stream gets an error
// event and is cut off, a whole response becomes a 502.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "client/e2e_session.h"
#include "net/server.h"

namespace cllm::client {

class E2eToWriter {
 public:
  E2eToWriter(std::shared_ptr<net::ResponseWriter> writer, E2eAnswer answer)
      : w_(std::move(writer)), answer_(std::move(answer)) {}

  // Head takes the outer response head.
  void Head(int status, const std::string& content_type);
  // Body takes outer body bytes; false: stop reading (failure, or the local
  // client left).
  bool Body(std::string_view bytes);

  bool encrypted() const { return encrypted_; }
  bool streaming() const { return streaming_; }  // the local client's stream has begun
  int outer_status() const { return outer_status_; }
  const std::string& outer_body() const { return outer_body_; }
  // Complete finishes a response whose outer exchange ended normally: sends
  // the whole answer, ends the stream, or reports the failure. Returns the
  // failure detail ("" when delivered).
  std::string Complete();
  // Fail reports a broken exchange (connection lost mid-answer) the same way.
  void Fail(const std::string& detail);
  // RelayClear answers the local client for an outer response that was not
  // sealed. Only an error can be clear (a replica that opened the request
  // seals its answer, whatever its status): a 4xx/5xx is passed on as an
  // error of ours — the same status, its code if well-formed, its message
  // marked as not sealed, `keys_tried` > 0 noted — never the upstream's
  // bytes or content type; anything else is a forgery on the path, answered
  // 502 e2e_answer_invalid. Returns the failure detail ("" for an error
  // passed on).
  std::string RelayClear(const std::string& retry_after, size_t keys_tried);
  // clear_error: the outer response, not sealed, is an error (4xx/5xx), the
  // only kind RelayClear passes on.
  bool clear_error() const { return outer_status_ >= 400 && outer_status_ <= 599; }

 private:
  void Deliver(const std::string& detail);

  std::shared_ptr<net::ResponseWriter> w_;
  E2eAnswer answer_;
  bool encrypted_ = false, streaming_ = false, event_stream_ = false, client_ok_ = true;
  int outer_status_ = 0;
  std::string outer_body_;
  std::optional<channel::e2e::ResponseHead> head_;
  std::string whole_;  // a non-streamed answer's body
  std::optional<std::string> failure_;
};

}  // namespace cllm::client
