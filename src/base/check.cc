#include "base/check.h"

#include <cstdio>
#include <cstdlib>

#include "base/result.h"

namespace cllm {
namespace internal {

void CheckFailed(const char* file, int line, const char* expr, const char* msg) {
  std::fprintf(stderr, "cllm: internal check failed at %s:%d: %s%s%s\n", file, line, expr,
               msg ? " — " : "", msg ? msg : "");
  std::fflush(stderr);
  std::abort();
}

}  // namespace internal

const char* ErrcName(Errc code) {
  switch (code) {
    case Errc::kOk: return "ok";
    case Errc::kInvalidArgument: return "invalid_argument";
    case Errc::kOutOfRange: return "out_of_range";
    case Errc::kOverflow: return "overflow";
    case Errc::kParse: return "parse";
    case Errc::kNotFound: return "not_found";
    case Errc::kIo: return "io";
    case Errc::kPermission: return "permission";
    case Errc::kUnsupported: return "unsupported";
    case Errc::kCrypto: return "crypto";
    case Errc::kInternal: return "internal";
  }
  return "unknown";
}

}  // namespace cllm
