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
      o.max_tokens = 80;
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
  auto dir = std::filesystem::temp_directory_path() / ("cllm_grammar_oracle_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "cases.json") << cases.dump();
  std::ofstream(dir / "check.py") << R"PY(import json, sys
import jsonschema
cases = json.load(open(sys.argv[1]))
bad = 0
for i, c in enumerate(cases):
    try:
        value = json.loads(c["output"])
        jsonschema.validate(value, c["schema"], cls=jsonschema.Draft202012Validator)
    except Exception as e:
        bad += 1
        print("case %d: %r: %s" % (i, c["output"], str(e).splitlines()[0]))
print("checked %d outputs, %d invalid" % (len(cases), bad))
sys.exit(1 if bad else 0)
)PY";
  std::string cmd = std::string(kPython) + " " + (dir / "check.py").string() + " " + (dir / "cases.json").string() +
                    " > " + (dir / "out.txt").string() + " 2>&1";
  int rc = std::system(cmd.c_str());
  std::ifstream in(dir / "out.txt");
  std::string report((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove_all(dir);
  EXPECT_EQ(rc, 0) << report;
  EXPECT_NE(report.find("checked " + std::to_string(cases.size()) + " outputs, 0 invalid"), std::string::npos) << report;
}

}  // namespace
}  // namespace cllm::engine::grammar
