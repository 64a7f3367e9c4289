#include "base/secure.h"

#include <string.h>

namespace cllm {

void SecureZero(void* p, size_t len) {
  if (p == nullptr || len == 0) return;
  // glibc's explicit_bzero is guaranteed not to be optimised away.
  explicit_bzero(p, len);
}

}  // namespace cllm
