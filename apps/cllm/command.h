// command.h — how `cllm` subcommands are registered.
//
// Each cmd_*.cc file in this folder defines one top-level subcommand (or a
// group such as `model` or `attest`) and registers it with a static
// CommandRegistration; main.cc builds the CLI11 app from the registry. This
// keeps each subcommand in its own file.
//
//   static void Setup(CLI::App& app, CommandContext& ctx) { ... }
//   static cllm::app::CommandRegistration reg{"tokenize", 20, Setup};
//
// A subcommand's callback stores its exit code in ctx.exit_code. Errors are
// one clear line on stderr ("cllm: error: ...") and a non-zero exit.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace cllm::app {

struct CommandContext {
  int exit_code = 0;
};

using CommandSetup = std::function<void(CLI::App& app, CommandContext& ctx)>;

struct CommandRegistration {
  // `order` sorts subcommands in --help.
  CommandRegistration(std::string name, int order, CommandSetup setup);
};

struct RegisteredCommand {
  std::string name;
  int order;
  CommandSetup setup;
};
std::vector<RegisteredCommand>& CommandRegistry();

// SubcommandGroup returns the subcommand `name` of `app`, creating it with
// `description` if no earlier registration did (groups such as `model` are
// shared by several cmd_*.cc files).
CLI::App* SubcommandGroup(CLI::App& app, const std::string& name, const std::string& description);

// Fail prints "cllm: error: <message>" to stderr and returns exit code 1 (or `code`).
int Fail(const std::string& message, int code = 1);

}  // namespace cllm::app
