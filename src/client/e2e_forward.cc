// e2e_forward.cc — E2eToWriter (e2e_forward.h).

#include "client/e2e_forward.h"

#include <nlohmann/json.hpp>

namespace cllm::client {
namespace {

constexpr size_t kMaxClearErrorBody = 64 << 10;

std::string ErrorJson(const std::string& message, const std::string& code) {
  // replace: a message cut from an upstream's text may end inside a UTF-8 sequence.
  return nlohmann::json{{"error", {{"message", message}, {"type", "cllm_e2e_error"}, {"code", code}}}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool SafeHeader(const std::string& v) { return v.find_first_of(std::string("\r\n\0", 3)) == std::string::npos; }

}  // namespace

void E2eToWriter::Head(int status, const std::string& content_type) {
  outer_status_ = status;
  encrypted_ = status == 200 && content_type.rfind(channel::e2e::kResponseContentType, 0) == 0;
}

bool E2eToWriter::Body(std::string_view bytes) {
  if (!encrypted_) {
    if (outer_body_.size() < kMaxClearErrorBody) {
      outer_body_.append(bytes.substr(0, kMaxClearErrorBody - outer_body_.size()));
    }
    return true;
  }
  if (failure_) return false;
  auto events = answer_.Feed(bytes);
  if (!events.ok()) {
    failure_ = events.detail();
    return false;
  }
  for (auto& ev : *events) {
    if (ev.head) {
      head_ = std::move(ev.head);
      event_stream_ = head_->content_type.rfind("text/event-stream", 0) == 0;
      if (event_stream_) {
        for (const auto& [k, v] : head_->headers) {
          if (SafeHeader(k) && SafeHeader(v) && k == "retry-after") w_->AddHeader("Retry-After", v);
        }
        streaming_ = true;
        client_ok_ = w_->BeginStream(head_->status, SafeHeader(head_->content_type) ? head_->content_type
                                                                                    : "text/event-stream");
      }
      continue;
    }
    if (streaming_) {
      if (client_ok_ && !ev.body.empty()) client_ok_ = w_->Write(ev.body);
    } else {
      whole_ += ev.body;
    }
  }
  return client_ok_;
}

void E2eToWriter::Deliver(const std::string& detail) {
  if (streaming_) {
    // An error event the SDK raises, then the stream is cut off (no EndStream).
    if (client_ok_) w_->Write("data: " + ErrorJson(detail, "e2e_answer_invalid") + "\n\n");
    return;
  }
  w_->Send(502, "application/json", ErrorJson(detail, "e2e_answer_invalid"));
}

std::string E2eToWriter::Complete() {
  if (!encrypted_) return "not an encrypted answer";
  if (!failure_) {
    if (auto st = answer_.Finish(); !st.ok()) failure_ = st.detail();
  }
  if (failure_) {
    Deliver(*failure_);
    return *failure_;
  }
  if (streaming_) {
    if (client_ok_) w_->EndStream();
    return "";
  }
  if (!head_) {
    Deliver("e2e_malformed: the answer had no head");
    return "no head";
  }
  for (const auto& [k, v] : head_->headers) {
    if (SafeHeader(k) && SafeHeader(v) && k == "retry-after") w_->AddHeader("Retry-After", v);
  }
  w_->Send(head_->status, SafeHeader(head_->content_type) ? head_->content_type : "application/json", whole_);
  return "";
}

void E2eToWriter::Fail(const std::string& detail) { Deliver(detail); }

std::string E2eToWriter::RelayClear(const std::string& retry_after, size_t keys_tried) {
  if (!clear_error()) {
    const std::string failure = "e2e_answer_invalid: upstream answered " + std::to_string(outer_status_) +
                                " without sealing it (a replica seals every answer to a request it opened)";
    w_->Send(502, "application/json", ErrorJson(failure, "e2e_answer_invalid"));
    return failure;
  }
  std::string code = "upstream_error", message;
  auto j = nlohmann::json::parse(outer_body_, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    if (auto e = j.find("error"); e != j.end() && e->is_object()) {
      auto c = e->find("code");
      if (c != e->end() && c->is_string()) {
        const std::string& s = c->get_ref<const std::string&>();
        if (!s.empty() && s.size() <= 64 && s.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == s.npos) {
          code = s;
        }
      }
      auto m = e->find("message");
      if (m != e->end() && m->is_string()) message = m->get<std::string>().substr(0, 512);
    }
  }
  if (message.empty()) message = "HTTP " + std::to_string(outer_status_);
  message = "from upstream, not sealed: " + message;
  if (keys_tried > 0) message += KeysTriedNote(keys_tried);
  if (!retry_after.empty() && retry_after.size() <= 9 &&
      retry_after.find_first_not_of("0123456789") == std::string::npos) {
    w_->AddHeader("Retry-After", retry_after);
  }
  w_->Send(outer_status_, "application/json", ErrorJson(message, code));
  return "";
}

}  // namespace cllm::client
