// check.h — CLLM_CHECK for our own invariants.
//
// A failed check means a bug in cllm, never bad input: it prints the location
// and aborts. Untrusted bytes must go through Result-returning code instead and
// must never reach a check that can fail.
#pragma once

namespace cllm::internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* expr, const char* msg);
}  // namespace cllm::internal

#define CLLM_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond)) [[unlikely]]                                                  \
      ::cllm::internal::CheckFailed(__FILE__, __LINE__, #cond, nullptr);       \
  } while (0)

#define CLLM_CHECK_MSG(cond, msg)                                              \
  do {                                                                         \
    if (!(cond)) [[unlikely]]                                                  \
      ::cllm::internal::CheckFailed(__FILE__, __LINE__, #cond, (msg));         \
  } while (0)

#ifdef NDEBUG
#define CLLM_DCHECK(cond) \
  do {                    \
  } while (0)
#else
#define CLLM_DCHECK(cond) CLLM_CHECK(cond)
#endif
