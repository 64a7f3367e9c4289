#include "base/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace cllm::log {

void Init(Level level) {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::stderr_color_mt("cllm");
    l->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    spdlog::set_default_logger(l);
    return l;
  }();
  static constexpr spdlog::level::level_enum kMap[] = {
      spdlog::level::trace, spdlog::level::debug, spdlog::level::info,
      spdlog::level::warn,  spdlog::level::err,   spdlog::level::off};
  logger->set_level(kMap[static_cast<int>(level)]);
}

Result<Level> ParseLevel(std::string_view name) {
  if (name == "trace") return Level::kTrace;
  if (name == "debug") return Level::kDebug;
  if (name == "info") return Level::kInfo;
  if (name == "warn") return Level::kWarn;
  if (name == "error") return Level::kError;
  if (name == "off") return Level::kOff;
  return MakeError(Errc::kInvalidArgument, "unknown log level '" + std::string(name) +
                                               "' (trace, debug, info, warn, error, off)");
}

}  // namespace cllm::log
