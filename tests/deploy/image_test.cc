// image_test — the cllm-server OCI image (scripts/build-image.sh) built from
// this build's binary, and the server run from it.
//
// BuildIsReproducibleAndMinimal: two builds give the same manifest digest;
// the image holds the binary, exactly the libraries ldd lists, the loader,
// passwd/group and empty mount points — no shell; it runs as 65532:65532.
// ServerFromImageAttestsReadOnlyAndUnprivileged: podman runs cllm-server from
// the image with a read-only root filesystem, no capabilities but IPC_LOCK,
// the model mounted read-only, the simulated TEE; a real client verifies the
// server (its binary digest is the host's build/bin/cllm-server) and chats,
// and /ready answers 200.
//
// Skipped loudly without buildah (no image) or where podman cannot start a
// container on this machine (the reason is podman's own message).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "attestation/sim/sim_attester.h"
#include "base/encoding.h"
#include "client/client.h"
#include "crypto/digest.h"
#include "support/process.h"
#include "support/shared_data.h"
#include "support/sim_server.h"

namespace cllm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Bin;
using testing::OnPath;
using testing::Process;
using testing::ReadFile;

constexpr char kModel[] = "models/stories260K-f16.gguf";

// RunTool runs argv to completion; stdout in *out (stderr in *err).
int RunTool(const std::vector<std::string>& argv, const fs::path& log_prefix,
            std::string* out = nullptr, std::string* err = nullptr,
            std::chrono::seconds timeout = std::chrono::seconds(50)) {
  Process p(argv, log_prefix);
  int rc = p.Wait(timeout);
  if (out) *out = p.out();
  if (err) *err = p.err();
  return rc;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// BlobPath names a blob of an OCI layout by its "sha256:…" digest.
fs::path BlobPath(const fs::path& layout, const std::string& digest) {
  return layout / "blobs" / "sha256" / digest.substr(7);
}

class ImageTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("cllm_image_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    tag_ = "localhost/cllm-server:test-" + std::to_string(::getpid());
    if (!OnPath("buildah")) return;
    // Whether buildah can work here at all (storage, user namespaces): an empty
    // working container. Where it cannot, the tests skip with buildah's reason;
    // where it can, build-image.sh must succeed.
    std::string probe_out;
    if (RunTool({"/usr/bin/env", "buildah", "from", "scratch"}, dir_ / "probe", &probe_out, &probe_err_) != 0) {
      if (probe_err_.empty()) probe_err_ = "buildah from scratch failed";
      return;
    }
    probe_err_.clear();
    RunTool({"/usr/bin/env", "buildah", "rm", Trim(probe_out)}, {});
    const auto t0 = std::chrono::steady_clock::now();
    std::string out;
    build_rc_ = RunTool(
        {"/bin/bash", std::string(CLLM_SOURCE_DIR) + "/scripts/build-image.sh", "--role", "server",
         "--build-dir", CLLM_BUILD_DIR, "--out", (dir_ / "a").string(), "--tag", tag_},
        dir_ / "build_a", &out, &build_err_);
    build_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    digest_ = Trim(out);
  }
  static void TearDownTestSuite() {
    if (!tag_.empty() && OnPath("buildah"))
      RunTool({"/usr/bin/env", "buildah", "rmi", "-f", tag_}, {});
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void SetUp() override {
    if (!OnPath("buildah")) {
      GTEST_SKIP()
          << "SKIPPED — buildah is not installed (scripts/install-deps.sh): no image is built";
    }
    if (!probe_err_.empty()) GTEST_SKIP() << "SKIPPED — buildah cannot build an image on this machine: " << probe_err_;
    ASSERT_EQ(build_rc_, 0) << "build-image.sh failed: " << build_err_;
  }

  static inline fs::path dir_;
  static inline std::string tag_, digest_, build_err_, probe_err_;
  static inline int build_rc_ = -1;
  static inline double build_s_ = 0;
};

TEST_F(ImageTest, BuildIsReproducibleAndMinimal) {
  std::printf("image %s built in %.1f s, digest %s\n", tag_.c_str(), build_s_, digest_.c_str());
  ASSERT_EQ(digest_.size(), 71u) << digest_;
  ASSERT_EQ(digest_.rfind("sha256:", 0), 0u);
  EXPECT_EQ(Trim(ReadFile(dir_ / "a" / "cllm-server.digest")), digest_);

  // The same binaries again: the same digest.
  std::string again, err;
  ASSERT_EQ(
      RunTool({"/bin/bash", std::string(CLLM_SOURCE_DIR) + "/scripts/build-image.sh", "--build-dir",
               CLLM_BUILD_DIR, "--out", (dir_ / "b").string(), "--tag", tag_ + "b"},
              dir_ / "build_b", &again, &err),
      0)
      << err;
  RunTool({"/usr/bin/env", "buildah", "rmi", "-f", tag_ + "b"}, {});
  EXPECT_EQ(Trim(again), digest_) << "two builds of the same binaries gave different digests";

  // Manifest → config: the unprivileged user and the server as entry point.
  const fs::path layout = dir_ / "a" / "cllm-server.oci";
  auto index = json::parse(ReadFile(layout / "index.json"));
  ASSERT_EQ(index["manifests"][0]["digest"].get<std::string>(), digest_);
  auto manifest = json::parse(ReadFile(BlobPath(layout, digest_)));
  auto config =
      json::parse(ReadFile(BlobPath(layout, manifest["config"]["digest"].get<std::string>())));
  EXPECT_EQ(config["config"]["User"], "65532:65532");
  EXPECT_EQ(config["config"]["Entrypoint"], json::array({"/usr/bin/cllm-server"}));
  EXPECT_EQ(config["created"], "1970-01-01T00:00:00Z");
  ASSERT_EQ(manifest["layers"].size(), 1u);
  EXPECT_EQ(manifest["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar")
      << "layer compressed";

  // The layer's regular files: the binary, exactly ldd's libraries, passwd/group.
  std::string listing;
  ASSERT_EQ(RunTool({"/bin/tar", "-tf",
                     BlobPath(layout, manifest["layers"][0]["digest"].get<std::string>()).string()},
                    dir_ / "tar", &listing),
            0);
  std::set<std::string> files;
  std::istringstream lines(listing);
  for (std::string l; std::getline(lines, l);) {
    if (!l.empty() && l.back() != '/') files.insert(l);
  }
  std::string ldd;
  ASSERT_EQ(RunTool({"/usr/bin/ldd", Bin("cllm-server")}, dir_ / "ldd", &ldd), 0);
  std::set<std::string> want = {"usr/bin/cllm-server", "etc/passwd", "etc/group"};
  std::istringstream ldd_lines(ldd);
  for (std::string l; std::getline(ldd_lines, l);) {
    auto at = l.find('/');
    if (at == std::string::npos) continue;  // linux-vdso: in the kernel
    want.insert(l.substr(at + 1, l.find(' ', at) - at - 1));
  }
  EXPECT_EQ(files, want);
  EXPECT_EQ(files.count("bin/sh"), 0u);
  std::string passwd;
  ASSERT_EQ(RunTool({"/bin/tar", "-xOf",
                     BlobPath(layout, manifest["layers"][0]["digest"].get<std::string>()).string(),
                     "etc/passwd"},
                    dir_ / "passwd", &passwd),
            0);
  EXPECT_EQ(passwd.rfind("cllm:x:65532:65532:", 0), 0u) << passwd;
}

// PodmanArgs are the flags every run of the image gets here: host network
// (loopback ports), and rlimits no higher than this machine grants an
// unprivileged runtime (podman otherwise raises them, which needs
// CAP_SYS_RESOURCE that a container host may not have).
std::vector<std::string> PodmanArgs(const std::string& runtime) {
  std::vector<std::string> a = {"/usr/bin/env", "podman"};
  if (!runtime.empty()) a.insert(a.end(), {"--runtime", runtime});
  a.insert(a.end(), {"run", "--rm", "--pull", "never", "--network", "host", "--ulimit",
                     "nofile=4096:4096", "--ulimit", "nproc=4096:4096"});
  return a;
}

TEST_F(ImageTest, ServerFromImageAttestsReadOnlyAndUnprivileged) {
  CLLM_SHARED_PATH(model, kModel);
  if (!OnPath("podman"))
    GTEST_SKIP() << "SKIPPED — podman is not installed (scripts/install-deps.sh)";

  // Which OCI runtime can start a container here: podman's default (crun)
  // refuses cgroup v1 "hybrid" hosts, where Debian's runc works.
  std::string runtime, why;
  for (std::string candidate : {std::string(), std::string("runc")}) {
    if (!candidate.empty() && !OnPath(candidate)) continue;
    auto probe = PodmanArgs(candidate);
    probe.insert(probe.end(), {"--read-only", "--user", "65532:65532", tag_, "--version"});
    std::string out, err;
    if (RunTool(probe, dir_ / "probe", &out, &err, std::chrono::seconds(30)) == 0 &&
        out.find("cllm-server") != std::string::npos) {
      runtime = candidate.empty() ? "default" : candidate;
      break;
    }
    why += (candidate.empty() ? "default runtime: " : candidate + ": ") + Trim(err) + "; ";
  }
  if (runtime.empty())
    GTEST_SKIP() << "SKIPPED — podman cannot run a container on this machine: " << why;
  std::printf("podman runs the image with the %s OCI runtime\n", runtime.c_str());

  // The scratch volume the server writes its ready file to; the key files it
  // reads. The container's user owns nothing on the host: world-readable.
  const fs::path run = dir_ / "run";
  fs::create_directories(run);
  fs::permissions(run, fs::perms::all);
  auto platform_key = attestation::sim::GenerateSimPlatformKey().value();
  std::ofstream(run / "plat.key") << platform_key.ToPem();
  json keys = {
      {"keys",
       {{{"user", "alice"}, {"sha256", HexEncode(crypto::Sha256(AsBytes(testing::kKeyAlice)))}}}}};
  std::ofstream(run / "keys.json") << keys.dump();
  for (const char* f : {"plat.key", "keys.json"})
    fs::permissions(run / f,
                    fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);

  const std::string name = "cllm-image-test-" + std::to_string(::getpid());
  auto argv = PodmanArgs(runtime == "default" ? "" : runtime);
  argv.insert(argv.end(), {"--name",
                           name,
                           "--read-only",
                           "--read-only-tmpfs=false",
                           "--user",
                           "65532:65532",
                           "--cap-drop",
                           "ALL",
                           "--cap-add",
                           "IPC_LOCK",
                           "--security-opt",
                           "no-new-privileges",
                           "-v",
                           model.string() + ":/models/model.gguf:ro",
                           "-v",
                           run.string() + ":/run/cllm",
                           tag_,
                           "-m",
                           "/models/model.gguf",
                           "--tee",
                           "sim",
                           "--sim-key",
                           "/run/cllm/plat.key",
                           "--listen",
                           "127.0.0.1:0",
                           "--api-keys",
                           "/run/cllm/keys.json",
                           "--ready-file",
                           "/run/cllm/ready.json",
                           "--log-level",
                           "warn"});
  const auto t0 = std::chrono::steady_clock::now();
  Process server(argv, dir_ / "server");
  auto ready = testing::WaitReady(server, run / "ready.json", std::chrono::seconds(40));
  ASSERT_FALSE(ready.is_null()) << "cllm-server did not start in the container: " << server.err();
  std::printf("container ready in %.1f s (memory locked: %s)\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
              ready["memory_locked"].get<bool>() ? "yes" : "no");

  // The container as the runtime describes it: read-only root, user 65532.
  std::string inspect;
  ASSERT_EQ(RunTool({"/usr/bin/env", "podman", "inspect", "--format",
                     "{{.HostConfig.ReadonlyRootfs}} {{.Config.User}} {{.State.Pid}}", name},
                    dir_ / "inspect", &inspect),
            0);
  std::istringstream fields(inspect);
  std::string read_only, user;
  int pid = 0;
  fields >> read_only >> user >> pid;
  EXPECT_EQ(read_only, "true");
  EXPECT_EQ(user, "65532:65532");
  std::string status = ReadFile("/proc/" + std::to_string(pid) + "/status");
  EXPECT_NE(status.find("\nUid:\t65532\t65532\t65532\t65532\n"), std::string::npos)
      << status.substr(0, 400);
  EXPECT_TRUE(ready["memory_locked"].get<bool>())
      << "IPC_LOCK should let the unprivileged server lock memory";

  // The image carries this build's binary: the digest the server attests is
  // that of build/bin/cllm-server, which the client pins.
  auto binary = crypto::Sha256File(Bin("cllm-server"));
  ASSERT_TRUE(binary.ok());
  EXPECT_EQ(ready["binary_digest"], HexEncode(*binary));
  attestation::Policy policy = attestation::Policy::Default();
  policy.platforms = {attestation::Platform::kSim};
  policy.sim_platform_keys = {platform_key.public_key()};
  policy.binary_digests = {Bytes(binary->begin(), binary->end())};
  policy.model_digests = {HexDecode(ready["model_digest"].get<std::string>()).value()};
  const uint16_t port = ready["port"].get<uint16_t>();

  auto c = client::Connect(client::Url{true, "127.0.0.1", port, ""}, policy);
  ASSERT_TRUE(c.ok()) << c.detail();
  EXPECT_TRUE((*c)->server()->claims.simulated());
  const std::string chat = json{
      {"messages", {{{"role", "user"}, {"content", "Hello"}}}},
      {"max_tokens", 8},
      {"temperature", 0}}.dump();
  auto r = (*c)->Request("POST", "/v1/chat/completions", chat,
                         {{"Authorization", std::string("Bearer ") + testing::kKeyAlice}});
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_FALSE(json::parse(r->body)["choices"][0]["message"]["content"].get<std::string>().empty());

  // The readiness probe the Kubernetes manifests use (deploy/k8s/base/server.yaml).
  auto probe = testing::RawTlsGet("127.0.0.1", port, "/ready");
  EXPECT_EQ(probe.status, 200) << probe.body;
  EXPECT_EQ(json::parse(probe.body, nullptr, false).value("status", ""), "ready");

  server.Stop();
  RunTool({"/usr/bin/env", "podman", "rm", "-f", "--ignore", name}, {});
}

}  // namespace
}  // namespace cllm
