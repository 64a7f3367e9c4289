// Mutation tests: a real quote and its collateral with one thing altered, each
// failing with its own AttestErrc. Alterations that a real signature would
// catch first (revoked PCK, re-signed QE report data, debug TD, edited TCB
// levels) use a synthetic Intel-shaped hierarchy (test root passed through
// EvidenceInput::roots) that re-signs the real quote's parts.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <functional>

#include "attestation/policy.h"
#include "attestation/tdx/collateral.h"
#include "attestation/tdx/pck.h"
#include "attestation/tdx/quote.h"
#include "attestation/tdx/verify.h"
#include "base/byte_reader.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/cert_builder.h"
#include "crypto/digest.h"
#include "support/shared_data.h"

namespace cllm::attestation::tdx {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr char kQuote[] = "testdata/attestation/tdx/gotdxguest_v5_td15_quote_fmspc90c06f.dat";
constexpr char kCollateral[] = "testdata/attestation/tdx/dcapqvl_collateral_fmspc90c06f_2026-02-18.json";
constexpr char kOtherQuote[] = "testdata/attestation/tdx/trustee_v4_quote_4_fmspc50806f.dat";

Bytes Load(const std::filesystem::path& p) {
  auto b = ReadFile(p);
  EXPECT_TRUE(b.ok()) << p;
  return b.ok() ? std::move(b).value() : Bytes{};
}

crypto::TimePoint At() { return *ParseUtcTime("2026-03-01T00:00:00Z"); }

// VerifyCode returns the error code, or nullopt when the evidence verifies.
std::optional<AttestErrc> VerifyCode(ByteSpan quote, const Bytes& collateral,
                                     std::vector<crypto::Certificate> roots = {}) {
  EvidenceInput in;
  in.evidence = quote;
  in.collateral = collateral;
  in.at = At();
  in.roots = std::move(roots);
  auto v = VerifyTdxEvidence(in);
  if (v.ok()) return std::nullopt;
  return v.code();
}

// Offsets in the v5 TD 1.5 quote: header 48, body_type 2, body_size 4, body 648.
constexpr size_t kBody = 54;
constexpr size_t kSigData = kBody + kTd15BodySize + 4;  // quote signature
constexpr size_t kAk = kSigData + 64;
constexpr size_t kQeReport = kAk + 64 + 6;
constexpr size_t kQeSig = kQeReport + 384;
constexpr size_t kQeAuth = kQeSig + 64 + 2;

#define LOAD_REAL(quote, collateral)                 \
  CLLM_SHARED_PATH(quote##_path, kQuote);            \
  CLLM_SHARED_PATH(collateral##_path, kCollateral);  \
  Bytes quote = Load(quote##_path);                  \
  Bytes collateral = Load(collateral##_path)

TEST(TdxMutationTest, FlippedQuoteBytesFailWithTheirCheck) {
  LOAD_REAL(quote, collateral);
  ASSERT_EQ(VerifyCode(quote, collateral), std::nullopt) << "baseline must verify";
  struct Case {
    size_t offset;
    AttestErrc want;
    const char* what;
  };
  const Case cases[] = {
      {0x1C, AttestErrc::kBadSignature, "header.user_data"},
      {0x08, AttestErrc::kBadSignature, "header.qe_svn"},
      {0x0C, AttestErrc::kWrongProduct, "header.qe_vendor_id"},
      {0x00, AttestErrc::kMalformed, "header.version 5 -> 4 (v4 layout no longer fits)"},
      {0x04, AttestErrc::kUnsupportedVersion, "header.tee_type"},
      {48, AttestErrc::kMalformed, "body_type 3 -> 2 (size 648 is not TD 1.0)"},
      {49, AttestErrc::kUnsupportedVersion, "body_type 0x0103"},
      {0x01, AttestErrc::kUnsupportedVersion, "header.version 0x0105"},
      {0x02, AttestErrc::kUnsupportedVersion, "header.att_key_type"},
      {50, AttestErrc::kMalformed, "body_size"},
      {kBody + 0x000, AttestErrc::kBadSignature, "body.tee_tcb_svn"},
      {kBody + 0x088, AttestErrc::kBadSignature, "body.mr_td"},
      {kBody + 0x078, AttestErrc::kBadSignature, "body.td_attributes"},
      {kBody + 0x208, AttestErrc::kBadSignature, "body.report_data"},
      {kBody + 0x258, AttestErrc::kBadSignature, "body.mr_servicetd"},
      {kSigData + 5, AttestErrc::kBadSignature, "quote signature"},
      {kAk + 7, AttestErrc::kBindingMismatch, "attestation key"},
      {kQeReport + 0x140, AttestErrc::kBadSignature, "QE report report_data (signed by the PCK)"},
      {kQeReport + 0x080, AttestErrc::kBadSignature, "QE report mr_signer"},
      {kQeSig + 3, AttestErrc::kBadSignature, "QE report signature"},
      {kQeAuth, AttestErrc::kBindingMismatch, "QE auth data"},
  };
  for (const auto& c : cases) {
    Bytes q = quote;
    q[c.offset] ^= 0x01;
    EXPECT_EQ(VerifyCode(q, collateral), c.want) << c.what;
  }
}

TEST(TdxMutationTest, TruncationsAndLengthFieldsNeverReadPastTheEnd) {
  LOAD_REAL(quote, collateral);
  auto full = ParseQuote(quote);
  ASSERT_TRUE(full.ok());
  for (size_t n = 0; n < full->quote_size; ++n) {
    auto q = ParseQuote(ByteSpan(quote).first(n));
    ASSERT_FALSE(q.ok()) << n;
    EXPECT_TRUE(q.code() == AttestErrc::kMalformed || q.code() == AttestErrc::kUnsupportedVersion) << n;
  }
  // sig_data_len and the certification data sizes set to huge values.
  const size_t nested_size = kQeAuth + full->qe_auth_data.size() + 2;
  for (size_t off : {kBody + kTd15BodySize, kAk + 64 + 2, nested_size}) {
    Bytes q = quote;
    q[off + 3] = 0xFF;
    EXPECT_EQ(ParseQuote(q).code(), AttestErrc::kMalformed) << off;
  }
}

TEST(TdxMutationTest, TamperedOrMissingCollateralIsRejected) {
  LOAD_REAL(quote, collateral);
  json doc = json::parse(AsChars(collateral));
  auto with = [&](const std::function<void(json&)>& edit) {
    json d = doc;
    edit(d);
    return ToBytes(d.dump());
  };
  auto replace = [](std::string s, const std::string& from, const std::string& to) {
    auto pos = s.find(from);
    EXPECT_NE(pos, std::string::npos) << from;
    if (pos != std::string::npos) s.replace(pos, from.size(), to);
    return s;
  };
  EXPECT_EQ(VerifyCode(quote, with([&](json& d) {
              d["tcb_info"] = replace(d["tcb_info"], "\"tcbStatus\":\"OutOfDate\"", "\"tcbStatus\":\"UpToDate\"");
            })),
            AttestErrc::kBadSignature);
  EXPECT_EQ(VerifyCode(quote, with([&](json& d) {
              d["qe_identity"] = replace(d["qe_identity"], "\"isvsvn\":4", "\"isvsvn\":3");
            })),
            AttestErrc::kBadSignature);
  EXPECT_EQ(VerifyCode(quote, with([&](json& d) {
              std::string s = d["tcb_info_signature"];
              s[10] = s[10] == '0' ? '1' : '0';
              d["tcb_info_signature"] = s;
            })),
            AttestErrc::kBadSignature);
  // A space added after the signed object's first brace: same JSON, other bytes.
  EXPECT_EQ(VerifyCode(quote, with([&](json& d) { d["tcb_info"] = replace(d["tcb_info"], "{", "{ "); })),
            AttestErrc::kBadSignature);
  for (const char* key : {"tcb_info", "qe_identity", "pck_crl", "root_ca_crl"}) {
    EXPECT_EQ(VerifyCode(quote, with([&](json& d) { d.erase(key); })), AttestErrc::kCollateralMissing) << key;
  }
  EXPECT_EQ(VerifyCode(quote, with([&](json& d) { d["pck_crl"] = "zz"; })), AttestErrc::kCollateralInvalid);
  EXPECT_EQ(VerifyCode(quote, ToBytes("{not json")), AttestErrc::kCollateralInvalid);
}

TEST(TdxMutationTest, CollateralForAnotherPlatformIsInvalid) {
  CLLM_SHARED_PATH(other_path, kOtherQuote);
  CLLM_SHARED_PATH(coll_path, kCollateral);
  // FMSPC 50806f quote with the FMSPC 90c06f TCB Info (same PCK Platform CA).
  EXPECT_EQ(VerifyCode(Load(other_path), Load(coll_path)), AttestErrc::kCollateralInvalid);
}

TEST(TdxMutationTest, UnpinnedRootIsRejected) {
  LOAD_REAL(quote, collateral);
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256);
  ASSERT_TRUE(key.ok());
  crypto::CertSpec spec{"Intel SGX Root CA", At() - 24h * 365, At() + 24h * 365, {}, true, {}, {}};
  auto other_root = crypto::IssueCertificate(spec, key->public_key(), *key, nullptr);
  ASSERT_TRUE(other_root.ok());
  EXPECT_EQ(VerifyCode(quote, collateral, {*other_root}), AttestErrc::kCollateralMissing);
  auto q = ParseQuote(quote);
  ASSERT_TRUE(q.ok());
  EvidenceInput in;
  in.at = At();
  in.roots = {*other_root};
  EXPECT_EQ(VerifyQuoteSignatures(*q, in, {}).code(), AttestErrc::kChainInvalid);
}

// The same collateral in the other accepted encodings still verifies: the PCS
// response body inside tcb_info / qe_identity (Intel QVL collateral struct),
// and a PCK CRL given as hex of its PEM text.
TEST(TdxMutationTest, AlternativeCollateralEncodingsVerify) {
  LOAD_REAL(quote, collateral);
  json doc = json::parse(AsChars(collateral));
  json alt = doc;
  alt["tcb_info"] = "{\"tcbInfo\":" + doc["tcb_info"].get<std::string>() + ",\"signature\":\"" +
                    doc["tcb_info_signature"].get<std::string>() + "\"}";
  alt.erase("tcb_info_signature");
  alt["qe_identity"] = "{\"enclaveIdentity\":" + doc["qe_identity"].get<std::string>() + ",\"signature\":\"" +
                       doc["qe_identity_signature"].get<std::string>() + "\"}";
  alt.erase("qe_identity_signature");
  auto der = HexDecode(doc["pck_crl"].get<std::string>());
  ASSERT_TRUE(der.ok());
  std::string b64 = Base64Encode(*der), pem = "-----BEGIN X509 CRL-----\n";
  for (size_t i = 0; i < b64.size(); i += 64) pem += b64.substr(i, 64) + "\n";
  pem += "-----END X509 CRL-----\n";
  alt["pck_crl"] = HexEncode(AsBytes(pem));
  EXPECT_EQ(VerifyCode(quote, ToBytes(alt.dump())), std::nullopt) << "must verify";
  alt["pck_crl"] = pem;
  EXPECT_EQ(VerifyCode(quote, ToBytes(alt.dump())), std::nullopt) << "must verify";
}

}  // namespace
}  // namespace cllm::attestation::tdx
