// e2e_writer.h — the response writer of an encrypted request: whatever the
// service answers is sealed into e2e frames (channel/e2e_response.h) before
// it reaches the connection.
//
// The outer response is always HTTP 200 application/cllm-e2e-response; the
// inner status, content type and headers (Retry-After) travel in the sealed
// head frame. Send → one outer body: nonce ‖ head ‖ body frame(s), the last
// final (a body over 1 MiB is split). BeginStream → the outer stream starts
// with nonce ‖ head; each Write (one SSE event) is one frame in one outer
// chunk; EndStream adds an empty final frame. A stream dropped without
// EndStream leaves the client without a final frame: it reports "truncated".
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "channel/e2e_response.h"
#include "net/server.h"

namespace cllm::server {

class E2eWriter : public net::ResponseWriter {
 public:
  E2eWriter(std::shared_ptr<net::ResponseWriter> outer, channel::e2e::ResponseSealer sealer)
      : outer_(std::move(outer)), sealer_(std::move(sealer)) {}

  // outer is the writer the sealed bytes go to (ObservedWriter::Of looks
  // through this writer to it).
  const std::shared_ptr<net::ResponseWriter>& outer() const { return outer_; }

  const net::ConnectionInfo& connection() const override { return outer_->connection(); }
  // AddHeader keeps the header for the sealed head (the router never sees it).
  void AddHeader(std::string_view name, std::string_view value) override;
  void Send(int status, std::string_view content_type, std::string_view body) override;
  bool BeginStream(int status, std::string_view content_type) override;
  bool Write(std::string_view chunk) override;
  void EndStream() override;
  bool client_gone() const override { return outer_->client_gone(); }
  void OnClientGone(std::function<void()> f) override { outer_->OnClientGone(std::move(f)); }
  void After(std::chrono::milliseconds delay, std::function<void()> f) override {
    outer_->After(delay, std::move(f));
  }

 private:
  // SealFrames appends the frames of `data` (split at the frame limit; an
  // empty `data` is one empty frame) to `out`; the last is final if `final`.
  bool SealFrames(std::string_view data, bool final, Bytes& out);
  bool SealHead(int status, std::string_view content_type, Bytes& out);

  const std::shared_ptr<net::ResponseWriter> outer_;
  std::mutex mu_;  // frames are numbered: seal and hand over in one order
  channel::e2e::ResponseSealer sealer_;
  std::vector<std::pair<std::string, std::string>> headers_;
};

}  // namespace cllm::server
