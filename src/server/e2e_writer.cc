#include "server/e2e_writer.h"

#include <algorithm>
#include <cctype>

#include "base/log.h"

namespace cllm::server {

namespace e2e = channel::e2e;

void E2eWriter::AddHeader(std::string_view name, std::string_view value) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  headers_.emplace_back(std::move(lower), std::string(value));
}

bool E2eWriter::SealHead(int status, std::string_view content_type, Bytes& out) {
  e2e::ResponseHead head{status, std::string(content_type), std::move(headers_)};
  headers_.clear();
  const std::string text = e2e::EncodeResponseHead(head);
  auto frame = sealer_.Seal(AsBytes(text), /*final=*/false);
  if (!frame.ok()) {
    log::error("e2e response head: {}", frame.detail());
    return false;
  }
  out.insert(out.end(), frame->begin(), frame->end());
  return true;
}

bool E2eWriter::SealFrames(std::string_view data, bool final, Bytes& out) {
  do {
    const size_t n = std::min(data.size(), e2e::kMaxFramePlaintext);
    const bool last = n == data.size();
    auto frame = sealer_.Seal(AsBytes(data.substr(0, n)), final && last);
    if (!frame.ok()) {
      log::error("e2e response frame: {}", frame.detail());
      return false;
    }
    out.insert(out.end(), frame->begin(), frame->end());
    data.remove_prefix(n);
  } while (!data.empty());
  return true;
}

void E2eWriter::Send(int status, std::string_view content_type, std::string_view body) {
  std::lock_guard<std::mutex> lock(mu_);
  Bytes out;
  if (!SealHead(status, content_type, out) || !SealFrames(body, /*final=*/true, out)) {
    // Nothing sealed can be sent: the client sees a 500 from the dropped
    // writer rather than a response it could mistake for complete.
    outer_->Send(500, "application/json", R"({"error":{"message":"sealing failed","type":"server_error",)"
                                          R"("param":null,"code":"e2e_internal"}})");
    return;
  }
  outer_->Send(200, e2e::kResponseContentType, AsChars(out));
}

bool E2eWriter::BeginStream(int status, std::string_view content_type) {
  std::lock_guard<std::mutex> lock(mu_);
  Bytes out;
  if (!SealHead(status, content_type, out)) return false;
  if (!outer_->BeginStream(200, e2e::kResponseContentType)) return false;
  return outer_->Write(AsChars(out));
}

bool E2eWriter::Write(std::string_view chunk) {
  std::lock_guard<std::mutex> lock(mu_);
  Bytes out;
  if (!SealFrames(chunk, /*final=*/false, out)) return false;
  return outer_->Write(AsChars(out));
}

void E2eWriter::EndStream() {
  std::lock_guard<std::mutex> lock(mu_);
  Bytes out;
  // Without the final frame the client reports the stream truncated, which
  // is the truth when sealing fails here.
  if (SealFrames({}, /*final=*/true, out)) outer_->Write(AsChars(out));
  outer_->EndStream();
}

}  // namespace cllm::server
