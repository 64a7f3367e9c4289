// `cllm apikey add --user NAME --keys-file FILE [--prompt-embeds]`: create an API key for a
// user of cllm-server. The key is printed once; the file stores only its
// SHA-256 (server/api_keys.h), so the file itself grants nothing.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>

#include "apps/cllm/command.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/random.h"
#include "server/api_keys.h"

namespace cllm::app {
namespace {

struct Args {
  std::string user;
  std::string file;
  bool prompt_embeds = false;  // the key may send prompts as embedding rows
};

int Add(const Args& a) {
  if (a.user.empty() || a.user.size() > 128) return Fail("--user must be 1 to 128 characters", 2);
  nlohmann::json doc = {{"keys", nlohmann::json::array()}};
  if (std::filesystem::exists(a.file)) {
    auto text = ReadTextFile(a.file, 16 << 20);
    if (!text.ok()) return Fail(text.detail(), 2);
    // Validate with the server's own parser before touching it.
    auto keys = server::ApiKeys::Parse(*text);
    if (!keys.ok()) return Fail(a.file + ": " + keys.detail(), 2);
    doc = nlohmann::json::parse(*text);
    for (const auto& e : doc["keys"]) {
      if (e.value("user", "") == a.user) return Fail("user \"" + a.user + "\" already has a key in " + a.file, 2);
    }
  }
  std::string key = "sk-cllm-" + Base64UrlEncode(crypto::RandomBytes(24));
  nlohmann::json entry = {{"user", a.user}, {"sha256", server::ApiKeys::DigestHex(key)}};
  if (a.prompt_embeds) entry["prompt_embeds"] = true;
  doc["keys"].push_back(std::move(entry));
  std::string out = doc.dump(2) + "\n";
  auto st = WriteFileAtomic(a.file, AsBytes(out), 0600);
  if (!st.ok()) return Fail(st.detail(), 2);
  std::printf("%s\n", key.c_str());
  std::fprintf(stderr, "added user \"%s\" to %s; the key above is shown once (the file keeps only its SHA-256)\n",
               a.user.c_str(), a.file.c_str());
  return 0;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  static Args args;
  CLI::App* group = SubcommandGroup(app, "apikey", "Manage cllm-server API keys");
  group->require_subcommand(1);
  auto* add = group->add_subcommand("add", "Create a key for a user; print it once; store its digest");
  add->add_option("--user", args.user, "User id the key authenticates as")->required();
  add->add_option("--keys-file", args.file, "The server's --api-keys file (created if missing)")->required();
  add->add_flag("--prompt-embeds", args.prompt_embeds,
                "Let this key send prompts as embedding rows (split inference; with cllm-server --prompt-embeds "
                "api-key or mutual)");
  add->callback([&ctx] { ctx.exit_code = Add(args); });
}

CommandRegistration reg{"apikey", 47, Setup};

}  // namespace
}  // namespace cllm::app
