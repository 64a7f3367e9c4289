// gguf_stream_writer.h — writes a GGUF file tensor by tensor, so that files
// larger than memory (a 1.7B model) can be produced from row-sized buffers.
//
//   GgufWriter header;                       // metadata + DeclareTensor(...)
//   auto w = GgufStreamWriter::Create(path, header);
//   for each tensor in declaration order: (*w)->Write(bytes)...; (*w)->EndTensor();
//   (*w)->Commit();                          // renames the temporary file over `path`
//
// The bytes go to `path` + ".tmp" first; a writer destroyed before Commit
// removes it, so no partial file ever carries the final name.
#pragma once

#include <cstdio>
#include <filesystem>
#include <memory>
#include <vector>

#include "engine/gguf/gguf_writer.h"

namespace cllm::engine {

class GgufStreamWriter {
 public:
  // Create writes the header of `header` (its tensors declared or added; any
  // added data is ignored) and expects the tensor data next. kIo on failure.
  static GgufResult<std::unique_ptr<GgufStreamWriter>> Create(const std::filesystem::path& path,
                                                               const GgufWriter& header);
  ~GgufStreamWriter();
  GgufStreamWriter(const GgufStreamWriter&) = delete;
  GgufStreamWriter& operator=(const GgufStreamWriter&) = delete;

  // Write appends bytes of the current tensor (checked against its size).
  GgufResult<Ok> Write(ByteSpan data);
  // EndTensor checks the current tensor is complete and pads to the alignment.
  GgufResult<Ok> EndTensor();
  // Commit checks every tensor was written, flushes and renames into place.
  GgufResult<Ok> Commit();

  size_t tensor_index() const { return current_; }
  uint64_t bytes_written() const { return written_total_; }

 private:
  GgufStreamWriter(std::filesystem::path path, std::FILE* f, std::vector<uint64_t> sizes, uint64_t alignment)
      : path_(std::move(path)), file_(f), sizes_(std::move(sizes)), alignment_(alignment) {}
  GgufResult<Ok> Put(const void* data, size_t n);

  std::filesystem::path path_;
  std::FILE* file_;
  std::vector<uint64_t> sizes_;
  uint64_t alignment_;
  size_t current_ = 0;         // index of the tensor being written
  uint64_t written_ = 0;       // bytes of the current tensor so far
  uint64_t written_total_ = 0;
  bool committed_ = false;
};

}  // namespace cllm::engine
