#include "crypto/hashed_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "crypto/digest.h"

namespace cllm::crypto {
namespace {

constexpr size_t kPiece = size_t{8} << 20;  // read and hash 8 MiB at a time

class Fd {
 public:
  explicit Fd(const std::filesystem::path& p) : fd_(::open(p.c_str(), O_RDONLY | O_CLOEXEC)) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Error<Errc> OsError(const std::string& what, const std::filesystem::path& p) {
  const int err = errno;
  return MakeError(err == ENOENT ? Errc::kNotFound : Errc::kIo, what + " " + p.string() + ": " + std::strerror(err));
}

}  // namespace

Result<HashedFile> ReadFileHashed(const std::filesystem::path& path, const ReadProgress& progress) {
  Fd fd(path);
  if (fd.get() < 0) return OsError("cannot open", path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return OsError("cannot stat", path);
  if (!S_ISREG(st.st_mode)) return MakeError(Errc::kIo, path.string() + " is not a regular file");
  const auto size = static_cast<uint64_t>(st.st_size);

  auto buf = LockedBuffer::Allocate(size);
  if (!buf.ok()) return MakeError(Errc::kIo, "reading " + path.string() + ": " + buf.detail());
  HashedFile out{std::move(buf).value(), {}};
  Hasher hasher(HashAlg::kSha256);
  uint8_t* const base = out.bytes.data();
  for (uint64_t done = 0; done < size;) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kPiece, size - done));
    size_t got = 0;
    while (got < want) {
      const ssize_t n = ::read(fd.get(), base + done + got, want - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return OsError("cannot read", path);
      if (n == 0) {
        return MakeError(Errc::kIo, path.string() + " ended at " + std::to_string(done + got) + " of " +
                                        std::to_string(size) + " bytes: it changed while being read");
      }
      got += static_cast<size_t>(n);
    }
    // Hash the piece where it now lives: the digest describes the buffer,
    // whatever the file holds by the time anyone looks again.
    hasher.Update(ByteSpan(base + done, want));
    done += want;
    if (progress) progress(done, size);
  }
  const Bytes d = hasher.Finish();
  std::copy(d.begin(), d.end(), out.sha256.begin());
  return out;
}

}  // namespace cllm::crypto
