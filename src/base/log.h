// log.h — process logging (spdlog underneath).
//
// THE RULE: prompt and response text — and anything derived from it that could
// reveal it (token ids, decoded pieces, sampled logits) — is never logged, at
// any level, in any build. Log sizes and counts instead: Redacted{text.size()}
// prints as "<redacted 123 bytes>". Secrets (keys, tokens) are never logged
// either; log key ids and digests.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

#include "base/result.h"

namespace cllm::log {

enum class Level { kTrace, kDebug, kInfo, kWarn, kError, kOff };

// Init configures the default logger to write to stderr with a compact
// pattern. Safe to call more than once.
void Init(Level level);
// ParseLevel maps "trace|debug|info|warn|error|off" to a Level.
Result<Level> ParseLevel(std::string_view name);

using spdlog::debug;
using spdlog::error;
using spdlog::info;
using spdlog::trace;
using spdlog::warn;

// Redacted stands in for user text in log lines.
struct Redacted {
  size_t bytes;
};

}  // namespace cllm::log

template <>
struct fmt::formatter<cllm::log::Redacted> : fmt::formatter<std::string_view> {
  template <typename Ctx>
  auto format(const cllm::log::Redacted& r, Ctx& ctx) const {
    return fmt::format_to(ctx.out(), "<redacted {} bytes>", r.bytes);
  }
};
