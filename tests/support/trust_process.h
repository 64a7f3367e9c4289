// trust_process.h — a real cllm-trust on loopback for end-to-end tests:
// `cllm-trust init` a state directory, `cllm-trust serve` it on a free port,
// and run `cllm …` admin commands against it (--trust, --trust-ca,
// --admin-token-file appended). Logs go to files under the directory.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "support/process.h"

namespace cllm::testing {

class TrustProcess {
 public:
  // Start inits `dir`/state and serves it; null (with `*error` set to what
  // went wrong and where the logs are) when either step fails.
  static std::unique_ptr<TrustProcess> Start(const std::filesystem::path& dir, std::string* error) {
    std::unique_ptr<TrustProcess> t(new TrustProcess(dir));
    Process init({Bin("cllm-trust"), "init", "--state-dir", t->state_.string()},
                 dir / "trust-init");
    if (const int code = init.Wait(); code != 0) {
      *error = "cllm-trust init exit " + std::to_string(code) + ": " + init.err();
      return nullptr;
    }
    const std::filesystem::path ready = dir / "trust-ready.json";
    t->serve_ = std::make_unique<Process>(
        std::vector<std::string>{Bin("cllm-trust"), "serve", "--state-dir", t->state_.string(),
                                 "--listen", "127.0.0.1:0", "--ready-file", ready.string(),
                                 "--log-level", "warn"},
        dir / "trust");
    const nlohmann::json j = WaitReady(*t->serve_, ready);
    if (j.is_null()) {
      *error = "cllm-trust serve did not start: " + t->serve_->err();
      return nullptr;
    }
    t->port_ = j["port"].get<int>();
    return t;
  }

  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  std::filesystem::path ca() const { return state_ / "trust-ca.pem"; }
  // TrustFlags: what a client passes to reach this service.
  std::vector<std::string> TrustFlags() const {
    return {"--trust", url(), "--trust-ca", ca().string()};
  }

  // Admin runs `cllm ARGS --trust URL --trust-ca CA --admin-token-file T`
  // (logs in dir/<tag>.out, .err) and returns its exit code; on failure the
  // output is printed.
  int Admin(std::vector<std::string> args, const std::string& tag) const {
    std::vector<std::string> argv = {Bin("cllm")};
    argv.insert(argv.end(), args.begin(), args.end());
    for (const std::string& f : TrustFlags()) argv.push_back(f);
    argv.push_back("--admin-token-file");
    argv.push_back((state_ / "admin.token").string());
    Process p(argv, dir_ / tag);
    const int code = p.Wait(std::chrono::seconds(120));
    if (code != 0)
      std::fprintf(stderr, "[%s] exit %d\n%s%s", tag.c_str(), code, p.out().c_str(),
                   p.err().c_str());
    return code;
  }

 private:
  explicit TrustProcess(const std::filesystem::path& dir)
      : dir_(dir), state_(dir / "trust-state") {}
  std::filesystem::path dir_, state_;
  std::unique_ptr<Process> serve_;
  int port_ = 0;
};

}  // namespace cllm::testing
