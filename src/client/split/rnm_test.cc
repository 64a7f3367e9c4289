// Tests of Report-Noisy-Max: the identity cases (ε = ∞, k = 1), argument
// checks, masks and accounting, the randomness sources, and a statistical test
// that the mechanism's output distribution is the one its specification gives.
#include "client/split/rnm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>

namespace cllm::split {
namespace {

std::array<uint8_t, 32> Seed(uint8_t b) {
  std::array<uint8_t, 32> s{};
  s[31] = b;
  return s;
}

// AngleTable: token i is the unit vector at angle angles[i] in the plane, so
// cos(e_0, e_i) = cos(angles[i] − angles[0]) is known in closed form.
EmbeddingTable AngleTable(const std::vector<double>& angles) {
  std::vector<float> rows;
  for (double a : angles) {
    rows.push_back(static_cast<float>(std::cos(a)));
    rows.push_back(static_cast<float>(std::sin(a)));
  }
  auto table = EmbeddingTable::Create(static_cast<uint32_t>(angles.size()), 2, std::move(rows));
  CLLM_CHECK(table.ok());
  return std::move(table).value();
}

// Eight tokens: token 0 and its neighbours at growing angles (the 5 nearest
// are tokens 0–4), then three far ones.
EmbeddingTable SmallVocabulary() { return AngleTable({0.0, 0.3, 0.6, 1.0, 1.5, 2.2, 2.8, 3.1}); }

// ---------------------------------------------------------------------------
// The specification, computed independently of the sampler: candidate i's
// noisy score is u_i + L_i with L_i ~ Laplace(0, b) independent, so
//   P(i wins) = ∫ f_i(x) Π_{j≠i} F_j(x) dx,
// f_j, F_j the Laplace density and CDF centred at u_j. Composite Simpson on the
// pieces between the u_j (the integrand is smooth inside each piece), tails cut
// at 60·b (mass e^{−60}).
// ---------------------------------------------------------------------------
double LaplacePdf(double x, double mu, double b) {
  return std::exp(-std::abs(x - mu) / b) / (2 * b);
}
double LaplaceCdf(double x, double mu, double b) {
  return x < mu ? 0.5 * std::exp((x - mu) / b) : 1 - 0.5 * std::exp(-(x - mu) / b);
}

std::vector<double> ExactRnmDistribution(const std::vector<double>& u, double b) {
  std::vector<double> knots(u);
  knots.push_back(*std::min_element(u.begin(), u.end()) - 60 * b);
  knots.push_back(*std::max_element(u.begin(), u.end()) + 60 * b);
  std::sort(knots.begin(), knots.end());
  std::vector<double> p(u.size(), 0.0);
  for (size_t i = 0; i < u.size(); ++i) {
    auto integrand = [&](double x) {
      double v = LaplacePdf(x, u[i], b);
      for (size_t j = 0; j < u.size(); ++j) {
        if (j != i) v *= LaplaceCdf(x, u[j], b);
      }
      return v;
    };
    for (size_t s = 0; s + 1 < knots.size(); ++s) {
      const double lo = knots[s], hi = knots[s + 1];
      if (hi <= lo) continue;
      constexpr int kSteps = 2000;  // even
      const double h = (hi - lo) / kSteps;
      double sum = integrand(lo) + integrand(hi);
      for (int t = 1; t < kSteps; ++t) sum += integrand(lo + t * h) * (t % 2 == 1 ? 4 : 2);
      p[i] += sum * h / 3;
    }
  }
  return p;
}

// ChiSquare of observed counts against probabilities p over n draws.
double ChiSquare(const std::vector<size_t>& counts, const std::vector<double>& p, size_t n) {
  double chi2 = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double expected = p[i] * static_cast<double>(n);
    chi2 += (static_cast<double>(counts[i]) - expected) *
            (static_cast<double>(counts[i]) - expected) / expected;
  }
  return chi2;
}
// χ² critical value at p = 0.001 for 4 degrees of freedom (five candidates).
constexpr double kChi2Df4P001 = 18.467;

TEST(RnmTest, ExactDistributionIsADistribution) {
  const std::vector<double> u = {1.0, 0.9, 0.5, 0.5, -1.0};
  for (double b : {0.25, 1.0, 4.0}) {
    const std::vector<double> p = ExactRnmDistribution(u, b);
    double total = 0;
    for (double x : p) total += x;
    EXPECT_NEAR(total, 1.0, 1e-7) << b;  // far below what 20,000 draws resolve (~1e-3)
    EXPECT_NEAR(p[2], p[3], 1e-12);      // equal utilities, equal chances
    EXPECT_GT(p[0], p[1]);
  }
  // Two candidates: P(L_0 − L_1 > −d) has a closed form (L_0 − L_1 is a
  // difference of Laplaces): 1 − ½·e^{−d/b}·(1 + d/(2b)) for d ≥ 0.
  const double b = 0.7, d = 0.4;
  const std::vector<double> p = ExactRnmDistribution({d, 0.0}, b);
  EXPECT_NEAR(p[0], 1 - 0.5 * std::exp(-d / b) * (1 + d / (2 * b)), 1e-7);
}

// The statistical test of the mechanism through the whole path (table,
// neighbours, utilities, noise): 20,000 runs for one token with k = 5 against
// the integrated distribution, at two budgets. The seed is fixed, so the
// outcome is deterministic; the threshold is χ²(4) at p = 0.001.
TEST(RnmTest, OutputDistributionMatchesSpecification) {
  const EmbeddingTable table = SmallVocabulary();
  const std::vector<uint32_t> candidates = {0, 1, 2, 3, 4};
  std::vector<double> u;
  for (uint32_t c : candidates) u.push_back(table.Cosine(0, c));
  for (double epsilon : {2.0, 8.0}) {
    constexpr size_t kDraws = 20000;
    const std::vector<uint32_t> prompt(kDraws, 0);
    SeededRandom random(Seed(static_cast<uint8_t>(epsilon)));
    auto result = ApplyRnm(table, prompt, {}, RnmOptions{.epsilon = epsilon, .k = 5}, random);
    ASSERT_TRUE(result.ok()) << result.detail();
    std::vector<size_t> counts(candidates.size(), 0);
    for (uint32_t id : result->ids) {
      ASSERT_LT(id, 5u) << "output outside the candidate set";
      ++counts[id];
    }
    const std::vector<double> p = ExactRnmDistribution(u, RnmNoiseScale(epsilon));
    const double chi2 = ChiSquare(counts, p, kDraws);
    EXPECT_LT(chi2, kChi2Df4P001) << "epsilon " << epsilon;
    std::printf("epsilon %g: chi2 %.2f (df 4, limit %.2f); P(original) spec %.4f, observed %.4f\n",
                epsilon, chi2, kChi2Df4P001, p[0], static_cast<double>(counts[0]) / kDraws);
    EXPECT_EQ(result->num_perturbed, kDraws);
    EXPECT_EQ(result->num_replaced, kDraws - counts[0]);
    EXPECT_DOUBLE_EQ(result->epsilon_total, kDraws * epsilon);
  }
}

// The same on bare utilities spanning the whole range [−1, 1].
TEST(RnmTest, SelectDistributionMatchesSpecification) {
  const std::vector<float> u = {1.0f, 0.8f, 0.1f, -0.5f, -1.0f};
  const std::vector<double> ud(u.begin(), u.end());
  constexpr double kScale = 1.0;  // ε = 4
  constexpr size_t kDraws = 20000;
  SeededRandom random(Seed(42));
  std::vector<size_t> counts(u.size(), 0);
  for (size_t n = 0; n < kDraws; ++n) ++counts[RnmSelect(u, kScale, random)];
  EXPECT_LT(ChiSquare(counts, ExactRnmDistribution(ud, kScale), kDraws), kChi2Df4P001);
}

// A wrong noise scale must fail the same test: the test has power to see a
// factor-2 error in b (such as the monotone Δ/ε instead of 2Δ/ε).
TEST(RnmTest, StatisticalTestDetectsWrongScale) {
  const std::vector<float> u = {1.0f, 0.8f, 0.1f, -0.5f, -1.0f};
  const std::vector<double> ud(u.begin(), u.end());
  constexpr size_t kDraws = 20000;
  SeededRandom random(Seed(43));
  std::vector<size_t> counts(u.size(), 0);
  for (size_t n = 0; n < kDraws; ++n) ++counts[RnmSelect(u, 0.5, random)];
  EXPECT_GT(ChiSquare(counts, ExactRnmDistribution(ud, 1.0), kDraws), 10 * kChi2Df4P001);
}

TEST(RnmTest, SmallerEpsilonSpreadsMoreMassOffTheOriginal) {
  const EmbeddingTable table = SmallVocabulary();
  std::vector<double> u;
  for (uint32_t c = 0; c < table.n_vocab(); ++c) u.push_back(table.Cosine(0, c));
  constexpr size_t kDraws = 5000;
  const std::vector<uint32_t> prompt(kDraws, 0);
  double previous = 1.0;
  for (double epsilon : {0.5, 2.0, 8.0, 32.0, 256.0}) {
    SeededRandom random(Seed(7));
    auto result = ApplyRnm(table, prompt, {}, RnmOptions{.epsilon = epsilon, .k = 8}, random);
    ASSERT_TRUE(result.ok());
    const double replaced = static_cast<double>(result->num_replaced) / kDraws;
    EXPECT_LT(replaced, previous) << "epsilon " << epsilon;
    previous = replaced;
    // And by the amount the specification says (4 standard deviations).
    const double expected = 1 - ExactRnmDistribution(u, RnmNoiseScale(epsilon))[0];
    EXPECT_NEAR(replaced, expected, 4 * std::sqrt(expected * (1 - expected) / kDraws) + 1e-3)
        << epsilon;
  }
  // Even at ε = 32 (b = 1/8) about half the draws leave token 0: its nearest
  // neighbour's cosine is 0.955, within the noise. Cosine utilities of near
  // tokens are close to each other, so only a large ε keeps the original.
  EXPECT_LT(previous, 0.1);  // ε = 256: b = 1/64, still ~7.5% (spec: 1 − P(0 wins))
}

TEST(RnmTest, InfiniteEpsilonIsExactlyTheInput) {
  const EmbeddingTable table = SmallVocabulary();
  const std::vector<uint32_t> prompt = {3, 1, 4, 1, 5, 7, 2, 6, 0};
  SeededRandom random(Seed(1));
  auto result = ApplyRnm(table, prompt, {}, RnmOptions{.epsilon = kNoNoise, .k = 5}, random);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->ids, prompt);
  EXPECT_EQ(result->num_perturbed, prompt.size());
  EXPECT_EQ(result->num_replaced, 0u);
  EXPECT_TRUE(std::isinf(result->epsilon_total));  // no noise, no guarantee
  // No randomness was consumed: the stream is where a fresh one starts.
  SeededRandom fresh(Seed(1));
  uint8_t a[16], b[16];
  random.Fill(a);
  fresh.Fill(b);
  EXPECT_TRUE(std::equal(a, a + 16, b));
}

TEST(RnmTest, OneCandidateIsExactlyTheInput) {
  const EmbeddingTable table = SmallVocabulary();
  const std::vector<uint32_t> prompt = {3, 1, 4, 1, 5, 7, 2, 6, 0};
  SeededRandom random(Seed(2));
  auto result = ApplyRnm(table, prompt, {}, RnmOptions{.epsilon = 0.01, .k = 1}, random);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->ids, prompt);
  EXPECT_DOUBLE_EQ(result->epsilon_total, 0.01 * prompt.size());
}

TEST(RnmTest, RejectsBadArguments) {
  const EmbeddingTable table = SmallVocabulary();
  const std::vector<uint32_t> prompt = {1, 2};
  SeededRandom random(Seed(3));
  // 1e-310 is > 0, but 4/ε is not a finite noise scale (it aborted in
  // SampleLaplace's check before kMinEpsilon).
  for (double bad : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN(), -kNoNoise, 1e-310}) {
    EXPECT_EQ(ApplyRnm(table, prompt, {}, RnmOptions{.epsilon = bad, .k = 2}, random).code(),
              SplitErrc::kInvalidArgument);
  }
  // The smallest ε accepted draws finite noise: a choice, no abort.
  auto smallest = ApplyRnm(table, prompt, {}, RnmOptions{.epsilon = kMinEpsilon, .k = 2}, random);
  ASSERT_TRUE(smallest.ok()) << smallest.detail();
  EXPECT_EQ(smallest->num_perturbed, 2u);
  EXPECT_EQ(ApplyRnm(table, prompt, {}, RnmOptions{.epsilon = 1, .k = 0}, random).code(),
            SplitErrc::kInvalidArgument);
  EXPECT_EQ(ApplyRnm(table, prompt, {}, RnmOptions{.epsilon = 1, .k = 9}, random).code(),
            SplitErrc::kInvalidArgument);
  const std::vector<uint8_t> short_mask = {1};
  EXPECT_EQ(ApplyRnm(table, prompt, short_mask, RnmOptions{}, random).code(),
            SplitErrc::kInvalidArgument);
  const std::vector<uint32_t> out_of_range = {1, 8};
  EXPECT_EQ(ApplyRnm(table, out_of_range, {}, RnmOptions{.epsilon = 1, .k = 2}, random).code(),
            SplitErrc::kOutOfRange);
  // An out-of-range id is found even at a position the mask leaves alone.
  const std::vector<uint8_t> first_only = {1, 0};
  EXPECT_EQ(
      ApplyRnm(table, out_of_range, first_only, RnmOptions{.epsilon = 1, .k = 2}, random).code(),
      SplitErrc::kOutOfRange);
}

TEST(RnmTest, MaskLeavesUnselectedPositionsAlone) {
  const EmbeddingTable table = SmallVocabulary();
  const std::vector<uint32_t> prompt(400, 0);
  std::vector<uint8_t> mask(prompt.size(), 0);
  for (size_t i = 0; i < mask.size(); i += 4) mask[i] = 1;
  SeededRandom random(Seed(4));
  auto result = ApplyRnm(table, prompt, mask, RnmOptions{.epsilon = 0.5, .k = 5}, random);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->num_perturbed, 100u);
  EXPECT_DOUBLE_EQ(result->epsilon_total, 50.0);
  size_t changed = 0;
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (mask[i] == 0) {
      EXPECT_EQ(result->ids[i], prompt[i]) << i;
    }
    changed += result->ids[i] != prompt[i];
  }
  EXPECT_EQ(changed, result->num_replaced);
  EXPECT_GT(changed, 0u);  // at ε = 0.5 most of the 100 draws leave token 0
}

TEST(RnmTest, MaskBuilders) {
  const std::vector<std::string> pieces = {"Call", " 0", "20", "-x", "Ⅳ"};
  EXPECT_EQ(MaskDigits(pieces), (std::vector<uint8_t>{0, 1, 1, 0, 0}));
  const std::vector<std::string> x = {"x"};
  EXPECT_EQ(MaskOr(MaskWords("Call 020-xⅣ", pieces, x), MaskDigits(pieces)),
            (std::vector<uint8_t>{0, 1, 1, 1, 0}));
}

TEST(RnmTest, MaskWordsMarksEveryPieceOverlappingAnOccurrence) {
  const std::vector<std::string> words = {"Alice", "Bob Ray"};
  // A word split across pieces marks each of them; a piece holding only part
  // of the word ("(Al") too; the same word again, in another context, also.
  EXPECT_EQ(MaskWords("(Alice)\nAlice", std::vector<std::string>{"(Al", "ice", ")", "\n", "Alice"}, words),
            (std::vector<uint8_t>{1, 1, 0, 0, 1}));
  // SentencePiece's leading space, and an empty control-token piece.
  EXPECT_EQ(MaskWords("Hi Bob Ray!", std::vector<std::string>{"", " Hi", " Bob", " Ray", "!"}, words),
            (std::vector<uint8_t>{0, 0, 1, 1, 0}));
  // Substrings match: "Alice" inside "Alicex" is marked.
  EXPECT_EQ(MaskWords("Alicex", std::vector<std::string>{"Ali", "cex"}, words),
            (std::vector<uint8_t>{1, 1}));
  EXPECT_EQ(MaskWords("nobody here", std::vector<std::string>{"nobody", " here"}, words),
            (std::vector<uint8_t>{0, 0}));
  // Pieces that do not spell the text (a normalizing tokenizer) cannot be
  // placed: everything is marked rather than a word missed.
  EXPECT_EQ(MaskWords("ALICE x", std::vector<std::string>{"alice", " x"}, words),
            (std::vector<uint8_t>{1, 1}));
  EXPECT_EQ(MaskWords("a", std::vector<std::string>{"xa"}, words), (std::vector<uint8_t>{1}));
  // A line with stray spaces, and a phrase spaced or wrapped otherwise in
  // the text, still marks its words (each part on its own).
  const std::vector<std::string> spaced = {"Lily ", " Tom  Smith\t"};
  EXPECT_EQ(MaskWords("Lily: Tom\nSmith", std::vector<std::string>{"Lily", ":", " Tom", "\n", "Smith"}, spaced),
            (std::vector<uint8_t>{1, 0, 1, 0, 1}));
  // Overlapping occurrences.
  EXPECT_EQ(MaskWords("aaaa b", std::vector<std::string>{"aa", "aa", " b"}, std::vector<std::string>{"aaa"}),
            (std::vector<uint8_t>{1, 1, 0}));
}

TEST(RnmTest, NoiseScaleIsTwiceSensitivityOverEpsilon) {
  EXPECT_DOUBLE_EQ(RnmNoiseScale(1.0), 4.0);
  EXPECT_DOUBLE_EQ(RnmNoiseScale(8.0), 0.5);
}

// ---------------------------------------------------------------------------
// Randomness
// ---------------------------------------------------------------------------

TEST(RandomSourceTest, SeededStreamIsAes256CtrOfZeros) {
  // AES-256 with the all-zero key on the all-zero block (counter block 0)
  // is dc95c078a2408989ad48a21492842087.
  crypto::SeededStream stream(std::array<uint8_t, 32>{});
  std::array<uint8_t, 16> block{};
  stream.Fill(block);
  const std::array<uint8_t, 16> expected = {0xdc, 0x95, 0xc0, 0x78, 0xa2, 0x40, 0x89, 0x89,
                                            0xad, 0x48, 0xa2, 0x14, 0x92, 0x84, 0x20, 0x87};
  EXPECT_EQ(block, expected);
}

TEST(RandomSourceTest, SeededRandomIsDeterministicAcrossReadSizes) {
  SeededRandom a(Seed(9)), b(Seed(9)), c(Seed(10));
  std::vector<uint8_t> one(10000), pieces(10000), other(10000);
  a.Fill(one);
  for (size_t off = 0, step = 1; off < pieces.size(); off += step, step = step * 3 % 4097 + 1) {
    b.Fill(std::span<uint8_t>(pieces).subspan(off, std::min(step, pieces.size() - off)));
  }
  c.Fill(other);
  EXPECT_EQ(one, pieces);
  EXPECT_NE(one, other);
}

TEST(RandomSourceTest, SystemRandomDiffers) {
  SystemRandom random;
  std::array<uint8_t, 32> a{}, b{};
  random.Fill(a);
  random.Fill(b);
  EXPECT_NE(a, b);
}

TEST(RandomSourceTest, LaplaceMomentsAndSymmetry) {
  SeededRandom random(Seed(11));
  constexpr int kDraws = 200000;
  constexpr double kScale = 1.5;
  double sum = 0, sum_abs = 0;
  int positive = 0;
  for (int n = 0; n < kDraws; ++n) {
    const double x = SampleLaplace(random, kScale);
    ASSERT_TRUE(std::isfinite(x));
    ASSERT_LE(std::abs(x), kScale * 53 * std::numbers::ln2 + 1e-9);
    sum += x;
    sum_abs += std::abs(x);
    positive += x > 0;
  }
  // E[X] = 0 (sd of the mean: √2·b/√N ≈ 0.005), E|X| = b (sd ≈ b/√N ≈ 0.003).
  EXPECT_NEAR(sum / kDraws, 0.0, 0.03);
  EXPECT_NEAR(sum_abs / kDraws, kScale, 0.02);
  EXPECT_NEAR(static_cast<double>(positive) / kDraws, 0.5, 0.01);
}

}  // namespace
}  // namespace cllm::split
