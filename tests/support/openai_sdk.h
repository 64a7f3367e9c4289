// openai_sdk.h — the official OpenAI Node SDK (npm `openai`, pinned by
// tests/sdk/package-lock.json) installed with `npm ci` into the build tree
// once (later runs reuse it), for the tests that drive it through `cllm
// proxy` (tests/e2e/openai_sdk_e2e_test.cc, tests/deploy/e2e_gateway_test.cc).
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "support/process.h"

namespace cllm::testing {

// Which is the full path of `exe` on $PATH, "" when absent.
inline std::string Which(const std::string& exe) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "");
  for (std::string dir; std::getline(ss, dir, ':');) {
    std::filesystem::path p = std::filesystem::path(dir) / exe;
    if (!dir.empty() && ::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

// What npm prints when it cannot reach the registry (as opposed to a broken
// lock file or package, which fails the test).
inline bool RegistryUnreachable(const std::string& npm_output) {
  for (const char* s : {"ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENETUNREACH",
                        "EHOSTUNREACH", "network", "proxy", "E403", "E401"}) {
    if (npm_output.find(s) != std::string::npos) return true;
  }
  return false;
}

// InstalledSdkVersion is the version of node_modules/openai under `dir`, "" when absent.
inline std::string InstalledSdkVersion(const std::filesystem::path& dir) {
  auto j = nlohmann::json::parse(ReadFile(dir / "node_modules/openai/package.json"), nullptr, false);
  return j.is_object() && j.contains("version") ? j["version"].get<std::string>() : "";
}

// OpenAiSdk is the installed SDK: `node` to run `script` (openai_sdk_test.mjs).
struct OpenAiSdk {
  std::string node;
  std::filesystem::path script;
  std::string skip;   // why the test must be SKIPPED ("" when installed)
  std::string error;  // why installing failed ("" when installed or skipped)
};

// EnsureOpenAiSdk installs the pinned SDK into `dir` (CLLM_SDK_DIR) under a
// file lock: tests running in parallel (ctest -j) install it once.
inline OpenAiSdk EnsureOpenAiSdk(const std::filesystem::path& dir, const std::filesystem::path& src) {
  namespace fs = std::filesystem;
  OpenAiSdk sdk;
  sdk.node = Which("node");
  const std::string npm = Which("npm");
  if (sdk.node.empty() || npm.empty()) {
    sdk.skip = "SKIPPED — node and npm are needed for the OpenAI Node SDK test (scripts/install-deps.sh installs them)";
    return sdk;
  }
  fs::create_directories(dir);
  const int lock_fd = ::open((dir / ".install.lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX) != 0) {
    sdk.error = "cannot lock " + (dir / ".install.lock").string();
    if (lock_fd >= 0) ::close(lock_fd);
    return sdk;
  }
  for (const char* f : {"package.json", "package-lock.json", "openai_sdk_test.mjs"}) {
    // Rewritten only when changed: another test may be running the script.
    if (!fs::exists(dir / f) || ReadFile(dir / f) != ReadFile(src / f)) {
      fs::copy_file(src / f, dir / f, fs::copy_options::overwrite_existing);
    }
  }
  const std::string pinned =
      nlohmann::json::parse(ReadFile(src / "package-lock.json"))["packages"]["node_modules/openai"]["version"];
  if (InstalledSdkVersion(dir) != pinned) {
    Process install({npm, "ci", "--prefix", dir.string(), "--cache", (dir / "npm-cache").string(), "--no-audit",
                     "--no-fund", "--prefer-offline"},
                    dir / "npm-ci");
    const int rc = install.Wait(std::chrono::seconds(120));
    const std::string out = install.out() + install.err();
    if (rc != 0 && RegistryUnreachable(out)) {
      sdk.skip = "SKIPPED — the npm registry is unreachable, the OpenAI SDK cannot be installed:\n" + out;
    } else if (rc != 0) {
      sdk.error = "npm ci failed:\n" + out;
    } else if (InstalledSdkVersion(dir) != pinned) {
      sdk.error = "npm ci installed openai " + InstalledSdkVersion(dir) + ", not the pinned " + pinned;
    }
  }
  ::close(lock_fd);  // releases the flock
  sdk.script = dir / "openai_sdk_test.mjs";
  return sdk;
}

}  // namespace cllm::testing
