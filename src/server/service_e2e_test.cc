// Encrypted bodies on the service (service_e2e.cc): an encrypted chat
// completion, streamed and not, answered in sealed frames that decode to
// the ordinary answer; the inner API key authenticates; errors before
// decryption are clear typed JSON; the access log holds no inner JSON;
// mutual mode accepts a vouched client and refuses others.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "channel/e2e_response.h"
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

ApiKeys Keys() {
  return ApiKeys::Parse(R"({"keys": [{"user": "bob", "sha256": ")" + ApiKeys::DigestHex("sk-bob") + R"("}]})")
      .value();
}

// Decoded is what the client reads from a sealed response.
struct Decoded {
  e2e::E2eErrc error{};  // {}: complete and authentic
  e2e::ResponseHead head;
  std::vector<std::string> body_frames;
  std::string Body() const {
    std::string b;
    for (const auto& f : body_frames) b += f;
    return b;
  }
};

Decoded Decode(const e2e::ResponseSecret& secret, const std::vector<std::string>& chunks) {
  Decoded d;
  auto opener = e2e::ResponseOpener::Create(secret).value();
  for (const auto& c : chunks) {
    auto frames = opener.Feed(AsBytes(c));
    if (!frames.ok()) {
      d.error = frames.code();
      return d;
    }
    for (auto& f : *frames) {
      const std::string text(AsChars(f.plaintext.span()));
      if (f.index == 0) {
        d.head = e2e::ParseResponseHead(text).value();
      } else {
        d.body_frames.push_back(text);
      }
    }
  }
  auto done = opener.Finish();
  if (!done.ok()) d.error = done.code();
  return d;
}

class ServiceE2eTest : public ::testing::TestWithParam<hpke::Suite> {
 protected:
  void SetUp() override {
    CLLM_SHARED_PATH(path, kModel);
    model_ = engine::Model::Open(path).value();
    auto tmpl = engine::ChatTemplate::FromSource("{% for m in messages %}{{ m.content }}{% endfor %}", "", "");
    ASSERT_TRUE(tmpl.ok()) << tmpl.detail();
    ServiceOptions so;
    so.model_name = "stories";
    so.api_keys = Keys();
    so.chat_template = std::make_shared<const engine::ChatTemplate>(std::move(tmpl).value());
    // One file per process: ctest runs the x25519 and gmt cases side by side.
    log_path_ = ::testing::TempDir() + "/e2e_access_" + std::to_string(getpid()) + ".log";
    std::remove(log_path_.c_str());
    so.access_log = AccessLog::Open(log_path_).value();
    service_ = std::make_unique<Service>(*model_, so);
    auto kp = hpke::GenerateKeyPair(GetParam().kem).value();
    config_ = e2e::KeyConfig{5, GetParam(), kp.pk};
    auto ring = std::make_shared<e2e::KeyRing>();
    ASSERT_TRUE(ring->Add(e2e::EncodeKeyConfig(config_), kp.sk.span()).ok());
    service_->SetE2eKeys(ring);
  }

  net::Request Outer(const e2e::SealedRequest& s, const std::string& path) {
    net::Request r;
    r.method = "POST";
    r.target = path;
    for (const auto& [k, v] : s.headers) {
      std::string lower = k;
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[lower] = v;
    }
    r.body.assign(s.body.begin(), s.body.end());
    return r;
  }
  std::shared_ptr<FakeWriter> Call(const net::Request& r) {
    auto w = std::make_shared<FakeWriter>();
    service_->Handle(r, w);
    return w;
  }
  e2e::SealedRequest Seal(const json& body, const std::string& auth = "Bearer sk-bob",
                          const std::string& path = "/v1/chat/completions") {
    return e2e::SealRequest(config_, path, "stories", body.value("stream", false), auth, body.dump()).value();
  }
  void TearDown() override { std::remove(log_path_.c_str()); }
  std::string AccessLogText() {
    service_.reset();  // the log writes out on destruction
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::unique_ptr<engine::Model> model_;
  std::unique_ptr<Service> service_;
  e2e::KeyConfig config_;
  std::string log_path_;
};

const json kMessages = json::array({{{"role", "user"}, {"content", "Once upon a time, a secret"}}});

TEST_P(ServiceE2eTest, EncryptedChatCompletion) {
  auto sealed = Seal({{"messages", kMessages}, {"max_tokens", 4}, {"temperature", 0}});
  auto w = Call(Outer(sealed, "/v1/chat/completions"));
  ASSERT_TRUE(w->WaitComplete());
  EXPECT_EQ(w->status(), 200);
  Decoded d = Decode(sealed.response, {w->body()});
  ASSERT_EQ(d.error, e2e::E2eErrc{});
  EXPECT_EQ(d.head.status, 200);
  EXPECT_EQ(d.head.content_type, "application/json");
  auto answer = json::parse(d.Body());
  EXPECT_EQ(answer["object"], "chat.completion");
  EXPECT_EQ(answer["usage"]["completion_tokens"], 4);
  // The outer body carries none of the answer's text.
  const std::string content = answer["choices"][0]["message"]["content"];
  if (content.size() >= 4) {
    EXPECT_EQ(w->body().find(content), std::string::npos);
  }
  const std::string log = AccessLogText();
  EXPECT_NE(log.find("\"user\":\"bob\""), std::string::npos) << log;
  EXPECT_EQ(log.find("secret"), std::string::npos) << log;
  EXPECT_EQ(log.find("messages"), std::string::npos) << log;
}

TEST_P(ServiceE2eTest, EncryptedStreamOneFramePerEvent) {
  auto sealed = Seal({{"messages", kMessages}, {"max_tokens", 4}, {"temperature", 0}, {"stream", true}});
  EXPECT_TRUE(sealed.fields.stream);
  auto w = Call(Outer(sealed, "/v1/chat/completions"));
  ASSERT_TRUE(w->WaitComplete());
  EXPECT_EQ(w->status(), 200);
  const auto writes = w->writes();
  Decoded d = Decode(sealed.response, writes);
  ASSERT_EQ(d.error, e2e::E2eErrc{});
  EXPECT_EQ(d.head.content_type, "text/event-stream");
  // The frames are the SSE events: each "data: …\n\n", then [DONE], then
  // the empty final frame.
  ASSERT_GE(d.body_frames.size(), 3u);
  for (size_t i = 0; i + 1 < d.body_frames.size(); ++i) {
    EXPECT_EQ(d.body_frames[i].rfind("data: ", 0), 0u) << d.body_frames[i];
  }
  EXPECT_EQ(d.body_frames[d.body_frames.size() - 2], "data: [DONE]\n\n");
  EXPECT_EQ(d.body_frames.back(), "");
  // A stream cut before its last write is reported truncated.
  std::vector<std::string> cut(writes.begin(), writes.end() - 1);
  EXPECT_EQ(Decode(sealed.response, cut).error, e2e::E2eErrc::kTruncated);
}

TEST_P(ServiceE2eTest, InnerErrorsAreSealedToo) {
  // A wrong inner API key: the 401 is inside the sealed head, the outer is 200.
  auto sealed = Seal({{"messages", kMessages}}, "Bearer sk-nobody");
  auto w = Call(Outer(sealed, "/v1/chat/completions"));
  ASSERT_TRUE(w->WaitComplete());
  EXPECT_EQ(w->status(), 200);
  Decoded d = Decode(sealed.response, {w->body()});
  ASSERT_EQ(d.error, e2e::E2eErrc{});
  EXPECT_EQ(d.head.status, 401);
  // Completions on /v1/completions and the outer API key ignored.
  auto plain = Seal({{"prompt", "Once"}, {"max_tokens", 2}}, "Bearer sk-bob", "/v1/completions");
  auto req = Outer(plain, "/v1/completions");
  req.headers["authorization"] = "Bearer sk-nobody";  // a proxy's header: not the client's
  auto w2 = Call(req);
  ASSERT_TRUE(w2->WaitComplete());
  EXPECT_EQ(Decode(plain.response, {w2->body()}).head.status, 200);
}

TEST_P(ServiceE2eTest, ErrorsBeforeDecryptionAreClearAndTyped) {
  auto sealed = Seal({{"messages", kMessages}, {"max_tokens", 1}});
  auto code_of = [](const FakeWriter& w) { return json::parse(w.body())["error"]["code"].get<std::string>(); };
  // Another path than the one sealed: bound in info.
  auto moved = Call(Outer(sealed, "/v1/completions"));
  EXPECT_EQ(moved->status(), 400);
  EXPECT_EQ(code_of(*moved), "e2e_decrypt_failed");
  // A stale key id.
  auto stale = Outer(sealed, "/v1/chat/completions");
  stale.body[0] = 9;
  auto w = Call(stale);
  EXPECT_EQ(w->status(), 421);
  EXPECT_EQ(code_of(*w), "e2e_key_unknown");
  // Mangled headers.
  auto bad = Outer(sealed, "/v1/chat/completions");
  bad.headers["cllm-e2e-stream"] = "maybe";
  w = Call(bad);
  EXPECT_EQ(w->status(), 400);
  EXPECT_EQ(code_of(*w), "e2e_malformed");
  // GET routes take no encrypted bodies.
  w = Call(Outer(sealed, "/v1/models"));
  EXPECT_EQ(w->status(), 404);
  // Mutual mode required: base mode refused.
  service_->SetE2eClientVerifier(nullptr, /*require=*/true);
  w = Call(Outer(sealed, "/v1/chat/completions"));
  EXPECT_EQ(w->status(), 401);
  EXPECT_EQ(code_of(*w), "e2e_client_token");
}

TEST_P(ServiceE2eTest, MutualMode) {
  auto client = hpke::GenerateKeyPair(GetParam().kem).value();
  Bytes vouched = client.pk;
  service_->SetE2eClientVerifier(
      [&](std::string_view token, std::string_view jws, hpke::Suite) -> e2e::E2eResult<Bytes> {
        if (token != "good-token" || jws != "good-jws") return MakeError(e2e::E2eErrc::kClientToken, "refused");
        return vouched;
      },
      /*require=*/true);
  auto seal = [&](const std::string& token, const std::string& jws) {
    e2e::ClientIdentity id{token, jws, client.sk.Clone()};
    return e2e::SealRequest(config_, "/v1/chat/completions", "stories", false, "Bearer sk-bob",
                            json{{"messages", kMessages}, {"max_tokens", 1}}.dump(), &id)
        .value();
  };
  auto good = seal("good-token", "good-jws");
  auto w = Call(Outer(good, "/v1/chat/completions"));
  ASSERT_TRUE(w->WaitComplete());
  ASSERT_EQ(w->status(), 200) << w->body();
  EXPECT_EQ(Decode(good.response, {w->body()}).head.status, 200);

  auto no_token = Outer(good, "/v1/chat/completions");
  no_token.headers.erase("cllm-e2e-client-token");
  EXPECT_EQ(Call(no_token)->status(), 401);
  auto bad_jws = seal("good-token", "bad-jws");
  EXPECT_EQ(Call(Outer(bad_jws, "/v1/chat/completions"))->status(), 401);
  // The verifier vouches for a key the sender does not hold.
  vouched = hpke::GenerateKeyPair(GetParam().kem).value().pk;
  auto wrong_pk = Call(Outer(good, "/v1/chat/completions"));
  EXPECT_EQ(wrong_pk->status(), 400);
  EXPECT_NE(wrong_pk->body().find("e2e_decrypt_failed"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Suites, ServiceE2eTest, ::testing::Values(hpke::kSuiteX25519, hpke::kSuiteGmt),
                         [](const auto& p) { return std::string(hpke::SuiteName(p.param)); });

}  // namespace
}  // namespace cllm::server
