#include "engine/gguf/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace cllm::engine {
namespace {

class MappedFile : public ByteSource {
 public:
  MappedFile(void* addr, size_t size) : addr_(addr), size_(size) {}
  ~MappedFile() override {
    if (addr_ != nullptr) munmap(addr_, size_);
  }
  ByteSpan bytes() const override { return ByteSpan(static_cast<const uint8_t*>(addr_), size_); }
  // A private read-only file mapping: MADV_DONTNEED drops the whole pages
  // inside the range; touching them again reads the file's bytes back.
  bool Discard(const uint8_t* p, size_t n) const override {
    const auto base = reinterpret_cast<uintptr_t>(addr_);
    const auto a = reinterpret_cast<uintptr_t>(p);
    if (a < base || n > size_ || a - base > size_ - n) return false;
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const uintptr_t first = (a + page - 1) / page * page, last = (a + n) / page * page;
    if (first >= last) return true;
    return madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) == 0;
  }
  bool CanDiscard() const override { return true; }

 private:
  void* addr_;
  size_t size_;
};

}  // namespace

GgufResult<std::shared_ptr<const ByteSource>> MapFile(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return MakeError(GgufErrc::kIo, "cannot open " + path.string() + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return MakeError(GgufErrc::kIo, path.string() + " is not a regular file");
  }
  size_t size = static_cast<size_t>(st.st_size);
  void* addr = nullptr;
  if (size > 0) {
    addr = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      return MakeError(GgufErrc::kIo, "cannot map " + path.string() + ": " + std::strerror(err));
    }
  }
  ::close(fd);  // the mapping keeps the file referenced
  return std::shared_ptr<const ByteSource>(std::make_shared<MappedFile>(addr, size));
}

}  // namespace cllm::engine
