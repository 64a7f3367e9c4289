// The oracle test of structured output: a random-weight Qwen2-architecture
// model with the real Qwen tokenizer (151,936 tokens; hidden size 128, so it
// decodes faster than the Qwen3 one) samples at temperature 1 under the constraint of
// each schema of a matrix, with several seeds; every output must end by
// itself (end-of-generation once complete, within max_tokens) and parse and
// validate against its schema with Python's jsonschema (Debian
// python3-jsonschema), all outputs in one python run.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/grammar/json_constraint.h"
#include "engine/grammar/regex.h"
#include "engine/model/generator.h"
#include "support/shared_data.h"

namespace cllm::engine::grammar {
namespace {

using ojson = nlohmann::ordered_json;

constexpr const char* kPython = "/usr/bin/python3";

bool HaveJsonschema() {
  std::string cmd = std::string(kPython) + " -c 'import jsonschema' >/dev/null 2>&1";
  return std::filesystem::exists(kPython) && std::system(cmd.c_str()) == 0;
}

// RunPython runs `script` on the cases (as a JSON file, its argument) in a
// fresh temporary directory; returns its exit code and sets *report to what
// it printed.
int RunPython(const char* name, const ojson& cases, const std::string& script, std::string* report) {
  auto dir = std::filesystem::temp_directory_path() / (std::string(name) + "_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "cases.json") << cases.dump();
  std::ofstream(dir / "check.py") << script;
  std::string cmd = std::string(kPython) + " " + (dir / "check.py").string() + " " + (dir / "cases.json").string() +
                    " > " + (dir / "out.txt").string() + " 2>&1";
  int rc = std::system(cmd.c_str());
  std::ifstream in(dir / "out.txt");
  report->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  std::filesystem::remove_all(dir);
  return rc;
}

// Every schema keeps its strings short (maxLength) or its values enumerated,
// so that random sampling completes well within max_tokens: we do not force
// a close when tokens run short. Free keys (additionalProperties with a
// schema) are unbounded strings, which a random model rarely closes (about
// one token in fifty closes a string): they are covered by the unit tests.
const char* const kSchemas[] = {
    R"({"type":"object","properties":{"name":{"type":"string","maxLength":6},"age":{"type":"integer","minimum":0,"maximum":120}},"required":["name","age"],"additionalProperties":false})",
    R"({"type":"array","items":{"type":"integer","minimum":-50,"maximum":50},"minItems":2,"maxItems":4})",
    R"({"enum":["red","green","blue",42,null,true]})",
    R"({"type":"object","properties":{"point":{"type":"object","properties":{"x":{"type":"integer","exclusiveMinimum":-10,"exclusiveMaximum":10},"y":{"type":"number","minimum":1.5,"maximum":7.5}},"required":["x","y"]},"tags":{"type":"array","items":{"enum":["a","b"]},"maxItems":3}},"required":["point"]})",
    R"({"type":"object","properties":{"a":{"type":"boolean"},"b":{"type":"null"},"c":{"type":"string","minLength":2,"maxLength":4}},"additionalProperties":false})",
    R"({"anyOf":[{"type":"integer","minimum":1000,"maximum":1010},{"type":"string","minLength":1,"maxLength":3},{"type":"array","items":{"type":"boolean"},"maxItems":2}]})",
    R"({"$defs":{"pt":{"type":"object","properties":{"x":{"type":"integer","minimum":0,"maximum":9}},"required":["x"],"additionalProperties":false}},"type":"object","properties":{"from":{"$ref":"#/$defs/pt"},"to":{"$ref":"#/$defs/pt"}},"required":["from","to"]})",
    R"({"type":["string","integer","null"],"maxLength":3,"minimum":-3,"maximum":3})",
    R"({"type":"object","properties":{"k":{"const":"fixed"},"n":{"type":"integer","minimum":0,"maximum":9}},"required":["k"],"additionalProperties":false})",
    R"({"type":"object","properties":{"v":{"type":"number"}},"required":["v"],"additionalProperties":false})",
    R"({"type":"array","items":{"type":"array","items":{"type":"string","maxLength":2},"maxItems":2},"minItems":1,"maxItems":2})",
    R"({"type":"string","minLength":3,"maxLength":5})",
    R"({"type":"object","properties":{"day":{"type":"string","format":"date"},"id":{"type":"string","format":"uuid"}},"required":["day","id"],"additionalProperties":false})",
    R"({"type":"array","items":{"type":"string","format":"ipv4"},"minItems":1,"maxItems":2})",
    R"({"type":"string","format":"date-time"})",
    R"({"type":"string","format":"time"})",
    R"({"type":"string","format":"email","maxLength":24})",
    R"({"type":"string","pattern":"^[A-Z]{2}-[0-9]{3,4}(x|yz)?$"})",
    R"({"type":"string","pattern":"é+[^a-z]","maxLength":6})",
    R"({"enum":["2024-01-31","2024-02-30",3],"format":"date"})",
};

TEST(GrammarOracleTest, RandomModelOutputsValidateWithJsonschema) {
  CLLM_SHARED_PATH(path, "models/qwen2-tiny-random-q8_0.gguf");
  if (!HaveJsonschema()) {
    GTEST_SKIP() << "SKIPPED — " << kPython << " with jsonschema not found (Debian python3-jsonschema; "
                 << "scripts/install-deps.sh installs it)";
  }
  auto model = Model::Open(path);
  ASSERT_TRUE(model.ok()) << model.detail();
  const Tokenizer& tok = (*model)->tokenizer();

  ojson cases = ojson::array();
  int incomplete = 0;
  for (const char* text : kSchemas) {
    ojson schema = ojson::parse(text);
    auto g = JsonGrammar::Create(tok, schema);
    ASSERT_TRUE(g.ok()) << text << ": " << g.detail();
    for (uint64_t seed : {1, 2}) {
      GenerateOptions o;
      o.max_tokens = 160;
      o.sampling.temperature = 1.0f;
      o.sampling.seed = seed;
      o.constraint = (*g)->NewConstraint();
      auto r = Generate(**model, "Answer in JSON.", o);
      ASSERT_TRUE(r.ok()) << r.detail();
      if (!r->stopped_at_eog) {
        ++incomplete;
        ADD_FAILURE() << "no end within " << o.max_tokens << " tokens: schema " << text << " seed " << seed
                      << " output " << r->text;
      }
      cases.push_back({{"schema", schema}, {"output", r->text}});
    }
  }
  EXPECT_EQ(incomplete, 0);

  // One python run validates every output; it prints one line per failure.
  std::string report;
  const int rc = RunPython("cllm_grammar_oracle", cases, R"PY(import datetime, json, sys
import jsonschema
cases = json.load(open(sys.argv[1]))
bad = 0
for i, c in enumerate(cases):
    try:
        value = json.loads(c["output"])
        jsonschema.validate(value, c["schema"], cls=jsonschema.Draft202012Validator,
                            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        # time and date-time: jsonschema checks them only with rfc3339-validator installed
        fmt = c["schema"].get("format")
        if fmt == "date-time":
            datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if fmt == "time":
            datetime.time.fromisoformat(value.replace("Z", "+00:00"))
    except Exception as e:
        bad += 1
        print("case %d: %r: %s" % (i, c["output"], str(e).splitlines()[0]))
print("checked %d outputs, %d invalid" % (len(cases), bad))
sys.exit(1 if bad else 0)
)PY", &report);
  EXPECT_EQ(rc, 0) << report;
  EXPECT_NE(report.find("checked " + std::to_string(cases.size()) + " outputs, 0 invalid"), std::string::npos) << report;
}

// Patterns against Python's re (re.search with re.ASCII, which is ECMA-262's
// \d \w \s on these strings: none holds a non-ASCII space or digit, a line
// terminator other than \n, or a newline a '$' could stop before).
TEST(GrammarOracleTest, PatternsMatchWhatPythonReMatches) {
  if (!std::filesystem::exists(kPython)) GTEST_SKIP() << "SKIPPED — no " << kPython;
  const char* const patterns[] = {
      "^[0-9]{2,3}(-[A-F]+)?$", "ab", "^a$|b", "^(?:foo|bar)+baz$", "colou?r", "^[^aeiou]*$",
      "^\\d+(\\.\\d{1,2})?$", "^\\w+@\\w+\\.com$", "^(a|b)*abb$", "^.{3}$", "x*", "^$",
      "^[a-c]{0,2}[x-z]+$", "^(ab|a)(bc|c)$", "é+", "^[\\s\\S]{2}$", "^\\D\\W\\S$", "^a{2,}$",
      "^[\\-+]?[0-9]+$", "^\\x41\\u0042$", "[.]", "^\\.\\*\\?$", "^a|^b|c$", "^(?<n>a|bc){2}$", "a+?b{1,}?",
  };
  const char* const strings[] = {
      "", "a", "b", "ab", "abb", "aabb", "12", "123", "12-AF", "foo", "foobarbaz", "barbaz", "color",
      "colour", "xyz", "bcd", "3.14", "3.141", "joe@site.com", "é", "aéé", "a b", "\t", "AB", ".*?",
      "-5", "+7", "a.c", "aa", "aaa", "zz", "cx", "abc", "bca", "a\nb",
  };
  ojson cases = ojson::array();
  for (const char* p : patterns) {
    auto dfa = CompileRegex(p);
    ASSERT_TRUE(dfa.ok()) << p << ": " << dfa.detail();
    for (const char* str : strings) cases.push_back({{"p", p}, {"s", str}, {"ours", (*dfa)->Matches(str)}});
  }
  std::string report;
  const int rc = RunPython("cllm_regex_oracle", cases, R"PY(import json, re, sys
cases = json.load(open(sys.argv[1]))
bad = 0
for c in cases:
    want = re.search(c["p"].replace("(?<", "(?P<"), c["s"], re.ASCII) is not None
    if want != c["ours"]:
        bad += 1
        print("pattern %r on %r: re says %s, ours %s" % (c["p"], c["s"], want, c["ours"]))
print("checked %d, %d differ" % (len(cases), bad))
sys.exit(1 if bad else 0)
)PY", &report);
  EXPECT_EQ(rc, 0) << report;
  EXPECT_NE(report.find("checked " + std::to_string(cases.size()) + ", 0 differ"), std::string::npos) << report;
}

}  // namespace
}  // namespace cllm::engine::grammar
