// cllm — the client and tooling command. Subcommands live in cmd_*.cc.
#include <algorithm>
#include <cstdio>

#include "apps/cllm/command.h"
#include "base/log.h"
#include "base/utf8.h"

namespace cllm::app {

std::vector<RegisteredCommand>& CommandRegistry() {
  static std::vector<RegisteredCommand> registry;
  return registry;
}

CommandRegistration::CommandRegistration(std::string name, int order, CommandSetup setup) {
  CommandRegistry().push_back({std::move(name), order, std::move(setup)});
}

CLI::App* SubcommandGroup(CLI::App& app, const std::string& name, const std::string& description) {
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    if (sub->get_name() == name) return sub;
  }
  CLI::App* group = app.add_subcommand(name, description);
  group->require_subcommand(1);
  return group;
}

int Fail(const std::string& message, int code) {
  std::fprintf(stderr, "cllm: error: %s\n", EscapeForDisplay(message).c_str());  // may quote a peer's bytes
  return code;
}

}  // namespace cllm::app

int main(int argc, char** argv) {
  using namespace cllm::app;
  CLI::App app{"cllm — confidential LLM inference: client and tools"};
  app.require_subcommand(0, 1);
  app.set_version_flag("--version", std::string("cllm ") + CLLM_VERSION);
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off")
      ->capture_default_str();

  CommandContext ctx;
  auto& registry = CommandRegistry();
  std::sort(registry.begin(), registry.end(),
            [](const auto& a, const auto& b) { return a.order < b.order; });
  for (auto& cmd : registry) cmd.setup(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  auto level = cllm::log::ParseLevel(log_level);
  if (!level.ok()) return Fail(level.detail(), 2);
  cllm::log::Init(*level);
  if (app.get_subcommands().empty()) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  }
  return ctx.exit_code;
}
