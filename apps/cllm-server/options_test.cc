// cllm-server's flags from the command line, the environment and a config
// file: each source works, and command line > environment > file > default.
#include "apps/cllm-server/options.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace cllm::app {
namespace {

namespace fs = std::filesystem;

// Env sets variables for one test and restores them after.
class Env {
 public:
  Env(std::initializer_list<std::pair<std::string, std::string>> vars) {
    for (auto& [k, v] : vars) {
      const char* old = std::getenv(k.c_str());
      saved_.emplace_back(k, old ? std::optional<std::string>(old) : std::nullopt);
      ::setenv(k.c_str(), v.c_str(), 1);
    }
  }
  ~Env() {
    for (auto& [k, v] : saved_) v ? ::setenv(k.c_str(), v->c_str(), 1) : ::unsetenv(k.c_str());
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

class ServerOptionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cllm_options_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    model_ = (dir_ / "m.gguf").string();
    std::ofstream(model_) << "x";
    // The variables this test uses must not come from the caller's shell.
    for (const char* v : {"CLLM_THREADS", "CLLM_KV_TYPE", "CLLM_MAX_ACTIVE", "CLLM_CONFIG", "CLLM_ALLOW_ANONYMOUS",
                          "CLLM_ACCESS_LOG", "CLLM_MODEL", "CLLM_PROMPT_EMBEDS"}) {
      ::unsetenv(v);
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Config(const std::string& text) {
    std::string path = (dir_ / "server.toml").string();
    std::ofstream(path) << text;
    return path;
  }

  // Parse runs the real parser on `args` (after the program name); the CLI11
  // error's message when it fails.
  std::string Parse(std::vector<std::string> args, ServerFlags& f) {
    CLI::App app{"test"};
    AddServerFlags(app, f);
    args.insert(args.begin(), "cllm-server");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    try {
      app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
  std::string model_;
};

TEST_F(ServerOptionsTest, DefaultsWithOnlyTheModel) {
  ServerFlags f;
  ASSERT_EQ(Parse({"-m", model_}, f), "");
  EXPECT_EQ(f.threads, 0);
  EXPECT_EQ(f.kv_type, "f16");
  EXPECT_EQ(f.max_active, 8);
  EXPECT_EQ(f.prefill_stall_factor, 2.0);
  EXPECT_EQ(f.access_log, "-");
  EXPECT_FALSE(f.anonymous);
  EXPECT_GE(f.max_connections, 16);
}

// The prompt cache is per user: 256 MiB by default with API keys; without
// them every caller is one user, so it is off and a budget is refused.
TEST_F(ServerOptionsTest, ThePromptCacheIsOffAndRefusedWithoutApiKeys) {
  ServerFlags f;
  ASSERT_EQ(Parse({"-m", model_}, f), "");
  EXPECT_FALSE(f.prompt_cache_mib.has_value());
  EXPECT_EQ(PromptCacheMib(f, /*have_api_keys=*/true).value(), 256);
  EXPECT_EQ(PromptCacheMib(f, /*have_api_keys=*/false).value(), 0);
  ServerFlags set;
  ASSERT_EQ(Parse({"-m", model_, "--prompt-cache-mib", "64"}, set), "");
  EXPECT_EQ(PromptCacheMib(set, true).value(), 64);
  auto refused = PromptCacheMib(set, false);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.detail().find("--allow-anonymous"), std::string::npos) << refused.detail();
  EXPECT_NE(refused.detail().find("--api-keys"), std::string::npos) << refused.detail();
  ServerFlags off;
  ASSERT_EQ(Parse({"-m", model_, "--prompt-cache-mib", "0"}, off), "");
  EXPECT_EQ(PromptCacheMib(off, true).value(), 0);
  EXPECT_EQ(PromptCacheMib(off, false).value(), 0);
  Env env({{"CLLM_PROMPT_CACHE_MIB", "32"}});
  ServerFlags from_env;
  ASSERT_EQ(Parse({"-m", model_}, from_env), "");
  EXPECT_EQ(from_env.prompt_cache_mib, 32);
  ServerFlags negative;
  EXPECT_NE(Parse({"-m", model_, "--prompt-cache-mib", "-1"}, negative), "");
}

TEST_F(ServerOptionsTest, EveryFlagHasItsEnvironmentVariable) {
  CLI::App app{"test"};
  ServerFlags f;
  AddServerFlags(app, f);
  for (const CLI::Option* opt : app.get_options()) {
    const std::string name = opt->get_single_name();
    if (name == "help" || name == "version") continue;
    ASSERT_FALSE(opt->get_lnames().empty()) << name;
    std::string want = "CLLM_";
    for (char c : opt->get_lnames().front()) want += c == '-' ? '_' : static_cast<char>(std::toupper(c));
    EXPECT_EQ(opt->get_envname(), want) << name;
  }
}

TEST_F(ServerOptionsTest, EachSourceAloneSetsAFlag) {
  {
    ServerFlags f;
    ASSERT_EQ(Parse({"-m", model_, "--threads", "3", "--kv-type", "f32", "--allow-anonymous"}, f), "");
    EXPECT_EQ(f.threads, 3);
    EXPECT_EQ(f.kv_type, "f32");
    EXPECT_TRUE(f.anonymous);
  }
  {
    Env env({{"CLLM_MODEL", model_}, {"CLLM_THREADS", "5"}, {"CLLM_KV_TYPE", "f32"}, {"CLLM_ALLOW_ANONYMOUS", "1"}});
    ServerFlags f;
    ASSERT_EQ(Parse({}, f), "");
    EXPECT_EQ(f.model_path, model_);
    EXPECT_EQ(f.threads, 5);
    EXPECT_EQ(f.kv_type, "f32");
    EXPECT_TRUE(f.anonymous);
  }
  {
    ServerFlags f;
    const std::string cfg = Config("model = \"" + model_ +
                                   "\"\nthreads = 7\nkv-type = \"f32\"\nallow-anonymous = true\n"
                                   "access-log = \"off\"\n");
    ASSERT_EQ(Parse({"--config", cfg}, f), "");
    EXPECT_EQ(f.model_path, model_);
    EXPECT_EQ(f.threads, 7);
    EXPECT_EQ(f.kv_type, "f32");
    EXPECT_TRUE(f.anonymous);
    EXPECT_EQ(f.access_log, "off");
  }
}

TEST_F(ServerOptionsTest, CommandLineBeatsEnvironmentBeatsConfigFile) {
  const std::string cfg = Config("threads = 7\nkv-type = \"f32\"\nmax-active = 3\nmax-queued = 11\n");
  Env env({{"CLLM_THREADS", "5"}, {"CLLM_MAX_ACTIVE", "4"}});
  ServerFlags f;
  ASSERT_EQ(Parse({"-m", model_, "--config", cfg, "--max-active", "6"}, f), "");
  EXPECT_EQ(f.max_active, 6);    // command line over environment and file
  ServerFlags g;
  ASSERT_EQ(Parse({"-m", model_, "--prefill-stall-factor", "0"}, g), "");
  EXPECT_EQ(g.prefill_stall_factor, 0);
  EXPECT_NE(Parse({"-m", model_, "--prefill-stall-factor", "-1"}, g), "");
  EXPECT_EQ(f.threads, 5);       // environment over file
  EXPECT_EQ(f.kv_type, "f32");   // file over default
  EXPECT_EQ(f.max_queued, 11);   // file over default
  EXPECT_EQ(f.drain_timeout_s, 30);  // default kept
}

TEST_F(ServerOptionsTest, ConfigFileFromTheEnvironment) {
  const std::string cfg = Config("threads = 2\n");
  Env env({{"CLLM_CONFIG", cfg}});
  ServerFlags f;
  ASSERT_EQ(Parse({"-m", model_}, f), "");
  EXPECT_EQ(f.threads, 2);
}

// The documented example parses (its files are the command line's here: they must exist).
TEST_F(ServerOptionsTest, TheExampleConfigFileParses) {
  ServerFlags f;
  ASSERT_EQ(Parse({"-m", model_, "--api-keys", model_, "--config",
                   std::string(CLLM_SOURCE_DIR) + "/deploy/cllm-server.toml"},
                  f),
            "");
  EXPECT_EQ(f.listen, "0.0.0.0:8443");
  EXPECT_EQ(f.access_log, "/var/log/cllm/access.log");
  EXPECT_EQ(f.kv_type, "f16");
}

// --prompt-embeds (split inference): off unless asked, from every source, and
// only the three documented values.
TEST_F(ServerOptionsTest, PromptEmbedsFlag) {
  {
    ServerFlags f;
    ASSERT_EQ(Parse({"-m", model_}, f), "");
    EXPECT_EQ(f.prompt_embeds, "off");
    ASSERT_EQ(Parse({"-m", model_, "--prompt-embeds", "api-key"}, f), "");
    EXPECT_EQ(f.prompt_embeds, "api-key");
  }
  {
    Env env({{"CLLM_PROMPT_EMBEDS", "mutual"}});
    ServerFlags f;
    ASSERT_EQ(Parse({"-m", model_}, f), "");
    EXPECT_EQ(f.prompt_embeds, "mutual");
  }
  {
    ServerFlags f;
    ASSERT_EQ(Parse({"-m", model_, "--config", Config("prompt-embeds = \"api-key\"\n")}, f), "");
    EXPECT_EQ(f.prompt_embeds, "api-key");
  }
  ServerFlags f;
  EXPECT_NE(Parse({"-m", model_, "--prompt-embeds", "on"}, f), "");
}

TEST_F(ServerOptionsTest, BadValuesAreRefusedFromEverySource) {
  {
    ServerFlags f;
    EXPECT_NE(Parse({"-m", model_, "--kv-type", "q8"}, f), "");
  }
  {
    Env env({{"CLLM_KV_TYPE", "q8"}});
    ServerFlags f;
    EXPECT_NE(Parse({"-m", model_}, f), "");
  }
  {
    ServerFlags f;
    EXPECT_NE(Parse({"-m", model_, "--config", Config("threads = -1\n")}, f), "");
  }
  {
    ServerFlags f;  // a misspelt key is not silently ignored
    EXPECT_NE(Parse({"-m", model_, "--config", Config("thread = 4\n")}, f), "");
  }
  {
    ServerFlags f;
    EXPECT_NE(Parse({"-m", model_, "--config", (dir_ / "missing.toml").string()}, f), "");
  }
  {
    Env env({{"CLLM_CONFIG", (dir_ / "missing.toml").string()}});
    ServerFlags f;
    EXPECT_NE(Parse({"-m", model_}, f), "");
  }
}

// The served name goes into the evidence (at most 256 bytes), the
// certificate, JSON bodies and logs (found by review: 300 bytes aborted the
// server, invalid UTF-8 made it throw writing --ready-file).
TEST(ModelNameTest, OneTo256BytesOfUtf8WithoutControlCharacters) {
  EXPECT_TRUE(CheckModelName("qwen3-0.6b").ok());
  EXPECT_FALSE(CheckModelName("a" + std::string(20, '\0')).ok());
  std::string accents = "a";
  for (int i = 0; i < 20; ++i) accents += "\xc3\xa9";  // é
  EXPECT_TRUE(CheckModelName(accents).ok());
  EXPECT_TRUE(CheckModelName(std::string(256, 'm')).ok());
  for (const std::string& bad : {std::string(), std::string(257, 'm'), std::string("abc\xff"), std::string("a\x1b[2J")}) {
    auto st = CheckModelName(bad);
    EXPECT_FALSE(st.ok()) << bad.size();
    EXPECT_NE(st.detail().find("--model-name"), std::string::npos);
  }
}

}  // namespace
}  // namespace cllm::app
