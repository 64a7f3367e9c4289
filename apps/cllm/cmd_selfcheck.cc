// `cllm selfcheck`: power-on style self-test of the build on this machine.
//
// Runs known-answer tests of every primitive the trust chain depends on
// (a miscompiled or misconfigured OpenSSL must be caught before it verifies
// anything), reports the CPU features the engine can use, and whether the
// shared test data is present. Exit 0 only when every known-answer test passes.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/cllm/command.h"
#include "crypto/self_test.h"

namespace cllm::app {
namespace {

std::vector<std::pair<std::string, bool>> CpuFeatures() {
  __builtin_cpu_init();
  return {{"avx2", __builtin_cpu_supports("avx2")},
          {"fma", __builtin_cpu_supports("fma")},
          {"avx512f", __builtin_cpu_supports("avx512f")},
          {"avx512bw", __builtin_cpu_supports("avx512bw")},
          {"avx512vl", __builtin_cpu_supports("avx512vl")},
          {"avx512vnni", __builtin_cpu_supports("avx512vnni")},
          {"avx512bf16", __builtin_cpu_supports("avx512bf16")}};
}

int Run(bool json) {
  nlohmann::json out;
  bool all_ok = true;
  if (!json) std::printf("cllm %s self-check\n\nKnown-answer tests:\n", CLLM_VERSION);
  for (const auto& kat : crypto::RunSelfTests()) {
    all_ok = all_ok && kat.ok;
    out["kats"].push_back({{"name", kat.name}, {"ok", kat.ok}});
    if (!json) std::printf("  %s %s\n", kat.ok ? "✓" : "✗", kat.name.c_str());
  }
  if (!json) std::printf("\nCPU features:\n ");
  for (const auto& [name, has] : CpuFeatures()) {
    out["cpu"][name] = has;
    if (!json) std::printf(" %s%s", has ? "+" : "-", name.c_str());
  }
  const char* env = std::getenv("CLLM_SHARED_DIR");
  std::filesystem::path shared = env && *env ? env : "../shared";
  bool models = std::filesystem::exists(shared / "models");
  bool evidence = std::filesystem::exists(shared / "testdata/attestation");
  out["shared_dir"] = shared.string();
  out["shared_models"] = models;
  out["shared_evidence"] = evidence;
  out["ok"] = all_ok;
  if (json) {
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("\n\nShared data (%s): models %s, attestation evidence %s\n", shared.c_str(),
                models ? "present" : "absent", evidence ? "present" : "absent");
    std::printf("\nself-check %s\n", all_ok ? "PASSED" : "FAILED");
  }
  return all_ok ? 0 : 1;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  auto* cmd = app.add_subcommand("selfcheck", "Run crypto known-answer tests and report CPU features");
  static bool json = false;
  cmd->add_flag("--json", json, "Print one JSON object");
  cmd->callback([&ctx] { ctx.exit_code = Run(json); });
}

CommandRegistration reg{"selfcheck", 90, Setup};

}  // namespace
}  // namespace cllm::app
