// self_test.h — power-on known-answer tests of the primitives the trust chain
// depends on, so a miscompiled or misconfigured OpenSSL is caught before it
// verifies anything (`cllm selfcheck`, and servers at start-up).
#pragma once

#include <string>
#include <vector>

namespace cllm::crypto {

struct SelfTestResult {
  std::string name;  // "SM3 (GB/T 32905 'abc')"
  bool ok;
};

// RunSelfTests runs every known-answer test and returns one result each.
std::vector<SelfTestResult> RunSelfTests();

}  // namespace cllm::crypto
