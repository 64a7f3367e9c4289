// Tokenizers against llama.cpp's ids: every case in reference/tokenizer-*.json
// (with and without special handling) and every model's reference prompt.
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/chat.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "support/shared_data.h"

namespace cllm::engine {
namespace {

using nlohmann::json;

json LoadJson(const std::filesystem::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

std::unique_ptr<Tokenizer> Load(const std::filesystem::path& p) {
  auto f = GgufFile::Open(p);
  EXPECT_TRUE(f.ok()) << p;
  auto t = Tokenizer::FromGguf(*f);
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.detail());
  return std::move(t).value();
}

void CheckCases(const std::filesystem::path& model, const std::filesystem::path& ref) {
  auto tok = Load(model);
  json cases = LoadJson(ref)["cases"];
  ASSERT_GE(cases.size(), 20u);
  for (const auto& c : cases) {
    std::string text = c["text"];
    auto with = tok->Encode(text, true, true);
    auto without = tok->Encode(text, false, false);
    EXPECT_EQ(with, c["ids_add_special_parse_special"].get<std::vector<TokenId>>()) << "text: " << text;
    EXPECT_EQ(without, c["ids_no_add_special_no_parse_special"].get<std::vector<TokenId>>()) << "text: " << text;
  }
}

TEST(TokenizerTest, Tok512SentencePieceMatchesLlamaCpp) {
  CLLM_SHARED_PATH(model, "models/stories260K-f32.gguf");
  CLLM_SHARED_PATH(ref, "models/reference/tokenizer-tok512.json");
  CheckCases(model, ref);
}

TEST(TokenizerTest, Qwen3ByteLevelBpeMatchesLlamaCpp) {
  CLLM_SHARED_PATH(model, "models/ggml-vocab-qwen3.gguf");
  CLLM_SHARED_PATH(ref, "models/reference/tokenizer-qwen3.json");
  CheckCases(model, ref);
}

TEST(TokenizerTest, EveryReferencePromptTokenizesAsLlamaCpp) {
  CLLM_SHARED_PATH(dir, "models/reference");
  int checked = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".json" || e.path().filename().string().rfind("tokenizer", 0) == 0 ||
        e.path().filename() == "perplexity.json") {
      continue;
    }
    json ref = LoadJson(e.path());
    auto tok = Load(testing::SharedDir() / "models" / ref["model_file"].get<std::string>());
    for (const auto& c : ref["cases"]) {
      EXPECT_EQ(tok->Encode(c["prompt"].get<std::string>(), true, true),
                c["prompt_tokens"].get<std::vector<TokenId>>())
          << e.path().filename() << ": " << c["prompt"];
      ++checked;
    }
  }
  EXPECT_GE(checked, 20);
}

TEST(TokenizerTest, DecodeRoundTrips) {
  CLLM_SHARED_PATH(qwen, "models/ggml-vocab-qwen3.gguf");
  CLLM_SHARED_PATH(spm, "models/stories260K-f32.gguf");
  auto q = Load(qwen);
  for (std::string s : {"Hello, world!", "日本語のテキスト 🚀", "  spaces\n\nand\ttabs ", "a\xff\xfe" "b"}) {
    EXPECT_EQ(q->Decode(q->Encode(s, false, false)), s);
  }
  auto t = Load(spm);
  auto ids = t->Encode("Once upon a time", true, true);
  EXPECT_EQ(t->Decode(ids), " Once upon a time");  // SPM's space prefix
  EXPECT_EQ(t->TokenToPiece(t->bos()), "");
  EXPECT_EQ(t->TokenToPiece(t->bos(), true), "<s>");
  EXPECT_TRUE(t->IsEog(t->eos()));
  EXPECT_EQ(t->TokenToPiece(-5), "");
  EXPECT_EQ(t->TokenToPiece(1 << 30), "");
}

TEST(TokenizerTest, Qwen3SpecialTokens) {
  CLLM_SHARED_PATH(qwen, "models/ggml-vocab-qwen3.gguf");
  auto q = Load(qwen);
  TokenId im_end = q->Encode("<|im_end|>", false, true).at(0);
  EXPECT_TRUE(q->IsEog(im_end));
  EXPECT_EQ(q->GetTokenType(im_end), TokenType::kControl);
  EXPECT_GT(q->Encode("<|im_end|>", false, false).size(), 1u);  // plain text without parse_special
  EXPECT_EQ(q->bos(), 151643);
  EXPECT_TRUE(q->Encode("", true, true).empty());  // Qwen adds no BOS
}

}  // namespace
}  // namespace cllm::engine

namespace cllm::engine {
namespace {

TEST(ChatTest, ChatMlForQwenAndPlainForStoryModels) {
  std::vector<ChatTurn> turns = {{"system", "Be brief."}, {"user", "Hi"}};
  EXPECT_EQ(FormatChatAs(ChatFormat::kChatMl, turns, true),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(FormatChatAs(ChatFormat::kPlain, turns, true), "Be brief.\nHi");
  CLLM_SHARED_PATH(qwen, "models/ggml-vocab-qwen3.gguf");
  CLLM_SHARED_PATH(stories, "models/stories260K-f32.gguf");
  EXPECT_EQ(*DetectChatFormat(GgufFile::Open(qwen).value()), ChatFormat::kChatMl);
  EXPECT_EQ(*DetectChatFormat(GgufFile::Open(stories).value()), ChatFormat::kPlain);
}

}  // namespace
}  // namespace cllm::engine
