// The operations surface: latency histograms in the Prometheus text format,
// the JSON access log (one line per request, no prompt or answer text), and
// both fed by real requests through the service.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "server/access_log.h"
#include "server/metrics.h"
#include "server/service.h"
#include "support/fake_writer.h"
#include "support/shared_data.h"

namespace cllm::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;
using testing::FakeWriter;

// Sample returns the value of the exposition line `name` (with its labels,
// e.g. `x_bucket{le="0.5"}`), or -1 when it is missing.
double Sample(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return -1;
}

std::vector<std::string> Lines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(HistogramTest, RendersCumulativeBucketsSumAndCount) {
  Histogram h({0.01, 0.1, 1});
  h.Observe(5ms);     // le 0.01
  h.Observe(10ms);    // le 0.01 (a bound is inclusive)
  h.Observe(50ms);    // le 0.1
  h.Observe(3000ms);  // +Inf only
  std::string out;
  h.Render("x_seconds", "a test", out);
  EXPECT_NE(out.find("# HELP x_seconds a test\n# TYPE x_seconds histogram\n"), std::string::npos) << out;
  EXPECT_EQ(Sample(out, "x_seconds_bucket{le=\"0.01\"}"), 2);
  EXPECT_EQ(Sample(out, "x_seconds_bucket{le=\"0.1\"}"), 3);
  EXPECT_EQ(Sample(out, "x_seconds_bucket{le=\"1\"}"), 3);
  EXPECT_EQ(Sample(out, "x_seconds_bucket{le=\"+Inf\"}"), 4);
  EXPECT_EQ(Sample(out, "x_seconds_count"), 4);
  EXPECT_NEAR(Sample(out, "x_seconds_sum"), 3.065, 1e-9);
  // Every sample line is NAME{labels} VALUE or NAME VALUE.
  std::istringstream in(out);
  const std::regex sample(R"(^x_seconds(_bucket\{le="[0-9.e+Inf-]+"\}|_sum|_count) [0-9.e+-]+$)");
  for (std::string line; std::getline(in, line);) {
    if (line[0] != '#') {
      EXPECT_TRUE(std::regex_match(line, sample)) << line;
    }
  }
}

TEST(AccessLogTest, LineHasTheFieldsAndReplacesBadUtf8) {
  AccessRecord r;
  r.time = std::chrono::system_clock::time_point(std::chrono::milliseconds(1764691468123));
  r.request_id = "chatcmpl-1";
  r.method = "POST";
  r.route = "/v1/\xff\xfe";
  r.status = 200;
  r.user = "alice";
  r.client = "127.0.0.1";
  r.prompt_tokens = 12;
  r.completion_tokens = 3;
  r.ttft_ms = 12.345;
  r.duration_ms = 40;
  auto j = json::parse(AccessLine(r));
  EXPECT_EQ(j["time"], "2025-12-02T16:04:28.123Z");
  EXPECT_EQ(j["status"], 200);
  EXPECT_EQ(j["user"], "alice");
  EXPECT_EQ(j["prompt_tokens"], 12);
  EXPECT_EQ(j["ttft_ms"], 12.3);
  EXPECT_FALSE(j.contains("queue_wait_ms"));  // not a completion that was admitted
  EXPECT_FALSE(j.contains("client_gone"));
  EXPECT_EQ(AccessLine(r).find('\n'), std::string::npos);
}

TEST(AccessLogTest, EveryLineReachesTheFileWhenTheLogCloses) {
  const fs::path p = fs::temp_directory_path() / ("cllm_access_" + std::to_string(::getpid()) + ".log");
  fs::remove(p);
  {
    auto log = AccessLog::Open(p.string());
    ASSERT_TRUE(log.ok()) << log.detail();
    AccessRecord r;
    for (int i = 0; i < 500; ++i) {
      r.request_id = "req-" + std::to_string(i);
      (*log)->Write(r);
    }
    EXPECT_EQ((*log)->dropped(), 0u);
  }
  auto lines = Lines(p);
  ASSERT_EQ(lines.size(), 500u);
  EXPECT_EQ(json::parse(lines[499])["request_id"], "req-499");
  EXPECT_EQ(fs::status(p).permissions() & fs::perms::others_read, fs::perms::none);
  fs::remove(p);
  EXPECT_FALSE(AccessLog::Open("/nonexistent-dir/x.log").ok());
}

// Through the service: one line per request with the request's facts and
// none of its text; histograms that move with the requests.
class ObservabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_path_ = fs::temp_directory_path() / ("cllm_obs_" + std::to_string(::getpid()) + ".log");
    fs::remove(log_path_);
  }
  void TearDown() override { fs::remove(log_path_); }
  void Start() {
    auto m = engine::Model::Open(testing::SharedDir() / "models/stories260K-f16.gguf");
    ASSERT_TRUE(m.ok());
    model_ = std::move(m).value();
    ServiceOptions so;
    so.model_name = "stories";
    so.api_keys = ApiKeys::Parse(R"({"keys": [{"user": "alice", "sha256": ")" + ApiKeys::DigestHex("sk-alice") +
                                 R"("}]})")
                      .value();
    so.access_log = AccessLog::Open(log_path_.string()).value();
    service_ = std::make_unique<Service>(*model_, so);
  }
  // Stop ends the service and the log: every line is in the file after it.
  void Stop() { service_.reset(); }
  std::shared_ptr<FakeWriter> Call(const std::string& method, const std::string& path, const std::string& body = "") {
    net::Request r;
    r.method = method;
    r.target = path;
    r.headers["authorization"] = "Bearer sk-alice";
    r.body = body;
    auto w = std::make_shared<FakeWriter>();
    w->info.peer = "192.0.2.7";
    service_->Handle(r, w);
    return w;
  }
  std::string Metrics() { return Call("GET", "/metrics")->body(); }

  fs::path log_path_;
  std::unique_ptr<engine::Model> model_;
  std::unique_ptr<Service> service_;
};

constexpr char kSecretPrompt[] = "Zanzibar-quokka-7731 told the lighthouse keeper";

TEST_F(ObservabilityTest, OneAccessLineForEachRequestAndNoTextOfIt) {
  CLLM_SHARED_PATH(path, "models/stories260K-f16.gguf");
  Start();
  const json chat = {{"messages", {{{"role", "user"}, {"content", kSecretPrompt}}}},
                     {"max_tokens", 12},
                     {"temperature", 0}};
  auto plain = Call("POST", "/v1/chat/completions", chat.dump());
  json streamed_body = chat;
  streamed_body["stream"] = true;
  auto streamed = Call("POST", "/v1/chat/completions", streamed_body.dump());
  auto bad = Call("POST", "/v1/completions", R"({"prompt": ")" + std::string(kSecretPrompt) + R"(", "n": 0})");
  auto missing = Call("GET", "/nowhere");
  ASSERT_TRUE(plain->WaitComplete());
  ASSERT_TRUE(streamed->WaitComplete());
  ASSERT_EQ(plain->status(), 200) << plain->body();
  const std::string answer = json::parse(plain->body())["choices"][0]["message"]["content"];
  Stop();

  const auto lines = Lines(log_path_);
  ASSERT_EQ(lines.size(), 4u);
  std::map<std::string, json> by_route_status;
  for (const auto& line : lines) {
    EXPECT_EQ(line.find("Zanzibar"), std::string::npos) << line;
    EXPECT_EQ(line.find("quokka"), std::string::npos) << line;
    if (answer.size() >= 6) {
      EXPECT_EQ(line.find(answer), std::string::npos) << line;
    }
    json j = json::parse(line);  // throws (fails the test) on a malformed line
    by_route_status[j["route"].get<std::string>() + " " + std::to_string(j["status"].get<int>())] = j;
  }
  ASSERT_EQ(by_route_status.count("/v1/chat/completions 200"), 1u);  // both chats: same key, check the last
  const json& c = by_route_status["/v1/chat/completions 200"];
  EXPECT_EQ(c["user"], "alice");
  EXPECT_EQ(c["client"], "192.0.2.7");
  EXPECT_EQ(c["method"], "POST");
  EXPECT_EQ(c["request_id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_GT(c["prompt_tokens"].get<int>(), 5);
  EXPECT_EQ(c["completion_tokens"], 12);
  EXPECT_EQ(c["finish"], "length");
  EXPECT_GE(c["queue_wait_ms"].get<double>(), 0);
  EXPECT_GE(c["ttft_ms"].get<double>(), 0);
  EXPECT_GE(c["duration_ms"].get<double>(), c["ttft_ms"].get<double>());
  EXPECT_TRUE(c["bytes_in"] == chat.dump().size() || c["bytes_in"] == streamed_body.dump().size()) << c;
  EXPECT_GT(c["bytes_out"].get<int>(), 0);
  ASSERT_EQ(by_route_status.count("/v1/completions 400"), 1u);
  EXPECT_FALSE(by_route_status["/v1/completions 400"].contains("prompt_tokens"));
  ASSERT_EQ(by_route_status.count("/nowhere 404"), 1u);
  EXPECT_EQ(by_route_status["/nowhere 404"]["request_id"].get<std::string>().rfind("req-", 0), 0u);
}

TEST_F(ObservabilityTest, LatencyHistogramsMoveWithRequests) {
  CLLM_SHARED_PATH(path, "models/stories260K-f16.gguf");
  Start();
  const std::string before = Metrics();
  for (const char* h : {"cllm_time_to_first_token_seconds", "cllm_inter_token_seconds", "cllm_queue_wait_seconds",
                        "cllm_request_duration_seconds"}) {
    EXPECT_NE(before.find(std::string("# TYPE ") + h + " histogram"), std::string::npos) << h;
  }
  EXPECT_EQ(Sample(before, "cllm_time_to_first_token_seconds_count"), 0);
  EXPECT_EQ(Sample(before, "cllm_inter_token_seconds_count"), 0);
  EXPECT_EQ(Sample(before, "cllm_queue_wait_seconds_count"), 0);

  auto w = Call("POST", "/v1/completions",
                json{{"prompt", "Once upon a time"}, {"max_tokens", 8}, {"temperature", 0}}.dump());
  ASSERT_TRUE(w->WaitComplete());
  ASSERT_EQ(w->status(), 200) << w->body();
  // The request is recorded when the scheduler lets go of its callbacks,
  // just after the response: poll briefly.
  std::string after;
  for (int i = 0; i < 200; ++i) {
    after = Metrics();
    if (Sample(after, "cllm_request_duration_seconds_count") >= 2) break;  // /metrics itself and the completion
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(Sample(after, "cllm_time_to_first_token_seconds_count"), 1);
  EXPECT_EQ(Sample(after, "cllm_inter_token_seconds_count"), 7);  // 8 tokens, 7 gaps
  EXPECT_EQ(Sample(after, "cllm_queue_wait_seconds_count"), 1);
  EXPECT_EQ(Sample(after, "cllm_queue_wait_seconds_bucket{le=\"+Inf\"}"), 1);
  EXPECT_GE(Sample(after, "cllm_request_duration_seconds_count"), 2);
  EXPECT_GT(Sample(after, "cllm_time_to_first_token_seconds_sum"), 0);
  EXPECT_GE(Sample(after, "cllm_request_duration_seconds_sum"), Sample(after, "cllm_time_to_first_token_seconds_sum"));
}

TEST_F(ObservabilityTest, MetricsStayClosedToApiUsersOnTheAttestedListener) {
  CLLM_SHARED_PATH(path, "models/stories260K-f16.gguf");
  Start();
  net::Request r;
  r.method = "GET";
  r.target = "/metrics";
  r.headers["authorization"] = "Bearer sk-alice";
  auto w = std::make_shared<FakeWriter>();
  w->info.tls = true;
  service_->Handle(r, w);
  EXPECT_EQ(w->status(), 404);
  EXPECT_EQ(w->body().find("cllm_time_to_first_token"), std::string::npos);
}

}  // namespace
}  // namespace cllm::server
