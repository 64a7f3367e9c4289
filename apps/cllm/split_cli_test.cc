// `cllm chat --split` and `cllm proxy --split` as a user runs them, up to the
// point where a server would be needed: flags are checked and the embeddings
// loaded before any connection, and every error is a usage error (exit 2).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "support/shared_data.h"

namespace {

struct Run {
  int exit_code;
  std::string out;  // stdout + stderr
};

Run Cllm(const std::string& args) {
  const std::string cmd = std::string(CLLM_BINARY) + " " + args + " 2>&1";
  Run r{-1, ""};
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Nothing listens on port 1: a run that gets past the split checks fails
// to connect (exit 2) after printing its banner.
constexpr char kNowhere[] = "https://127.0.0.1:1";

TEST(SplitCliTest, HelpNamesEveryFlag) {
  for (const char* cmd : {"chat --help", "proxy --help"}) {
    auto h = Cllm(cmd);
    EXPECT_EQ(h.exit_code, 0) << h.out;
    for (const char* flag :
         {"--split", "--epsilon", "--split-k", "--split-mask", "--split-embeddings"}) {
      EXPECT_NE(h.out.find(flag), std::string::npos) << cmd << " lacks " << flag;
    }
  }
}

TEST(SplitCliTest, BadFlagsAreUsageErrorsBeforeConnecting) {
  CLLM_SHARED_PATH(model, "models/stories260K-f32.gguf");
  const std::string emb = " --split-embeddings " + model.string();
  const std::string chat = std::string("chat ") + kNowhere + " -p hi";
  const std::pair<std::string, std::string> cases[] = {
      {chat + " --split --epsilon 1", "--split-embeddings"},
      {chat + " --split" + emb, "--epsilon"},
      {chat + " --epsilon 1", "apply to --split"},
      {chat + " --split --epsilon 0" + emb, "--epsilon must be"},
      {chat + " --split --epsilon abc" + emb, "--epsilon must be"},
      {chat + " --split --epsilon 1e-310" + emb, "at least 1e-300"},
      {chat + " --split --epsilon 1 --split-mask names" + emb, "--split-mask"},
      {chat + " --split --epsilon 1 --split-mask words:/nonexistent/w.txt" + emb, "--split-mask"},
      {chat + " --split --epsilon 1 --split-k 600" + emb, "exceeds the vocabulary"},
      {chat + " --split --epsilon 1 --split-embeddings /nonexistent/e.gguf", "--split-embeddings"},
      {std::string("proxy --upstream ") + kNowhere +
           " --split --epsilon 1 --split-embeddings /nonexistent/e.gguf",
       "--split-embeddings"},
  };
  for (const auto& [args, message] : cases) {
    auto r = Cllm(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(message), std::string::npos) << args << "\n" << r.out;
    EXPECT_EQ(r.out.find("connected"), std::string::npos) << args;
  }
}

TEST(SplitCliTest, ValidSetupPrintsWhatItSendsThenNeedsAServer) {
  CLLM_SHARED_PATH(model, "models/stories260K-f32.gguf");
  auto r =
      Cllm(std::string("chat ") + kNowhere +
           " -p hi --split --epsilon inf --split-k 8 --split-mask digits " + "--split-embeddings " +
           model.string() + " --insecure-accept-unpinned --connect-timeout 1");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("split inference"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("512 × 64"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("no noise"), std::string::npos) << r.out;  // the ε = inf warning
}

}  // namespace
