// shared_data.h — locating the read-only test data in ../shared.
//
// Tests never copy that data into the repository. They find it through the
// CLLM_SHARED_DIR environment variable, defaulting to the directory beside the
// source tree. When it is absent a test is reported SKIPPED with a loud message
// — except under CI (CI=true), where the data must be present and its absence
// fails the test instead of hiding it.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace cllm::testing {

inline std::filesystem::path SharedDir() {
  const char* env = std::getenv("CLLM_SHARED_DIR");
  return env && *env ? std::filesystem::path(env) : std::filesystem::path(CLLM_DEFAULT_SHARED_DIR);
}

inline bool RunningInCi() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

}  // namespace cllm::testing

// CLLM_SHARED_PATH(var, "models/stories260K-f32.gguf") declares `var` as the
// full path, or skips (fails under CI) the current test when it is missing.
#define CLLM_SHARED_PATH(var, relative)                                                  \
  const std::filesystem::path var = ::cllm::testing::SharedDir() / (relative);            \
  do {                                                                                    \
    if (!std::filesystem::exists(var)) {                                                  \
      if (::cllm::testing::RunningInCi()) {                                               \
        FAIL() << "shared test data missing under CI: " << var;                           \
      }                                                                                   \
      GTEST_SKIP() << "SKIPPED — shared test data not found: " << var                     \
                   << " (set CLLM_SHARED_DIR to the shared/ directory)";                  \
    }                                                                                     \
  } while (0)
