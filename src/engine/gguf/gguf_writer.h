// gguf_writer.h — writes spec-exact GGUF v3 files (metadata of every type,
// tensors aligned and padded), for tests, fuzz seeds and `cllm model synth`.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "engine/gguf/gguf.h"

namespace cllm::engine {

class GgufWriter {
 public:
  explicit GgufWriter(uint64_t alignment = 32);

  void Add(std::string key, GgufValue value);
  void AddString(std::string key, std::string v);
  void AddU32(std::string key, uint32_t v);
  void AddI32(std::string key, int32_t v);
  void AddU64(std::string key, uint64_t v);
  void AddF32(std::string key, float v);
  void AddBool(std::string key, bool v);
  void AddStringArray(std::string key, std::vector<std::string> v);
  void AddF32Array(std::string key, std::vector<float> v);
  void AddI32Array(std::string key, std::vector<int32_t> v);

  // AddTensor appends a tensor; `data` must be exactly its byte size.
  void AddTensor(std::string name, GgmlType type, std::vector<int64_t> ne, ByteSpan data);

  // DeclareTensor appends a tensor whose bytes a GgufStreamWriter writes
  // later (large files: the data never has to be in memory at once).
  void DeclareTensor(std::string name, GgmlType type, std::vector<int64_t> ne);

  // HeaderBytes serialises everything before the data section: header,
  // metadata, tensor table and the padding up to the aligned data offset.
  Bytes HeaderBytes() const;
  // tensor_sizes lists each tensor's data size (unpadded), in file order.
  std::vector<uint64_t> tensor_sizes() const;
  uint64_t alignment() const { return alignment_; }

  // Finish serialises the whole file (every tensor must have been added
  // with its data, not just declared).
  Bytes Finish() const;
  GgufResult<Ok> WriteFile(const std::filesystem::path& path) const;

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;
    uint64_t n_bytes = 0;
    bool has_data = false;
    Bytes data;
  };
  uint64_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace cllm::engine
