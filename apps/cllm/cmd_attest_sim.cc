// `cllm attest sim-keygen`, `cllm attest sim-report`, `cllm attest detect`:
// the simulated TEE's operator tools and TEE interface detection.
//
// sim-keygen writes the platform key (PEM, mode 0600) and FILE.pub, and
// prints the policy snippet that pins it; sim-report signs a report for given
// report_data. Simulated evidence passes only policies that list "sim".
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>

#include "apps/cllm/command.h"
#include "attestation/attester.h"
#include "attestation/sim/sim_attester.h"
#include "base/encoding.h"
#include "base/file.h"
#include "base/secure.h"

namespace cllm::app {
namespace {

namespace att = cllm::attestation;

int SimKeygen(const std::string& out) {
  auto key = att::sim::GenerateSimPlatformKey();
  if (!key.ok()) return Fail(key.detail());
  std::string pem = key->ToPem();
  auto st = WriteFileAtomic(out, AsBytes(pem), 0600);
  SecureZero(pem.data(), pem.size());
  if (!st.ok()) return Fail(out + ": " + st.detail());
  std::string pub = key->public_key().ToPem();
  auto st2 = WriteFileAtomic(out + ".pub", AsBytes(pub), 0644);
  if (!st2.ok()) return Fail(out + ".pub: " + st2.detail());
  nlohmann::json snippet = {{"version", 1}, {"platforms", {"sim"}}, {"sim", {{"platform_keys", {pub}}}}};
  std::printf("wrote sim platform key %s (keep private) and %s.pub\n", out.c_str(), out.c_str());
  std::printf("platform_id %s\n", HexEncode(att::sim::PlatformId(key->public_key())).c_str());
  std::printf("pin it in a policy (SIMULATED TEE — development only):\n%s\n", snippet.dump(2).c_str());
  return 0;
}

struct SimReportArgs {
  std::string key;
  std::string report_data;
  std::string measurement;
  std::string out;
  bool debug = false;
};

int SimReport(const SimReportArgs& a) {
  auto key = att::sim::LoadSimPlatformKey(a.key);
  if (!key.ok()) return Fail(key.detail(), 2);
  auto rd = HexDecode(a.report_data);
  if (!rd.ok() || rd->size() != att::kReportDataSize) return Fail("--report-data: expected 128 hex digits", 2);
  att::sim::SimAttesterOptions opt;
  opt.debug = a.debug;
  if (!a.measurement.empty()) {
    auto m = HexDecode(a.measurement);
    if (!m.ok() || m->size() != 48) return Fail("--measurement: expected 96 hex digits", 2);
    std::array<uint8_t, 48> mm{};
    std::memcpy(mm.data(), m->data(), 48);
    opt.measurement = mm;
  }
  auto attester = att::sim::SimAttester::Create(std::move(key).value(), opt);
  if (!attester.ok()) return Fail(attester.detail());
  auto ev = attester->GetEvidence(*rd);
  if (!ev.ok()) return Fail(ev.detail());
  auto st = WriteFileAtomic(a.out, *ev);
  if (!st.ok()) return Fail(a.out + ": " + st.detail());
  std::printf("wrote SIMULATED TEE report %s (%zu bytes), measurement %s\n", a.out.c_str(), ev->size(),
              HexEncode(attester->measurement()).c_str());
  return 0;
}

int Detect(const std::string& root) {
  auto found = att::DetectAttesters(root);
  if (found.empty()) {
    std::printf("no TEE guest interface found under %s (not a confidential VM)\n", root.c_str());
    return 1;
  }
  for (const auto& d : found) {
    std::string platforms;
    for (auto p : d.platforms) {
      if (!platforms.empty()) platforms += ',';
      platforms += att::PlatformName(p);
    }
    std::printf("%-14s %-40s %s%s\n", d.name.c_str(), d.path.c_str(), platforms.c_str(),
                d.provider.empty() ? "" : std::string(" (provider ").append(d.provider).append(")").c_str());
  }
  return 0;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  CLI::App* attest = SubcommandGroup(app, "attest", "Verify and explain TEE attestation evidence");

  auto* keygen = attest->add_subcommand("sim-keygen", "Create a simulated-TEE platform key (development only)");
  static std::string keygen_out;
  keygen->add_option("-o,--out", keygen_out, "Private key file to write (FILE.pub gets the public key)")->required();
  keygen->callback([&ctx] { ctx.exit_code = SimKeygen(keygen_out); });

  auto* report = attest->add_subcommand("sim-report", "Sign a simulated-TEE report for given report_data");
  static SimReportArgs sr;
  report->add_option("--key", sr.key, "Sim platform key (from sim-keygen)")->required();
  report->add_option("--report-data", sr.report_data, "64 bytes as 128 hex digits")->required();
  report->add_option("--measurement", sr.measurement, "48 bytes as hex (default: SHA-384 of this executable)");
  report->add_flag("--debug", sr.debug, "Set the debug policy bit");
  report->add_option("-o,--out", sr.out, "Report file to write")->required();
  report->callback([&ctx] { ctx.exit_code = SimReport(sr); });

  auto* detect = attest->add_subcommand("detect", "List the TEE guest interfaces of this machine");
  static std::string root = "/";
  detect->add_option("--root", root, "Root directory (tests use a fake tree)")->capture_default_str();
  detect->callback([&ctx] { ctx.exit_code = Detect(root); });
}

CommandRegistration reg{"attest-sim", 41, Setup};

}  // namespace
}  // namespace cllm::app
