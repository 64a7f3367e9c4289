// Who may send prompt_embeds (cllm-server --prompt-embeds): nobody by
// default (403 prompt_embeds_not_allowed, chat too); with api-key, keys
// whose keys-file entry says "prompt_embeds": true; with mutual, those and
// requests opened in e2e mutual mode (HPKE auth mode, the client's key
// vouched for by the configured verifier), not base-mode ones.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <cstring>

#include "base/encoding.h"
#include "channel/e2e.h"
#include "channel/e2e_response.h"
#include "server/prompt_embeds.h"
#include "server/service.h"
#include "support/fake_writer.h"
#include "support/shared_data.h"

namespace cllm::server {
namespace {

using nlohmann::json;
using testing::FakeWriter;
namespace e2e = channel::e2e;
namespace hpke = crypto::hpke;

constexpr char kModel[] = "models/stories260K-f16.gguf";

TEST(PromptEmbedsPolicyTest, ParsesTheFlagAndDecides) {
  PromptEmbedsPolicy p{};
  EXPECT_TRUE(ParsePromptEmbedsPolicy("api-key", &p));
  EXPECT_EQ(p, PromptEmbedsPolicy::kApiKey);
  EXPECT_FALSE(ParsePromptEmbedsPolicy("on", &p));
  EXPECT_FALSE(PromptEmbedsAllowed(PromptEmbedsPolicy::kOff, true, true));
  EXPECT_TRUE(PromptEmbedsAllowed(PromptEmbedsPolicy::kApiKey, true, false));
  EXPECT_FALSE(PromptEmbedsAllowed(PromptEmbedsPolicy::kApiKey, false, true));
  EXPECT_TRUE(PromptEmbedsAllowed(PromptEmbedsPolicy::kMutual, false, true));
  EXPECT_TRUE(PromptEmbedsAllowed(PromptEmbedsPolicy::kMutual, true, false));
  EXPECT_FALSE(PromptEmbedsAllowed(PromptEmbedsPolicy::kMutual, false, false));
}

TEST(PromptEmbedsPolicyTest, KeysFileFlag) {
  auto keys = ApiKeys::Parse(R"({"keys": [{"user": "a", "sha256": ")" + ApiKeys::DigestHex("ka") +
                             R"(", "prompt_embeds": true}, {"user": "b", "sha256": ")" + ApiKeys::DigestHex("kb") +
                             R"("}]})");
  ASSERT_TRUE(keys.ok()) << keys.detail();
  EXPECT_TRUE(keys->Authenticate("Bearer ka")->prompt_embeds);
  EXPECT_FALSE(keys->Authenticate("Bearer kb")->prompt_embeds);
  EXPECT_FALSE(ApiKeys::Parse(R"({"keys": [{"user": "a", "sha256": ")" + ApiKeys::DigestHex("ka") +
                              R"(", "prompt_embeds": "yes"}]})")
                   .ok());
}

class PromptEmbedsAccessTest : public ::testing::Test {
 protected:
  void Start(PromptEmbedsPolicy policy, ApiLimits limits = {}) {
    CLLM_SHARED_PATH(path, kModel);
    if (!model_) model_ = engine::Model::Open(path).value();
    ServiceOptions so;
    so.limits = limits;
    so.model_name = "stories";
    so.api_keys = ApiKeys::Parse(R"({"keys": [{"user": "split", "sha256": ")" + ApiKeys::DigestHex("sk-split") +
                                 R"(", "prompt_embeds": true}, {"user": "bob", "sha256": ")" +
                                 ApiKeys::DigestHex("sk-bob") + R"("}]})")
                      .value();
    so.prompt_embeds = policy;
    auto tmpl = engine::ChatTemplate::FromSource("{% for m in messages %}{{ m.content }}{% endfor %}", "", "");
    so.chat_template = std::make_shared<const engine::ChatTemplate>(std::move(tmpl).value());
    service_ = std::make_unique<Service>(*model_, so);
  }
  std::string Rows() {
    const size_t n_embd = static_cast<size_t>(model_->config().n_embd);
    std::vector<float> rows(2 * n_embd);
    EXPECT_TRUE(model_->TokenEmbedding(1, std::span<float>(rows.data(), n_embd)).ok());
    EXPECT_TRUE(model_->TokenEmbedding(300, std::span<float>(rows.data() + n_embd, n_embd)).ok());
    Bytes b(rows.size() * 4);
    std::memcpy(b.data(), rows.data(), b.size());  // x86/ARM little-endian, as the wire
    return Base64Encode(b);
  }
  json Completion() { return {{"prompt_embeds", Rows()}, {"max_tokens", 2}}; }
  json Chat() {
    return {{"messages", {{{"role", "user"}, {"content", json::array({{{"type", "prompt_embeds"},
                                                                        {"prompt_embeds", Rows()}}})}}}},
            {"max_tokens", 2}};
  }
  std::shared_ptr<FakeWriter> Call(const std::string& key, const json& body, const std::string& path) {
    net::Request r;
    r.method = "POST";
    r.target = path;
    r.headers["authorization"] = "Bearer " + key;
    r.body = body.dump();
    auto w = std::make_shared<FakeWriter>();
    service_->Handle(r, w);
    EXPECT_TRUE(w->WaitComplete());
    return w;
  }
  static std::string Code(const std::string& body) {
    auto j = json::parse(body, nullptr, false);
    return j.is_object() && j.contains("error") ? j["error"]["code"].get<std::string>() : "";
  }

  std::unique_ptr<engine::Model> model_;
  std::unique_ptr<Service> service_;
};

TEST_F(PromptEmbedsAccessTest, OffRefusesEveryone) {
  Start(PromptEmbedsPolicy::kOff);
  for (const char* key : {"sk-split", "sk-bob"}) {
    auto w = Call(key, Completion(), "/v1/completions");
    EXPECT_EQ(w->status(), 403);
    EXPECT_EQ(Code(w->body()), "prompt_embeds_not_allowed");
    w = Call(key, Chat(), "/v1/chat/completions");
    EXPECT_EQ(w->status(), 403);
    EXPECT_EQ(Code(w->body()), "prompt_embeds_not_allowed");
  }
  // Text prompts are untouched.
  EXPECT_EQ(Call("sk-bob", {{"prompt", "Hi"}, {"max_tokens", 2}}, "/v1/completions")->status(), 200);
}

TEST_F(PromptEmbedsAccessTest, ApiKeyModeAdmitsOnlyMarkedKeys) {
  Start(PromptEmbedsPolicy::kApiKey);
  auto w = Call("sk-bob", Completion(), "/v1/completions");
  EXPECT_EQ(w->status(), 403);
  EXPECT_EQ(Code(w->body()), "prompt_embeds_not_allowed");
  EXPECT_EQ(Call("sk-bob", Chat(), "/v1/chat/completions")->status(), 403);
  w = Call("sk-split", Completion(), "/v1/completions");
  EXPECT_EQ(w->status(), 200) << w->body();
  EXPECT_EQ(json::parse(w->body())["usage"]["prompt_tokens"], 2);
  w = Call("sk-split", Chat(), "/v1/chat/completions");
  EXPECT_EQ(w->status(), 200) << w->body();
  // The template writes nothing around the part; the tokenizer's BOS comes first.
  const size_t specials = model_->tokenizer().Encode("", /*add_special=*/true, /*parse_special=*/false).size();
  EXPECT_EQ(json::parse(w->body())["usage"]["prompt_tokens"].get<size_t>(), 2 + specials);
}

// The larger body limit --prompt-embeds needs goes only to completion
// requests that may carry rows: a marked key's, or an encrypted one (whose
// key is inside it, and which is held to its user's limit once opened).
// Every other key and route keeps the ordinary limit (found by review:
// --prompt-embeds raised it for every caller and route, and an unmarked
// key's huge text prompt was parsed and tokenized before it was refused).
TEST_F(PromptEmbedsAccessTest, OnlyCallersWhoMaySendRowsGetTheLargerBodyLimit) {
  ApiLimits limits;
  limits.max_body_bytes = 64 << 10;
  limits.max_embeds_body_bytes = 16 << 20;
  Start(PromptEmbedsPolicy::kApiKey, limits);
  auto head = [](const std::string& key, const std::string& path, const std::string& type = "application/json") {
    net::Request r;
    r.method = "POST";
    r.target = path;
    r.headers["authorization"] = "Bearer " + key;
    r.headers["content-type"] = type;
    return r;
  };
  EXPECT_EQ(service_->BodyLimit(head("sk-split", "/v1/completions")), size_t{16} << 20);
  EXPECT_EQ(service_->BodyLimit(head("sk-split", "/v1/chat/completions")), size_t{16} << 20);
  EXPECT_EQ(service_->BodyLimit(head("sk-bob", "/v1/chat/completions")), size_t{64} << 10);
  EXPECT_EQ(service_->BodyLimit(head("sk-nobody", "/v1/completions")), size_t{64} << 10);
  EXPECT_EQ(service_->BodyLimit(head("sk-split", "/v1/embeddings")), size_t{64} << 10);
  // Sealed: at most the largest bucket and its framing.
  const size_t sealed = service_->BodyLimit(head("", "/v1/completions", "application/cllm-e2e-request"));
  EXPECT_GT(sealed, size_t{4} << 20);
  EXPECT_LT(sealed, (size_t{4} << 20) + 2048);
  net::Request get = head("sk-split", "/v1/completions");
  get.method = "GET";
  EXPECT_EQ(service_->BodyLimit(get), size_t{64} << 10);

  // What the network let through is held to the caller's limit again.
  const json big = {{"prompt", std::string(100 << 10, 'a')}, {"max_tokens", 1}};
  auto w = Call("sk-bob", big, "/v1/completions");
  EXPECT_EQ(w->status(), 413) << w->body();
  w = Call("sk-split", big, "/v1/completions");
  EXPECT_NE(w->status(), 413) << w->body();

  Start(PromptEmbedsPolicy::kOff, limits);
  EXPECT_EQ(service_->BodyLimit(head("sk-split", "/v1/completions")), size_t{64} << 10);
}

// Mutual mode: bob's key is not marked, but a request he seals in HPKE auth
// mode (his client's key vouched for by the verifier) may carry rows.
TEST_F(PromptEmbedsAccessTest, MutualModeAdmitsAttestedClients) {
  Start(PromptEmbedsPolicy::kMutual);
  const hpke::Suite suite = hpke::kSuiteX25519;
  auto server_kp = hpke::GenerateKeyPair(suite.kem).value();
  const e2e::KeyConfig config{5, suite, server_kp.pk};
  auto ring = std::make_shared<e2e::KeyRing>();
  ASSERT_TRUE(ring->Add(e2e::EncodeKeyConfig(config), server_kp.sk.span()).ok());
  service_->SetE2eKeys(ring);
  auto client = hpke::GenerateKeyPair(suite.kem).value();
  const Bytes vouched = client.pk;
  service_->SetE2eClientVerifier(
      [&](std::string_view token, std::string_view, hpke::Suite) -> e2e::E2eResult<Bytes> {
        if (token != "good-token") return MakeError(e2e::E2eErrc::kClientToken, "refused");
        return vouched;
      },
      /*require=*/false);

  // The inner status of a sealed answer.
  auto inner_status = [](const e2e::SealedRequest& sealed, const FakeWriter& w) {
    auto opener = e2e::ResponseOpener::Create(sealed.response).value();
    auto frames = opener.Feed(AsBytes(w.body()));
    if (!frames.ok()) return -1;
    for (auto& f : *frames) {
      if (f.index == 0) return e2e::ParseResponseHead(std::string(AsChars(f.plaintext.span()))).value().status;
    }
    return -2;
  };
  auto send = [&](const e2e::SealedRequest& s) {
    net::Request r;
    r.method = "POST";
    r.target = "/v1/completions";
    for (const auto& [k, v] : s.headers) {
      std::string lower = k;
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[lower] = v;
    }
    r.body.assign(s.body.begin(), s.body.end());
    auto w = std::make_shared<FakeWriter>();
    service_->Handle(r, w);
    EXPECT_TRUE(w->WaitComplete());
    return w;
  };
  const std::string body = Completion().dump();
  e2e::ClientIdentity id{"good-token", "jws", client.sk.Clone()};
  auto mutual = e2e::SealRequest(config, "/v1/completions", "stories", false, "Bearer sk-bob", body, &id).value();
  auto w = send(mutual);
  EXPECT_EQ(inner_status(mutual, *w), 200);
  // The same request in base mode: bob's key alone does not allow rows.
  auto base = e2e::SealRequest(config, "/v1/completions", "stories", false, "Bearer sk-bob", body).value();
  w = send(base);
  EXPECT_EQ(inner_status(base, *w), 403);
  // A plain (unsealed) request of the marked key still works.
  EXPECT_EQ(Call("sk-split", Completion(), "/v1/completions")->status(), 200);
}

}  // namespace
}  // namespace cllm::server
