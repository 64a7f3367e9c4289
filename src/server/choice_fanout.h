// choice_fanout.h — one response for the n choices of a request (n > 1).
//
// Each choice is its own scheduler sequence answered by its own Completion,
// which writes a whole single-choice response. ChoiceFanout gives each
// Completion a writer of its own and joins what they write into the one
// response the client asked for:
//   stream:     every chunk goes out as it comes, its choice renumbered to
//               its index; the per-choice usage chunks are summed into one
//               (prompt tokens counted once, as OpenAI counts them) and one
//               [DONE] ends the stream after the last choice ends;
//   not stream: the n bodies are merged into one (choices by index, usage
//               summed) once the last choice is done; an error of any
//               choice is the answer instead.
// The client going away reaches every choice (each cancels its sequence).
// A choice writer is called under its Completion's mutex and takes the
// fanout's; the real writer's client-gone callback may run inside a Write,
// so it takes only gone_mu_ (order: Completion → mu_ → gone_mu_).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "net/server.h"
#include "server/openai_api.h"

namespace cllm::server {

class ChoiceFanout : public std::enable_shared_from_this<ChoiceFanout> {
 public:
  static std::shared_ptr<ChoiceFanout> Create(std::shared_ptr<net::ResponseWriter> writer, int n);
  // Choice returns the writer for choice `index` (0 ≤ index < n).
  std::shared_ptr<net::ResponseWriter> Choice(int index);

 private:
  class ChoiceWriter;
  ChoiceFanout(std::shared_ptr<net::ResponseWriter> writer, int n) : writer_(std::move(writer)), n_(n) {}
  bool BeginStream(int status, std::string_view content_type);
  bool Write(int index, std::string_view event);
  void EndStream();
  void Send(int index, int status, std::string_view content_type, std::string_view body);
  void OnClientGone(std::function<void()> f);
  void ClientGone();
  void Add(const Usage& u);  // under mu_

  const std::shared_ptr<net::ResponseWriter> writer_;
  const int n_;
  std::mutex mu_;
  bool begun_ = false, begun_ok_ = false, error_sent_ = false;
  int ended_ = 0;     // stream: choices that ended
  int received_ = 0;  // not stream: choices that answered
  nlohmann::json usage_chunk_;  // the last usage chunk, its usage summed over choices
  Usage usage_;     // summed over the choices (Add)
  int usages_ = 0;  // choices whose usage was added
  std::vector<nlohmann::json> bodies_;  // not stream: each choice's response, by arrival
  int error_status_ = 0;
  std::string error_type_, error_body_;
  std::mutex gone_mu_;
  bool gone_ = false;
  std::vector<std::function<void()>> gone_callbacks_;
};

}  // namespace cllm::server
