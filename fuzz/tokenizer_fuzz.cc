// Fuzzes both tokenizers (SPM and byte-level BPE) built from small synthetic
// vocabularies: arbitrary bytes as prompt text must never crash, and BPE
// every id must be inside the vocabulary.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "base/check.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/tokenizer/tokenizer.h"

using namespace cllm::engine;

namespace {

std::unique_ptr<Tokenizer> Make(bool bpe) {
  GgufWriter w;
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", "<|im_end|>"};
  std::vector<int32_t> types = {2, 3, 3, 3};
  if (bpe) {
    // A partial alphabet on purpose: pieces without a token exercise the fallback.
    const char* printable = "abcdefghijklmnopqrstuvwxyz";
    for (const char* p = printable; *p; ++p) {
      tokens.emplace_back(1, *p);
      types.push_back(1);
    }
    tokens.push_back("ab");
    types.push_back(1);
    w.AddString("tokenizer.ggml.model", "gpt2");
    w.AddString("tokenizer.ggml.pre", "qwen2");
    w.AddStringArray("tokenizer.ggml.merges", {"a b"});
  } else {
    for (int b = 0; b < 256; ++b) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "<0x%02X>", b);
      tokens.push_back(buf);
      types.push_back(6);
    }
    for (const char* t : {"\xe2\x96\x81", "a", "b", "\xe2\x96\x81" "a", "ab"}) {
      tokens.push_back(t);
      types.push_back(1);
    }
    w.AddString("tokenizer.ggml.model", "llama");
  }
  std::vector<float> scores(tokens.size(), 0.0f);
  for (size_t i = 0; i < scores.size(); ++i) scores[i] = -static_cast<float>(i);
  w.AddStringArray("tokenizer.ggml.tokens", tokens);
  w.AddF32Array("tokenizer.ggml.scores", scores);
  w.AddI32Array("tokenizer.ggml.token_type", types);
  w.AddU32("tokenizer.ggml.bos_token_id", 1);
  w.AddU32("tokenizer.ggml.eos_token_id", 2);
  auto f = GgufFile::FromBytes(w.Finish());
  CLLM_CHECK(f.ok());
  auto t = Tokenizer::FromGguf(*f);
  CLLM_CHECK(t.ok());
  return std::move(t).value();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto spm = Make(false);
  static auto bpe = Make(true);
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto a = spm->Encode(text, true, true);
  auto b = bpe->Encode(text, false, true);
  for (TokenId id : a) CLLM_CHECK(id >= 0 && id < spm->n_vocab());
  for (TokenId id : b) CLLM_CHECK(id >= 0 && id < bpe->n_vocab());
  (void)spm->Decode(a);
  (void)bpe->Decode(b);
  // Text outside template markup (a chat message) never yields a control token.
  for (const auto* t : {spm.get(), bpe.get()}) {
    for (TokenId id : t->EncodeWithMarkup(text, {}, false)) CLLM_CHECK(t->GetTokenType(id) != TokenType::kControl);
  }
  return 0;
}
