// Tokenizers against llama.cpp's ids: every case in reference/tokenizer-*.json
// (with and without special handling) and every model's reference prompt.
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/chat_template.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "engine/gguf/gguf_writer.h"
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

// Llama 3.1 byte-level BPE (pre-tokenizer llama-bpe) and the Phi-3
// SentencePiece vocabulary: 46 cases each whose ids are Hugging Face
// tokenizers' (llama.cpp gives the same), plus the add/parse-special forms.
void CheckHfCases(const std::filesystem::path& model, const std::filesystem::path& ref) {
  CheckCases(model, ref);
  auto tok = Load(model);
  json cases = LoadJson(ref)["cases"];
  ASSERT_EQ(cases.size(), 46u);
  for (const auto& c : cases) {
    EXPECT_EQ(tok->Encode(c["text"].get<std::string>(), false, false), c["hf_ids_no_special"].get<std::vector<TokenId>>())
        << "text: " << c["text"];
  }
}

TEST(TokenizerTest, Llama3ByteLevelBpeMatchesHuggingFace) {
  CLLM_SHARED_PATH(model, "models/llama3-tiny-random-q8_0.gguf");
  CLLM_SHARED_PATH(ref, "models/reference/tokenizer-llama3.json");
  CheckHfCases(model, ref);
}

TEST(TokenizerTest, Phi3SentencePieceMatchesHuggingFace) {
  CLLM_SHARED_PATH(model, "models/phi3-tiny-random-q8_0.gguf");
  CLLM_SHARED_PATH(ref, "models/reference/tokenizer-phi3.json");
  CheckHfCases(model, ref);
}

// Chat turns end with <|end|> (Phi-3) and <|eot_id|> (Llama 3), not with eos.
TEST(TokenizerTest, Phi3AndLlama3TurnEndsAreEndOfGeneration) {
  CLLM_SHARED_PATH(phi3, "models/phi3-tiny-random-q8_0.gguf");
  CLLM_SHARED_PATH(llama3, "models/llama3-tiny-random-q8_0.gguf");
  auto p = Load(phi3);
  EXPECT_EQ(p->Encode("<|end|>", false, true), std::vector<TokenId>{32007});
  EXPECT_TRUE(p->IsEog(32007));
  EXPECT_TRUE(p->IsEog(32000));   // <|endoftext|>
  EXPECT_FALSE(p->IsEog(32010));  // <|user|>
  auto l = Load(llama3);
  EXPECT_TRUE(l->IsEog(128009));  // <|eot_id|>
  EXPECT_EQ(l->Encode("", true, true), std::vector<TokenId>{128000});
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

// A host-supplied GGUF is untrusted input: a token_type array of floats or
// strings is refused, not read as integers (found by review: a float array
// crashed the loader through an empty integer array).
TEST(TokenizerTest, TokenTypesOfTheWrongTypeAreRefused) {
  auto make = [](GgufValue types) {
    GgufWriter w;
    w.AddString("tokenizer.ggml.model", "llama");
    w.AddStringArray("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
    w.Add("tokenizer.ggml.token_type", std::move(types));
    return w.Finish();
  };
  auto array = [](GgufValueType elem, auto fill) {
    GgufArray a;
    a.elem_type = elem;
    fill(a);
    return GgufValue{GgufValueType::kArray, std::move(a)};
  };
  const GgufValue floats = array(GgufValueType::kF32, [](GgufArray& a) { a.floats = {2, 3, 3, 1}; });
  const GgufValue strings = array(GgufValueType::kString, [](GgufArray& a) { a.strings = {"2", "3", "3", "1"}; });
  const GgufValue ints = array(GgufValueType::kI32, [](GgufArray& a) { a.ints = {2, 3, 3, 1}; });
  for (const GgufValue& bad : {floats, strings}) {
    const Bytes file = make(bad);
    auto f = GgufFile::FromBytes(file);
    ASSERT_TRUE(f.ok()) << f.detail();
    auto t = Tokenizer::FromGguf(*f);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.code(), TokenizerErrc::kBadVocab) << t.detail();
  }
  const Bytes good = make(ints);
  auto f = GgufFile::FromBytes(good);
  ASSERT_TRUE(f.ok()) << f.detail();
  EXPECT_TRUE(Tokenizer::FromGguf(*f).ok());
}

TEST(ChatTest, ModelTemplateForQwenAndPlainForStoryModels) {
  CLLM_SHARED_PATH(qwen, "models/ggml-vocab-qwen3.gguf");
  CLLM_SHARED_PATH(stories, "models/stories260K-f32.gguf");
  ChatTemplateInput in;
  in.messages = nlohmann::json::parse(R"([{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}])");
  auto qf = GgufFile::Open(qwen).value();
  auto qt = Tokenizer::FromGguf(qf).value();
  auto q = ChatTemplate::ForModel(qf, *qt);
  ASSERT_TRUE(q.ok()) << q.detail();
  EXPECT_FALSE(q->is_plain());
  auto qr = q->Render(in);
  ASSERT_TRUE(qr.ok()) << qr.detail();
  EXPECT_EQ(qr->text, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  auto sf = GgufFile::Open(stories).value();
  auto st = Tokenizer::FromGguf(sf).value();
  auto s = ChatTemplate::ForModel(sf, *st);
  ASSERT_TRUE(s.ok()) << s.detail();
  EXPECT_TRUE(s->is_plain());
  auto sr = s->Render(in);
  ASSERT_TRUE(sr.ok());
  EXPECT_EQ(sr->text, "Be brief.\nHi");
  EXPECT_TRUE(sr->markup.empty());
}

// The chat templates of the Llama 3.1 and Phi-3 files render (BOS is the
// tokenizer's to add, so the template's leading bos_token is dropped).
TEST(ChatTest, Llama3AndPhi3TemplatesRender) {
  CLLM_SHARED_PATH(phi3, "models/phi3-tiny-random-q8_0.gguf");
  CLLM_SHARED_PATH(llama3, "models/llama3-tiny-random-q8_0.gguf");
  ChatTemplateInput in;
  in.messages = nlohmann::json::parse(R"([{"role":"user","content":"Hi"}])");
  auto pf = GgufFile::Open(phi3).value();
  auto pt = Tokenizer::FromGguf(pf).value();
  auto p = ChatTemplate::ForModel(pf, *pt);
  ASSERT_TRUE(p.ok()) << p.detail();
  auto pr = p->Render(in);
  ASSERT_TRUE(pr.ok()) << pr.detail();
  EXPECT_EQ(pr->text, "<|user|>\nHi<|end|>\n<|assistant|>\n");
  auto lf = GgufFile::Open(llama3).value();
  auto lt = Tokenizer::FromGguf(lf).value();
  auto l = ChatTemplate::ForModel(lf, *lt);
  ASSERT_TRUE(l.ok()) << l.detail();
  auto lr = l->Render(in);
  ASSERT_TRUE(lr.ok()) << lr.detail();
  EXPECT_NE(lr->text.find("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"), std::string::npos) << lr->text;
  EXPECT_EQ(lr->text.rfind("<|begin_of_text|>", 0), std::string::npos) << lr->text;  // BOS left to the tokenizer
}

TEST(ChatTest, BrokenTemplatesFailAtLoadWithTheirPosition) {
  auto syntax = ChatTemplate::FromSource("ok\n{% if %}", "", "");
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.code(), TokenizerErrc::kUnsupportedModel);
  EXPECT_NE(syntax.detail().find("2:"), std::string::npos) << syntax.detail();
  auto raises = ChatTemplate::FromSource("{{ raise_exception('never renders') }}", "", "");
  ASSERT_FALSE(raises.ok());
  EXPECT_NE(raises.detail().find("never renders"), std::string::npos) << raises.detail();
}

TEST(ChatTest, LeadingBosIsNotDoubledAndNullContentIsGivenAsEmptyWhereNeeded) {
  const std::string src = "{{ bos_token }}{% for m in messages %}{{ '[' + m.content + ']' }}{% endfor %}";
  auto t = ChatTemplate::FromSource(src, "<s>", "</s>", /*strip_bos=*/true);
  ASSERT_TRUE(t.ok()) << t.detail();
  ChatTemplateInput in;
  in.messages = nlohmann::json::parse(R"([{"role":"user","content":"<s>hi"},
      {"role":"assistant","content":null,"tool_calls":[{"type":"function","function":{"name":"f","arguments":{}}}]}])");
  auto r = t->Render(in);
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_EQ(r->text, "[<s>hi][]");  // the tokenizer adds BOS; null content became ""
  ASSERT_EQ(r->markup.size(), 2u);  // "[" and "][]"
  EXPECT_EQ(r->markup[0].begin, 0u);
  EXPECT_EQ(r->markup[0].end, 1u);  // "[": the user's "<s>" is not markup
  auto kept = ChatTemplate::FromSource(src, "<s>", "</s>", /*strip_bos=*/false);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->Render(in)->text, "<s>[<s>hi][]");
}

}  // namespace
}  // namespace cllm::engine
