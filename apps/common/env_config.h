// env_config.h — every flag of a cllm program also from the environment and
// from a config file, with one precedence: command line > environment >
// config file > default.
//
// Naming rule: the environment variable of `--some-flag` is the program's
// prefix and the long name upper-cased, '-' → '_' (cllm-server: CLLM_, so
// CLLM_SOME_FLAG; cllm-trust: CLLM_TRUST_); the config file key is the long
// name without dashes (`some-flag = 4`, TOML or INI as CLI11 reads them).
// `--config FILE` (or PREFIX + CONFIG) names the file.
//
// CLI11 2.1 reads the config file before the environment and skips an
// option's environment variable once the file set it, so on its own the file
// would win. EnvFirstConfig drops every file entry whose environment variable
// is set: CLI11 then fills that option from the environment.
#pragma once

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

namespace cllm::app {

// EnvName is the environment variable of a long flag name ("kv-type" or
// "--kv-type" → "CLLM_KV_TYPE").
inline std::string EnvName(std::string name, const std::string& prefix = "CLLM_") {
  name.erase(0, name.find_first_not_of('-'));
  std::string out = prefix;
  for (char c : name) out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// EnvSet says whether `var` is set to something non-empty (CLI11 ignores an
// empty variable, so the config file still applies then).
inline bool EnvSet(const std::string& var) {
  const char* v = std::getenv(var.c_str());
  return v != nullptr && *v != '\0';
}

class EnvFirstConfig : public CLI::ConfigTOML {
 public:
  explicit EnvFirstConfig(std::string prefix) : prefix_(std::move(prefix)) {}
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    std::vector<CLI::ConfigItem> entries = CLI::ConfigTOML::from_config(input);
    entries.erase(std::remove_if(entries.begin(), entries.end(),
                                 [&](const CLI::ConfigItem& item) { return EnvSet(EnvName(item.name, prefix_)); }),
                  entries.end());
    return entries;
  }

 private:
  std::string prefix_;
};

// BindEnvironment gives each long flag of `app` its environment variable
// (`prefix` + name); BindEnvironmentAndConfig also adds `--config`.
inline void BindEnvironment(CLI::App& app, const std::string& prefix = "CLLM_") {
  for (CLI::Option* opt : app.get_options()) {
    const std::string& name = opt->get_single_name();
    if (opt->get_lnames().empty() || name == "help" || name == "version" || name == "config") continue;
    opt->envname(EnvName(opt->get_lnames().front(), prefix));
  }
}

// BindEnvironmentAndConfig, called once every flag of `app` is defined,
// gives each long flag its environment variable (`prefix` + name) and adds
// `--config FILE`. A PREFIX_CONFIG naming no file fails the parse like a
// missing `--config` file does. Only for the top-level app: CLI11 2.1 reads
// no config file for a subcommand.
inline void BindEnvironmentAndConfig(CLI::App& app, const std::string& prefix = "CLLM_") {
  BindEnvironment(app, prefix);
  app.config_formatter(std::make_shared<EnvFirstConfig>(prefix));
  // A misspelt key is an error, not a silently ignored setting.
  app.allow_config_extras(CLI::config_extras_mode::error);
  CLI::Option* config =
      app.set_config("--config", "", "Read flags from this TOML/INI file (keys: the long flag names without dashes)");
  // CLI11 reads the environment after the config file, so CLLM_CONFIG is
  // turned into the option's default here, and checked like a given file.
  const std::string config_env = prefix + "CONFIG";
  config->envname(config_env);  // for --help; the default below does the work
  if (EnvSet(config_env)) {
    config->default_str(std::getenv(config_env.c_str()));
    app.preparse_callback([path = std::string(std::getenv(config_env.c_str())), config_env](size_t) {
      if (CLI::detail::check_path(path.c_str()) != CLI::detail::path_type::file) {
        throw CLI::FileError::Missing(path + " (" + config_env + ")");
      }
    });
  }
}

}  // namespace cllm::app
