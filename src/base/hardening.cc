#include "base/hardening.h"

#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

namespace cllm {
namespace {

constexpr int kCapIpcLock = 14;  // linux/capability.h CAP_IPC_LOCK

// HasEffectiveCap reads CapEff from /proc/self/status (no libcap needed).
bool HasEffectiveCap(int cap) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    const unsigned long long eff = std::stoull(line.substr(7), nullptr, 16);
    return (eff >> cap) & 1;
  }
  return false;
}

#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4  // Linux 4.4: lock pages as they are touched, do not populate reservations
#endif

}  // namespace

MemoryLock LockAllMemory() {
  MemoryLock out;
  struct rlimit lim {};
  ::getrlimit(RLIMIT_MEMLOCK, &lim);
  const bool unlimited = lim.rlim_cur == RLIM_INFINITY;
  if (!unlimited && !HasEffectiveCap(kCapIpcLock)) {
    out.detail = "RLIMIT_MEMLOCK is " + std::to_string(lim.rlim_cur >> 10) +
                 " KiB and the process lacks CAP_IPC_LOCK, so the model, KV cache and request buffers cannot all "
                 "be locked (raise it: LimitMEMLOCK=infinity, ulimit -l unlimited, or grant CAP_IPC_LOCK)";
    return out;
  }
  // ONFAULT: thread stacks, malloc arenas and sanitizer shadow reservations
  // are locked as they are touched instead of being populated up front.
  // Kernels before 4.4 reject it (EINVAL): then lock everything now.
  int rc = ::mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT);
  if (rc != 0 && errno == EINVAL) rc = ::mlockall(MCL_CURRENT | MCL_FUTURE);
  if (rc != 0) {
    out.detail = std::string("mlockall: ") + std::strerror(errno);
    return out;
  }
  out.locked = true;
  return out;
}

Status<> DisableCoreDumps() {
  // A core file or a dump piped to a host-side handler would carry prompts,
  // KV cache and keys out of the TEE's encrypted memory.
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return MakeError(Errc::kInternal, std::string("prctl(PR_SET_DUMPABLE, 0): ") + std::strerror(errno));
  }
  struct rlimit none {0, 0};
  if (::setrlimit(RLIMIT_CORE, &none) != 0) {
    return MakeError(Errc::kInternal, std::string("setrlimit(RLIMIT_CORE, 0): ") + std::strerror(errno));
  }
  return OkStatus();
}

Result<Hardening> HardenProcess(const HardeningOptions& options) {
  if (auto s = DisableCoreDumps(); !s.ok()) return s.error();
  const MemoryLock lock = options.lock_memory ? options.lock_memory() : MemoryLock{false, "no memory lock function"};
  Hardening out;
  out.memory_locked = lock.locked;
  if (lock.locked) return out;
  out.unlocked_reason = lock.detail;
  if (!options.allow_unlocked_memory) {
    // Fail closed: unlocked pages may be swapped to a disk the host reads.
    return MakeError(Errc::kPermission, "memory cannot be locked: " + lock.detail +
                                            "; refusing to start (--allow-unlocked-memory starts anyway, with "
                                            "prompts, KV cache and keys swappable to host-visible disk)");
  }
  return out;
}

}  // namespace cllm
