// fake_writer.h — net::ResponseWriters for tests of handlers without a
// network.
//
// FakeWriterBase: the parts a test that only records a response does not
// care about — a fixed ConnectionInfo, recorded headers, a client that
// never leaves, After run at once.
//
// FakeWriter records one whole response and plays the client: Send,
// BeginStream, Write and EndStream are recorded; GoClientGone plays a
// client that disconnects (callbacks run on the calling thread); After's
// callbacks wait until the test fires them with RunTimers, so coalescing is
// tested without sleeping. on_write runs (outside the lock) after every
// Write; fail_writes_after makes the client go away after N writes.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/server.h"

namespace cllm::testing {

class FakeWriterBase : public net::ResponseWriter {
 public:
  const net::ConnectionInfo& connection() const override { return info_; }
  void AddHeader(std::string_view name, std::string_view value) override { headers_.emplace_back(name, value); }
  bool client_gone() const override { return false; }
  void OnClientGone(std::function<void()>) override {}
  void After(std::chrono::milliseconds, std::function<void()> f) override { f(); }

  net::ConnectionInfo info_;  // what the "connection" was accepted with (tls, peer, served_spki)
  std::vector<std::pair<std::string, std::string>> headers_;
};

class FakeWriter : public net::ResponseWriter {
 public:
  net::ConnectionInfo info;
  std::function<void(FakeWriter&)> on_write;
  int fail_writes_after = -1;  // >= 0: the client goes away after this many writes

  const net::ConnectionInfo& connection() const override { return info; }
  void AddHeader(std::string_view name, std::string_view value) override {
    std::lock_guard<std::mutex> lock(mu_);
    pending_headers_[std::string(name)] = std::string(value);
  }
  void Send(int status, std::string_view content_type, std::string_view body) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++responses_;
    status_ = status;
    content_type_ = content_type;
    body_ = body;
    headers_ = pending_headers_;
    complete_ = true;
    cv_.notify_all();
  }
  bool BeginStream(int status, std::string_view content_type) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++responses_;
    status_ = status;
    content_type_ = content_type;
    headers_ = pending_headers_;
    return !gone_;
  }
  bool Write(std::string_view chunk) override {
    bool gone_now = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (gone_) return false;
      if (fail_writes_after >= 0 && static_cast<int>(writes_.size()) >= fail_writes_after) {
        gone_now = true;
      } else {
        writes_.emplace_back(chunk);
      }
    }
    if (gone_now) {
      GoClientGone();
      return false;
    }
    if (on_write) on_write(*this);
    return !client_gone();
  }
  void EndStream() override {
    std::lock_guard<std::mutex> lock(mu_);
    complete_ = true;
    cv_.notify_all();
  }
  bool client_gone() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return gone_;
  }
  void OnClientGone(std::function<void()> f) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (complete_) return;
    if (!gone_) {
      gone_callbacks_.push_back(std::move(f));
      return;
    }
    lock.unlock();
    f();
  }
  void After(std::chrono::milliseconds, std::function<void()> f) override {
    std::lock_guard<std::mutex> lock(mu_);
    timers_.push_back(std::move(f));
  }

  // GoClientGone plays the client disconnecting before the response completed.
  void GoClientGone() {
    std::vector<std::function<void()>> run;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (gone_ || complete_) return;
      gone_ = true;
      run.swap(gone_callbacks_);
      cv_.notify_all();
    }
    for (auto& f : run) f();
  }
  // RunTimers fires every pending After callback (unless the client is gone).
  void RunTimers() {
    std::vector<std::function<void()>> run;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (gone_) return;
      run.swap(timers_);
    }
    for (auto& f : run) f();
  }
  // WaitComplete waits until the response is complete or the client gone.
  bool WaitComplete(std::chrono::seconds timeout = std::chrono::seconds(20)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return complete_ || gone_; }) && complete_;
  }

  int status() const { std::lock_guard<std::mutex> lock(mu_); return status_; }
  int responses() const { std::lock_guard<std::mutex> lock(mu_); return responses_; }
  std::string body() const { std::lock_guard<std::mutex> lock(mu_); return body_; }
  std::vector<std::string> writes() const { std::lock_guard<std::mutex> lock(mu_); return writes_; }
  std::string header(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = headers_.find(name);
    return it == headers_.end() ? "" : it->second;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::string> pending_headers_, headers_;
  int status_ = 0, responses_ = 0;
  std::string content_type_, body_;
  std::vector<std::string> writes_;
  bool complete_ = false, gone_ = false;
  std::vector<std::function<void()>> gone_callbacks_, timers_;
};

}  // namespace cllm::testing
