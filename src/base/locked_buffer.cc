#include "base/locked_buffer.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "base/secure.h"

namespace cllm {
namespace {
constexpr size_t kHugePageBytes = size_t{2} << 20;
}  // namespace

Result<LockedBuffer> LockedBuffer::Allocate(size_t size) {
  LockedBuffer b;
  // mmap of zero bytes is invalid; keep one page so data() is never null.
  b.mapped_ = size == 0 ? 1 : size;
  void* p = mmap(nullptr, b.mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    return MakeError(Errc::kIo, "cannot map " + std::to_string(size) + " bytes: " + std::strerror(errno));
  }
  b.data_ = static_cast<uint8_t*>(p);
  b.size_ = size;
#ifdef MADV_DONTDUMP
  b.no_dump_ = madvise(p, b.mapped_, MADV_DONTDUMP) == 0;
#endif
#ifdef MADV_HUGEPAGE
  // Model weights and KV blocks are streamed whole every step: 2 MiB pages
  // (where the kernel has them) spare the TLB misses of 4 KiB ones. Asked
  // before mlock, which faults the pages in. Best effort.
  if (b.mapped_ >= kHugePageBytes) (void)madvise(p, b.mapped_, MADV_HUGEPAGE);
#endif
  b.locked_ = mlock(p, b.mapped_) == 0;
  return b;
}

LockedBuffer::~LockedBuffer() { Release(); }

LockedBuffer::LockedBuffer(LockedBuffer&& o) noexcept
    : data_(o.data_), size_(o.size_), mapped_(o.mapped_), locked_(o.locked_), no_dump_(o.no_dump_) {
  o.data_ = nullptr;
  o.size_ = o.mapped_ = 0;
}

LockedBuffer& LockedBuffer::operator=(LockedBuffer&& o) noexcept {
  if (this != &o) {
    Release();
    data_ = o.data_;
    size_ = o.size_;
    mapped_ = o.mapped_;
    locked_ = o.locked_;
    no_dump_ = o.no_dump_;
    o.data_ = nullptr;
    o.size_ = o.mapped_ = 0;
  }
  return *this;
}

void LockedBuffer::Release() {
  if (data_ == nullptr) return;
  SecureZero(data_, mapped_);
  if (locked_) munlock(data_, mapped_);
  munmap(data_, mapped_);
  data_ = nullptr;
  size_ = mapped_ = 0;
}

}  // namespace cllm
