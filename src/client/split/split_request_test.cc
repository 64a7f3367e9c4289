// Tests of the split client's loader and request builder, without the
// engine: ε = ∞ sends exactly the rows of the plain tokenization, a request
// carries neither the text nor its token ids, mask policies, embeddings-part
// files with precomputed neighbour lists, and the proxy's request rewriting.
#include "client/split/split_request.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <tuple>

#include "base/encoding.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/gguf/mapped_file.h"
#include "engine/tokenizer/tokenizer.h"
#include "support/shared_data.h"

namespace cllm::split {
namespace {

using nlohmann::json;

constexpr char kStories[] = "models/stories260K-f32.gguf";
constexpr char kText[] = "Lily and Tom went to the park with 42 red balloons.";

std::array<uint8_t, 32> Seed(uint8_t b) {
  std::array<uint8_t, 32> s{};
  s[0] = b;
  return s;
}

std::vector<uint32_t> PlainIds(const SplitModel& m, std::string_view text, bool bos) {
  std::vector<uint32_t> out;
  for (engine::TokenId id : m.tokenizer->Encode(text, bos, false))
    out.push_back(static_cast<uint32_t>(id));
  return out;
}

std::vector<float> DecodeRows(const std::string& b64) {
  auto raw = Base64Decode(b64);
  EXPECT_TRUE(raw.ok());
  std::vector<float> out(raw->size() / 4);
  for (size_t i = 0; i < out.size(); ++i) {
    const uint8_t* p = raw->data() + i * 4;
    out[i] = std::bit_cast<float>(uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 |
                                  uint32_t{p[3]} << 24);
  }
  return out;
}

template <typename T>
ByteSpan RawBytes(const std::vector<T>& v) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(T));
}

bool SameBits(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(SplitLoadTest, LoadsAWholeModelFile) {
  CLLM_SHARED_PATH(path, kStories);
  auto m = LoadEmbeddings(path);
  ASSERT_TRUE(m.ok()) << m.detail();
  EXPECT_EQ(m->table.n_vocab(), 512u);
  EXPECT_EQ(m->table.dim(), 64u);
  EXPECT_EQ(m->tokenizer->n_vocab(), 512);
  EXPECT_EQ(m->arch, "llama");
  EXPECT_EQ(m->table.neighbours_k(), 0u);
}

TEST(SplitLoadTest, RefusesFilesWithoutEmbeddingsOrTokenizer) {
  EXPECT_FALSE(LoadEmbeddings("/nonexistent/file.gguf").ok());
  engine::GgufWriter no_tensor;
  no_tensor.AddString("general.name", "x");
  auto r = LoadEmbeddingsFromMemory(std::make_shared<engine::OwnedBytes>(no_tensor.Finish()));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.detail().find("token_embd.weight"), std::string::npos) << r.detail();
  engine::GgufWriter no_tokenizer;
  std::vector<float> rows(8, 1.0f);
  no_tokenizer.AddTensor("token_embd.weight", engine::GgmlType::kF32, {4, 2}, RawBytes(rows));
  r = LoadEmbeddingsFromMemory(std::make_shared<engine::OwnedBytes>(no_tokenizer.Finish()));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.detail().find("tokenizer"), std::string::npos) << r.detail();
}

// ε = ∞: the rows sent are exactly the rows of the plain tokenization.
TEST(SplitRequestTest, InfiniteEpsilonIsGatherOfPlainTokenization) {
  CLLM_SHARED_PATH(path, kStories);
  auto m = LoadEmbeddings(path);
  ASSERT_TRUE(m.ok()) << m.detail();
  SeededRandom random(Seed(1));
  for (bool bos : {false, true}) {
    auto e = EmbedText(*m, kText, bos, RnmOptions{kNoNoise, 20}, MaskPolicy{}, random);
    ASSERT_TRUE(e.ok()) << e.detail();
    const std::vector<uint32_t> ids = PlainIds(*m, kText, bos);
    auto plain = m->table.Gather(ids);
    ASSERT_TRUE(plain.ok());
    EXPECT_TRUE(SameBits(e->rows, *plain));
    EXPECT_EQ(e->n_rows, ids.size());
    EXPECT_EQ(e->dim, 64u);
    EXPECT_EQ(e->num_replaced, 0u);
    // BOS is public: never counted as perturbed.
    EXPECT_EQ(e->num_perturbed, ids.size() - (bos ? 1 : 0));
    EXPECT_EQ(e->epsilon_total, std::numeric_limits<double>::infinity());
    if (bos) {
      EXPECT_EQ(ids[0], static_cast<uint32_t>(m->tokenizer->bos()));
    }
  }
  EXPECT_EQ(EmbedText(*m, "", false, RnmOptions{}, MaskPolicy{}, random).code(),
            SplitErrc::kInvalidArgument);
}

TEST(SplitRequestTest, FiniteEpsilonAccountsPerToken) {
  CLLM_SHARED_PATH(path, kStories);
  auto m = LoadEmbeddings(path);
  ASSERT_TRUE(m.ok()) << m.detail();
  SeededRandom random(Seed(2));
  auto e = EmbedText(*m, kText, false, RnmOptions{2.0, 8}, MaskPolicy{}, random);
  ASSERT_TRUE(e.ok()) << e.detail();
  const size_t n = PlainIds(*m, kText, false).size();
  EXPECT_EQ(e->num_perturbed, n);
  EXPECT_DOUBLE_EQ(e->epsilon_total, 2.0 * n);
  EXPECT_GT(e->num_replaced, 0u);  // at ε = 2 over k = 8 most tokens change
  EXPECT_EQ(e->rows.size(), n * 64);
}

// What leaves the client: no text, no token ids — only base64 rows.
TEST(SplitRequestTest, RequestCarriesNoTextAndNoTokenIds) {
  CLLM_SHARED_PATH(path, kStories);
  auto m = LoadEmbeddings(path);
  ASSERT_TRUE(m.ok()) << m.detail();
  SeededRandom random(Seed(3));
  auto e = EmbedText(*m, kText, false, RnmOptions{kNoNoise, 20}, MaskPolicy{}, random);
  ASSERT_TRUE(e.ok()) << e.detail();
  // The request `cllm chat --split` sends.
  const json chat = {
      {"model", "m"},
      {"messages",
       json::array({{{"role", "user"}, {"content", json::array({PromptEmbedsPart(*e)})}}})},
      {"stream", true},
      {"max_tokens", 7}};
  // And the one `cllm proxy --split` makes from a plain request.
  SplitRewriter rewriter(*m, RnmOptions{kNoNoise, 20}, MaskPolicy{}, random);
  const json plain = {{"model", "m"},
                      {"messages", json::array({{{"role", "user"}, {"content", kText}}})}};
  auto out = rewriter.Rewrite("POST", "/v1/chat/completions", plain.dump());
  ASSERT_TRUE(out.ok) << out.message;
  const json completion = {{"model", "m"}, {"prompt", kText}, {"max_tokens", 7}};
  auto out2 = rewriter.Rewrite("POST", "/v1/completions", completion.dump());
  ASSERT_TRUE(out2.ok) << out2.message;

  const std::vector<uint32_t> ids = PlainIds(*m, kText, false);
  std::string id_list;
  for (uint32_t id : ids) id_list += (id_list.empty() ? "" : ",") + std::to_string(id);
  for (const std::string& bytes : {chat.dump(), out.body, out2.body}) {
    EXPECT_EQ(bytes.find(kText), std::string::npos);
    EXPECT_EQ(bytes.find(id_list), std::string::npos);
    // Words are checked outside the base64 rows (whose alphabet holds "42"
    // or "Tom" by chance).
    std::string outside = bytes;
    for (size_t q = outside.find("\"prompt_embeds\":\""); q != std::string::npos;
         q = outside.find("\"prompt_embeds\":\"", q + 1)) {
      const size_t begin = q + 17, end = outside.find('"', begin);
      outside.erase(begin, end - begin);
    }
    for (const char* word : {"Lily", "Tom", "park", "balloons", "42"}) {
      EXPECT_EQ(outside.find(word), std::string::npos) << word << " in " << outside;
    }
    // Structurally: the only numbers are the ones the caller set, and every
    // string other than the base64 rows is a fixed protocol word.
    const json j = json::parse(bytes);
    std::vector<const json*> stack = {&j};
    while (!stack.empty()) {
      const json* v = stack.back();
      stack.pop_back();
      if (v->is_structured()) {
        for (const auto& item : v->items()) stack.push_back(&item.value());
      } else if (v->is_number()) {
        EXPECT_EQ(v->get<int>(), 7);
      } else if (v->is_string()) {
        const std::string& s = v->get_ref<const std::string&>();
        const bool protocol = s == "m" || s == "user" || s == "prompt_embeds" || s == "float32";
        EXPECT_TRUE(protocol || SameBits(DecodeRows(s), *m->table.Gather(ids)) ||
                    SameBits(DecodeRows(s), *m->table.Gather(PlainIds(*m, kText, true))))
            << s.substr(0, 80);
      }
    }
  }
}

TEST(SplitRequestTest, EncodesFloat32LittleEndian) {
  const std::vector<float> rows = {1.0f, -2.0f};
  // 1.0f = 0x3F800000, −2.0f = 0xC0000000, little-endian.
  EXPECT_EQ(EncodeRowsBase64(rows), Base64Encode(Bytes{0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0}));
  SplitEmbeds e;
  e.rows = rows;
  const json part = PromptEmbedsPart(e);
  EXPECT_EQ(part["type"], "prompt_embeds");
  EXPECT_EQ(part["prompt_embeds_dtype"], "float32");
  EXPECT_TRUE(SameBits(DecodeRows(part["prompt_embeds"].get<std::string>()), rows));
}

// ---------------------------------------------------------------------------
// Mask policies
// ---------------------------------------------------------------------------

TEST(SplitMaskTest, DigitsMarksTokensWithDigits) {
  CLLM_SHARED_PATH(path, kStories);
  auto m = LoadEmbeddings(path);
  ASSERT_TRUE(m.ok()) << m.detail();
  const std::vector<uint32_t> ids = PlainIds(*m, kText, true);
  MaskPolicy digits;
  digits.kind = MaskKind::kDigits;
  const std::vector<uint8_t> mask = BuildMask(digits, kText, ids, *m->tokenizer);
  ASSERT_EQ(mask.size(), ids.size());
  size_t marked = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string piece = m->tokenizer->TokenToPiece(static_cast<engine::TokenId>(ids[i]));
    EXPECT_EQ(mask[i] != 0, piece.find_first_of("0123456789") != std::string::npos) << piece;
    marked += mask[i];
  }
  EXPECT_GE(marked, 1u);  // "42"
  EXPECT_EQ(mask[0], 0);  // BOS
  MaskPolicy all;
  const std::vector<uint8_t> all_mask = BuildMask(all, kText, ids, *m->tokenizer);
  EXPECT_EQ(all_mask[0], 0);  // BOS is public even under "all"
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_EQ(all_mask[i], 1);
}

TEST(SplitMaskTest, WordsFileMarksTheWordsTokens) {
  CLLM_SHARED_PATH(path, kStories);
  auto m = LoadEmbeddings(path);
  ASSERT_TRUE(m.ok()) << m.detail();
  char name[] = "/tmp/split_words_XXXXXX";
  const int fd = ::mkstemp(name);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(name) << "# who must stay private\r\nLily\n\nTom\r\n";
  auto policy = MaskPolicyFromSpec(std::string("words:") + name);
  std::remove(name);
  ASSERT_TRUE(policy.ok()) << policy.detail();
  EXPECT_EQ(policy->kind, MaskKind::kWords);

  const std::vector<uint32_t> ids = PlainIds(*m, kText, false);
  const std::vector<uint8_t> mask = BuildMask(*policy, kText, ids, *m->tokenizer);
  // The positions making up "Lily" and "Tom" are marked, "park" is not.
  std::string marked_text, unmarked_text;
  for (size_t i = 0; i < ids.size(); ++i) {
    (mask[i] ? marked_text : unmarked_text) +=
        m->tokenizer->TokenToPiece(static_cast<engine::TokenId>(ids[i]));
  }
  EXPECT_NE(marked_text.find("Lily"), std::string::npos) << marked_text;
  EXPECT_NE(marked_text.find("Tom"), std::string::npos) << marked_text;
  EXPECT_EQ(unmarked_text.find("Lily"), std::string::npos);
  EXPECT_NE(unmarked_text.find("park"), std::string::npos) << unmarked_text;

  // Accounting follows the mask.
  SeededRandom random(Seed(4));
  auto e = EmbedText(*m, kText, false, RnmOptions{1.0, 8}, *policy, random);
  ASSERT_TRUE(e.ok()) << e.detail();
  size_t n_marked = 0;
  for (uint8_t b : mask) n_marked += b;
  EXPECT_EQ(e->num_perturbed, n_marked);
  EXPECT_DOUBLE_EQ(e->epsilon_total, 1.0 * n_marked);
}

// A word's tokens depend on what comes before it: after a newline, a bracket
// or a quote they are not those of "Lily" or " Lily". Every context marks
// every byte of the word, on a SentencePiece and on a byte-level BPE
// vocabulary. (Matching token ids of "Lily" and " Lily" sent the exact rows
// of "\nLily" and "(Lily".)
TEST(SplitMaskTest, WordsAreMarkedWhateverComesBefore) {
  CLLM_SHARED_PATH(stories, kStories);
  CLLM_SHARED_PATH(qwen, "models/ggml-vocab-qwen3.gguf");
  MaskPolicy policy;
  policy.kind = MaskKind::kWords;
  policy.words = {"Lily", "Tom Smith"};
  for (const auto& file : {stories, qwen}) {
    auto gguf = engine::GgufFile::Open(file);
    ASSERT_TRUE(gguf.ok()) << file;
    auto tokenizer = engine::Tokenizer::FromGguf(*gguf);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.detail();
    for (const std::string text :
         {"Lily went home.", "Hello\nLily", "(Lily)", "\"Lily\" said Tom Smith", "x:Lily", "Lilyanne",
          "a\n\nTom Smith\tand\tLily", "É Lily é"}) {
      for (bool bos : {false, true}) {
        std::vector<uint32_t> ids;
        for (engine::TokenId id : (*tokenizer)->Encode(text, bos, false))
          ids.push_back(static_cast<uint32_t>(id));
        const std::vector<uint8_t> mask = BuildMask(policy, text, ids, **tokenizer);
        ASSERT_EQ(mask.size(), ids.size());
        // What leaves the client unperturbed, with '\0' where rows are noisy.
        std::string exact;
        for (size_t i = 0; i < ids.size(); ++i) {
          const std::string piece = (*tokenizer)->TokenToPiece(static_cast<engine::TokenId>(ids[i]));
          exact += mask[i] ? std::string(piece.size(), '\0') : piece;
        }
        // The pieces spell the text (SentencePiece adds a space in front);
        // no byte of any occurrence of a word stays exact.
        ASSERT_GE(exact.size(), text.size());
        const size_t shift = exact.size() - text.size();
        for (const std::string& w : policy.words) {
          for (size_t at = text.find(w); at != std::string::npos; at = text.find(w, at + 1)) {
            EXPECT_EQ(exact.substr(shift + at, w.size()), std::string(w.size(), '\0'))
                << file << " bos " << bos << " text '" << text << "' word " << w;
          }
        }
        EXPECT_NE(std::count(mask.begin(), mask.end(), 0), 0) << text;  // not everything
      }
    }
  }
}

TEST(SplitMaskTest, SpecErrors) {
  EXPECT_EQ(MaskPolicyFromSpec("all")->kind, MaskKind::kAll);
  EXPECT_EQ(MaskPolicyFromSpec("digits")->kind, MaskKind::kDigits);
  char name[] = "/tmp/split_words_XXXXXX";
  const int fd = ::mkstemp(name);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(name) << "# only a comment\n\n";
  const std::string empty_list = std::string("words:") + name;
  for (const std::string bad :
       {"", "names", "words:", "words:/nonexistent/list.txt", "ALL", empty_list.c_str()}) {
    EXPECT_EQ(MaskPolicyFromSpec(bad).code(), SplitErrc::kInvalidArgument) << bad;
  }
  std::remove(name);
  EXPECT_EQ(ParseWordList("a\n#b\n\r\nc d\r\n"), (std::vector<std::string>{"a", "c d"}));
}

// ---------------------------------------------------------------------------
// Embeddings-part files and precomputed neighbour lists
// ---------------------------------------------------------------------------

// PartFile writes what `cllm model seal --part embeddings` produces: the
// general.* and tokenizer.* keys of stories260K, its token_embd.weight bytes
// unchanged, and optionally split.neighbours.
Bytes PartFile(const engine::GgufFile& model, const std::vector<int32_t>* neighbours, int64_t k,
               engine::GgmlType neighbours_type = engine::GgmlType::kI32) {
  engine::GgufWriter w;
  for (const auto& [key, value] : model.metadata()) {
    if (key == "general.alignment") continue;
    if (key.rfind("general.", 0) == 0 || key.rfind("tokenizer.", 0) == 0) w.Add(key, value);
  }
  const engine::GgufTensorInfo* t = model.FindTensor("token_embd.weight");
  w.AddTensor(t->name, t->type, t->ne, ByteSpan(t->data, t->n_bytes));
  if (neighbours != nullptr) {
    const int64_t n_vocab = static_cast<int64_t>(neighbours->size()) / k;
    w.AddTensor("split.neighbours", neighbours_type, {k, n_vocab}, RawBytes(*neighbours));
  }
  return w.Finish();
}

TEST(SplitLoadTest, EmbeddingsPartWithNeighbourListsMatchesTheScan) {
  CLLM_SHARED_PATH(path, "models/stories260K-q8_0.gguf");
  auto model = engine::GgufFile::Open(path);
  ASSERT_TRUE(model.ok());
  auto whole = LoadEmbeddingsFromGguf(*model);
  ASSERT_TRUE(whole.ok()) << whole.detail();
  constexpr uint32_t kK = 6;
  std::vector<int32_t> lists;
  for (uint32_t id = 0; id < whole->table.n_vocab(); ++id) {
    auto near = whole->table.Nearest(id, kK);
    ASSERT_TRUE(near.ok());
    for (const Neighbour& n : *near) lists.push_back(static_cast<int32_t>(n.id));
  }
  auto part =
      LoadEmbeddingsFromMemory(std::make_shared<engine::OwnedBytes>(PartFile(*model, &lists, kK)));
  ASSERT_TRUE(part.ok()) << part.detail();
  EXPECT_EQ(part->table.neighbours_k(), kK);
  EXPECT_EQ(part->name, whole->name);
  for (uint32_t id = 0; id < whole->table.n_vocab(); ++id) {
    ASSERT_TRUE(SameBits(part->table.Row(id), whole->table.Row(id))) << id;
  }
  // Same seed, same candidates, same utilities: the same replacements.
  for (uint32_t k : {1u, 4u, kK}) {
    SeededRandom ra(Seed(9)), rb(Seed(9));
    auto a = EmbedText(*whole, kText, false, RnmOptions{4.0, k}, MaskPolicy{}, ra);
    auto b = EmbedText(*part, kText, false, RnmOptions{4.0, k}, MaskPolicy{}, rb);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_TRUE(SameBits(a->rows, b->rows)) << k;
    EXPECT_EQ(a->num_replaced, b->num_replaced);
  }
  // k beyond the lists is refused before anything is drawn.
  SeededRandom r(Seed(9));
  EXPECT_EQ(EmbedText(*part, kText, false, RnmOptions{4.0, kK + 1}, MaskPolicy{}, r).code(),
            SplitErrc::kInvalidArgument);
  // A part without lists loads too, and scans.
  auto bare =
      LoadEmbeddingsFromMemory(std::make_shared<engine::OwnedBytes>(PartFile(*model, nullptr, 0)));
  ASSERT_TRUE(bare.ok()) << bare.detail();
  EXPECT_EQ(bare->table.neighbours_k(), 0u);
}

TEST(SplitLoadTest, RefusesMalformedNeighbourLists) {
  CLLM_SHARED_PATH(path, kStories);
  auto model = engine::GgufFile::Open(path);
  ASSERT_TRUE(model.ok());
  const uint32_t n_vocab = 512, k = 3;
  std::vector<int32_t> good;
  for (uint32_t id = 0; id < n_vocab; ++id) {
    good.push_back(static_cast<int32_t>(id));
    good.push_back(static_cast<int32_t>((id + 1) % n_vocab));
    good.push_back(static_cast<int32_t>((id + 2) % n_vocab));
  }
  auto load = [&](const std::vector<int32_t>& lists,
                  engine::GgmlType type = engine::GgmlType::kI32) {
    return LoadEmbeddingsFromMemory(
        std::make_shared<engine::OwnedBytes>(PartFile(*model, &lists, k, type)));
  };
  ASSERT_TRUE(load(good).ok());
  std::vector<int32_t> bad = good;
  bad[3 * 7] = 8;  // row 7 does not start with 7
  EXPECT_EQ(load(bad).code(), SplitErrc::kInvalidArgument);
  bad = good;
  bad[3 * 7 + 2] = -1;  // negative id
  EXPECT_EQ(load(bad).code(), SplitErrc::kOutOfRange);
  bad = good;
  bad[3 * 7 + 2] = static_cast<int32_t>(n_vocab);
  EXPECT_EQ(load(bad).code(), SplitErrc::kOutOfRange);
  bad = good;
  bad[3 * 7 + 2] = 8;  // 8 twice in row 7
  EXPECT_EQ(load(bad).code(), SplitErrc::kInvalidArgument);
  EXPECT_EQ(load(good, engine::GgmlType::kF32).code(), SplitErrc::kInvalidArgument);  // not I32
  std::vector<int32_t> short_rows(good.begin(), good.end() - 3);  // n_vocab − 1 rows
  EXPECT_FALSE(LoadEmbeddingsFromMemory(
                   std::make_shared<engine::OwnedBytes>(PartFile(*model, &short_rows, k)))
                   .ok());
}

TEST(SplitTableTest, SetNeighboursValidates) {
  auto table = EmbeddingTable::Create(3, 2, {1, 0, 0, 1, 1, 1});
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(table->SetNeighbours(0, {}).code(), SplitErrc::kInvalidArgument);
  EXPECT_EQ(table->SetNeighbours(2, {0, 2, 1, 2}).code(), SplitErrc::kShape);
  EXPECT_EQ(table->SetNeighbours(2, {0, 2, 1, 2, 2, 3}).code(), SplitErrc::kOutOfRange);
  EXPECT_EQ(table->neighbours_k(), 0u);
  ASSERT_TRUE(table->SetNeighbours(2, {0, 2, 1, 2, 2, 0}).ok());
  auto c = table->Candidates(1, 2);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->size(), 2u);
  EXPECT_EQ((*c)[0].id, 1u);
  EXPECT_EQ((*c)[0].cosine, 1.0f);
  EXPECT_EQ((*c)[1].id, 2u);
  EXPECT_NEAR((*c)[1].cosine, std::sqrt(0.5f), 1e-6);
  EXPECT_EQ(table->Candidates(1, 3).code(), SplitErrc::kInvalidArgument);
  EXPECT_EQ(table->Candidates(3, 1).code(), SplitErrc::kOutOfRange);
}

// ---------------------------------------------------------------------------
// cllm proxy --split: rewriting OpenAI requests
// ---------------------------------------------------------------------------

TEST(SplitRewriterTest, RewritesChatAndCompletions) {
  CLLM_SHARED_PATH(path, kStories);
  auto m = LoadEmbeddings(path);
  ASSERT_TRUE(m.ok()) << m.detail();
  SeededRandom random(Seed(5));
  SplitRewriter rw(*m, RnmOptions{kNoNoise, 20}, MaskPolicy{}, random);

  const json chat = {
      {"model", "m"},
      {"stream", true},
      {"messages",
       json::array({{{"role", "system"}, {"content", "Be brief."}},
                    {{"role", "user"}, {"content", "Hello there"}},
                    {{"role", "assistant"}, {"content", "Hi."}},
                    {{"role", "user"},
                     {"content", json::array({{{"type", "text"}, {"text", "Who is Tom?"}}})}}})}};
  auto out = rw.Rewrite("POST", "/v1/chat/completions", chat.dump());
  ASSERT_TRUE(out.ok) << out.message;
  EXPECT_TRUE(out.rewritten);
  const json j = json::parse(out.body);
  EXPECT_EQ(j["messages"][0]["content"], "Be brief.");  // only user content is embedded
  EXPECT_EQ(j["messages"][2]["content"], "Hi.");
  EXPECT_EQ(j["stream"], true);
  for (int i : {1, 3}) {
    const json& c = j["messages"][i]["content"];
    ASSERT_TRUE(c.is_array());
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0]["type"], "prompt_embeds");
    EXPECT_EQ(c[0]["prompt_embeds_dtype"], "float32");
  }
  EXPECT_TRUE(
      SameBits(DecodeRows(j["messages"][1]["content"][0]["prompt_embeds"].get<std::string>()),
               *m->table.Gather(PlainIds(*m, "Hello there", false))));
  EXPECT_EQ(out.reused, 0u);
  EXPECT_EQ(out.n_rows,
            PlainIds(*m, "Hello there", false).size() + PlainIds(*m, "Who is Tom?", false).size());

  const json completion = {{"model", "m"}, {"prompt", "Once upon a time"}, {"max_tokens", 4}};
  auto c = rw.Rewrite("POST", "/v1/completions", completion.dump());
  ASSERT_TRUE(c.ok) << c.message;
  const json cj = json::parse(c.body);
  EXPECT_FALSE(cj.contains("prompt"));
  EXPECT_EQ(cj["prompt_embeds_dtype"], "float32");
  // A completion prompt gets BOS, as the server's text path adds it.
  EXPECT_TRUE(SameBits(DecodeRows(cj["prompt_embeds"].get<std::string>()),
                       *m->table.Gather(PlainIds(*m, "Once upon a time", true))));
}

TEST(SplitRewriterTest, HistoryIsResentAsTheSameRowsAtNoNewCost) {
  CLLM_SHARED_PATH(path, kStories);
  auto m = LoadEmbeddings(path);
  ASSERT_TRUE(m.ok()) << m.detail();
  SeededRandom random(Seed(6));
  SplitRewriter rw(*m, RnmOptions{1.0, 8}, MaskPolicy{}, random);
  json chat = {{"messages", json::array({{{"role", "user"}, {"content", "Tom has a red ball."}}})}};
  auto first = rw.Rewrite("POST", "/v1/chat/completions", chat.dump());
  ASSERT_TRUE(first.ok) << first.message;
  EXPECT_GT(first.epsilon_spent, 0);
  chat["messages"].push_back({{"role", "assistant"}, {"content", "Nice."}});
  chat["messages"].push_back({{"role", "user"}, {"content", "Where?"}});
  auto second = rw.Rewrite("POST", "/v1/chat/completions", chat.dump());
  ASSERT_TRUE(second.ok) << second.message;
  EXPECT_EQ(second.reused, 1u);
  EXPECT_DOUBLE_EQ(second.epsilon_spent, 1.0 * PlainIds(*m, "Where?", false).size());
  EXPECT_EQ(json::parse(first.body)["messages"][0], json::parse(second.body)["messages"][0]);
}

TEST(SplitRewriterTest, RefusesWhatCannotBeSentWithoutText) {
  CLLM_SHARED_PATH(path, kStories);
  auto m = LoadEmbeddings(path);
  ASSERT_TRUE(m.ok()) << m.detail();
  SeededRandom random(Seed(7));
  SplitRewriter rw(*m, RnmOptions{1.0, 8}, MaskPolicy{}, random);
  for (const char* method : {"GET", "HEAD"}) {
    auto get = rw.Rewrite(method, "/v1/models", "");
    EXPECT_TRUE(get.ok);
    EXPECT_FALSE(get.rewritten);
  }
  // Whatever the rewriter does not read is refused, not forwarded: a body on
  // another method, any query string (each could carry the text).
  const std::vector<std::tuple<std::string, std::string, std::string>> not_forwarded = {
      {"GET", "/v1/models", R"({"prompt":"secret"})"},
      {"GET", "/v1/models?q=secret", ""},
      {"HEAD", "/?secret", ""},
      {"PUT", "/v1/completions", R"({"prompt":"secret"})"},
      {"DELETE", "/v1/files/secret", ""},
      {"OPTIONS", "/v1/chat/completions", ""},
      {"POST", "/v1/completions?prompt=secret", R"({"prompt":"x"})"},
  };
  for (const auto& [method, target, body] : not_forwarded) {
    auto r = rw.Rewrite(method, target, body);
    EXPECT_FALSE(r.ok) << method << " " << target;
    EXPECT_EQ(r.status, 400);
    EXPECT_TRUE(r.body.empty());
    EXPECT_EQ(r.message.find("secret"), std::string::npos);
  }
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"/v1/embeddings", R"({"input":"secret"})"},
      {"/v1/chat/completions", "not json"},
      {"/v1/chat/completions", R"({"messages":"x"})"},
      {"/v1/chat/completions",
       R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]})"},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":7}]})"},
      {"/v1/completions", R"({"prompt":[1,2,3]})"},
      {"/v1/completions", R"({"prompt":["a","b"]})"},
      {"/v1/completions", R"({"prompt":"a","prompt_embeds":"AAAA"})"},
  };
  for (const auto& [target, body] : refused) {
    auto r = rw.Rewrite("POST", target, body);
    EXPECT_FALSE(r.ok) << target << " " << body;
    EXPECT_EQ(r.status, 400);
    EXPECT_FALSE(r.error_code.empty());
    EXPECT_EQ(r.message.find("secret"), std::string::npos);
  }
}

}  // namespace
}  // namespace cllm::split
