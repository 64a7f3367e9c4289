#include "engine/gguf/gguf_stream_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace cllm::engine {
namespace {

std::filesystem::path TempPath(const std::filesystem::path& path) {
  return std::filesystem::path(path.string() + ".tmp");
}

std::string OsError(const std::string& what, const std::filesystem::path& path) {
  return what + " " + path.string() + ": " + std::strerror(errno);
}

}  // namespace

GgufResult<std::unique_ptr<GgufStreamWriter>> GgufStreamWriter::Create(const std::filesystem::path& path,
                                                                        const GgufWriter& header) {
  const std::filesystem::path tmp = TempPath(path);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return MakeError(GgufErrc::kIo, OsError("cannot create", tmp));
  std::unique_ptr<GgufStreamWriter> w(new GgufStreamWriter(path, f, header.tensor_sizes(), header.alignment()));
  const Bytes head = header.HeaderBytes();
  CLLM_RETURN_IF_ERROR(w->Put(head.data(), head.size()));
  return w;
}

GgufStreamWriter::~GgufStreamWriter() {
  if (file_ != nullptr) std::fclose(file_);
  if (!committed_) {
    std::error_code ec;
    std::filesystem::remove(TempPath(path_), ec);
  }
}

GgufResult<Ok> GgufStreamWriter::Put(const void* data, size_t n) {
  if (n != 0 && std::fwrite(data, 1, n, file_) != n) return MakeError(GgufErrc::kIo, OsError("cannot write", TempPath(path_)));
  written_total_ += n;
  return OkStatus();
}

GgufResult<Ok> GgufStreamWriter::Write(ByteSpan data) {
  if (current_ >= sizes_.size() || written_ + data.size() > sizes_[current_]) {
    return MakeError(GgufErrc::kOutOfBounds, "tensor " + std::to_string(current_) + ": more data than declared");
  }
  written_ += data.size();
  return Put(data.data(), data.size());
}

GgufResult<Ok> GgufStreamWriter::EndTensor() {
  if (current_ >= sizes_.size() || written_ != sizes_[current_]) {
    return MakeError(GgufErrc::kTruncated, "tensor " + std::to_string(current_) + ": fewer bytes than declared");
  }
  static constexpr uint8_t kZeros[256] = {};
  uint64_t pad = (alignment_ - written_ % alignment_) % alignment_;
  while (pad > 0) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(pad, sizeof kZeros));
    CLLM_RETURN_IF_ERROR(Put(kZeros, n));
    pad -= n;
  }
  ++current_;
  written_ = 0;
  return OkStatus();
}

GgufResult<Ok> GgufStreamWriter::Commit() {
  if (current_ != sizes_.size()) {
    return MakeError(GgufErrc::kTruncated, std::to_string(sizes_.size() - current_) + " tensors not written");
  }
  const std::filesystem::path tmp = TempPath(path_);
  const int rc = std::fclose(file_);
  file_ = nullptr;
  if (rc != 0) return MakeError(GgufErrc::kIo, OsError("cannot close", tmp));
  std::error_code ec;
  std::filesystem::rename(tmp, path_, ec);
  if (ec) return MakeError(GgufErrc::kIo, "cannot rename " + tmp.string() + " to " + path_.string() + ": " + ec.message());
  committed_ = true;
  return OkStatus();
}

}  // namespace cllm::engine
