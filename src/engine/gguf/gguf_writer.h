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

  // Finish serialises the whole file.
  Bytes Finish() const;
  GgufResult<Ok> WriteFile(const std::filesystem::path& path) const;

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;
    Bytes data;
  };
  uint64_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace cllm::engine
