// Fuzzes the GGUF reader with arbitrary bytes, then touches everything parsed
// and hands it to what reads a model's metadata: the vocabulary and the
// model configuration (a host-supplied file reaches both).
#include <cstddef>
#include <cstdint>

#include "engine/gguf/gguf.h"
#include "engine/model/config.h"
#include "engine/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = cllm::engine::GgufFile::FromBytes(cllm::ByteSpan(data, size));
  if (!f.ok()) return 0;
  size_t sink = 0;
  for (const auto& [key, value] : f->metadata()) sink += key.size() + static_cast<size_t>(value.type);
  for (const auto& t : f->tensors()) {
    // Every byte of every tensor must be inside the buffer.
    if (t.n_bytes > 0) sink += t.data[0] + t.data[t.n_bytes - 1];
    sink += static_cast<size_t>(t.n_elements());
  }
  (void)f->GetString("general.architecture");
  (void)f->GetArray("tokenizer.ggml.tokens");
  (void)cllm::engine::Tokenizer::FromGguf(*f);
  (void)cllm::engine::ConfigFromGguf(*f);
  return static_cast<int>(sink & 0);
}
