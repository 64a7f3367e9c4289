// Attack: read a streamed answer from TLS record sizes (issue #11 item 7).
//
// A network observer (the cloud host, a load balancer) cannot decrypt RA-TLS
// but sees every record's length. When each token is sent as its own SSE
// event, record length = constant + token length, and the sequence of token
// lengths is enough to reconstruct much of the answer (Weiss et al.,
// "What Was Your Prompt? A Remote Keylogging Attack on AI Assistants",
// USENIX Security 2024). cllm-server pads every TLS record to a multiple of
// --stream-pad bytes (default 512), so all records of a stream look alike.
// A host that starts it with less (or `--stream-pad 0`) must say so in its
// evidence (channel/payload.h ServingClaims): clients refuse padding below
// their policy's "min_stream_pad" (default 512) before sending a prompt.
//
// The relay below is the observer: it parses the TLS record headers of
// everything the server sends after the handshake.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/sim_server.h"
#include "support/relay.h"

namespace cllm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::SimServer;

constexpr size_t kAeadTag = 16;            // every TLS 1.3 suite OpenSSL offers by default
constexpr size_t kMaxRecordPlain = 16384;  // a full record is never padded

struct TlsRecord {
  uint8_t type = 0;
  size_t length = 0;  // the header's length field: ciphertext with tag
};

// ParseRecords reads the 5-byte record headers (type, version, length) of a
// TLS byte stream; a cut-off last record is dropped.
std::vector<TlsRecord> ParseRecords(std::string_view bytes) {
  std::vector<TlsRecord> out;
  size_t at = 0;
  while (at + 5 <= bytes.size()) {
    TlsRecord r;
    r.type = static_cast<uint8_t>(bytes[at]);
    r.length = (static_cast<uint8_t>(bytes[at + 3]) << 8) | static_cast<uint8_t>(bytes[at + 4]);
    if (at + 5 + r.length > bytes.size()) break;
    out.push_back(r);
    at += 5 + r.length;
  }
  return out;
}

// What the observer records of one request, and what the client received.
struct Observation {
  std::vector<TlsRecord> records;   // server → client after the handshake
  std::vector<std::string> events;  // the SSE events as the client parsed them ("data: …\n\n")
  std::string body;                 // non-streamed: the response body
};

// Observe runs one request through the observer; `min_stream_pad` is the
// client policy's floor (a careless client's 0 accepts a server that does
// not pad).
Observation Observe(SimServer& server, const std::string& prompt, bool stream, uint32_t min_stream_pad = 512) {
  Observation o;
  testing::Relay relay(server.port());
  attestation::Policy policy = server.Policy();
  policy.min_stream_pad = min_stream_pad;
  auto c = client::Connect(client::Url{true, "127.0.0.1", relay.port(), ""}, policy);
  EXPECT_TRUE(c.ok()) << c.detail();
  if (!c.ok()) return o;
  // The handshake is over once Connect returns; the relay has recorded every
  // byte the client has seen. What follows is the answer.
  const size_t handshake_end = relay.server_bytes().size();
  const std::string body = json{{"messages", {{{"role", "user"}, {"content", prompt}}}},
                                {"max_tokens", 32},
                                {"temperature", 0},
                                {"stream", stream}}
                               .dump();
  std::string streamed;
  auto r = (*c)->Request("POST", "/v1/chat/completions", body,
                         {{"Authorization", std::string("Bearer ") + testing::kKeyAlice}},
                         stream ? client::BodyCallback([&](std::string_view b) {
                           streamed.append(b);
                           return true;
                         })
                                : client::BodyCallback());
  EXPECT_TRUE(r.ok()) << r.detail();
  if (!r.ok()) return o;
  EXPECT_EQ(r->status, 200) << r->body;
  o.body = r->body;
  for (size_t end; (end = streamed.find("\n\n")) != std::string::npos; streamed.erase(0, end + 2)) {
    o.events.push_back(streamed.substr(0, end + 2));
  }
  const std::string seen = relay.server_bytes();
  o.records = ParseRecords(std::string_view(seen).substr(handshake_end));
  return o;
}

// TextEvents are the events carrying answer text (not role, finish, [DONE]).
std::vector<std::string> TextEvents(const Observation& o) {
  std::vector<std::string> out;
  for (const auto& e : o.events) {
    if (e.find("\"content\":\"") != std::string::npos && e.find("\"role\"") == std::string::npos) out.push_back(e);
  }
  return out;
}

// UnpaddedRecordLength is the record an event makes without padding: the
// chunk ("<hex>\r\n" event "\r\n"), the content type byte and the tag.
size_t UnpaddedRecordLength(const std::string& event) {
  char hex[24];
  const int hex_len = std::snprintf(hex, sizeof hex, "%zx", event.size());
  return static_cast<size_t>(hex_len) + 2 + event.size() + 2 + 1 + kAeadTag;
}

// HidesTokenLengths is the defence's promise: every application-data record
// after the handshake carries a whole number of `block`s of plaintext.
::testing::AssertionResult HidesTokenLengths(const Observation& o, size_t block) {
  if (o.records.empty()) return ::testing::AssertionFailure() << "no records observed";
  for (const auto& r : o.records) {
    if (r.type != 23) return ::testing::AssertionFailure() << "record type " << int(r.type) << " after the handshake";
    const size_t plain = r.length - kAeadTag;  // inner plaintext: content, type byte, padding
    if (plain != kMaxRecordPlain + 1 && plain % block != 0) {
      return ::testing::AssertionFailure() << "record of " << r.length << " bytes is not on the " << block
                                           << "-byte grid: its size follows the text";
    }
  }
  return ::testing::AssertionSuccess();
}

std::set<size_t> Sizes(const Observation& o) {
  std::set<size_t> s;
  for (const auto& r : o.records) s.insert(r.length);
  return s;
}

class StreamPaddingAttackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(testing::SharedDir() / SimServer::kModel)) return;
    dir_ = fs::temp_directory_path() / ("cllm_pad_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    padded_ = SimServer::Start(dir_, "padded", {}).release();  // the default: padding on
    unpadded_ = SimServer::Start(dir_, "unpadded", {"--stream-pad", "0"}).release();
    coalesced_ = SimServer::Start(dir_, "coalesced", {"--stream-coalesce-ms", "2000"}).release();
  }
  static void TearDownTestSuite() {
    delete padded_;
    delete unpadded_;
    delete coalesced_;
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void SetUp() override {
    CLLM_SHARED_PATH(model, SimServer::kModel);
    ASSERT_TRUE(padded_ && unpadded_ && coalesced_) << "cllm-server did not start (logs in " << dir_ << ")";
  }

  static inline fs::path dir_;
  static inline SimServer* padded_ = nullptr;
  static inline SimServer* unpadded_ = nullptr;
  static inline SimServer* coalesced_ = nullptr;
};

TEST_F(StreamPaddingAttackTest, PaddingIsOnByDefault) {
  EXPECT_EQ(padded_->ready()["stream_pad"], 512);
  EXPECT_EQ(unpadded_->ready()["stream_pad"], 0);
  EXPECT_NE(unpadded_->process().err().find("padding is OFF"), std::string::npos) << "turning it off must be loud";
}

TEST_F(StreamPaddingAttackTest, StreamedRecordsAreOnTheGridWhateverTheText) {
  const size_t block = padded_->ready()["stream_pad"].get<size_t>();
  Observation a = Observe(*padded_, "Once upon a time", true);
  Observation b = Observe(*padded_, "The little dog found a big red ball", true);
  ASSERT_GE(TextEvents(a).size(), 8u);
  ASSERT_GE(TextEvents(b).size(), 8u);
  // The text differs in length event by event (what the attacker would read)...
  std::set<size_t> unpadded_lengths;
  for (const auto& e : TextEvents(a)) unpadded_lengths.insert(UnpaddedRecordLength(e));
  for (const auto& e : TextEvents(b)) unpadded_lengths.insert(UnpaddedRecordLength(e));
  ASSERT_GE(unpadded_lengths.size(), 3u) << "the answers should have tokens of different lengths";
  // ...but every record the observer sees is a whole number of blocks, and
  // both answers are made of the same record size.
  EXPECT_TRUE(HidesTokenLengths(a, block));
  EXPECT_TRUE(HidesTokenLengths(b, block));
  EXPECT_EQ(Sizes(a), Sizes(b));
  EXPECT_EQ(Sizes(a), std::set<size_t>{block + kAeadTag}) << "each event (and the head, finish, [DONE]) fits one block";
}

TEST_F(StreamPaddingAttackTest, NonStreamedAnswersAreOnTheGridToo) {
  const size_t block = padded_->ready()["stream_pad"].get<size_t>();
  Observation whole = Observe(*padded_, "Once upon a time", false);
  EXPECT_FALSE(whole.body.empty());
  EXPECT_TRUE(HidesTokenLengths(whole, block));
}

// The same observation without padding: record lengths give away every
// token's length, in order — the attack works, and the check above fails.
TEST_F(StreamPaddingAttackTest, WithoutPaddingTheObserverReadsEveryTokenLength) {
  Observation o = Observe(*unpadded_, "Once upon a time", true, /*min_stream_pad=*/0);
  const auto text = TextEvents(o);
  ASSERT_GE(text.size(), 8u);
  EXPECT_FALSE(HidesTokenLengths(o, 512));
  // The attacker's reconstruction: the run of records whose lengths are the
  // text events' lengths, one record per token, in order.
  std::vector<size_t> expected, seen;
  for (const auto& e : text) expected.push_back(UnpaddedRecordLength(e));
  for (const auto& r : o.records) seen.push_back(r.length);
  auto at = std::search(seen.begin(), seen.end(), expected.begin(), expected.end());
  EXPECT_NE(at, seen.end()) << "each token's length should be visible as its record's length";
  EXPECT_GE(std::set<size_t>(expected.begin(), expected.end()).size(), 3u);
}

// So a client whose policy keeps the default floor never sends a prompt to
// the unpadded server: the evidence says it does not pad.
TEST_F(StreamPaddingAttackTest, ClientsRefuseAServerThatDoesNotPad) {
  auto c = client::Connect(client::Url{true, "127.0.0.1", unpadded_->port(), ""}, unpadded_->Policy());
  ASSERT_FALSE(c.ok()) << "a server that does not pad its records was accepted";
  EXPECT_NE(c.detail().find("min_stream_pad"), std::string::npos) << c.detail();
  EXPECT_NE(c.detail().find("--stream-pad 0"), std::string::npos) << c.detail();
  EXPECT_TRUE(client::Connect(client::Url{true, "127.0.0.1", padded_->port(), ""}, padded_->Policy()).ok());
}

TEST_F(StreamPaddingAttackTest, CoalescingSendsFewerEventsWithTheSameText) {
  Observation single = Observe(*padded_, "Once upon a time", false);
  Observation merged = Observe(*coalesced_, "Once upon a time", true);
  const auto text = TextEvents(merged);
  ASSERT_FALSE(text.empty());
  // 32 tokens of the tiny model are generated well within 2 s: one event.
  EXPECT_LE(text.size(), 2u);
  std::string joined;
  for (const auto& e : text) {
    joined += json::parse(e.substr(6))["choices"][0]["delta"]["content"].get<std::string>();
  }
  EXPECT_EQ(joined, json::parse(single.body)["choices"][0]["message"]["content"].get<std::string>());
  EXPECT_TRUE(HidesTokenLengths(merged, 512));
}

}  // namespace
}  // namespace cllm
