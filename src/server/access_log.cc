#include "server/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <vector>

namespace cllm::server {
namespace {

std::string UtcMillis(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t s = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[96];  // room for any int the compiler cannot rule out
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

// Milliseconds to 0.1 ms: finer is noise, and shorter lines.
double Round(double ms) { return static_cast<double>(static_cast<int64_t>(ms * 10 + 0.5)) / 10; }

}  // namespace

std::string AccessLine(const AccessRecord& r) {
  nlohmann::ordered_json j;
  j["time"] = UtcMillis(r.time);
  j["request_id"] = r.request_id;
  j["method"] = r.method;
  j["route"] = r.route;
  j["status"] = r.status;
  j["user"] = r.user;
  j["client"] = r.client;
  if (r.prompt_tokens) j["prompt_tokens"] = *r.prompt_tokens;
  if (r.completion_tokens) j["completion_tokens"] = *r.completion_tokens;
  if (r.cached_tokens) j["cached_tokens"] = *r.cached_tokens;
  if (!r.finish.empty()) j["finish"] = r.finish;
  if (r.queue_wait_ms) j["queue_wait_ms"] = Round(*r.queue_wait_ms);
  if (r.ttft_ms) j["ttft_ms"] = Round(*r.ttft_ms);
  j["duration_ms"] = Round(r.duration_ms);
  j["bytes_in"] = r.bytes_in;
  j["bytes_out"] = r.bytes_out;
  if (r.client_gone) j["client_gone"] = true;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<std::unique_ptr<AccessLog>> AccessLog::Open(const std::string& target) {
  if (target == "-") return std::unique_ptr<AccessLog>(new AccessLog(stderr, false));
  // 0600: the log names users and their clients' addresses.
  int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return MakeError(Errc::kIo, "access log " + target + ": " + std::strerror(errno));
  std::FILE* f = ::fdopen(fd, "a");
  if (f == nullptr) {
    ::close(fd);
    return MakeError(Errc::kIo, "access log " + target + ": " + std::strerror(errno));
  }
  return std::unique_ptr<AccessLog>(new AccessLog(f, true));
}

AccessLog::AccessLog(std::FILE* out, bool owned) : out_(out), owned_(owned), writer_([this] { Run(); }) {}

AccessLog::~AccessLog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  writer_.join();
  if (owned_) std::fclose(out_);
}

void AccessLog::Write(const AccessRecord& r) {
  std::string line = AccessLine(r);
  line += '\n';
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= kMaxQueued) {
      ++dropped_;
      return;
    }
    queue_.push_back(std::move(line));
  }
  wake_.notify_one();
}

uint64_t AccessLog::dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

void AccessLog::Run() {
  std::vector<std::string> batch;
  for (;;) {
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
      queue_.clear();
      stopping = stop_;
    }
    // Only this thread waits on the file (a slow disk, a full pipe).
    for (const std::string& line : batch) std::fwrite(line.data(), 1, line.size(), out_);
    if (!batch.empty()) std::fflush(out_);
    batch.clear();
    if (stopping) return;
  }
}

}  // namespace cllm::server
