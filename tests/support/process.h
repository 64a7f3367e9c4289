// process.h — real processes for end-to-end and attack tests.
//
// Process spawns one of our executables (or any program) with stdout/stderr
// in files and stops it (SIGTERM, then SIGKILL) when it goes out of scope;
// WaitReady polls the JSON ready file a server writes once it listens.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace cllm::testing {

// Bin names an executable of this build (CLLM_BIN_DIR is set per test target).
inline std::string Bin(const std::string& name) { return std::string(CLLM_BIN_DIR) + "/" + name; }

inline std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// OnPath says whether `exe` is an executable in one of $PATH's directories.
inline bool OnPath(const std::string& exe) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "");
  for (std::string dir; std::getline(ss, dir, ':');) {
    if (!dir.empty() && ::access((std::filesystem::path(dir) / exe).c_str(), X_OK) == 0) return true;
  }
  return false;
}

class Process {
 public:
  using Clock = std::chrono::steady_clock;

  // Process starts argv[0] (a path) with stdout and stderr written to
  // `log_prefix`.out / .err; with an empty prefix they go to /dev/null.
  explicit Process(std::vector<std::string> argv, const std::filesystem::path& log_prefix = {})
      : out_(log_prefix.empty() ? "/dev/null" : log_prefix.string() + ".out"),
        err_(log_prefix.empty() ? "/dev/null" : log_prefix.string() + ".err") {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Process() { Stop(); }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running() {
    Reap(WNOHANG);
    return pid_ > 0 && !status_;
  }
  // Wait returns the exit code (128 + signal when killed), or -1 when the
  // process is still running after `timeout`.
  int Wait(std::chrono::seconds timeout = std::chrono::seconds(30)) {
    const auto deadline = Clock::now() + timeout;
    while (running() && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!status_) return -1;
    return WIFEXITED(*status_) ? WEXITSTATUS(*status_) : 128 + WTERMSIG(*status_);
  }
  void Stop() {
    if (!running()) return;
    ::kill(pid_, SIGTERM);
    if (Wait(std::chrono::seconds(5)) == -1) {
      ::kill(pid_, SIGKILL);
      Reap(0);
    }
  }
  std::string out() const { return ReadFile(out_); }
  std::string err() const { return ReadFile(err_); }

 private:
  void Reap(int flags) {
    if (pid_ <= 0 || status_) return;
    int st = 0;
    if (::waitpid(pid_, &st, flags) == pid_) status_ = st;
  }
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string out_, err_;
};

// WaitReady polls a ready file until it holds a JSON object; null when the
// process exits first or after `timeout`.
inline nlohmann::json WaitReady(Process& p, const std::filesystem::path& ready,
                                std::chrono::seconds timeout = std::chrono::seconds(30)) {
  const auto deadline = Process::Clock::now() + timeout;
  while (Process::Clock::now() < deadline) {
    auto j = nlohmann::json::parse(ReadFile(ready), nullptr, false);
    if (!j.is_discarded() && j.is_object()) return j;
    if (!p.running()) return nullptr;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return nullptr;
}

// Outcome is a finished command: exit code and what it printed.
struct Outcome {
  int code;
  std::string out, err;
};

// RunToEnd runs argv to completion (up to `timeout`), its output kept in
// `log_prefix`.out / .err.
inline Outcome RunToEnd(std::vector<std::string> argv, const std::filesystem::path& log_prefix,
                        std::chrono::seconds timeout = std::chrono::seconds(30)) {
  Process p(std::move(argv), log_prefix);
  const int code = p.Wait(timeout);
  return {code, p.out(), p.err()};
}

}  // namespace cllm::testing
