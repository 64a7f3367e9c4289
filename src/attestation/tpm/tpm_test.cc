// TPM 2.0 quotes: TPMS_ATTEST / TPMT_SIGNATURE parsing, signature and PCR
// digest on every shared sample (PROVENANCE P1-P4, N-P1..N-P4), the Azure HCL
// binding, and synthetic ECDSA quotes for mutation tests.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "attestation/tpm/hcl_report.h"
#include "attestation/tpm/tpm_quote.h"
#include "attestation/tpm/tpm_verify.h"
#include "attestation/verify.h"
#include "base/byte_reader.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/digest.h"
#include "support/shared_data.h"

namespace cllm::attestation::tpm {
namespace {

constexpr char kDir[] = "testdata/attestation/tpm/";

Bytes Load(const std::filesystem::path& p) { return ReadFile(p).value(); }

// 2025-06-01T00:00:00Z: inside the VCEK validity of the Azure samples.
crypto::TimePoint At() { return std::chrono::system_clock::time_point(std::chrono::seconds(1748736000)); }

std::vector<Bytes> SplitPcrs(const Bytes& concat) {
  std::vector<Bytes> out;
  for (size_t i = 0; i + 32 <= concat.size(); i += 32) out.emplace_back(concat.begin() + i, concat.begin() + i + 32);
  return out;
}

struct TpmRun {
  AttestResult<VerifiedEvidence> result;
  std::vector<CheckStep> trace;
};

TpmRun VerifyTpm(ByteSpan evidence, std::vector<Bytes> certs) {
  TpmRun run{MakeError(AttestErrc::kInternal, "not run"), {}};
  EvidenceInput in;
  in.evidence = evidence;
  in.cert_files = std::move(certs);
  in.at = At();
  in.trace = &run.trace;
  run.result = VerifyEvidence(Platform::kTpm, in);
  // What the verifier reports as report_data, the unverified peek reads too.
  if (run.result.ok()) {
    auto peeked = PeekReportData(Platform::kTpm, evidence);
    EXPECT_TRUE(peeked.ok() && *peeked == run.result->data().report_data) << peeked.detail();
  }
  return run;
}

// Every step before the last passed, and the named steps are present.
void ExpectStepsPassedBefore(const TpmRun& run, const std::string& last) {
  ASSERT_FALSE(run.trace.empty());
  bool found = false;
  for (const auto& s : run.trace) {
    if (s.name == last) found = true;
    if (!found) {
      EXPECT_TRUE(s.ok) << s.name << ": " << s.detail;
    }
  }
  EXPECT_TRUE(found) << "no step " << last;
}

// --- parsing -------------------------------------------------------------------------

TEST(TpmsAttestTest, ParsesAzureMilanQuote) {
  CLLM_SHARED_PATH(p, std::string(kDir) + "azure_snp_milan_tpm_quote_tpms_attest.bin");
  auto a = ParseTpmsAttest(Load(p));
  ASSERT_TRUE(a.ok()) << a.detail();
  EXPECT_EQ(a->magic, kTpmGeneratedValue);
  EXPECT_EQ(a->type, kTpmStAttestQuote);
  EXPECT_EQ(a->qualified_signer.size(), 34u);
  EXPECT_EQ(a->qualified_signer[1], 0x0B);  // nameAlg SHA-256
  EXPECT_EQ(AsChars(a->extra_data), "challenge");
  EXPECT_EQ(a->clock, 0x211111u);
  EXPECT_EQ(a->reset_count, 3u);
  EXPECT_EQ(a->restart_count, 0u);
  EXPECT_EQ(a->safe, 1);
  EXPECT_EQ(a->firmware_version, 0x2020031200120003u);
  ASSERT_EQ(a->pcr_select.size(), 1u);
  EXPECT_EQ(a->pcr_select[0].hash, kAlgSha256);
  EXPECT_EQ(a->pcr_select[0].bitmap, (Bytes{0xff, 0xff, 0xff}));
  EXPECT_EQ(a->pcr_digest.size(), 32u);
  EXPECT_EQ(SelectedPcrs(*a)->size(), 24u);
}

TEST(TpmsAttestTest, RejectsStructuralMutations) {
  CLLM_SHARED_PATH(p, std::string(kDir) + "azure_snp_milan_tpm_quote_tpms_attest.bin");
  const Bytes good = Load(p);
  Bytes magic = good;
  magic[3] ^= 1;
  EXPECT_EQ(ParseTpmsAttest(magic).code(), AttestErrc::kMalformed);
  Bytes type = good;
  type[5] = 0x17;  // TPM_ST_ATTEST_CERTIFY
  EXPECT_EQ(ParseTpmsAttest(type).code(), AttestErrc::kUnsupportedVersion);
  Bytes name = good;
  name[6] = 0x7f;  // qualifiedSigner size beyond TPMU_NAME
  EXPECT_EQ(ParseTpmsAttest(name).code(), AttestErrc::kMalformed);
  Bytes trailing = good;
  trailing.push_back(0);
  EXPECT_EQ(ParseTpmsAttest(trailing).code(), AttestErrc::kMalformed);
  for (size_t n : {size_t{0}, size_t{5}, size_t{40}, good.size() - 1}) {
    EXPECT_EQ(ParseTpmsAttest(ByteSpan(good).first(n)).code(), AttestErrc::kMalformed) << n;
  }
  Bytes safe = good;
  safe[6 + 2 + 34 + 2 + 9 + 16] = 2;  // clockInfo.safe after clock/resetCount/restartCount
  EXPECT_EQ(ParseTpmsAttest(safe).code(), AttestErrc::kMalformed);
}

// --- every sample: signature and PCR digest (P1-P4) --------------------------------

struct Sample {
  const char* prefix;
  const char* extra_data_hex;
  const char* pcr0;  // empty: not asserted
};

TEST(TpmQuoteTest, EverySampleSignatureAndPcrDigestVerify) {
  const Sample samples[] = {
      {"azure_snp_milan", "6368616c6c656e6765", "f3a7e99a5f819a034386bce753a48a73cfdaa0bea0ecfc124bedbf5a8c4799be"},
      {"azure_snp_genoa",
       "0218488bae25d2509232bf676f1a66a30d7372add909109b36016ef136f2938ca05475f8b46094de6b64270ea35d950f",
       "afd689d0bb1c5f36f023fbaf574135f555a28a10c1f6b938d2a25e70c7783338"},
      {"azure_tdx", "6368616c6c656e6765", ""},
  };
  for (const auto& s : samples) {
    SCOPED_TRACE(s.prefix);
    CLLM_SHARED_PATH(attest_p, std::string(kDir) + s.prefix + "_tpm_quote_tpms_attest.bin");
    CLLM_SHARED_PATH(sig_p, std::string(kDir) + s.prefix + "_tpm_quote_signature.bin");
    CLLM_SHARED_PATH(pcrs_p, std::string(kDir) + s.prefix + "_tpm_quote_pcrs_0-23_sha256.bin");
    CLLM_SHARED_PATH(hcl_p, std::string(kDir) + s.prefix + "_hcl_report.bin");
    const Bytes attest = Load(attest_p);
    auto hcl = ParseHclReport(Load(hcl_p));
    ASSERT_TRUE(hcl.ok()) << hcl.detail();
    EXPECT_TRUE(CheckRuntimeDataBinding(*hcl).ok());
    std::string scheme;
    auto hash = VerifyQuoteSignature(attest, Load(sig_p), *hcl->ak, &scheme);
    ASSERT_TRUE(hash.ok()) << hash.detail();
    EXPECT_EQ(scheme, "RSASSA-PKCS1-v1_5/SHA-256 (bare signature)");
    auto a = ParseTpmsAttest(attest).value();
    EXPECT_EQ(HexEncode(a.extra_data), s.extra_data_hex);
    const auto pcrs = SplitPcrs(Load(pcrs_p));
    EXPECT_TRUE(CheckPcrDigest(a, pcrs, *hash).ok());
    if (*s.pcr0) {
      EXPECT_EQ(HexEncode(pcrs[0]), s.pcr0);
    }
  }
  // P4: swtpm stores a TPMT_SIGNATURE; its AK is a bare SPKI.
  CLLM_SHARED_PATH(attest_p, std::string(kDir) + "trustee_swtpm_quote_tpms_attest.bin");
  CLLM_SHARED_PATH(sig_p, std::string(kDir) + "trustee_swtpm_quote_signature.bin");
  CLLM_SHARED_PATH(pcrs_p, std::string(kDir) + "trustee_swtpm_quote_pcrs_0-23_sha256.bin");
  CLLM_SHARED_PATH(ak_p, std::string(kDir) + "trustee_swtpm_ak_public_spki.der");
  auto ak = crypto::PublicKey::FromSpkiDer(Load(ak_p)).value();
  std::string scheme;
  auto hash = VerifyQuoteSignature(Load(attest_p), Load(sig_p), ak, &scheme);
  ASSERT_TRUE(hash.ok()) << hash.detail();
  EXPECT_EQ(scheme, "RSASSA-PKCS1-v1_5/SHA-256");
  auto a = ParseTpmsAttest(Load(attest_p)).value();
  EXPECT_EQ(a.extra_data.size(), 64u);
  EXPECT_EQ(HexEncode(a.extra_data).substr(0, 8), "a04182b5");
  EXPECT_EQ(a.firmware_version, 0x2019102300163636u);
  EXPECT_TRUE(CheckPcrDigest(a, SplitPcrs(Load(pcrs_p)), *hash).ok());
}

TEST(TpmQuoteTest, SignatureAndPcrMutations) {
  CLLM_SHARED_PATH(attest_p, std::string(kDir) + "trustee_swtpm_quote_tpms_attest.bin");
  CLLM_SHARED_PATH(sig_p, std::string(kDir) + "trustee_swtpm_quote_signature.bin");
  CLLM_SHARED_PATH(pcrs_p, std::string(kDir) + "trustee_swtpm_quote_pcrs_0-23_sha256.bin");
  CLLM_SHARED_PATH(ak_p, std::string(kDir) + "trustee_swtpm_ak_public_spki.der");
  const Bytes attest = Load(attest_p), sig = Load(sig_p);
  auto ak = crypto::PublicKey::FromSpkiDer(Load(ak_p)).value();
  // Any byte of TPMS_ATTEST (here: extraData, clock, pcrDigest) is signed.
  for (size_t off : {size_t{45}, size_t{120}, attest.size() - 1}) {
    Bytes b = attest;
    b[off] ^= 1;
    EXPECT_EQ(VerifyQuoteSignature(b, sig, ak, nullptr).code(), AttestErrc::kBadSignature) << off;
  }
  Bytes bad_sig = sig;
  bad_sig[10] ^= 1;
  EXPECT_EQ(VerifyQuoteSignature(attest, bad_sig, ak, nullptr).code(), AttestErrc::kBadSignature);
  Bytes sha1 = sig;
  sha1[3] = 0x04;  // hash SHA-1
  EXPECT_EQ(VerifyQuoteSignature(attest, sha1, ak, nullptr).code(), AttestErrc::kUnsupportedVersion);
  Bytes hmac = sig;
  hmac[1] = 0x05;  // sigAlg TPM_ALG_HMAC
  EXPECT_EQ(VerifyQuoteSignature(attest, hmac, ak, nullptr).code(), AttestErrc::kUnsupportedVersion);
  EXPECT_EQ(VerifyQuoteSignature(attest, ByteSpan(sig).first(100), ak, nullptr).code(), AttestErrc::kMalformed);
  Bytes ecdsa = sig;
  ecdsa[1] = 0x18;  // ECDSA with an RSA AK
  EXPECT_NE(VerifyQuoteSignature(attest, ecdsa, ak, nullptr).code(), AttestErrc::kInternal);

  auto a = ParseTpmsAttest(attest).value();
  auto pcrs = SplitPcrs(Load(pcrs_p));
  pcrs[7][0] ^= 1;
  EXPECT_EQ(CheckPcrDigest(a, pcrs, crypto::HashAlg::kSha256).code(), AttestErrc::kBindingMismatch);
  pcrs = SplitPcrs(Load(pcrs_p));
  pcrs.resize(23);
  EXPECT_EQ(CheckPcrDigest(a, pcrs, crypto::HashAlg::kSha256).code(), AttestErrc::kMalformed);
  pcrs = SplitPcrs(Load(pcrs_p));
  pcrs[3].pop_back();
  EXPECT_EQ(CheckPcrDigest(a, pcrs, crypto::HashAlg::kSha256).code(), AttestErrc::kMalformed);
}

// --- synthetic ECDSA quote ------------------------------------------------------------

Bytes MakeAttest(ByteSpan extra_data, const std::vector<Bytes>& pcrs) {
  Bytes b;
  PutU32Be(b, kTpmGeneratedValue);
  b.push_back(0x80);
  b.push_back(0x18);
  b.push_back(0);  // qualifiedSigner: 2-byte TPM2B, nameAlg only for brevity
  b.push_back(2);
  b.push_back(0x00);
  b.push_back(0x0B);
  b.push_back(0);
  b.push_back(static_cast<uint8_t>(extra_data.size()));
  b.insert(b.end(), extra_data.begin(), extra_data.end());
  PutU64Be(b, 1234);  // clock
  PutU32Be(b, 1);
  PutU32Be(b, 2);
  b.push_back(1);
  PutU64Be(b, 0x0102030405060708);
  PutU32Be(b, 1);  // one bank: SHA-256, PCRs 0, 7, 16
  b.push_back(0x00);
  b.push_back(0x0B);
  b.push_back(3);
  b.push_back(0x81);
  b.push_back(0x00);
  b.push_back(0x01);
  crypto::Hasher h(crypto::HashAlg::kSha256);
  for (unsigned i : {0u, 7u, 16u}) h.Update(pcrs[i]);
  Bytes d = h.Finish();
  b.push_back(0);
  b.push_back(32);
  b.insert(b.end(), d.begin(), d.end());
  return b;
}

Bytes EcdsaTpmtSignature(const crypto::PrivateKey& key, ByteSpan msg) {
  Bytes raw = crypto::EcdsaSign(key, crypto::HashAlg::kSha256, msg, crypto::SigFormat::kRaw).value();
  Bytes s = {0x00, 0x18, 0x00, 0x0B, 0x00, 32};
  s.insert(s.end(), raw.begin(), raw.begin() + 32);
  s.push_back(0);
  s.push_back(32);
  s.insert(s.end(), raw.begin() + 32, raw.end());
  return s;
}

TEST(TpmQuoteTest, SyntheticEcdsaQuoteThroughTheVerifier) {
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  std::vector<Bytes> pcrs(24, Bytes(32, 0));
  for (size_t i = 0; i < pcrs.size(); ++i) pcrs[i][0] = static_cast<uint8_t>(i);
  const Bytes nonce(20, 0x42);
  const Bytes attest = MakeAttest(nonce, pcrs);
  const Bytes sig = EcdsaTpmtSignature(key, attest);
  auto a = ParseTpmsAttest(attest);
  ASSERT_TRUE(a.ok()) << a.detail();
  EXPECT_EQ(*SelectedPcrs(*a), (std::vector<unsigned>{0, 7, 16}));
  std::string scheme;
  auto hash = VerifyQuoteSignature(attest, sig, key.public_key(), &scheme);
  ASSERT_TRUE(hash.ok()) << hash.detail();
  EXPECT_EQ(scheme, "ECDSA/SHA-256");
  EXPECT_TRUE(CheckPcrDigest(*a, pcrs, *hash).ok());
  auto other = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  EXPECT_EQ(VerifyQuoteSignature(attest, sig, other.public_key(), nullptr).code(), AttestErrc::kBadSignature);

  // The whole verifier: quote and PCRs check out, but a bare AK anchors nothing.
  nlohmann::json j;
  j["tpm_quote"] = {{"message", Base64Encode(attest)}, {"signature", Base64Encode(sig)}};
  for (const auto& p : pcrs) j["tpm_quote"]["pcrs"].push_back(HexEncode(p));
  j["ak_public"] = Base64Encode(key.public_key().ToSpkiDer());
  const std::string text = j.dump();
  EXPECT_EQ(SniffPlatform(AsBytes(text)), Platform::kTpm);
  TpmRun run = VerifyTpm(AsBytes(text), {});
  EXPECT_EQ(run.result.code(), AttestErrc::kChainInvalid);
  ExpectStepsPassedBefore(run, "AK anchored in hardware");

  // A PCR value that is not what was quoted.
  j["tpm_quote"]["pcrs"][7] = HexEncode(Bytes(32, 0xEE));
  const std::string tampered = j.dump();
  EXPECT_EQ(VerifyTpm(AsBytes(tampered), {}).result.code(), AttestErrc::kBindingMismatch);
  // No AK at all.
  j.erase("ak_public");
  const std::string no_ak = j.dump();
  EXPECT_EQ(VerifyTpm(AsBytes(no_ak), {}).result.code(), AttestErrc::kCollateralMissing);
}

TEST(TpmEvidenceTest, ContainerErrors) {
  EXPECT_EQ(VerifyTpm(AsBytes(std::string("{\"message\": \"00\"}")), {}).result.code(), AttestErrc::kMalformed);
  EXPECT_EQ(VerifyTpm(AsBytes(std::string("not json")), {}).result.code(), AttestErrc::kMalformed);
  EXPECT_EQ(VerifyTpm(AsBytes(std::string("{\"message\": \"zz\", \"signature\": \"00\", \"pcrs\": []}")), {})
                .result.code(),
            AttestErrc::kMalformed);
  const Bytes raw = {0xff, 'T', 'C', 'G', 0x80, 0x18, 0, 0};
  EXPECT_EQ(SniffPlatform(raw), Platform::kTpm);
  EXPECT_EQ(VerifyTpm(raw, {}).result.code(), AttestErrc::kMalformed);
  EXPECT_EQ(VerifyTpm(AsBytes(std::string("{\"message\": \"00\", \"signature\": \"00\", \"pcrs\": []}")),
                      {Bytes(10, 7)})
                .result.code(),
            AttestErrc::kCollateralInvalid);
}

}  // namespace
}  // namespace cllm::attestation::tpm
