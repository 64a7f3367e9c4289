#include "base/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/encoding.h"

namespace cllm {
namespace {

Error<Errc> OsError(const std::string& what, const std::filesystem::path& path, int err) {
  Errc code = err == ENOENT ? Errc::kNotFound
              : (err == EACCES || err == EPERM) ? Errc::kPermission
                                                : Errc::kIo;
  return MakeError(code, what + " " + path.string() + ": " + std::strerror(err));
}

}  // namespace

Result<Bytes> ReadFile(const std::filesystem::path& path, uint64_t max_size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return OsError("cannot open", path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return OsError("cannot stat", path, err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return MakeError(Errc::kIo, path.string() + " is not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > max_size) {
    ::close(fd);
    return MakeError(Errc::kOutOfRange, path.string() + " is larger than " +
                                            std::to_string(max_size) + " bytes");
  }
  Bytes out(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return OsError("cannot read", path, err);
    }
    if (n == 0) break;  // file shrank while reading
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(done);
  return out;
}

Result<std::string> ReadTextFile(const std::filesystem::path& path, uint64_t max_size) {
  CLLM_ASSIGN_OR_RETURN(Bytes b, ReadFile(path, max_size));
  return std::string(b.begin(), b.end());
}

// WriteAllAndClose writes `data` to `fd`, fsyncs and closes it; on failure
// it removes `path` (the file being written).
static Status<> WriteAllAndClose(int fd, const std::filesystem::path& path, ByteSpan data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(path.c_str());
      return OsError("cannot write", path, err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(path.c_str());
    return OsError("cannot flush", path, err);
  }
  return OkStatus();
}

Status<> WriteFileAtomic(const std::filesystem::path& path, ByteSpan data, unsigned mode) {
  std::filesystem::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return OsError("cannot create", tmp, errno);
  CLLM_RETURN_IF_ERROR(WriteAllAndClose(fd, tmp, data));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return OsError("cannot rename onto", path, err);
  }
  return OkStatus();
}

Status<> WriteNewSecretFile(const std::filesystem::path& path, ByteSpan data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return OsError(errno == EEXIST ? "refusing to overwrite existing" : "cannot create", path, errno);
  return WriteAllAndClose(fd, path, data);
}

Result<SecretBytes> ReadHexSecretFile(const std::filesystem::path& path, size_t size) {
  CLLM_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path, 4 * size + 64));
  size_t end = text.size();
  while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == '\r' || text[end - 1] == ' ')) --end;
  auto bytes = HexDecode(std::string_view(text).substr(0, end));
  SecureZero(text.data(), text.size());
  if (!bytes.ok() || bytes->size() != size) {
    if (bytes.ok()) SecureZero(bytes->data(), bytes->size());
    return MakeError(Errc::kParse, path.string() + ": expected " + std::to_string(2 * size) + " hex characters (" +
                                       std::to_string(size) + " bytes)");
  }
  SecretBytes out(*bytes);
  SecureZero(bytes->data(), bytes->size());
  return out;
}

}  // namespace cllm
