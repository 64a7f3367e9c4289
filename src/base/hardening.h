// hardening.h — keeping a process's secrets off host-visible disk.
//
// In a CVM the host cannot read guest memory, but it can read what the guest
// writes: core dumps and swap. A server holding prompts, KV cache, model
// weights and keys therefore (1) never dumps core: PR_SET_DUMPABLE 0 (also
// makes /proc/PID/mem and friends root-only and refuses ptrace by other
// users) and RLIMIT_CORE 0; (2) locks all its memory, present and future
// (mlockall MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT), so nothing is swapped.
// When locking is impossible it refuses to start unless the operator opted in
// (--allow-unlocked-memory); the large secret buffers are also
// MADV_DONTDUMP (base/locked_buffer.h).
#pragma once

#include <functional>
#include <string>

#include "base/result.h"

namespace cllm {

// MemoryLock is what the OS granted when asked to lock all memory.
struct MemoryLock {
  bool locked = false;  // every mapping, present and future, is locked
  std::string detail;   // why not (the OS reason, the limit), empty when locked
};

// LockAllMemory locks all present and future mappings. Locking counts only
// when it cannot fail later: with CAP_IPC_LOCK or an unlimited
// RLIMIT_MEMLOCK; a finite limit would make later allocations (the model, the
// KV cache) fail, so it is undone and reported as not locked.
MemoryLock LockAllMemory();

// DisableCoreDumps makes the process non-dumpable and sets RLIMIT_CORE to 0.
// kInternal with the OS reason on failure.
Status<> DisableCoreDumps();

struct HardeningOptions {
  bool allow_unlocked_memory = false;  // start even when memory cannot be locked
  // lock_memory is LockAllMemory; tests inject a failure.
  std::function<MemoryLock()> lock_memory = LockAllMemory;
};

struct Hardening {
  bool memory_locked = false;
  std::string unlocked_reason;  // when !memory_locked (the caller warns)
};

// HardenProcess disables core dumps, then locks memory. Errors: kInternal
// when core dumps cannot be disabled; kPermission when memory cannot be
// locked and !allow_unlocked_memory, with a detail saying how to fix it.
Result<Hardening> HardenProcess(const HardeningOptions& options);

}  // namespace cllm
