// Grammar tests: byte strings accepted or rejected by compiled schemas, the
// schema errors, and the token mask over the real Qwen3 vocabulary checked
// against a brute-force walk of every token.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "engine/gguf/gguf.h"
#include "engine/grammar/json_constraint.h"
#include "engine/grammar/json_schema.h"
#include "engine/grammar/matcher.h"
#include "support/shared_data.h"

namespace cllm::engine::grammar {
namespace {

using nlohmann::json;

// Accepts: `text` is a complete output of the schema.
bool Accepts(const json& schema, std::string_view text, std::string prefix = "", std::string suffix = "") {
  auto g = CompileJsonSchema(schema, prefix, suffix);
  EXPECT_TRUE(g.ok()) << (g.ok() ? "" : g.detail());
  if (!g.ok()) return false;
  MatchState s = MatchState::Start(**g);
  return s.Advance(text) && s.Complete();
}

// Viable: `text` can still be continued into a complete output.
bool Viable(const json& schema, std::string_view text) {
  auto g = CompileJsonSchema(schema);
  if (!g.ok()) return false;
  MatchState s = MatchState::Start(**g);
  return s.Advance(text);
}

TEST(GrammarTest, IntegerBoundsAreExact) {
  json s = {{"type", "integer"}, {"minimum", -5}, {"maximum", 123}};
  for (const char* ok : {"0", "-5", "-1", "123", "42", "9", "100"}) EXPECT_TRUE(Accepts(s, ok)) << ok;
  for (const char* bad : {"124", "-6", "01", "-0", "1.0", "", "-", "1000", "200"}) EXPECT_FALSE(Accepts(s, bad)) << bad;
  EXPECT_TRUE(Viable(s, "12"));     // 12, 120..123
  EXPECT_FALSE(Viable(s, "13 "));
  EXPECT_FALSE(Viable(s, "1234"));  // no completion fits
  EXPECT_FALSE(Viable(s, "-6"));
  json excl = {{"type", "integer"}, {"exclusiveMinimum", 10}, {"exclusiveMaximum", 12}};
  EXPECT_TRUE(Accepts(excl, "11"));
  EXPECT_FALSE(Accepts(excl, "10"));
  EXPECT_FALSE(Accepts(excl, "12"));
  EXPECT_FALSE(Viable(excl, "2"));  // 2, 20… all outside (10, 12)
}

TEST(GrammarTest, BoundedNumbersAreIntegersInRange) {
  json s = {{"type", "number"}, {"minimum", 0.5}, {"maximum", 3.7}};
  EXPECT_TRUE(Accepts(s, "1"));
  EXPECT_TRUE(Accepts(s, "3"));
  EXPECT_FALSE(Accepts(s, "0"));
  EXPECT_FALSE(Accepts(s, "4"));
  EXPECT_FALSE(Accepts(s, "1.5"));
  auto none = CompileJsonSchema(json{{"type", "number"}, {"minimum", 0.1}, {"maximum", 0.9}});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, GrammarErrc::kInvalidSchema);
}

TEST(GrammarTest, NumberSyntax) {
  json s = {{"type", "number"}};
  for (const char* ok : {"0", "-0.5e+10", "12.25", "1E5", "-3", "0.0"}) EXPECT_TRUE(Accepts(s, ok)) << ok;
  for (const char* bad : {"01", ".5", "1.", "1e", "+1", "--1", "1e123", "NaN"}) EXPECT_FALSE(Accepts(s, bad)) << bad;
}

TEST(GrammarTest, StringsAreValidJsonAndCountCodePoints) {
  json s = {{"type", "string"}, {"minLength", 2}, {"maxLength", 3}};
  for (const char* ok : {"\"ab\"", "\"a\\n\"", "\"\xE6\x97\xA5\xE6\x9C\xAC\"", "\"\\u00e9x\"", "\"\xF0\x9F\x98\x80!\""}) {
    EXPECT_TRUE(Accepts(s, ok)) << ok;
  }
  for (const char* bad : {"\"a\"", "\"abcd\"", "\"a\x01\"", "\"\xC0\x80x\"", "\"\\ud800x\"", "\"a\\x\"",
                          "\"\xED\xA0\x80x\"", "\"\xF4\x90\x80\x80x\"", "'ab'"}) {
    EXPECT_FALSE(Accepts(s, bad)) << bad;
  }
}

TEST(GrammarTest, ObjectsKeepSchemaOrderAndRequired) {
  json s = json::parse(R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"}},
                           "required":["a"],"additionalProperties":false})");
  // The order of the schema's text, not the names' order.
  auto zyx = nlohmann::ordered_json::parse(R"({"properties":{"z":{"type":"null"},"y":{"type":"null"}}})");
  auto g = CompileJsonSchema(zyx);
  ASSERT_TRUE(g.ok());
  MatchState st = MatchState::Start(**g);
  EXPECT_TRUE(st.Advance(R"({"z":null,"y":null})") && st.Complete());
  EXPECT_TRUE(Accepts(s, R"({"a":1})"));
  EXPECT_TRUE(Accepts(s, R"({"a":1,"b":"x"})"));
  EXPECT_TRUE(Accepts(s, "{ \"a\" : 1 ,\n\"b\": \"\"}"));
  EXPECT_FALSE(Accepts(s, R"({"b":"x","a":1})"));
  EXPECT_FALSE(Accepts(s, R"({})"));
  EXPECT_FALSE(Accepts(s, R"({"a":1,"c":2})"));
  EXPECT_FALSE(Accepts(s, R"({"a":1,})"));
  EXPECT_TRUE(Accepts(s, "{    }") == false);
  // Whitespace is bounded: four bytes at a place, not five.
  json any = {{"type", "object"}};
  EXPECT_TRUE(Accepts(any, "{    }"));
  EXPECT_FALSE(Accepts(any, "{     }"));
}

TEST(GrammarTest, AdditionalPropertiesNeverReuseDeclaredNames) {
  json s = json::parse(R"({"properties":{"a":{"type":"integer"}},"additionalProperties":{"type":"boolean"}})");
  EXPECT_TRUE(Accepts(s, R"({"a":1,"zz":true})"));
  EXPECT_TRUE(Accepts(s, R"({"zz":true,"ab":false})"));
  EXPECT_TRUE(Accepts(s, R"({})"));
  EXPECT_FALSE(Accepts(s, R"({"a":1,"a":true})"));
  EXPECT_FALSE(Accepts(s, R"({"zz":1})"));
}

TEST(GrammarTest, ArraysEnumsAnyOfAndRefs) {
  json arr = json::parse(R"({"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":2})");
  EXPECT_TRUE(Accepts(arr, "[1]"));
  EXPECT_TRUE(Accepts(arr, "[1, 2]"));
  EXPECT_FALSE(Accepts(arr, "[]"));
  EXPECT_FALSE(Accepts(arr, "[1,2,3]"));
  json en = json::parse(R"({"enum":["red","green",3,null,{"k":[1]}]})");
  for (const char* ok : {"\"red\"", "3", "null", "{\"k\":[1]}"}) EXPECT_TRUE(Accepts(en, ok)) << ok;
  EXPECT_FALSE(Accepts(en, "\"blue\""));
  EXPECT_FALSE(Accepts(en, "\"re\""));
  json any = json::parse(R"({"$defs":{"p":{"type":"object","properties":{"x":{"type":"number"}},"required":["x"]}},
                             "anyOf":[{"$ref":"#/$defs/p"},{"type":"null"}]})");
  EXPECT_TRUE(Accepts(any, R"({"x":1.5})"));
  EXPECT_TRUE(Accepts(any, "null"));
  EXPECT_FALSE(Accepts(any, "{}"));
  json rec = json::parse(R"({"$defs":{"t":{"type":"object","properties":{"c":{"type":"array","items":{"$ref":"#/$defs/t"}}}}},
                             "$ref":"#/$defs/t"})");
  EXPECT_TRUE(Accepts(rec, R"({"c":[{"c":[]},{}]})"));
  EXPECT_FALSE(Accepts(rec, R"({"c":[1]})"));
  json types = json::parse(R"({"type":["string","null"],"maxLength":1})");
  EXPECT_TRUE(Accepts(types, "null"));
  EXPECT_TRUE(Accepts(types, "\"x\""));
  EXPECT_FALSE(Accepts(types, "\"xy\""));
}

// A user's schema whose alternatives multiply without consuming a byte —
// an anyOf of refs to itself, or a DAG of $defs k wide and d deep — made
// one byte cost ~k^d expansions, inside the engine's step for every user
// (found by review). The expansions per byte are bounded now: each of these
// finishes at once (the bound is hours against this 20 s), and the plain
// branch still matches.
TEST(GrammarTest, AlternativesThatMultiplyWithoutInputAreBounded) {
  std::vector<json> schemas;
  schemas.push_back(json::parse(R"({"anyOf":[{"$ref":"#"},{"$ref":"#"},{"$ref":"#"},{"$ref":"#"},{"type":"null"}]})"));
  json dag = {{"$defs", json::object()}};
  for (int i = 0; i < 12; ++i) {
    json alts = json::array();
    for (int k = 0; k < 8; ++k) alts.push_back({{"$ref", "#/$defs/d" + std::to_string(i + 1)}});
    dag["$defs"]["d" + std::to_string(i)] = {{"anyOf", alts}};
  }
  dag["$defs"]["d12"] = {{"type", "null"}};
  dag["$ref"] = "#/$defs/d0";
  schemas.push_back(dag);
  ASSERT_TRUE(CompileJsonSchema(schemas[0]).ok()) << "the self-referring anyOf compiles (and must stay cheap)";
  EXPECT_TRUE(CompileJsonSchema(schemas[1]).ok()) << "so does the DAG";
  for (const json& schema : schemas) {
    auto g = CompileJsonSchema(schema);
    if (!g.ok()) continue;  // refusing it is as good
    const auto t0 = std::chrono::steady_clock::now();
    MatchState s = MatchState::Start(**g);
    const bool advanced = s.Advance("nul");
    (void)MatchState::Start(**g).Advance("x");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20)) << schema.dump().substr(0, 80);
    if (schema.contains("anyOf")) {
      EXPECT_TRUE(advanced && s.Advance("l") && s.Complete());
    }
  }
}

TEST(GrammarTest, AnyJsonObjectAndLiterals) {
  json obj = {{"type", "object"}};
  EXPECT_TRUE(Accepts(obj, R"({"a":[1,{"b":null}],"c":"d","e":-1.5e3,"f":true})"));
  EXPECT_FALSE(Accepts(obj, "[1]"));
  EXPECT_FALSE(Accepts(obj, R"({"a":})"));
  // Nesting of free values is bounded (kAnyJsonDepth).
  EXPECT_FALSE(Viable(obj, R"({"a":[[[[[[[)"));
  std::string prefix = "<tool_call>\n", suffix = "\n</tool_call>";
  EXPECT_TRUE(Accepts(json::object(), "<tool_call>\n{\"a\":1}\n</tool_call>", prefix, suffix));
  EXPECT_FALSE(Accepts(json::object(), "<tool_call>\n{\"a\":1}", prefix, suffix));
  EXPECT_FALSE(Accepts(json::object(), "<tool_call>\n[1]\n</tool_call>", prefix, suffix));
  // A number at the end is complete, and may still go on.
  auto g = CompileJsonSchema(json{{"type", "integer"}});
  ASSERT_TRUE(g.ok());
  MatchState s = MatchState::Start(**g);
  ASSERT_TRUE(s.Advance("1"));
  EXPECT_TRUE(s.Complete());
  ASSERT_TRUE(s.Advance("2"));
  EXPECT_TRUE(s.Complete());
}

TEST(GrammarTest, RefusesWhatItDoesNotImplement) {
  struct Case { const char* schema; GrammarErrc code; const char* names; };
  const Case cases[] = {
      {R"({"type":"string","format":"hostname"})", GrammarErrc::kUnsupported, "hostname"},
      {R"({"type":"string","format":"date","pattern":"a"})", GrammarErrc::kUnsupported, "together"},
      {R"({"type":"string","pattern":"(?=a)b"})", GrammarErrc::kUnsupported, "lookahead"},
      {R"({"type":"string","pattern":"(a)\\1"})", GrammarErrc::kUnsupported, "backreferences"},
      {R"({"type":"string","pattern":"\\bword"})", GrammarErrc::kUnsupported, "word boundaries"},
      {R"({"type":"string","pattern":"(a"})", GrammarErrc::kInvalidSchema, "unterminated group"},
      {R"({"type":"string","pattern":"a{2,1}"})", GrammarErrc::kInvalidSchema, "m < n"},
      {R"({"type":"string","pattern":"*a"})", GrammarErrc::kInvalidSchema, "nothing to repeat"},
      {R"({"type":"string","pattern":"[]"})", GrammarErrc::kInvalidSchema, "matches no string"},
      {R"({"type":"string","pattern":"\\q"})", GrammarErrc::kInvalidSchema, "unknown escape"},
      {R"({"type":"string","pattern":"a{1001}"})", GrammarErrc::kTooLarge, "repeat count"},
      {R"({"type":"string","pattern":"(.{1000}){1000}"})", GrammarErrc::kTooLarge, "pattern"},
      {R"({"type":"string","pattern":"^a{5}$","maxLength":3})", GrammarErrc::kInvalidSchema, "maxLength"},
      {R"({"type":"string","pattern":"^a{2}$","minLength":3})", GrammarErrc::kInvalidSchema, "minLength"},
      {R"({"type":"string","pattern":1})", GrammarErrc::kInvalidSchema, "'pattern' must be a string"},
      {R"({"enum":["x","y"],"pattern":"^z$"})", GrammarErrc::kInvalidSchema, "pattern"},
      {R"({"type":"object","minProperties":1})", GrammarErrc::kUnsupported, "minProperties"},
      {R"({"type":"array","uniqueItems":true})", GrammarErrc::kUnsupported, "uniqueItems"},
      {R"({"allOf":[{"type":"string"}]})", GrammarErrc::kUnsupported, "allOf"},
      {R"({"$ref":"http://example.com/s.json"})", GrammarErrc::kInvalidSchema, "$ref"},
      {R"({"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"})", GrammarErrc::kInvalidSchema, "itself"},
      {R"({"type":"integer","minimum":5,"maximum":4})", GrammarErrc::kInvalidSchema, "no integer"},
      {R"({"type":"string","minLength":-1})", GrammarErrc::kInvalidSchema, "minLength"},
      {R"({"type":"object","required":["x"]})", GrammarErrc::kUnsupported, "x"},
      {R"({"type":"wat"})", GrammarErrc::kInvalidSchema, "wat"},
      {R"({"type":"object","properties":{"a":{"type":"string","pattern":"x$y"}}})", GrammarErrc::kUnsupported,
       "/properties/a: pattern: '$'"},
      {R"({"type":"object","patternProperties":{"^a":{}}})", GrammarErrc::kUnsupported, "patternProperties"},
  };
  for (const auto& c : cases) {
    auto g = CompileJsonSchema(json::parse(c.schema));
    ASSERT_FALSE(g.ok()) << c.schema;
    EXPECT_EQ(g.error().code, c.code) << c.schema;
    EXPECT_NE(g.detail().find(c.names), std::string::npos) << g.detail();
  }
  // Depth is bounded.
  json deep = {{"type", "string"}};
  for (int i = 0; i < kMaxSchemaDepth + 2; ++i) deep = {{"type", "array"}, {"items", deep}};
  auto g = CompileJsonSchema(deep);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code, GrammarErrc::kTooLarge);
}

// A JSON string of the pattern: its decoded text must match (anywhere, unless
// anchored), escapes and UTF-8 included, and no prefix is taken that cannot
// be finished.
TEST(GrammarTest, PatternsConstrainTheDecodedText) {
  json digits = {{"type", "string"}, {"pattern", "^[0-9]{2,3}(-[A-F]+)?$"}};
  for (const char* ok : {R"("12")", R"("123")", R"("12-AF")", R"("\u0031\u0032")"}) EXPECT_TRUE(Accepts(digits, ok)) << ok;
  for (const char* bad : {R"("1")", R"("1234")", R"("12-")", R"("12-a")", R"("")"}) EXPECT_FALSE(Accepts(digits, bad)) << bad;
  EXPECT_TRUE(Viable(digits, R"("12-)"));
  EXPECT_FALSE(Viable(digits, R"("1a)"));
  EXPECT_FALSE(Viable(digits, "\"\xc3"));      // no multi-byte character leads on
  EXPECT_FALSE(Viable(digits, R"("\u01)"));   // U+0100…U+01FF: no digit
  EXPECT_TRUE(Viable(digits, R"("\u00)"));    // U+0030…U+0039 are among U+0000…U+00FF
  EXPECT_FALSE(Viable(digits, R"("\u004)"));
  EXPECT_FALSE(Viable(digits, R"("\n)"));
  // Unanchored: the match may sit anywhere; each top-level alternative anchors on its own.
  json within = {{"type", "string"}, {"pattern", "ab"}};
  EXPECT_TRUE(Accepts(within, R"("xxabyy")"));
  EXPECT_FALSE(Accepts(within, R"("xxa")"));
  json alts = {{"type", "string"}, {"pattern", "^a$|b"}};
  EXPECT_TRUE(Accepts(alts, R"("a")"));
  EXPECT_TRUE(Accepts(alts, R"("xbx")"));
  EXPECT_FALSE(Accepts(alts, R"("ax")"));
  // Non-ASCII text, in UTF-8 or escaped; '.' stops at line terminators.
  json accent = {{"type", "string"}, {"pattern", "^é.\\s$"}};
  EXPECT_TRUE(Accepts(accent, "\"\xc3\xa9\xe2\x82\xac \""));
  EXPECT_TRUE(Accepts(accent, R"("\u00e9x\t")"));
  EXPECT_FALSE(Accepts(accent, R"("é\n ")"));
  EXPECT_TRUE(Viable(accent, "\"\xc3"));
  EXPECT_FALSE(Viable(accent, "\"\xc4"));  // U+0100…U+013F: not é
  // Lengths and the pattern together: no start that cannot be finished in maxLength.
  json room = {{"type", "string"}, {"pattern", "^(a|bbbbbb)$"}, {"maxLength", 3}};
  EXPECT_TRUE(Accepts(room, R"("a")"));
  EXPECT_FALSE(Viable(room, R"("b)"));
  json least = {{"type", "string"}, {"pattern", "^a*b?$"}, {"minLength", 2}};
  EXPECT_FALSE(Accepts(least, R"("a")"));
  EXPECT_TRUE(Accepts(least, R"("ab")"));
  EXPECT_FALSE(Viable(least, R"("b)"));  // 'b' ends the pattern one short
  // Both bounds: the counts a state can end in may have gaps ("a" ends now or after "bcd").
  json window = {{"type", "string"}, {"pattern", "^(?:a|abcd|xy)$"}, {"minLength", 2}, {"maxLength", 3}};
  EXPECT_FALSE(Viable(window, R"("a)"));
  EXPECT_TRUE(Accepts(window, R"("xy")"));
  auto none = CompileJsonSchema(json{{"type", "string"}, {"pattern", "^(?:a|abcd)$"}, {"minLength", 2}, {"maxLength", 3}});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, GrammarErrc::kInvalidSchema);
  // enum / const values are filtered by the pattern too.
  json e = {{"enum", {"2024-01-31", "2024-02-30", 7}}, {"format", "date"}};
  EXPECT_TRUE(Accepts(e, R"("2024-01-31")"));
  EXPECT_FALSE(Accepts(e, R"("2024-02-30")"));
  EXPECT_TRUE(Accepts(e, "7"));
}

// Patterns come from requests: ones that would take long or much memory to
// compile are refused (kTooLarge) — the work of all a schema's patterns is
// bounded together (RegexBudget).
TEST(GrammarTest, CostlyPatternsAreRefused) {
  std::string empties = "(?:(?:" + std::string(65400, '|') + "){1000}){20}";
  std::string many;  // 960 separate two-byte characters in one class
  for (uint32_t cp = 0x100; cp < 0x100 + 2 * 960; cp += 2) {
    many += static_cast<char>(0xC0 | cp >> 6);
    many += static_cast<char>(0x80 | (cp & 0x3F));
  }
  for (const std::string& p : {empties, "^(?:[" + many + "]{1000}){2}$", std::string("(?:x{0}x{0}x{0}x{0}){1000}(a{1000}){20}")}) {
    auto g = CompileJsonSchema(json{{"type", "string"}, {"pattern", p}});
    ASSERT_FALSE(g.ok()) << p.substr(0, 40);
    EXPECT_EQ(g.error().code, GrammarErrc::kTooLarge) << g.detail();
  }
  json types = json::array();
  for (int i = 0; i < 4000; ++i) types.push_back("string");
  EXPECT_TRUE(Accepts(json{{"type", types}, {"pattern", "^[a-z]{1,900}$"}}, R"("abc")"));  // compiled once
  json props = json::object();  // 64 different costly patterns share one budget
  for (int i = 0; i < 64; ++i) props["p" + std::to_string(i)] = {{"type", "string"}, {"pattern", "^(?:a?){900}" + std::to_string(i) + "$"}};
  auto g = CompileJsonSchema(json{{"type", "object"}, {"properties", props}});
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code, GrammarErrc::kTooLarge) << g.detail();
}

TEST(GrammarTest, FormatsAreEnforcedOnStringsAndIgnoredElsewhere) {
  auto str = [](const char* f) { return json{{"type", "string"}, {"format", f}}; };
  for (const char* ok : {R"("2024-02-28")", R"("1999-12-31")"}) EXPECT_TRUE(Accepts(str("date"), ok)) << ok;
  for (const char* bad : {R"("2024-02-29")", R"("2024-04-31")", R"("2024-13-01")", R"("0999-01-01")", R"("2024-1-01")"}) {
    EXPECT_FALSE(Accepts(str("date"), bad)) << bad;
  }
  EXPECT_TRUE(Accepts(str("time"), R"("23:59:59.5+05:30")"));
  EXPECT_FALSE(Accepts(str("time"), R"("24:00:00Z")"));
  EXPECT_FALSE(Accepts(str("time"), R"("12:00:00")"));  // RFC 3339: the offset is required
  EXPECT_TRUE(Accepts(str("date-time"), R"("2024-06-01T12:30:00Z")"));
  EXPECT_FALSE(Accepts(str("date-time"), R"("2024-06-01 12:30:00Z")"));
  EXPECT_TRUE(Accepts(str("uuid"), R"("123e4567-e89b-12d3-a456-426614174000")"));
  EXPECT_FALSE(Accepts(str("uuid"), R"("123e4567e89b12d3a456426614174000")"));
  EXPECT_TRUE(Accepts(str("ipv4"), R"("192.168.0.255")"));
  for (const char* bad : {R"("256.1.1.1")", R"("01.2.3.4")", R"("1.2.3")"}) EXPECT_FALSE(Accepts(str("ipv4"), bad)) << bad;
  EXPECT_TRUE(Accepts(str("email"), R"("first.last+tag@mail.example.org")"));
  EXPECT_FALSE(Accepts(str("email"), R"("no-at.example.org")"));
  EXPECT_FALSE(Accepts(str("email"), R"("a@localhost")"));  // a dotted domain only
  // Formats of other types (OpenAPI's int32, double…) are annotations.
  EXPECT_TRUE(Accepts(json{{"type", "integer"}, {"format", "int64"}}, "42"));
  EXPECT_TRUE(Accepts(json{{"format", "date"}}, R"("2024-01-01")"));  // a string is inferred
}

// --- the token mask over a real vocabulary ------------------------------------

class MaskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CLLM_SHARED_PATH(path, "models/ggml-vocab-qwen3.gguf");
    auto f = GgufFile::Open(path);
    ASSERT_TRUE(f.ok());
    auto t = Tokenizer::FromGguf(*f);
    ASSERT_TRUE(t.ok());
    tok_ = std::move(*t);
  }
  std::unique_ptr<Tokenizer> tok_;
};

// Allowed returns the tokens whose logits the mask leaves finite.
std::vector<TokenId> Allowed(TokenConstraint& c, int32_t n_vocab) {
  std::vector<float> logits(n_vocab, 0.0f);
  c.Mask(logits);
  std::vector<TokenId> out;
  for (TokenId t = 0; t < n_vocab; ++t) {
    if (std::isfinite(logits[t])) out.push_back(t);
  }
  return out;
}

TEST_F(MaskTest, MaskMatchesBruteForceOverTheVocabulary) {
  auto schema = nlohmann::ordered_json::parse(R"({"type":"object","properties":{"name":{"type":"string","maxLength":5},
      "n":{"type":"integer","minimum":0,"maximum":50},"tags":{"type":"array","items":{"enum":["a","bc"]}}},
      "required":["name","n"]})");
  auto g = JsonGrammar::Create(*tok_, schema);
  ASSERT_TRUE(g.ok()) << g.detail();
  const VocabIndex& v = (*g)->vocab();
  // States along one valid output, checked at several points.
  const std::string text = R"({"name": "ab\u00e9", "n":42,"tags":["bc"]})";
  for (size_t cut : {size_t{0}, size_t{1}, size_t{10}, size_t{14}, size_t{27}, size_t{29}, text.size() - 2, text.size()}) {
    auto c = (*g)->NewConstraint();
    // Feed the prefix byte by byte through single-byte tokens.
    for (size_t i = 0; i < cut; ++i) {
      auto ids = tok_->Encode(text.substr(i, 1), false, false);
      ASSERT_EQ(ids.size(), 1u);
      c->Accept(ids[0]);
    }
    std::vector<TokenId> allowed = Allowed(*c, v.n_vocab());
    std::vector<uint8_t> is_allowed(v.n_vocab(), 0);
    for (TokenId t : allowed) is_allowed[t] = 1;
    MatchState base = MatchState::Start((*g)->grammar());
    ASSERT_TRUE(base.Advance(std::string_view(text).substr(0, cut)));
    size_t n_ok = 0;
    for (TokenId t = 0; t < v.n_vocab(); t += (cut % 3) + 1) {
      bool expect;
      if (v.is_eog(t)) {
        expect = base.Complete();
      } else if (tok_->GetTokenType(t) != TokenType::kNormal) {
        expect = false;
      } else {
        MatchState s;
        s.CopyFrom(base);
        expect = !v.piece(t).empty() && s.Advance(v.piece(t));
      }
      n_ok += expect;
      ASSERT_EQ(is_allowed[t] != 0, expect) << "cut " << cut << " token " << t << " '" << v.piece(t) << "'";
    }
    EXPECT_GT(n_ok, 0u) << cut;
  }
}

// One request's schema cannot make the engine's step slow for everyone: a
// state with 64 live stacks (64 string alternatives of overlapping lengths)
// walks the vocabulary within a bounded amount of work, and what it allows
// is still allowed by the grammar (narrower, never wider). An ordinary
// state's walk is not cut (found by review; performance.md §7 has the cost).
TEST_F(MaskTest, AWalkWithManyLiveStacksIsBounded) {
  nlohmann::ordered_json alternatives = nlohmann::ordered_json::array();
  for (int i = 0; i < 64; ++i) {
    alternatives.push_back({{"type", "string"}, {"minLength", 2000}, {"maxLength", 2000 + i}});
  }
  const nlohmann::ordered_json schema = {{"type", "object"},
                                         {"properties", {{"a", {{"anyOf", alternatives}}}}},
                                         {"required", {"a"}}};
  auto g = JsonGrammar::Create(*tok_, schema);
  ASSERT_TRUE(g.ok()) << g.detail();
  MatchState state = MatchState::Start((*g)->grammar());
  ASSERT_TRUE(state.Advance(std::string_view(R"({"a":"xy)")));
  EXPECT_GE(state.stacks(), 32u);
  auto a = (*g)->AllowedFor(state);
  EXPECT_TRUE(a->walk_cut);
  EXPECT_LE(a->walk_work, kMaxWalkWorkPerTrieNode * 2 * (*g)->vocab().n_vocab() * 8 + 64 * 64);
  ASSERT_FALSE(a->ids.empty());
  for (TokenId t : a->ids) {
    if ((*g)->vocab().is_eog(t)) continue;
    MatchState s;
    s.CopyFrom(state);
    EXPECT_TRUE(s.Advance((*g)->vocab().piece(t))) << "token " << t << " '" << (*g)->vocab().piece(t) << "'";
  }
  // One live stack: the whole vocabulary is walked.
  auto one = JsonGrammar::Create(*tok_, nlohmann::ordered_json{{"type", "array"}, {"items", {{"type", "integer"}}}});
  ASSERT_TRUE(one.ok()) << one.detail();
  MatchState open = MatchState::Start((*one)->grammar());
  ASSERT_TRUE(open.Advance(std::string_view("[1")));
  EXPECT_FALSE((*one)->AllowedFor(open)->walk_cut);
}

TEST_F(MaskTest, EndOfGenerationOnlyWhenComplete) {
  auto g = JsonGrammar::Create(*tok_, json{{"type", "boolean"}}, "<tool_call>\n", "\n</tool_call>");
  ASSERT_TRUE(g.ok());
  auto c = (*g)->NewConstraint();
  auto allowed = Allowed(*c, tok_->n_vocab());
  // The prefix may come as the user-defined token <tool_call>.
  TokenId tool_call = tok_->Encode("<tool_call>", false, true)[0];
  EXPECT_NE(std::find(allowed.begin(), allowed.end(), tool_call), allowed.end());
  for (TokenId t : allowed) EXPECT_FALSE(tok_->IsEog(t));
  c->Accept(tool_call);
  for (TokenId t : tok_->Encode("\ntrue\n</tool_call>", false, true)) {
    for (TokenId a : Allowed(*c, tok_->n_vocab())) EXPECT_FALSE(tok_->IsEog(a));
    c->Accept(t);
  }
  allowed = Allowed(*c, tok_->n_vocab());
  ASSERT_FALSE(allowed.empty());
  for (TokenId t : allowed) EXPECT_TRUE(tok_->IsEog(t)) << t;
  // A token the mask did not allow kills the constraint: only EOG from then on.
  auto d = (*g)->NewConstraint();
  d->Accept(tok_->Encode("hello", false, false)[0]);
  for (TokenId t : Allowed(*d, tok_->n_vocab())) EXPECT_TRUE(tok_->IsEog(t));
}

}  // namespace
}  // namespace cllm::engine::grammar
