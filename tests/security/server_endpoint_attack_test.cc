// Attacks on cllm-server's unauthenticated or weakly guarded endpoints
// (issue #11 item 9, server parts):
//   - /metrics: its counters, polled around another user's request, give
//     that user's prompt and answer token counts. Nobody on the attested
//     listener reads them without a metrics key — not an anonymous caller,
//     not an API user.
//   - /.well-known/cllm-attestation: anyone may ask the TEE for fresh
//     evidence; a flood from one address must not starve everyone else.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "support/sim_server.h"

namespace cllm {
namespace {

namespace fs = std::filesystem;
using testing::RawTlsGet;
using testing::SimServer;

constexpr char kMetricsKey[] = "sk-metrics-5551212";
const std::string kNonce = "/.well-known/cllm-attestation?nonce=00112233445566778899aabbccddeeff";

std::string Bearer(const char* key) { return std::string("Authorization: Bearer ") + key + "\r\n"; }

class ServerEndpointAttackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(testing::SharedDir() / SimServer::kModel)) return;
    dir_ = fs::temp_directory_path() / ("cllm_endpoints_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    nlohmann::json mkeys = {
        {"keys", {{{"user", "prometheus"}, {"sha256", HexEncode(crypto::Sha256(AsBytes(kMetricsKey)))}}}}};
    std::ofstream(dir_ / "metrics-keys.json") << mkeys.dump();
    plain_ = SimServer::Start(dir_, "plain", {}).release();
    keyed_ = SimServer::Start(dir_, "keyed", {"--metrics-keys", (dir_ / "metrics-keys.json").string()}).release();
  }
  static void TearDownTestSuite() {
    delete plain_;
    delete keyed_;
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void SetUp() override {
    CLLM_SHARED_PATH(model, SimServer::kModel);
    ASSERT_TRUE(plain_ && keyed_) << "cllm-server did not start (logs in " << dir_ << ")";
  }

  static inline fs::path dir_;
  static inline SimServer* plain_ = nullptr;  // no metrics keys
  static inline SimServer* keyed_ = nullptr;  // --metrics-keys
};

constexpr char kCounter[] = "cllm_generated_tokens_total";

TEST_F(ServerEndpointAttackTest, AnonymousCallerAndApiUserCannotReadMetricsOnTheAttestedListener) {
  for (SimServer* s : {plain_, keyed_}) {
    auto anonymous = RawTlsGet("127.0.0.1", s->port(), "/metrics");
    EXPECT_NE(anonymous.status, 200);
    EXPECT_NE(anonymous.status, 0) << "the server should answer, with an error";
    EXPECT_EQ(anonymous.body.find(kCounter), std::string::npos);
    auto user = RawTlsGet("127.0.0.1", s->port(), "/metrics", Bearer(testing::kKeyAlice));
    EXPECT_NE(user.status, 200);
    EXPECT_EQ(user.body.find(kCounter), std::string::npos) << "an API key is not a metrics key";
  }
  EXPECT_EQ(RawTlsGet("127.0.0.1", plain_->port(), "/metrics").status, 404);
  EXPECT_EQ(RawTlsGet("127.0.0.1", keyed_->port(), "/metrics").status, 401);
}

TEST_F(ServerEndpointAttackTest, MetricsKeyHolderAndDebugListenerStillGetMetrics) {
  auto scraper = RawTlsGet("127.0.0.1", keyed_->port(), "/metrics", Bearer(kMetricsKey));
  EXPECT_EQ(scraper.status, 200);
  EXPECT_NE(scraper.body.find(kCounter), std::string::npos);
  // The plain debug listener (local, unattested by design) serves them
  // unless a metrics key is configured, which then applies there too.
  auto debug = client::ConnectPlain(client::Url{false, "127.0.0.1", plain_->debug_port(), ""});
  ASSERT_TRUE(debug.ok()) << debug.detail();
  auto r = (*debug)->Request("GET", "/metrics");
  ASSERT_TRUE(r.ok()) << r.detail();
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find(kCounter), std::string::npos);
  auto keyed_debug = client::ConnectPlain(client::Url{false, "127.0.0.1", keyed_->debug_port(), ""});
  ASSERT_TRUE(keyed_debug.ok());
  auto refused = (*keyed_debug)->Request("GET", "/metrics");
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 401);
}

// Evidence for an 8-byte nonce would carry the form of a certificate's
// issue time: a nonce chosen as a future time, put in a certificate for the
// same key, would pass as issued then (found by review). Nonces are 16 to
// 64 bytes.
TEST_F(ServerEndpointAttackTest, ANonceCannotHaveTheFormOfACertificatesIssueTime) {
  const std::string base = "/.well-known/cllm-attestation?nonce=";
  EXPECT_EQ(RawTlsGet("127.0.0.1", keyed_->port(), base + "0000000100000000").status, 400);  // 8 bytes
  EXPECT_EQ(RawTlsGet("127.0.0.1", keyed_->port(), base + "00112233445566778899aabbccddee").status, 400);  // 15
  EXPECT_EQ(RawTlsGet("127.0.0.1", keyed_->port(), base + std::string(130, '1')).status, 400);  // 65
  EXPECT_EQ(RawTlsGet("127.0.0.1", keyed_->port(), kNonce).status, 200);  // 16
}

TEST_F(ServerEndpointAttackTest, EvidenceFloodFromOneAddressIsLimitedWhileAnotherIsServed) {
  // The flooder: 20 back-to-back evidence requests from 127.0.0.1. The
  // default budget is a burst of 4 and 2/s after that, whatever the speed
  // of this machine (sanitizer builds are slow).
  int served = 0, limited = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    auto r = RawTlsGet("127.0.0.1", plain_->port(), kNonce);
    if (r.status == 200) {
      ++served;
    } else if (r.status == 429) {
      ++limited;
      EXPECT_GE(std::atoi(r.Header("Retry-After").c_str()), 1) << r.head;
    } else {
      ADD_FAILURE() << "unexpected status " << r.status;
    }
  }
  const double elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(served, 1);
  EXPECT_GE(limited, 1) << "a flood from one address must be limited";
  EXPECT_LE(served, 4 + 2 * elapsed_s + 1) << "more than the per-address budget was served in " << elapsed_s << " s";
  // Another caller, from another address, is still served at once.
  auto other = RawTlsGet("127.0.0.2", plain_->port(), kNonce);
  EXPECT_EQ(other.status, 200) << other.head << other.body;
  EXPECT_NE(other.body.find("\"payload\""), std::string::npos);
}

}  // namespace
}  // namespace cllm
