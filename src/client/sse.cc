#include "client/sse.h"

#include <nlohmann/json.hpp>

namespace cllm::client {

bool SseParser::Feed(std::string_view bytes, const std::function<void(const SseEvent&)>& on_event) {
  if (failed_) return false;
  for (char c : bytes) {
    if (after_cr_) {
      after_cr_ = false;
      if (c == '\n') continue;  // CRLF: the line already ended at CR
    }
    if (c == '\r' || c == '\n') {
      after_cr_ = c == '\r';
      Line(on_event);
      if (failed_) return false;
      continue;
    }
    // Bound the event as it grows, before the line is complete: a server
    // that never sends a newline must not make us buffer without end.
    if (++event_bytes_ > max_event_bytes_) {
      failed_ = true;
      line_.clear();
      event_ = {};
      return false;
    }
    line_.push_back(c);
  }
  return true;
}

void SseParser::Line(const std::function<void(const SseEvent&)>& on_event) {
  if (line_.empty()) {  // blank line: dispatch
    if (has_data_) on_event(event_);
    event_ = {};
    has_data_ = false;
    event_bytes_ = 0;
    return;
  }
  std::string_view line(line_);
  if (line.front() == ':') {  // comment (a keep-alive): it does not count toward the event
    event_bytes_ -= line_.size();
    line_.clear();
    return;
  }
  std::string_view field = line, value;
  if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) event_.data.push_back('\n');
    event_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    event_.type = std::string(value);
  }
  // `id` and `retry` concern reconnection, which a completion stream does
  // not do; unknown fields are ignored (as the specification says).
  line_.clear();
}

CompletionEvent ClassifyCompletionEvent(const SseEvent& event) {
  using json = nlohmann::json;
  CompletionEvent out;
  if (event.data == "[DONE]") {
    out.kind = CompletionEvent::Kind::kDone;
    return out;
  }
  const json j = json::parse(event.data, nullptr, /*allow_exceptions=*/false);
  if (event.type == "error" || (j.is_object() && j.contains("error"))) {
    out.kind = CompletionEvent::Kind::kError;
    out.error_type = "error";
    const json* e = j.is_object() && j.contains("error") ? &j["error"] : nullptr;
    if (e != nullptr && e->is_object()) {
      if (e->contains("type") && (*e)["type"].is_string()) out.error_type = (*e)["type"].get<std::string>();
      if (e->contains("message") && (*e)["message"].is_string()) out.text = (*e)["message"].get<std::string>();
    } else if (e != nullptr && e->is_string()) {
      out.text = e->get<std::string>();
    } else {
      out.text = event.data.substr(0, 200);
    }
    return out;
  }
  if (!j.is_object()) return out;
  if (j.contains("choices") && j["choices"].is_array() && !j["choices"].empty()) {
    const json& choice = j["choices"][0];
    if (!choice.is_object()) return out;
    out.kind = CompletionEvent::Kind::kText;
    if (choice.contains("delta") && choice["delta"].is_object()) {
      const json& delta = choice["delta"];
      if (delta.contains("content") && delta["content"].is_string()) out.text = delta["content"].get<std::string>();
    } else if (choice.contains("text") && choice["text"].is_string()) {
      out.text = choice["text"].get<std::string>();
    }
    return out;
  }
  if (j.contains("usage") && j["usage"].is_object()) {
    const json& u = j["usage"];
    out.kind = CompletionEvent::Kind::kUsage;
    if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer()) {
      out.completion_tokens = u["completion_tokens"].get<int64_t>();
    }
    return out;
  }
  return out;
}

}  // namespace cllm::client
