// Hygon CSV: certificate formats and SM2 chain on the real Hygon certificates
// (PROVENANCE cases C1-C4), the real trustee v1 report (C5, C6), and a
// synthetic complete chain (fresh SM2 keys) for end-to-end and mutation tests.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "attestation/csv/csv_cert.h"
#include "attestation/csv/csv_report.h"
#include "attestation/csv/csv_serde.h"
#include "attestation/policy.h"
#include "attestation/verify.h"
#include "base/byte_reader.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/digest.h"
#include "support/shared_data.h"

namespace cllm::attestation::csv {
namespace {

constexpr char kDir[] = "testdata/attestation/csv/";

Bytes Load(const std::filesystem::path& p) { return ReadFile(p).value(); }

// --- synthetic chain -------------------------------------------------------------

struct SynthKey {
  crypto::PrivateKey priv;
  Sm2PubKey pub;
};

SynthKey MakeKey(const std::string& uid) {
  auto priv = crypto::PrivateKey::Generate(crypto::KeyType::kSm2).value();
  Bytes point = priv.public_key().EcPoint().value();
  Sm2PubKey pub;
  pub.curve_id = kCurveSm2;
  std::copy(point.begin(), point.begin() + 32, pub.x.begin());
  std::copy(point.begin() + 32, point.end(), pub.y.begin());
  pub.user_id = uid;
  return {std::move(priv), pub};
}

Sm2Sig Sign(const SynthKey& signer, ByteSpan msg) {
  Bytes raw = crypto::Sm2Sign(signer.priv, msg, crypto::SigFormat::kRaw, signer.pub.user_id).value();
  Sm2Sig s;
  std::copy(raw.begin(), raw.begin() + 32, s.r.begin());
  std::copy(raw.begin() + 32, raw.end(), s.s.begin());
  return s;
}

void Append(Bytes& out, ByteSpan b) { out.insert(out.end(), b.begin(), b.end()); }

Bytes MakeCaCert(uint8_t key_id, uint8_t certifying_id, uint32_t usage, const SynthKey& subject,
                 const SynthKey& issuer) {
  Bytes b;
  PutU32Le(b, 1);
  b.insert(b.end(), 16, key_id);
  b.insert(b.end(), 16, certifying_id);
  PutU32Le(b, usage);
  b.insert(b.end(), 24, 0);
  Append(b, SerializeSm2PubKey(subject.pub));
  b.insert(b.end(), 108, 0);
  EXPECT_EQ(b.size(), kCaCertSignedSize);
  Append(b, SerializeSm2Sig(Sign(issuer, b)));
  b.insert(b.end(), 112, 0);
  return b;
}

Bytes MakeCsvCert(uint32_t usage, const SynthKey& subject, uint32_t issuer_usage, const SynthKey& issuer) {
  Bytes b;
  PutU32Le(b, 1);
  b.push_back(1);  // api_major
  b.push_back(3);  // api_minor
  b.insert(b.end(), 2, 0);
  PutU32Le(b, usage);
  PutU32Le(b, kAlgoSm2Sa);
  Append(b, SerializeSm2PubKey(subject.pub));
  b.insert(b.end(), 624, 0);
  EXPECT_EQ(b.size(), kCsvCertSignedSize);
  const Sm2Sig sig = Sign(issuer, b);
  PutU32Le(b, issuer_usage);
  PutU32Le(b, kAlgoSm2Sa);
  Append(b, SerializeSm2Sig(sig));
  b.insert(b.end(), 368, 0);
  PutU32Le(b, kUsageInvalid);
  PutU32Le(b, 0);
  b.insert(b.end(), 144 + 368, 0);
  return b;
}

void Mask(Bytes& b, size_t from, size_t to, uint32_t anonce) {
  for (size_t i = from; i < to; ++i) b[i] ^= static_cast<uint8_t>(anonce >> (8 * ((i - from) % 4)));
}

struct Synth {
  SynthKey hrk = MakeKey("HYGON-SSD-HRK"), hsk = MakeKey("HYGON-SSD-HSK"), cek = MakeKey("HYGON-SSD-CEK"),
           pek = MakeKey("HYGON-SSD-PEK");
  Bytes hrk_cert = MakeCaCert(0xA1, 0xA1, kUsageHrk, hrk, hrk);
  Bytes hsk_cert = MakeCaCert(0xB2, 0xA1, kUsageHsk, hsk, hrk);
  Bytes cek_cert = MakeCsvCert(kUsageCek, cek, kUsageHsk, hsk);
  Bytes pek_cert = MakeCsvCert(kUsagePek, pek, kUsageCek, cek);
  uint32_t anonce = 0x12345678;
  uint32_t policy = kPolicyNoDbg | kPolicyEs;

  // Report builds the firmware's output: TEE_INFO and signer block masked.
  Bytes Report(bool mask_signer = true) const {
    Bytes b;
    b.insert(b.end(), 32, 0x11);  // user_pubkey_digest
    b.insert(b.end(), 16, 0x22);  // vm_id
    b.insert(b.end(), 16, 0x33);  // vm_version
    b.insert(b.end(), 64, 0x44);  // user_data
    b.insert(b.end(), 16, 0x55);  // mnonce
    b.insert(b.end(), 32, 0x66);  // measure
    PutU32Le(b, policy);
    PutU32Le(b, kUsagePek);
    PutU32Le(b, kAlgoSm2Sa);
    Mask(b, 0, b.size(), anonce);
    const Sm2Sig sig = Sign(pek, ByteSpan(b).first(kCsvReportSignedSize));
    PutU32Le(b, anonce);
    Append(b, SerializeSm2Sig(sig));
    const size_t signer = b.size();
    Append(b, pek_cert);
    Bytes sn(64, 0);
    std::memcpy(sn.data(), "SYNTH0001", 9);
    Append(b, sn);
    b.insert(b.end(), 32, 0);
    if (mask_signer) Mask(b, signer, b.size(), anonce);
    b.insert(b.end(), 32, 0);  // mac (not verifiable, see docs)
    EXPECT_EQ(b.size(), kCsvReportSize);
    return b;
  }
};

// CekDigest is cek.pubkey_sha256 as the verifier reports it: SHA-256 of the
// CEK's point x ‖ y, big-endian.
std::string CekDigest(const SynthKey& cek) {
  Bytes point(cek.pub.x.begin(), cek.pub.x.end());
  point.insert(point.end(), cek.pub.y.begin(), cek.pub.y.end());
  return HexEncode(crypto::Sha256(point));
}

class CsvSynthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { synth_ = new Synth(); }
  static void TearDownTestSuite() { delete synth_; }

  AttestResult<VerifiedEvidence> Verify(ByteSpan evidence, std::vector<Bytes> certs) {
    EvidenceInput in;
    in.evidence = evidence;
    in.cert_files = std::move(certs);
    auto d = crypto::Sha256(synth_->hrk_cert);
    in.hygon_root_pins.push_back(Bytes(d.begin(), d.end()));
    trace_.clear();
    in.trace = &trace_;
    auto v = VerifyEvidence(Platform::kCsv, in);
    // What the verifier reports as report_data, the unverified peek reads too.
    if (v.ok()) {
      auto peeked = PeekReportData(Platform::kCsv, evidence);
      EXPECT_TRUE(peeked.ok() && *peeked == v->data().report_data) << peeked.detail();
    }
    return v;
  }
  std::vector<Bytes> Chain() const { return {synth_->hrk_cert, synth_->hsk_cert, synth_->cek_cert}; }

  static Synth* synth_;
  std::vector<CheckStep> trace_;
};
Synth* CsvSynthTest::synth_ = nullptr;

TEST_F(CsvSynthTest, CompleteChainVerifiesAndExposesFields) {
  Bytes report = synth_->Report();
  EXPECT_EQ(SniffPlatform(report), Platform::kCsv);
  auto v = Verify(report, Chain());
  ASSERT_TRUE(v.ok()) << v.detail();
  const auto& d = v->data();
  EXPECT_EQ(d.platform, Platform::kCsv);
  EXPECT_FALSE(d.simulated);
  EXPECT_EQ(d.measurement, Bytes(32, 0x66));
  EXPECT_EQ(d.report_data, Bytes(64, 0x44));
  EXPECT_FALSE(d.debug);
  EXPECT_EQ(d.tcb_status, TcbStatus::kNotEvaluated);  // no TCB status source for CSV
  EXPECT_EQ(d.tcb.at("csv.api_major"), 1u);
  EXPECT_EQ(d.tcb.at("csv.api_minor"), 3u);
  EXPECT_EQ(d.fields.count("chip_id"), 0u);  // not signed: see ChipSerialIsNotSignedSoNotAField
  EXPECT_EQ(d.fields.at("cek.pubkey_sha256"), CekDigest(synth_->cek));
  EXPECT_EQ(d.fields.at("vm_id"), "22222222222222222222222222222222");
  EXPECT_EQ(d.fields.at("mnonce"), "55555555555555555555555555555555");
  EXPECT_EQ(d.fields.at("policy.es"), "1");
  ASSERT_EQ(trace_.size(), 6u);
  for (const auto& s : trace_) EXPECT_TRUE(s.ok) << s.name;
}

TEST_F(CsvSynthTest, AcceptsRestoredSignerBlockAndPageSizedBuffer) {
  Bytes report = synth_->Report(/*mask_signer=*/false);
  report.resize(kCsvReportMaxSize, 0);
  auto v = Verify(report, Chain());
  ASSERT_TRUE(v.ok()) << v.detail();
}

TEST_F(CsvSynthTest, HskCekBlobAsServedByKds) {
  Bytes blob = synth_->hsk_cert;
  Append(blob, synth_->cek_cert);
  auto v = Verify(synth_->Report(), {synth_->hrk_cert, blob});
  ASSERT_TRUE(v.ok()) << v.detail();
}

TEST_F(CsvSynthTest, DebugPolicyIsReported) {
  Synth s = *synth_;
  s.policy = kPolicyEs;  // NODBG clear
  auto v = Verify(s.Report(), Chain());
  ASSERT_TRUE(v.ok()) << v.detail();
  EXPECT_TRUE(v->data().debug);
}

TEST_F(CsvSynthTest, FlipInEachSignedFieldGroupBreaksSignature) {
  const Bytes good = synth_->Report();
  // user_pubkey_digest, vm_id, vm_version, user_data, mnonce, measure, policy
  for (size_t off : {0x00, 0x20, 0x30, 0x40, 0x80, 0x90, 0xB0}) {
    Bytes b = good;
    b[off] ^= 0x01;
    auto v = Verify(b, Chain());
    ASSERT_FALSE(v.ok()) << off;
    EXPECT_EQ(v.code(), AttestErrc::kBadSignature) << off;
  }
  Bytes sig = good;
  sig[0xC0] ^= 0x01;  // signature r
  EXPECT_EQ(Verify(sig, Chain()).code(), AttestErrc::kBadSignature);
}

TEST_F(CsvSynthTest, MaskingAndHeaderMutations) {
  const Bytes good = synth_->Report();
  Bytes anonce = good;
  anonce[0xBC] ^= 0x01;  // a wrong mask turns sig_algo into 5
  EXPECT_EQ(Verify(anonce, Chain()).code(), AttestErrc::kUnsupportedVersion);
  Bytes usage = good;
  usage[0xB4] ^= 0x01;  // sig_usage 0x1003 (PDH)
  EXPECT_EQ(Verify(usage, Chain()).code(), AttestErrc::kMalformed);
  Bytes algo = good;
  algo[0xB8] ^= 0x01;  // sig_algo 5
  EXPECT_EQ(Verify(algo, Chain()).code(), AttestErrc::kUnsupportedVersion);
  Bytes pek_version = good;
  pek_version[0x150] ^= 0x80;
  EXPECT_EQ(Verify(pek_version, Chain()).code(), AttestErrc::kMalformed);
  EXPECT_EQ(Verify(ByteSpan(good).first(kCsvReportSize - 1), Chain()).code(), AttestErrc::kMalformed);
}

// The chip serial (sn) is outside every signature of a v1 report: anyone on
// the path can rewrite it and the report still verifies. So it is no field a
// policy can pin, and a policy that pins it is refused when it is loaded; the
// chip's signed identity is its CEK (found by review: a policy pinning
// chip_id was bypassed).
TEST_F(CsvSynthTest, ChipSerialIsNotSignedSoNotAField) {
  Bytes b = synth_->Report(/*mask_signer=*/false);
  constexpr size_t kSn = 0x974;
  std::memcpy(b.data() + kSn, "OTHER0002", 9);
  auto v = Verify(b, Chain());
  ASSERT_TRUE(v.ok()) << v.detail();
  EXPECT_EQ(v->data().fields.count("chip_id"), 0u);
  EXPECT_EQ(v->data().fields.count("anonce"), 0u);
  EXPECT_EQ(v->data().fields.at("cek.pubkey_sha256"), CekDigest(synth_->cek));
  for (const char* field : {"chip_id", "anonce"}) {
    auto p = ParsePolicy(R"({"version":1,"platforms":["csv"],"csv":{"fields":{")" + std::string(field) +
                         R"(":"SYNTH0001"}}})");
    ASSERT_FALSE(p.ok()) << field;
    EXPECT_EQ(p.code(), AttestErrc::kPolicyInvalid);
    EXPECT_NE(p.detail().find("cek.pubkey_sha256"), std::string::npos) << p.detail();
  }
  // SNP's chip_id is signed (and checked against the VCEK): pinnable there.
  EXPECT_TRUE(ParsePolicy(R"({"version":1,"platforms":["snp"],"snp":{"fields":{"chip_id":"00"}}})").ok());
}

TEST_F(CsvSynthTest, PekKeyOrCertBodyChangedBreaksChain) {
  Bytes b = synth_->Report(/*mask_signer=*/false);
  b[0x150 + 0x1A4 + 10] ^= 0x01;  // PEK reserved3: signed by the CEK, not by the report
  EXPECT_EQ(Verify(b, Chain()).code(), AttestErrc::kChainInvalid);
}

TEST_F(CsvSynthTest, ChainFailures) {
  const Bytes report = synth_->Report();
  // Missing certificates.
  EXPECT_EQ(Verify(report, {synth_->hrk_cert, synth_->hsk_cert}).code(), AttestErrc::kCollateralMissing);
  EXPECT_EQ(Verify(report, {synth_->hrk_cert, synth_->cek_cert}).code(), AttestErrc::kCollateralMissing);
  EXPECT_EQ(Verify(report, {synth_->hsk_cert, synth_->cek_cert}).code(), AttestErrc::kCollateralMissing);
  // Another chip's HSK/CEK (signed by the same HRK) does not sign this PEK.
  Synth other = *synth_;
  other.hsk = MakeKey("HYGON-SSD-HSK");
  other.cek = MakeKey("HYGON-SSD-CEK");
  Bytes other_hsk = MakeCaCert(0xC3, 0xA1, kUsageHsk, other.hsk, other.hrk);
  Bytes other_cek = MakeCsvCert(kUsageCek, other.cek, kUsageHsk, other.hsk);
  EXPECT_EQ(Verify(report, {synth_->hrk_cert, other_hsk, other_cek}).code(), AttestErrc::kChainInvalid);
  EXPECT_EQ(Verify(report, {synth_->hrk_cert, synth_->hsk_cert, other_cek}).code(), AttestErrc::kChainInvalid);
  // An HSK whose certifying_id names another root.
  Bytes wrong_issuer = MakeCaCert(0xB2, 0xEE, kUsageHsk, synth_->hsk, synth_->hrk);
  EXPECT_EQ(Verify(report, {synth_->hrk_cert, wrong_issuer, synth_->cek_cert}).code(), AttestErrc::kChainInvalid);
  // An HRK that is not pinned (the real Hygon HRK pin does not match it).
  EvidenceInput in;
  in.evidence = report;
  in.cert_files = Chain();
  EXPECT_EQ(VerifyEvidence(Platform::kCsv, in).code(), AttestErrc::kChainInvalid);
  // A file that is not a Hygon certificate.
  EXPECT_EQ(Verify(report, {Bytes(100, 0)}).code(), AttestErrc::kCollateralInvalid);
}

TEST_F(CsvSynthTest, JsonBundle) {
  const Bytes report = synth_->Report();
  nlohmann::json j;
  j["attestation_report"] = {{"magic", std::vector<int>(16, 0)}, {"flags", 0}, {"data", report}};
  j["cert_chain"] = nlohmann::json::object();
  Bytes sn = ToBytes("SYNTH0001");
  sn.resize(64, 0);
  j["serial_number"] = sn;
  std::string text = j.dump();
  EXPECT_EQ(SniffPlatform(AsBytes(text)), Platform::kCsv);
  auto v = Verify(AsBytes(text), Chain());
  ASSERT_TRUE(v.ok()) << v.detail();

  j["serial_number"] = ToBytes("OTHERCHIP");
  text = j.dump();
  EXPECT_EQ(Verify(AsBytes(text), Chain()).code(), AttestErrc::kBindingMismatch);
  j["serial_number"] = sn;
  j["attestation_report"]["flags"] = 1;
  text = j.dump();
  EXPECT_EQ(Verify(AsBytes(text), Chain()).code(), AttestErrc::kUnsupportedVersion);
  j["attestation_report"]["flags"] = 0;
  j["attestation_report"]["data"] = {1, 2, 300};
  text = j.dump();
  EXPECT_EQ(Verify(AsBytes(text), Chain()).code(), AttestErrc::kMalformed);
  EXPECT_EQ(Verify(AsBytes(std::string("{\"attestation_report\": ")), Chain()).code(), AttestErrc::kMalformed);
}

// The verified data is what appraisal needs: the default policy refuses it
// until a TCB floor is pinned (CSV has no TCB status source), a debuggable
// guest is refused, and the CSV fields are usable in a policy.
TEST_F(CsvSynthTest, AppraisalOfVerifiedEvidence) {
  auto v = Verify(synth_->Report(), Chain());
  ASSERT_TRUE(v.ok()) << v.detail();
  auto unpinned = Appraise(*v, Policy::Default());
  EXPECT_EQ(unpinned.code(), AttestErrc::kTcbTooLow);
  EXPECT_NE(unpinned.detail().find("csv.api_minor=3"), std::string::npos) << unpinned.detail();
  Policy policy = Policy::Default();
  policy.per_platform[Platform::kCsv].min_tcb["csv.api_major"] = 1;
  auto claims = Appraise(*v, policy);
  ASSERT_TRUE(claims.ok()) << claims.detail();
  EXPECT_EQ(claims->platform(), Platform::kCsv);
  EXPECT_FALSE(claims->simulated());
  policy.per_platform[Platform::kCsv].measurements.push_back(Bytes(32, 0x77));
  EXPECT_EQ(Appraise(*v, policy).code(), AttestErrc::kPolicyViolation);
  policy = Policy::Default();
  policy.per_platform[Platform::kCsv].min_tcb["csv.api_minor"] = 4;
  EXPECT_EQ(Appraise(*v, policy).code(), AttestErrc::kTcbTooLow);
  policy = Policy::Default();
  policy.per_platform[Platform::kCsv].min_tcb["csv.api_minor"] = 3;
  policy.per_platform[Platform::kCsv].fields["cek.pubkey_sha256"] = CekDigest(synth_->cek);
  EXPECT_TRUE(Appraise(*v, policy).ok());
  policy.per_platform[Platform::kCsv].fields["cek.pubkey_sha256"] = CekDigest(MakeKey("HYGON-SSD-CEK"));
  EXPECT_EQ(Appraise(*v, policy).code(), AttestErrc::kPolicyViolation);

  Synth debug = *synth_;
  debug.policy = 0;
  auto dv = Verify(debug.Report(), Chain());
  ASSERT_TRUE(dv.ok()) << dv.detail();
  EXPECT_EQ(Appraise(*dv, Policy::Default()).code(), AttestErrc::kDebugEnabled);
}

// --- csv-rs serde certificates in the JSON bundle ----------------------------------

nlohmann::json Slice(const Bytes& b, size_t off, size_t n) { return Bytes(b.begin() + off, b.begin() + off + n); }
uint32_t U32At(const Bytes& b, size_t off) {
  return static_cast<uint32_t>(b[off] | b[off + 1] << 8 | b[off + 2] << 16 | b[off + 3] << 24);
}

// The serde form written from the csv-rs struct definitions (independently of
// csv_serde.cc, which goes the other way).
nlohmann::json CaSerde(const Bytes& c) {
  nlohmann::json j;
  j["body"]["preamble"]["ver"] = U32At(c, 0);
  j["body"]["preamble"]["data"] = {{"kid", Slice(c, 4, 16)}, {"sid", Slice(c, 0x14, 16)},
                                   {"usage", U32At(c, 0x24)}, {"reserved", Slice(c, 0x28, 24)}};
  j["body"]["pubkey"] = {{"g", U32At(c, 0x40)}, {"x", Slice(c, 0x44, 72)}, {"y", Slice(c, 0x8C, 72)}};
  j["body"]["uid_size"] = c[0xD4] | c[0xD5] << 8;
  j["body"]["user_id"] = Slice(c, 0xD6, 254);
  j["body"]["reserved"] = Slice(c, 0x1D4, 108);
  j["signature"] = {{"r", Slice(c, 0x240, 72)}, {"s", Slice(c, 0x288, 72)}};
  j["_reserved"] = Slice(c, 0x2D0, 112);
  return j;
}

nlohmann::json CsvSerde(const Bytes& c) {
  nlohmann::json j;
  j["body"]["ver"] = U32At(c, 0);
  auto& d = j["body"]["data"];
  d["firmware"] = {{"major", c[4]}, {"minor", c[5]}};
  d["reserved1"] = c[6] | c[7] << 8;
  d["pubkey"] = {{"usage", U32At(c, 8)}, {"algo", U32At(c, 0xC)},
                 {"key", {{"g", U32At(c, 0x10)}, {"x", Slice(c, 0x14, 72)}, {"y", Slice(c, 0x5C, 72)}}}};
  d["uid_size"] = c[0xA4] | c[0xA5] << 8;
  d["user_id"] = Slice(c, 0xA6, 254);
  d["sid"] = Slice(c, 0x1A4, 16);
  d["reserved2"] = Slice(c, 0x1B4, 608);
  for (size_t off : {size_t{0x414}, size_t{0x61C}}) {
    j["sigs"].push_back({{"usage", U32At(c, off)},
                         {"algo", U32At(c, off + 4)},
                         {"signature", {{"r", Slice(c, off + 8, 72)}, {"s", Slice(c, off + 80, 72)}}},
                         {"_reserved", Slice(c, off + 152, 368)}});
  }
  return j;
}

TEST_F(CsvSynthTest, JsonBundleWithSerdeHskCek) {
  nlohmann::json j;
  j["attestation_report"] = {{"magic", std::vector<int>(16, 0)}, {"flags", 0}, {"data", synth_->Report()}};
  // Newer trustee shape: {"pek", "hsk_cek": {"hsk", "cek"}}.
  j["cert_chain"]["pek"] = CsvSerde(synth_->pek_cert);
  j["cert_chain"]["hsk_cek"] = {{"hsk", CaSerde(synth_->hsk_cert)}, {"cek", CsvSerde(synth_->cek_cert)}};
  std::string text = j.dump();
  auto v = Verify(AsBytes(text), {synth_->hrk_cert});
  ASSERT_TRUE(v.ok()) << v.detail();
  // Older shape: {"hsk", "cek", "pek"}.
  j["cert_chain"] = {{"hsk", CaSerde(synth_->hsk_cert)}, {"cek", CsvSerde(synth_->cek_cert)},
                     {"pek", CsvSerde(synth_->pek_cert)}};
  text = j.dump();
  v = Verify(AsBytes(text), {synth_->hrk_cert});
  ASSERT_TRUE(v.ok()) << v.detail();
  // A serde field of the wrong length is malformed evidence.
  j["cert_chain"]["hsk"]["body"]["reserved"] = std::vector<int>(107, 0);
  text = j.dump();
  EXPECT_EQ(Verify(AsBytes(text), {synth_->hrk_cert}).code(), AttestErrc::kMalformed);
}

// --- real Hygon certificates (PROVENANCE C1-C4) ------------------------------------

TEST(CsvCertTest, HygonHrkIsPinnedAndSelfSigned) {
  CLLM_SHARED_PATH(p, std::string(kDir) + "hygon_hrk.cert");
  const Bytes bytes = Load(p);
  EXPECT_EQ(HexEncode(crypto::Sha256(bytes)), "296efa97580464aca0ab5eefe42199ee05862182508d1629f29cf4dc175b10cd");
  auto hrk = ParseCaCert(bytes);
  ASSERT_TRUE(hrk.ok()) << hrk.detail();
  EXPECT_EQ(hrk->version, 1u);
  EXPECT_EQ(hrk->key_usage, kUsageHrk);
  EXPECT_EQ(HexEncode(hrk->key_id), "3ae86a9701355cce333a589de21583d7");
  EXPECT_EQ(hrk->certifying_id, hrk->key_id);
  EXPECT_EQ(hrk->pubkey.user_id, "HYGON-SSD-HRK");
  EXPECT_EQ(HexEncode(hrk->pubkey.x), "be62e14d62a4f14cf3d702db09563a75c80935e785cd1f502af5f21d92c2f62d");
  EXPECT_TRUE(VerifyCaCertIssuedBy(*hrk, *hrk).ok());  // C1
  Bytes bad = bytes;
  bad[0x1D4] ^= 1;  // reserved2 is signed
  EXPECT_EQ(VerifyCaCertIssuedBy(ParseCaCert(bad).value(), *hrk).code(), AttestErrc::kChainInvalid);
}

TEST(CsvCertTest, RealHskAndCekChainToHrk) {
  CLLM_SHARED_PATH(hrk_p, std::string(kDir) + "hygon_hrk.cert");
  CLLM_SHARED_PATH(hsk_p, std::string(kDir) + "csvrs_hsk_chip_NZA9T14052605.cert");
  CLLM_SHARED_PATH(cek_p, std::string(kDir) + "csvrs_cek_chip_NZA9T14052605.cert");
  auto hrk = ParseCaCert(Load(hrk_p)).value();
  auto hsk = ParseCaCert(Load(hsk_p));
  ASSERT_TRUE(hsk.ok()) << hsk.detail();
  EXPECT_EQ(HexEncode(hsk->key_id), "6e1009311eb0e448f7320da5ce2d4d47");
  EXPECT_EQ(hsk->key_usage, kUsageHsk);
  EXPECT_EQ(hsk->pubkey.user_id, "HYGON-SSD-HSK");
  auto cek = ParseCsvCert(Load(cek_p));
  ASSERT_TRUE(cek.ok()) << cek.detail();
  EXPECT_EQ(cek->pubkey_usage, kUsageCek);
  EXPECT_EQ(cek->version, 2u);
  EXPECT_EQ(cek->api_major, 1);
  EXPECT_EQ(cek->api_minor, 1);
  EXPECT_EQ(cek->pubkey.user_id, "HYGON-SSD-CEK");
  EXPECT_EQ(cek->sigs[0].usage, kUsageHsk);
  EXPECT_EQ(cek->sigs[1].usage, kUsageInvalid);
  EXPECT_TRUE(VerifyCaCertIssuedBy(*hsk, hrk).ok());                             // C2
  EXPECT_TRUE(VerifyCsvCertIssuedBy(*cek, kUsageHsk, hsk->pubkey).ok());         // C3
  EXPECT_EQ(VerifyCsvCertIssuedBy(*cek, kUsageHsk, hrk.pubkey).code(),           // C4
            AttestErrc::kChainInvalid);
  EXPECT_EQ(VerifyCsvCertIssuedBy(*cek, kUsageCek, hsk->pubkey).code(), AttestErrc::kChainInvalid);
}

// --- real trustee report (PROVENANCE C5, C6) ----------------------------------------

TEST(CsvReportTest, TrusteeV1ReportUnmasksToProvenanceValues) {
  CLLM_SHARED_PATH(p, std::string(kDir) + "trustee_csv_v1_report_4096B_chip_KPA64911240507.bin");
  auto rep = ParseCsvReport(Load(p));
  ASSERT_TRUE(rep.ok()) << rep.detail();
  EXPECT_EQ(rep->anonce, 0x5dc7d726u);
  EXPECT_EQ(rep->policy, 0x45u);
  EXPECT_EQ(rep->sig_usage, kUsagePek);
  EXPECT_EQ(rep->user_data, (std::array<uint8_t, 64>{}));
  EXPECT_EQ(rep->vm_id, (std::array<uint8_t, 16>{}));
  EXPECT_EQ(HexEncode(rep->mnonce), "ad998a845c45cf30944d1c285629e768");
  EXPECT_EQ(HexEncode(rep->measure), "ae2a2cf1f41a485fa37bf9ae92f678783c59fbc79de7b5d237743d58f5538034");
  EXPECT_EQ(rep->chip_id, "KPA64911240507");
  EXPECT_FALSE(rep->signer_was_masked);
  EXPECT_EQ(rep->pek.pubkey_usage, kUsagePek);
  EXPECT_EQ(rep->pek.pubkey.user_id, "HYGON-SSD-PEK");
  // PROVENANCE "PEK: firmware 1.3": the only TCB statement a v1 report makes,
  // exposed as csv.api_major / csv.api_minor (status NotEvaluated).
  EXPECT_EQ(rep->pek.api_major, 1u);
  EXPECT_EQ(rep->pek.api_minor, 3u);
  EXPECT_EQ(rep->pek.sigs[0].usage, kUsageCek);
  EXPECT_EQ(rep->pek.sigs[1].usage, kUsageOca);
  EXPECT_TRUE(VerifySm2(rep->pek.pubkey, rep->signed_bytes, rep->signature).ok());
}

// The serde PEK in trustee's bundle re-encodes to the PEK inside the report;
// the real HSK/CEK survive the serde round trip byte for byte.
TEST(CsvSerdeTest, ReencodesRealCertificates) {
  CLLM_SHARED_PATH(json_p, std::string(kDir) + "trustee_csv_evidence_v1_chip_KPA64911240507.json");
  CLLM_SHARED_PATH(bin_p, std::string(kDir) + "trustee_csv_v1_report_4096B_chip_KPA64911240507.bin");
  CLLM_SHARED_PATH(hsk_p, std::string(kDir) + "csvrs_hsk_chip_NZA9T14052605.cert");
  CLLM_SHARED_PATH(cek_p, std::string(kDir) + "csvrs_cek_chip_NZA9T14052605.cert");
  const Bytes text = Load(json_p);
  auto j = nlohmann::json::parse(AsChars(text));
  auto pek = CsvCertBytesFromSerde(j["cert_chain"]["pek"]);
  ASSERT_TRUE(pek.ok()) << pek.detail();
  const Bytes report = Load(bin_p);
  EXPECT_EQ(*pek, Bytes(report.begin() + 0x150, report.begin() + 0x150 + kCsvCertSize));
  const Bytes hsk = Load(hsk_p), cek = Load(cek_p);
  auto hsk2 = CaCertBytesFromSerde(CaSerde(hsk));
  ASSERT_TRUE(hsk2.ok()) << hsk2.detail();
  EXPECT_EQ(*hsk2, hsk);
  auto cek2 = CsvCertBytesFromSerde(CsvSerde(cek));
  ASSERT_TRUE(cek2.ok()) << cek2.detail();
  EXPECT_EQ(*cek2, cek);
  EXPECT_EQ(CsvCertBytesFromSerde(nlohmann::json::object()).code(), AttestErrc::kMalformed);
}

// C5: the report signature verifies, but the HSK/CEK of chip KPA64911240507
// are not public, so the chain cannot be completed.
TEST(CsvReportTest, TrusteeEvidenceMissesHskCek) {
  CLLM_SHARED_PATH(bin_p, std::string(kDir) + "trustee_csv_v1_report_4096B_chip_KPA64911240507.bin");
  CLLM_SHARED_PATH(json_p, std::string(kDir) + "trustee_csv_evidence_v1_chip_KPA64911240507.json");
  CLLM_SHARED_PATH(hrk_p, std::string(kDir) + "hygon_hrk.cert");
  for (const auto& p : {bin_p, json_p}) {
    const Bytes ev = Load(p);
    EXPECT_EQ(SniffPlatform(ev), Platform::kCsv) << p;
    std::vector<CheckStep> trace;
    EvidenceInput in;
    in.evidence = ev;
    in.cert_files = {Load(hrk_p)};
    in.trace = &trace;
    auto v = VerifyEvidence(Platform::kCsv, in);
    ASSERT_FALSE(v.ok()) << p;
    EXPECT_EQ(v.code(), AttestErrc::kCollateralMissing) << v.detail();
    ASSERT_EQ(trace.size(), 4u);
    EXPECT_TRUE(trace[1].ok);  // report signature by the PEK
    EXPECT_TRUE(trace[2].ok);  // HRK pinned (supplied file)
    EXPECT_FALSE(trace[3].ok);
  }
}

// With a real HSK/CEK of a different chip the PEK does not chain.
TEST(CsvReportTest, TrusteeReportWithOtherChipsCekIsChainInvalid) {
  CLLM_SHARED_PATH(bin_p, std::string(kDir) + "trustee_csv_v1_report_4096B_chip_KPA64911240507.bin");
  CLLM_SHARED_PATH(hsk_p, std::string(kDir) + "csvrs_hsk_chip_NZA9T14052605.cert");
  CLLM_SHARED_PATH(cek_p, std::string(kDir) + "csvrs_cek_chip_NZA9T14052605.cert");
  const Bytes ev = Load(bin_p);
  std::vector<CheckStep> trace;
  EvidenceInput in;
  in.evidence = ev;
  in.cert_files = {Load(hsk_p), Load(cek_p)};  // HRK: the built-in pinned key
  in.trace = &trace;
  auto v = VerifyEvidence(Platform::kCsv, in);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.code(), AttestErrc::kChainInvalid) << v.detail();
  EXPECT_NE(v.detail().find("does not verify"), std::string::npos) << v.detail();
  // The built-in HRK key verifies the real HSK, the HSK the CEK; only the
  // PEK (of chip KPA64911240507) is not this CEK's.
  ASSERT_EQ(trace.size(), 6u);
  EXPECT_NE(trace[2].detail.find("built-in"), std::string::npos) << trace[2].detail;
  EXPECT_TRUE(trace[3].ok);
  EXPECT_TRUE(trace[4].ok);
  EXPECT_EQ(trace[5].name, "PEK signed by CEK");
  EXPECT_FALSE(trace[5].ok);
}

// C6: any flipped byte of TEE_INFO[0:0xB4] invalidates the report signature.
TEST(CsvReportTest, TrusteeReportFlippedTeeInfoIsBadSignature) {
  CLLM_SHARED_PATH(bin_p, std::string(kDir) + "trustee_csv_v1_report_4096B_chip_KPA64911240507.bin");
  const Bytes good = Load(bin_p);
  for (size_t off : {0x00, 0x1F, 0x20, 0x30, 0x40, 0x7F, 0x80, 0x90, 0xAF, 0xB0, 0xB3}) {
    Bytes b = good;
    b[off] ^= 0x10;
    EvidenceInput in;
    in.evidence = b;
    auto v = VerifyEvidence(Platform::kCsv, in);
    ASSERT_FALSE(v.ok()) << off;
    EXPECT_EQ(v.code(), AttestErrc::kBadSignature) << off << ": " << v.detail();
  }
}

TEST(CsvReportTest, ExtendedReportIsUnsupported) {
  Bytes b(kCsvReportSize, 0);
  std::memcpy(b.data(), "ATTESTATION_EXT", 16);
  EXPECT_EQ(ParseCsvReport(b).code(), AttestErrc::kUnsupportedVersion);
}

}  // namespace
}  // namespace cllm::attestation::csv
