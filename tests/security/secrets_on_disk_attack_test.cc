// Attack: the host cannot read a CVM's memory, but it reads what the guest
// writes to disk: a core dump (written by the guest kernel or piped to a
// handler) or swapped-out pages carry prompts, KV cache, weights and keys
// out of encrypted memory. Before the fix cllm-server and cllm-trust dumped
// core as usual and only warned when memory could not be locked. Now both
// are non-dumpable with RLIMIT_CORE 0, lock all their memory, and refuse to
// start when locking is impossible unless --allow-unlocked-memory is given
// (base/hardening.h); the large secret buffers are also MADV_DONTDUMP.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "attestation/sim/sim_attester.h"
#include "base/hardening.h"
#include "support/process.h"
#include "support/shared_data.h"

namespace cllm {
namespace {

// ASan's interceptors make mlock/mlockall succeed without locking anything
// (sanitizer_common MlockIsUnsupported), so VmLck cannot be checked there.
#ifdef CLLM_SANITIZE
constexpr bool kSanitizerBuild = true;
#else
constexpr bool kSanitizerBuild = false;
#endif

namespace fs = std::filesystem;
using nlohmann::json;

// InChild runs `fn` in a forked child (hardening is one-way: the test binary
// itself must stay as it is) and returns its exit code.
int InChild(const std::function<int()>& fn) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(fn());
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// DropIpcLock removes CAP_IPC_LOCK from this process's effective set and
// caps RLIMIT_MEMLOCK: what an unprivileged service account looks like.
bool DropIpcLock() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &hdr, data) != 0) return false;
  data[0].effective &= ~(1u << CAP_IPC_LOCK);
  if (::syscall(SYS_capset, &hdr, data) != 0) return false;
  struct rlimit lim {64 << 10, 64 << 10};
  return ::setrlimit(RLIMIT_MEMLOCK, &lim) == 0;
}

TEST(SecretsOnDiskAttackTest, HardenedProcessIsNotDumpableAndHasNoCoreLimit) {
  EXPECT_EQ(InChild([] {
              if (!DisableCoreDumps().ok()) return 1;
              if (::prctl(PR_GET_DUMPABLE) != 0) return 2;
              struct rlimit core {};
              ::getrlimit(RLIMIT_CORE, &core);
              return core.rlim_cur == 0 && core.rlim_max == 0 ? 0 : 3;
            }),
            0);
}

TEST(SecretsOnDiskAttackTest, RefusesToStartWhenMemoryCannotBeLocked) {
  EXPECT_EQ(InChild([] {
              HardeningOptions o;
              o.lock_memory = [] { return MemoryLock{false, "injected: mlockall: Operation not permitted"}; };
              auto h = HardenProcess(o);
              if (h.ok()) return 1;
              if (h.code() != Errc::kPermission) return 2;
              return h.detail().find("--allow-unlocked-memory") != std::string::npos &&
                             h.detail().find("injected") != std::string::npos
                         ? 0
                         : 3;
            }),
            0);
}

TEST(SecretsOnDiskAttackTest, StartsUnlockedOnlyWithTheExplicitOptIn) {
  EXPECT_EQ(InChild([] {
              HardeningOptions o;
              o.allow_unlocked_memory = true;
              o.lock_memory = [] { return MemoryLock{false, "injected"}; };
              auto h = HardenProcess(o);
              return h.ok() && !h->memory_locked && h->unlocked_reason == "injected" ? 0 : 1;
            }),
            0);
}

// The real probe, not an injected one: without CAP_IPC_LOCK and with a
// finite RLIMIT_MEMLOCK, locking is reported impossible (a lock that later
// makes the model's allocation fail is no lock).
TEST(SecretsOnDiskAttackTest, FiniteMemlockLimitWithoutCapabilityIsNotALock) {
  EXPECT_EQ(InChild([] {
              if (!DropIpcLock()) return 10;
              MemoryLock l = LockAllMemory();
              return !l.locked && l.detail.find("RLIMIT_MEMLOCK") != std::string::npos ? 0 : 1;
            }),
            0);
}

TEST(SecretsOnDiskAttackTest, LockAllMemoryLocksWithTheCapability) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs CAP_IPC_LOCK (tests run as root in CI)";
  if (kSanitizerBuild) GTEST_SKIP() << "ASan intercepts mlockall as a no-op: VmLck stays 0 in sanitizer builds";
  EXPECT_EQ(InChild([] {
              MemoryLock l = LockAllMemory();
              std::ifstream status("/proc/self/status");
              for (std::string line; std::getline(status, line);) {
                if (line.rfind("VmLck:", 0) == 0) return l.locked && std::stoll(line.substr(6)) > 0 ? 0 : 1;
              }
              return 2;
            }),
            0);
}

// --- the real processes -------------------------------------------------------

class SecretsOnDiskProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cllm_secrets_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    fs::permissions(dir_, fs::perms::all);  // the unprivileged runs write their ready file here
    std::ofstream(dir_ / "plat.key") << attestation::sim::GenerateSimPlatformKey()->ToPem();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // ServerArgv is cllm-server on a copy of `model`, behind `wrapper` (setpriv, prlimit ...).
  std::vector<std::string> ServerArgv(const fs::path& model, std::vector<std::string> wrapper,
                                      std::vector<std::string> extra = {}) {
    fs::copy_file(model, dir_ / "model.gguf", fs::copy_options::overwrite_existing);
    std::vector<std::string> argv = std::move(wrapper);
    for (std::string a : {testing::Bin("cllm-server"), std::string("-m"), (dir_ / "model.gguf").string(),
                          std::string("--tee"), std::string("sim"), std::string("--sim-key"),
                          (dir_ / "plat.key").string(), std::string("--listen"), std::string("127.0.0.1:0"),
                          std::string("--allow-anonymous"), std::string("--ready-file"),
                          (dir_ / "ready.json").string(), std::string("--log-level"), std::string("warn")}) {
      argv.push_back(a);
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }
  // Unprivileged is the wrapper that runs a command without CAP_IPC_LOCK and
  // with a 64 KiB RLIMIT_MEMLOCK (an ordinary service account).
  static std::vector<std::string> Unprivileged() {
    return {"/usr/bin/setpriv", "--bounding-set=-ipc_lock", "--inh-caps=-ipc_lock", "/usr/bin/prlimit",
            "--memlock=65536:65536"};
  }
  static bool HaveWrappers() { return fs::exists("/usr/bin/setpriv") && fs::exists("/usr/bin/prlimit"); }
  static long StatusKb(pid_t pid, const std::string& field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
    }
    return -1;
  }

  fs::path dir_;
};

TEST_F(SecretsOnDiskProcessTest, ServerLocksItsMemoryAndNeverDumpsCore) {
  CLLM_SHARED_PATH(model, "models/stories260K-f16.gguf");
  testing::Process server(ServerArgv(model, {}), dir_ / "server");
  const json ready = testing::WaitReady(server, dir_ / "ready.json");
  ASSERT_FALSE(ready.is_null()) << server.err();
  EXPECT_EQ(ready["memory_locked"], true);
  // VmLck counts locked mappings: the weights (read into memory) and all else
  // (not in sanitizer builds, where ASan turns mlockall into a no-op).
  if (!kSanitizerBuild) {
    EXPECT_GT(StatusKb(server.pid(), "VmLck"), static_cast<long>(fs::file_size(model) / 1024));
  }
  const std::string limits = testing::ReadFile("/proc/" + std::to_string(server.pid()) + "/limits");
  EXPECT_NE(limits.find("Max core file size        0                    0"), std::string::npos) << limits;
}

TEST_F(SecretsOnDiskProcessTest, ServerRefusesToStartWhenMemoryCannotBeLocked) {
  CLLM_SHARED_PATH(model, "models/stories260K-f16.gguf");
  if (!HaveWrappers()) GTEST_SKIP() << "needs setpriv and prlimit (util-linux) to drop CAP_IPC_LOCK";
  testing::Process server(ServerArgv(model, Unprivileged()), dir_ / "server");
  EXPECT_EQ(server.Wait(), 2) << server.err();
  EXPECT_NE(server.err().find("RLIMIT_MEMLOCK"), std::string::npos) << server.err();
  EXPECT_NE(server.err().find("--allow-unlocked-memory"), std::string::npos) << server.err();
  EXPECT_FALSE(fs::exists(dir_ / "ready.json"));
}

// With the opt-in it starts, says so in the ready file, and is still not
// dumpable: run as nobody, its /proc files belong to root (a dumpable
// process's belong to its own uid), so the host-side user cannot read
// /proc/PID/mem or attach a debugger either.
TEST_F(SecretsOnDiskProcessTest, OptInStartsUnlockedButStillNotDumpable) {
  CLLM_SHARED_PATH(model, "models/stories260K-f16.gguf");
  if (!HaveWrappers() || ::geteuid() != 0) GTEST_SKIP() << "needs root, setpriv and prlimit";
  auto wrapper = Unprivileged();
  wrapper.insert(wrapper.begin() + 1, {"--reuid=65534", "--regid=65534", "--clear-groups"});
  testing::Process server(ServerArgv(model, wrapper, {"--allow-unlocked-memory"}), dir_ / "server");
  const json ready = testing::WaitReady(server, dir_ / "ready.json");
  ASSERT_FALSE(ready.is_null()) << server.err();
  EXPECT_EQ(ready["memory_locked"], false);
  EXPECT_NE(server.err().find("memory is NOT locked"), std::string::npos) << server.err();
  struct stat st {};
  ASSERT_EQ(::stat(("/proc/" + std::to_string(server.pid()) + "/status").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u) << "a non-dumpable process's /proc files are root's";
  EXPECT_EQ(StatusKb(server.pid(), "Uid"), 65534) << "the server runs as nobody";
}

TEST_F(SecretsOnDiskProcessTest, TrustServiceRefusesToHoldKeysInUnlockedMemory) {
  if (!HaveWrappers()) GTEST_SKIP() << "needs setpriv and prlimit (util-linux) to drop CAP_IPC_LOCK";
  auto argv = Unprivileged();
  for (std::string a : {testing::Bin("cllm-trust"), std::string("init"), std::string("--state-dir"),
                        (dir_ / "state").string()}) {
    argv.push_back(a);
  }
  testing::Process refused(argv, dir_ / "trust");
  EXPECT_EQ(refused.Wait(), 2) << refused.err();
  EXPECT_NE(refused.err().find("--allow-unlocked-memory"), std::string::npos) << refused.err();
  EXPECT_FALSE(fs::exists(dir_ / "state" / "master.key"));

  argv.push_back("--allow-unlocked-memory");
  testing::Process allowed(argv, dir_ / "trust2");
  EXPECT_EQ(allowed.Wait(), 0) << allowed.err();
  EXPECT_TRUE(fs::exists(dir_ / "state" / "master.key"));
}

}  // namespace
}  // namespace cllm
