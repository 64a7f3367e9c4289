// Unit tests of the TDX parsers on synthetic inputs: the fuzz seeds, raw JSON
// member extraction, PCS time format, PCK SGX extension DER.
#include <gtest/gtest.h>

#include <filesystem>

#include "attestation/tdx/collateral.h"
#include "attestation/tdx/pck.h"
#include "attestation/tdx/quote.h"
#include "base/encoding.h"
#include "base/file.h"

namespace cllm::attestation::tdx {
namespace {

const std::filesystem::path kCorpus = std::filesystem::path(CLLM_SOURCE_DIR) / "fuzz/corpus";

Bytes Seed(const char* rel) {
  auto b = ReadFile(kCorpus / rel);
  EXPECT_TRUE(b.ok()) << rel;
  return b.ok() ? std::move(b).value() : Bytes{};
}

TEST(TdxQuoteParseTest, SyntheticSeedsParseWithTheirLayout) {
  Bytes v4 = Seed("tdx_quote/v4_td10_synthetic.bin");
  auto q = ParseQuote(v4);
  ASSERT_TRUE(q.ok()) << q.detail();
  EXPECT_TRUE(LooksLikeTdxQuote(v4));
  EXPECT_EQ(q->header.qe_svn, 7);
  EXPECT_EQ(q->header.pce_svn, 13);
  EXPECT_EQ(q->body_type, kBodyTypeTd10);
  EXPECT_EQ(q->signed_bytes.size(), kHeaderSize + kTd10BodySize);
  EXPECT_EQ(q->quote_size, v4.size());
  // Body bytes are 0, 1, 2, ... : check field offsets (TDX Module ABI TDREPORT).
  EXPECT_EQ(q->body.mr_seam[0], 0x10);
  EXPECT_EQ(q->body.td_attributes[0], 0x78);
  EXPECT_EQ(q->body.mr_td[0], 0x88);
  EXPECT_EQ(q->body.rtmr[3][0], static_cast<uint8_t>(0x148 + 3 * 48));
  EXPECT_EQ(q->body.report_data[0], static_cast<uint8_t>(0x208));
  EXPECT_EQ(q->qe_auth_data.size(), 32u);

  Bytes v5 = Seed("tdx_quote/v5_td15_synthetic.bin");
  auto q5 = ParseQuote(v5);
  ASSERT_TRUE(q5.ok()) << q5.detail();
  EXPECT_EQ(q5->body_type, kBodyTypeTd15);
  EXPECT_EQ(q5->signed_bytes.size(), kHeaderSize + 6 + kTd15BodySize);
  EXPECT_EQ(q5->body.tee_tcb_svn_2[0], static_cast<uint8_t>(0x248));
  EXPECT_EQ(q5->body.mr_servicetd[0], static_cast<uint8_t>(0x258));

  Bytes padded = Seed("tdx_quote/v5_td10_synthetic_padded.bin");
  auto qp = ParseQuote(padded);
  ASSERT_TRUE(qp.ok()) << qp.detail();
  EXPECT_EQ(qp->quote_size, padded.size() - 40);

  EXPECT_EQ(ParseQuote(Seed("tdx_quote/v4_header_only.bin")).code(), AttestErrc::kMalformed);
}

TEST(TdxQuoteParseTest, RejectsBytesInsideSignatureDataAfterTheCertData) {
  Bytes v4 = Seed("tdx_quote/v4_td10_synthetic.bin");
  ASSERT_GT(v4.size(), 700u);
  // sig_data_len + 1 with one extra byte: the certification data no longer fills it.
  uint32_t len = v4[632] | (v4[633] << 8) | (v4[634] << 16) | (uint32_t{v4[635]} << 24);
  len += 1;
  for (int i = 0; i < 4; ++i) v4[632 + i] = static_cast<uint8_t>(len >> (8 * i));
  v4.push_back(0);
  EXPECT_EQ(ParseQuote(v4).code(), AttestErrc::kMalformed);
}

TEST(TdxCollateralParseTest, ExtractsTheExactMemberText) {
  const std::string doc = R"( { "a" : [1, "}"], "tcbInfo" : {"x": "a\"}b", "y":[{}]} , "signature":"00"})";
  EXPECT_EQ(ExtractRawMember(doc, "tcbInfo"), std::optional<std::string>(R"({"x": "a\"}b", "y":[{}]})"));
  EXPECT_EQ(ExtractRawMember(doc, "signature"), std::optional<std::string>("\"00\""));
  EXPECT_EQ(ExtractRawMember(doc, "x"), std::nullopt);  // nested keys are not top-level
  EXPECT_EQ(ExtractRawMember("[1]", "a"), std::nullopt);
  EXPECT_EQ(ExtractRawMember(R"({"tcbInfo": {"unterminated)", "tcbInfo"), std::nullopt);
}

TEST(TdxCollateralParseTest, ParsesPcsTimes) {
  auto t = ParseUtcTime("2026-02-18T10:58:51Z");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(t->time_since_epoch()).count(), 1771412331);
  EXPECT_TRUE(ParseUtcTime("2026-02-18T10:58:51.123Z").has_value());
  for (const char* bad : {"2026-02-30T00:00:00Z", "2026-02-18 10:58:51Z", "2026-02-18T10:58:51", "2026-13-01T00:00:00Z",
                          "", "2026-02-18T25:00:00Z"}) {
    EXPECT_FALSE(ParseUtcTime(bad).has_value()) << bad;
  }
}

TEST(TdxCollateralParseTest, SeedsDecode) {
  auto raw = LoadCollateral(Seed("tdx_collateral/pcs_tcbinfo_one_level.json"),
                            {Seed("tdx_collateral/pcs_qe_identity.json")});
  ASSERT_TRUE(raw.ok()) << raw.detail();
  ASSERT_TRUE(raw->tcb_info && raw->qe_identity);
  auto info = ParseTcbInfo(raw->tcb_info->body);
  ASSERT_TRUE(info.ok()) << info.detail();
  EXPECT_EQ(info->tcb_levels.size(), 1u);
  EXPECT_EQ(info->tdx_module_identities.size(), 1u);
  EXPECT_EQ(info->tcb_levels[0].pce_svn, 13);
  auto qe = ParseQeIdentity(raw->qe_identity->body);
  ASSERT_TRUE(qe.ok()) << qe.detail();
  EXPECT_EQ(qe->isvprodid, 2);
  EXPECT_EQ(qe->miscselect_mask, 0xFFFFFFFFu);
  EXPECT_EQ(ParseTcbInfo(R"({"id":"TDX","version":2})").code(), AttestErrc::kCollateralInvalid);
  EXPECT_EQ(ParseQeIdentity("[]").code(), AttestErrc::kCollateralInvalid);
}

TEST(TdxPckTest, ParsesTheSgxExtensionAndRejectsDamage) {
  Bytes der = Seed("tdx_collateral/pck_sgx_extension.der");
  auto ext = ParsePckExtensions(der);
  ASSERT_TRUE(ext.ok()) << ext.detail();
  EXPECT_EQ(HexEncode(ext->fmspc), "90c06f000000");
  EXPECT_EQ(HexEncode(ext->pce_id), "0000");
  for (size_t n : {size_t{0}, size_t{1}, der.size() / 2, der.size() - 1}) {
    EXPECT_EQ(ParsePckExtensions(ByteSpan(der).first(n)).code(), AttestErrc::kMalformed) << n;
  }
  Bytes trailing = der;
  trailing.push_back(0);
  EXPECT_EQ(ParsePckExtensions(trailing).code(), AttestErrc::kMalformed);
  Bytes long_len = der;
  long_len[1] = 0x85;  // 5 length bytes: not supported
  EXPECT_EQ(ParsePckExtensions(long_len).code(), AttestErrc::kMalformed);
}

}  // namespace
}  // namespace cllm::attestation::tdx
