#include "server/choice_fanout.h"

#include <algorithm>

#include "server/openai_api.h"

namespace cllm::server {
namespace {

using nlohmann::json;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// ParseEvent reads the JSON of one "data: {...}\n\n" event (discarded when
// it is not one: then it is passed on unchanged).
json ParseEvent(std::string_view event) {
  constexpr std::string_view kData = "data: ";
  if (event.substr(0, kData.size()) != kData) return json(json::value_t::discarded);
  event.remove_prefix(kData.size());
  while (!event.empty() && event.back() == '\n') event.remove_suffix(1);
  return json::parse(event, nullptr, /*allow_exceptions=*/false);
}

void Renumber(json& j, int index) {
  if (!j.contains("choices") || !j["choices"].is_array()) return;
  for (auto& c : j["choices"]) c["index"] = index;
}

}  // namespace

class ChoiceFanout::ChoiceWriter : public net::ResponseWriter {
 public:
  ChoiceWriter(std::shared_ptr<ChoiceFanout> fan, int index) : fan_(std::move(fan)), index_(index) {}
  const net::ConnectionInfo& connection() const override { return fan_->writer_->connection(); }
  void AddHeader(std::string_view name, std::string_view value) override { fan_->writer_->AddHeader(name, value); }
  void Send(int status, std::string_view content_type, std::string_view body) override {
    fan_->Send(index_, status, content_type, body);
  }
  bool BeginStream(int status, std::string_view content_type) override { return fan_->BeginStream(status, content_type); }
  bool Write(std::string_view chunk) override { return fan_->Write(index_, chunk); }
  void EndStream() override { fan_->EndStream(); }
  bool client_gone() const override { return fan_->writer_->client_gone(); }
  void OnClientGone(std::function<void()> f) override { fan_->OnClientGone(std::move(f)); }
  void After(std::chrono::milliseconds delay, std::function<void()> f) override {
    fan_->writer_->After(delay, std::move(f));
  }

 private:
  std::shared_ptr<ChoiceFanout> fan_;
  int index_;
};

std::shared_ptr<ChoiceFanout> ChoiceFanout::Create(std::shared_ptr<net::ResponseWriter> writer, int n) {
  auto fan = std::shared_ptr<ChoiceFanout>(new ChoiceFanout(std::move(writer), n));
  std::weak_ptr<ChoiceFanout> weak = fan;
  fan->writer_->OnClientGone([weak] {
    if (auto f = weak.lock()) f->ClientGone();
  });
  return fan;
}

std::shared_ptr<net::ResponseWriter> ChoiceFanout::Choice(int index) {
  return std::make_shared<ChoiceWriter>(shared_from_this(), index);
}

void ChoiceFanout::OnClientGone(std::function<void()> f) {
  {
    std::lock_guard<std::mutex> lock(gone_mu_);
    if (!gone_) {
      gone_callbacks_.push_back(std::move(f));
      return;
    }
  }
  f();  // already gone: at once, as net::ResponseWriter promises
}

void ChoiceFanout::ClientGone() {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard<std::mutex> lock(gone_mu_);
    gone_ = true;
    callbacks.swap(gone_callbacks_);
  }
  for (auto& f : callbacks) f();
}

bool ChoiceFanout::BeginStream(int status, std::string_view content_type) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!begun_) {
    begun_ = true;
    begun_ok_ = writer_->BeginStream(status, content_type);
  }
  return begun_ok_ && !writer_->client_gone();
}

bool ChoiceFanout::Write(int index, std::string_view event) {
  std::lock_guard<std::mutex> lock(mu_);
  if (event == kStreamDone) return !writer_->client_gone();  // one [DONE], after the last choice
  json j = ParseEvent(event);
  if (j.is_discarded()) return writer_->Write(event);
  if (j.contains("error")) {
    if (error_sent_) return !writer_->client_gone();
    error_sent_ = true;
    return writer_->Write(event);
  }
  if (j.contains("usage") && j["choices"].is_array() && j["choices"].empty()) {
    Add(UsageOf(j));
    usage_chunk_ = std::move(j);
    return !writer_->client_gone();
  }
  Renumber(j, index);
  return writer_->Write("data: " + Dump(j) + "\n\n");
}

void ChoiceFanout::Add(const Usage& u) {
  // One prompt for every choice: counted once, and cached as far as it was
  // for every choice; the completions add up.
  usage_.cached_tokens = usages_ == 0 ? u.cached_tokens : std::min(usage_.cached_tokens, u.cached_tokens);
  usage_.prompt_tokens = u.prompt_tokens;
  usage_.completion_tokens += u.completion_tokens;
  ++usages_;
}

void ChoiceFanout::EndStream() {
  std::lock_guard<std::mutex> lock(mu_);
  if (++ended_ < n_) return;
  if (!error_sent_) {
    if (!usage_chunk_.is_null()) {
      usage_chunk_["usage"] = UsageJson(usage_);
      writer_->Write("data: " + Dump(usage_chunk_) + "\n\n");
    }
    writer_->Write(kStreamDone);
  }
  writer_->EndStream();
}

void ChoiceFanout::Send(int index, int status, std::string_view content_type, std::string_view body) {
  std::lock_guard<std::mutex> lock(mu_);
  json j = status == 200 ? json::parse(body, nullptr, false) : json(json::value_t::discarded);
  if (j.is_discarded() || !j.is_object()) {
    if (error_status_ == 0) {
      error_status_ = status == 200 ? 500 : status;
      error_type_ = std::string(content_type);
      error_body_ = status == 200 ? ErrorBody(MakeError(ApiErrc::kInternal, "a choice's response was malformed"))
                                  : std::string(body);
    }
  } else {
    Renumber(j, index);
    bodies_.push_back(std::move(j));
  }
  // Every choice ends (an engine error ends them all in the same step), so
  // the answer waits for the last: the first error, or the merged choices.
  if (++received_ < n_) return;
  if (error_status_ != 0) return writer_->Send(error_status_, error_type_, error_body_);
  std::sort(bodies_.begin(), bodies_.end(),
            [](const json& a, const json& b) { return a["choices"][0]["index"] < b["choices"][0]["index"]; });
  json merged = bodies_[0];
  merged["choices"] = json::array();
  for (const json& b : bodies_) {
    for (const auto& c : b["choices"]) merged["choices"].push_back(c);
    Add(UsageOf(b));
  }
  merged["usage"] = UsageJson(usage_);
  writer_->Send(200, "application/json", Dump(merged));
}

}  // namespace cllm::server
