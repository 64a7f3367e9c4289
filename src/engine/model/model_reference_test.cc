// The engine against llama.cpp on every model in ../shared/models:
//  - F32 / F16 weights: greedy generation of 32 tokens equals the reference
//    token for token, and first-step logits match tightly;
//  - quantized weights: teacher-forced (the reference's tokens as input) top-1
//    agreement at every step and bounded logit differences.
// Tolerances and their justification: docs/engine.md § "How close is close".
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "engine/model/generator.h"
#include "engine/model/model.h"
#include "support/shared_data.h"

namespace cllm::engine {
namespace {

using nlohmann::json;

json Ref(const std::string& rel) {
  std::ifstream in(testing::SharedDir() / "models/reference" / rel);
  return json::parse(in);
}

int Argmax(const float* x, int n) {
  return static_cast<int>(std::max_element(x, x + n) - x);  // first max = lowest id on ties
}

// Runs prompt then teacher-forced reference tokens; returns logits per step.
std::vector<std::vector<float>> TeacherForced(const Model& m, KvType kv, const std::vector<TokenId>& prompt,
                                              const std::vector<TokenId>& forced) {
  KvCache cache(m.config(), kv, static_cast<int>(prompt.size() + forced.size() + 1));
  std::vector<BatchEntry> batch;
  for (size_t i = 0; i < prompt.size(); ++i) {
    batch.push_back({0, static_cast<int>(i), prompt[i], i + 1 == prompt.size()});
  }
  std::vector<std::vector<float>> steps;
  std::vector<float> logits;
  EXPECT_TRUE(m.Forward(batch, cache, &logits).ok());
  steps.push_back(logits);
  for (size_t s = 0; s + 1 < forced.size(); ++s) {
    logits.clear();
    EXPECT_TRUE(m.Forward({{0, static_cast<int>(prompt.size() + s), forced[s], true}}, cache, &logits).ok());
    steps.push_back(logits);
  }
  return steps;
}

struct Tolerance {
  double first_step_max;  // max |Δlogit| over the whole vocabulary at step 0 (when available)
  double top_logit;       // |Δ| of the reference top-5 logits at every step
  int min_top1_agree;     // steps (of 32) whose argmax must equal the reference token
  // Random-weight models have near ties (reference top-1 ahead of top-2 by
  // < 0.01 at some steps), where logits within the bound can still pick the
  // other token: a step also agrees when our argmax is one of the
  // reference's top-5 and scored within tie_margin of its top-1.
  double tie_margin = 0;
};

void CheckModel(const std::string& file, const std::string& ref_rel, KvType kv, Tolerance tol) {
  CLLM_SHARED_PATH(path, "models/" + file);
  auto m = Model::Open(path);
  ASSERT_TRUE(m.ok()) << m.detail();
  json ref = Ref(ref_rel);
  const int n_vocab = (*m)->config().n_vocab;
  for (const auto& c : ref["cases"]) {
    auto prompt = c["prompt_tokens"].get<std::vector<TokenId>>();
    EXPECT_EQ((*m)->tokenizer().Encode(c["prompt"].get<std::string>(), true, true), prompt);
    auto want = c["generated_tokens"].get<std::vector<TokenId>>();
    auto steps = TeacherForced(**m, kv, prompt, want);
    ASSERT_EQ(steps.size(), want.size());
    if (c.contains("first_step_full_logits")) {
      auto full = c["first_step_full_logits"].get<std::vector<float>>();
      double max_diff = 0;
      for (int i = 0; i < n_vocab; ++i) max_diff = std::max(max_diff, std::fabs(double{steps[0][i]} - full[i]));
      EXPECT_LT(max_diff, tol.first_step_max) << file << " '" << c["prompt"] << "'";
    }
    int agree = 0, near_ties = 0;
    double worst = 0;
    for (size_t s = 0; s < want.size(); ++s) {
      const int ours = Argmax(steps[s].data(), n_vocab);
      bool tie = false;
      for (const auto& top : c["step_top_logits"][s]) {
        tie |= top["id"].get<int>() == ours &&
               c["step_top_logits"][s][0]["logit"].get<double>() - top["logit"].get<double>() < tol.tie_margin;
      }
      if (ours != want[s] && tie) ++near_ties;
      agree += ours == want[s] || tie;
      for (const auto& top : c["step_top_logits"][s]) {
        worst = std::max(worst, std::fabs(double{steps[s][top["id"].get<int>()]} - top["logit"].get<double>()));
      }
    }
    // The measured figures behind docs/engine.md's "How close" table.
    std::printf("%s [%s] '%s': top-1 %d/%zu (near ties %d), max |dlogit| %.3f\n", file.c_str(), ref_rel.c_str(),
                c["prompt"].get<std::string>().c_str(), agree, want.size(), near_ties, worst);
    EXPECT_GE(agree, tol.min_top1_agree) << file << " '" << c["prompt"] << "'";
    EXPECT_LT(worst, tol.top_logit) << file << " '" << c["prompt"] << "'";
  }
}

// F32 weights with an F32 KV cache against llama.cpp's F32-KV, no-flash-
// attention run: the same arithmetic up to summation order (measured max
// |Δlogit| < 1e-5 over the whole vocabulary).
TEST(ModelReferenceTest, F32WeightsMatchExactly) {
  for (const char* m : {"stories260K", "aidreams260K"}) {
    CheckModel(std::string(m) + "-f32.gguf", std::string("kv-f32-noFA/") + m + "-f32.json", KvType::kF32,
               {1e-3, 1e-3, 32});
  }
}

// F16 weights (and/or an F16 KV cache): the rounding of weights or cached
// keys/values to fp16 (measured ≤ 0.01; llama.cpp's own F16-vs-F32 is 0.016).
TEST(ModelReferenceTest, F16WeightsAndF16KvCache) {
  for (const char* m : {"stories260K", "aidreams260K"}) {
    CheckModel(std::string(m) + "-f16.gguf", std::string("kv-f32-noFA/") + m + "-f16.json", KvType::kF32,
               {0.03, 0.03, 32});
    CheckModel(std::string(m) + "-f32.gguf", std::string(m) + "-f32.json", KvType::kF16, {0.03, 0.03, 32});
    CheckModel(std::string(m) + "-f16.gguf", std::string(m) + "-f16.json", KvType::kF16, {0.03, 0.03, 32});
  }
}

// Quantized weights: llama.cpp rounds activations to 8-bit blocks inside its
// quantized dot products, this engine multiplies fp32 activations, so logits
// differ by the activation rounding — llama.cpp's own Q8_0-vs-F32 difference
// is 0.22 (models/README.md). Measured here ≤ 0.21; bound 0.35. Top-1 may
// flip on near ties: at least 30 of 32 teacher-forced steps must agree.
TEST(ModelReferenceTest, LegacyQuantsTeacherForced) {
  for (const char* m : {"stories260K", "aidreams260K"}) {
    for (const char* q : {"q8_0", "q4_0", "q4_k_m", "q6_k"}) {
      std::string file = std::string(m) + "-" + q;
      CheckModel(file + ".gguf", "kv-f32-noFA/" + file + ".json", KvType::kF32, {0.35, 0.35, 30});
      CheckModel(file + ".gguf", file + ".json", KvType::kF16, {0.35, 0.35, 30});
    }
  }
}

// Qwen3 (QK-norm, GQA, NEOX RoPE, tied embeddings) with random weights,
// teacher-forced. Q4_K/Q6_K re-quantized activations amplify small
// differences: llama.cpp itself moves 0.16–0.43 between its F16-KV+FA and
// F32-KV runs on these files (models/README.md). Measured ≤ 0.36; bound 0.5.
TEST(ModelReferenceTest, Qwen3TinyTeacherForced) {
  CheckModel("qwen3-tiny-random-q8_0.gguf", "kv-f32-noFA/qwen3-tiny-random-q8_0.json", KvType::kF32, {0, 0.35, 30});
  CheckModel("qwen3-tiny-random-q8_0.gguf", "qwen3-tiny-random-q8_0.json", KvType::kF16, {0, 0.35, 30});
  CheckModel("qwen3-tiny-random-q4_k_m.gguf", "kv-f32-noFA/qwen3-tiny-random-q4_k_m.json", KvType::kF32, {0, 0.5, 30});
  CheckModel("qwen3-tiny-random-q4_k_m.gguf", "qwen3-tiny-random-q4_k_m.json", KvType::kF16, {0, 0.5, 30});
}

// The architectures of the models users run, random weights, teacher-forced
// against llama.cpp's F16-KV run (the only reference there is for them):
// Llama 3.x with Llama 3.1's RoPE frequency factors (rope_freqs.weight;
// ignoring them changes llama.cpp's tokens from the 5th on), Qwen2 with
// q/k/v biases (Qwen2.5, DeepSeek-R1-Distill-Qwen) and Phi-3.5 (fused
// qkv and gate/up, LongRoPE short factors, attn_factor). Measured
// max |Δlogit| ≤ 0.10 (llama3 without its rope_freqs: 0.57; phi3 without
// its LongRoPE factors: 3.4); bound 0.2. Every step's top-1 must agree or
// be a near tie (< 0.1).
TEST(ModelReferenceTest, Llama3TinyTeacherForced) {
  CheckModel("llama3-tiny-random-q8_0.gguf", "llama3-tiny-random-q8_0.json", KvType::kF16, {0, 0.2, 32, 0.1});
}

TEST(ModelReferenceTest, Qwen2TinyTeacherForced) {
  CheckModel("qwen2-tiny-random-q8_0.gguf", "qwen2-tiny-random-q8_0.json", KvType::kF16, {0, 0.2, 32, 0.1});
}

TEST(ModelReferenceTest, Phi3TinyTeacherForced) {
  CheckModel("phi3-tiny-random-q8_0.gguf", "phi3-tiny-random-q8_0.json", KvType::kF16, {0, 0.2, 32, 0.1});
}

// Free-running greedy generation (our sampler, our tokens fed back) equals
// llama.cpp's 32 tokens for F32 and F16 weights.
TEST(ModelReferenceTest, GreedyGenerationMatchesTokenForToken) {
  for (const char* file : {"stories260K-f32", "stories260K-f16", "aidreams260K-f32", "aidreams260K-f16"}) {
    CLLM_SHARED_PATH(path, std::string("models/") + file + ".gguf");
    auto m = Model::Open(path).value();
    json ref = Ref(std::string("kv-f32-noFA/") + file + ".json");
    for (const auto& c : ref["cases"]) {
      GenerateOptions opts;
      opts.max_tokens = 32;
      opts.kv_type = KvType::kF32;
      opts.stop_at_eog = false;
      auto r = Generate(*m, c["prompt"].get<std::string>(), opts);
      ASSERT_TRUE(r.ok()) << r.detail();
      EXPECT_EQ(r->tokens, c["generated_tokens"].get<std::vector<TokenId>>()) << file << " " << c["prompt"];
      EXPECT_EQ(r->text, c["generated_text"].get<std::string>()) << file;
    }
  }
}

// A prompt of our own (not in the reference): F32 and F16 weights must agree
// on the greedy continuation, and it must be stable across runs.
TEST(ModelReferenceTest, UnseenPromptF32AndF16Agree) {
  CLLM_SHARED_PATH(f32, "models/stories260K-f32.gguf");
  CLLM_SHARED_PATH(f16, "models/stories260K-f16.gguf");
  auto a = Model::Open(f32).value();
  auto b = Model::Open(f16).value();
  GenerateOptions opts;
  opts.max_tokens = 24;
  opts.stop_at_eog = false;
  const char* prompt = "Tom and his sister found a small box under the tree";
  auto ra = Generate(*a, prompt, opts).value();
  auto rb = Generate(*b, prompt, opts).value();
  EXPECT_EQ(ra.tokens, rb.tokens) << ra.text << " | " << rb.text;
  EXPECT_EQ(Generate(*a, prompt, opts).value().tokens, ra.tokens);
}

}  // namespace
}  // namespace cllm::engine
