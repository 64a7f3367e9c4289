// time.h — RFC 3339 times (command lines, policies, audit output).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace cllm {

using TimePoint = std::chrono::system_clock::time_point;

// ParseRfc3339 accepts "YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)" (RFC 3339
// §5.6); fractions are ignored (1 s precision). nullopt on anything else.
std::optional<TimePoint> ParseRfc3339(std::string_view text);
// FormatUtcTime prints "YYYY-MM-DDTHH:MM:SSZ".
std::string FormatUtcTime(TimePoint tp);

}  // namespace cllm
