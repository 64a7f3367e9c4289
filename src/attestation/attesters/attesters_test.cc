// Guest attesters against a fake kernel: a configfs-tsm tree in a temporary
// directory (attributes appear on mkdir, outblob follows inblob, generation
// counts writes), fake device nodes for detection, and the pure request /
// response helpers of the ioctl attesters.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "attestation/attesters/configfs_tsm.h"
#include "attestation/attesters/device_attesters.h"
#include "crypto/digest.h"

namespace cllm::attestation {
namespace {

namespace fs = std::filesystem;

class TempRoot {
 public:
  TempRoot() {
    path_ = fs::temp_directory_path() / ("cllm_tsm_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempRoot() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  void Touch(const std::string& rel) {
    fs::create_directories((path_ / rel).parent_path());
    std::ofstream(path_ / rel) << "";
  }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

void PutText(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

// FakeKernelFs behaves like configfs-tsm: mkdir creates the attributes, a
// write to inblob bumps generation and produces outblob = "REPORT(" inblob ")".
class FakeKernelFs : public TsmFs {
 public:
  std::string provider = "sev_guest";
  int racing_writes = 0;  // how many reads of generation see a concurrent writer
  bool aux = true;

  AttestStatus MakeDir(const fs::path& dir) override {
    CLLM_RETURN_IF_ERROR(TsmFs::MakeDir(dir));
    PutText(dir / "provider", provider + "\n");
    PutText(dir / "generation", "0\n");
    if (aux) PutText(dir / "auxblob", "CERTS");
    ++entries;
    return OkStatus();
  }
  AttestStatus RemoveDir(const fs::path& dir) override {
    fs::remove_all(dir);  // a real configfs rmdir drops the attributes too
    return OkStatus();
  }
  AttestStatus Write(const fs::path& file, ByteSpan data) override {
    if (file.filename() != "inblob") return MakeError(AttestErrc::kIo, "read-only attribute");
    generation_ += 1;
    PutText(file.parent_path() / "generation", std::to_string(generation_) + "\n");
    PutText(file.parent_path() / "outblob", "REPORT(" + std::string(AsChars(data)) + ")");
    return OkStatus();
  }
  AttestResult<Bytes> Read(const fs::path& file) override {
    if (file.filename() == "outblob" && racing_writes > 0) {
      // Another process writes inblob between our write and our read.
      --racing_writes;
      generation_ += 1;
      PutText(file.parent_path() / "generation", std::to_string(generation_) + "\n");
    }
    return TsmFs::Read(file);
  }

  int entries = 0;

 private:
  uint64_t generation_ = 0;
};

TEST(ConfigfsTsmTest, ReportBindsReportDataAndCleansUp) {
  TempRoot root;
  fs::create_directories(root.path() / "sys/kernel/config/tsm/report");
  FakeKernelFs kernel;
  auto att = ConfigfsTsmAttester::Open(root.path(), &kernel);
  ASSERT_TRUE(att.ok()) << att.detail();
  EXPECT_EQ(att->platform(), Platform::kSnp);
  std::string rd(64, 'r');
  auto rep = att->GetReport(AsBytes(rd));
  ASSERT_TRUE(rep.ok()) << rep.detail();
  EXPECT_EQ(std::string(AsChars(rep->outblob)), "REPORT(" + rd + ")");
  EXPECT_EQ(std::string(AsChars(rep->auxblob)), "CERTS");
  EXPECT_EQ(rep->provider, "sev_guest");
  // For SNP, evidence is the report followed by the certificate table.
  auto evidence = att->GetEvidence(AsBytes(rd));
  ASSERT_TRUE(evidence.ok()) << evidence.detail();
  EXPECT_EQ(std::string(AsChars(*evidence)), "REPORT(" + rd + ")CERTS");
  // Probe entry and report entry are both removed.
  EXPECT_TRUE(fs::is_empty(root.path() / "sys/kernel/config/tsm/report"));
  EXPECT_EQ(att->GetEvidence(AsBytes(std::string(63, 'x'))).code(), AttestErrc::kMalformed);
}

TEST(ConfigfsTsmTest, ConcurrentWriterIsDetectedAndRetried) {
  TempRoot root;
  fs::create_directories(root.path() / "sys/kernel/config/tsm/report");
  FakeKernelFs kernel;
  kernel.provider = "tdx_guest";
  auto att = ConfigfsTsmAttester::Open(root.path(), &kernel).value();
  EXPECT_EQ(att.platform(), Platform::kTdx);
  kernel.racing_writes = 1;
  std::string rd(64, 'a');
  auto ok = att.GetEvidence(AsBytes(rd));
  ASSERT_TRUE(ok.ok()) << ok.detail();
  EXPECT_EQ(std::string(AsChars(*ok)), "REPORT(" + rd + ")");
  kernel.racing_writes = ConfigfsTsmAttester::kMaxAttempts;
  auto raced = att.GetEvidence(AsBytes(rd));
  EXPECT_EQ(raced.code(), AttestErrc::kBindingMismatch);
  EXPECT_NE(raced.detail().find("raced"), std::string::npos);
}

TEST(ConfigfsTsmTest, MissingTreeOrUnknownProviderIsUnavailable) {
  TempRoot root;
  FakeKernelFs kernel;
  EXPECT_EQ(ConfigfsTsmAttester::Open(root.path(), &kernel).code(), AttestErrc::kUnavailable);
  fs::create_directories(root.path() / "sys/kernel/config/tsm/report");
  kernel.provider = "arm_cca_guest";
  auto r = ConfigfsTsmAttester::Open(root.path(), &kernel);
  EXPECT_EQ(r.code(), AttestErrc::kUnavailable);
  EXPECT_NE(r.detail().find("arm_cca_guest"), std::string::npos);
}

TEST(ConfigfsTsmTest, GenerationParsing) {
  EXPECT_EQ(ParseTsmGeneration(AsBytes(std::string("17\n"))).value(), 17u);
  EXPECT_EQ(ParseTsmGeneration(AsBytes(std::string(""))).code(), AttestErrc::kMalformed);
  EXPECT_EQ(ParseTsmGeneration(AsBytes(std::string("-1"))).code(), AttestErrc::kMalformed);
  EXPECT_EQ(ParseTsmGeneration(AsBytes(std::string(25, '9'))).code(), AttestErrc::kMalformed);
}

TEST(DetectTest, FindsWhatIsPresentAndNothingOnAPlainMachine) {
  TempRoot root;
  EXPECT_TRUE(DetectAttesters(root.path()).empty());
  fs::create_directories(root.path() / "sys/kernel/config/tsm/report");
  root.Touch("dev/sev-guest");
  auto found = DetectAttesters(root.path());
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].name, "configfs-tsm");
  EXPECT_EQ(found[0].provider, "sev_guest");
  ASSERT_EQ(found[0].platforms.size(), 1u);
  EXPECT_EQ(found[0].platforms[0], Platform::kSnp);
  EXPECT_EQ(found[1].name, "sev-guest");
  TempRoot csv;
  csv.Touch("dev/csv-guest");
  found = DetectAttesters(csv.path());
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].platforms.at(0), Platform::kCsv);
}

TEST(DeviceAttesterTest, SnpReportResponseIsBoundsChecked) {
  Bytes resp(kSnpReportRespSize, 0);
  resp[4] = static_cast<uint8_t>(kSnpReportSize & 0xff);
  resp[5] = static_cast<uint8_t>(kSnpReportSize >> 8);
  resp[0x20] = 0x42;
  auto rep = ParseSnpReportResponse(resp);
  ASSERT_TRUE(rep.ok()) << rep.detail();
  EXPECT_EQ(rep->size(), kSnpReportSize);
  EXPECT_EQ((*rep)[0], 0x42);
  EXPECT_EQ(ParseSnpReportResponse(ByteSpan(resp).first(100)).code(), AttestErrc::kMalformed);
  resp[0] = 0x16;  // firmware INVALID_PARAM
  EXPECT_EQ(ParseSnpReportResponse(resp).code(), AttestErrc::kIo);
  resp[0] = 0;
  resp[5] = 0x7f;  // report_size beyond the buffer
  EXPECT_EQ(ParseSnpReportResponse(resp).code(), AttestErrc::kMalformed);
}

TEST(DeviceAttesterTest, SnpCertTableEntriesStayInside) {
  // Two entries + terminator (3 × 24 bytes), then the two blobs.
  Bytes t(72, 0);
  auto put_entry = [&](size_t at, uint8_t guid0, uint32_t off, uint32_t len) {
    t[at] = guid0;
    for (int i = 0; i < 4; ++i) t[at + 16 + i] = static_cast<uint8_t>(off >> (8 * i));
    for (int i = 0; i < 4; ++i) t[at + 20 + i] = static_cast<uint8_t>(len >> (8 * i));
  };
  put_entry(0, 0x63, 72, 3);
  put_entry(24, 0x4a, 75, 2);
  t.insert(t.end(), {'v', 'c', 'k', 'a', 's'});
  auto entries = ParseSnpCertTable(t);
  ASSERT_TRUE(entries.ok()) << entries.detail();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].data, Bytes({'v', 'c', 'k'}));
  EXPECT_EQ((*entries)[1].data, Bytes({'a', 's'}));
  put_entry(24, 0x4a, 75, 0xffffffffu);  // offset + length overflows / exceeds
  EXPECT_EQ(ParseSnpCertTable(t).code(), AttestErrc::kMalformed);
  EXPECT_EQ(ParseSnpCertTable(ByteSpan(t).first(30)).code(), AttestErrc::kMalformed);  // no terminator
}

TEST(DeviceAttesterTest, TdReportAndCsvRequestLayouts) {
  Bytes td(kTdReportSize, 0);
  td[0] = 0x81;
  td[kTdReportDataOffset] = 7;
  EXPECT_EQ(TdReportReportData(td).value().at(0), 7);
  td[0] = 0x00;  // SGX report type
  EXPECT_EQ(TdReportReportData(td).code(), AttestErrc::kMalformed);
  EXPECT_EQ(TdReportReportData(ByteSpan(td).first(10)).code(), AttestErrc::kMalformed);

  Bytes rd(64, 0x11), mnonce(16, 0x22);
  Bytes req = BuildCsvReportInput(rd, mnonce);
  ASSERT_EQ(req.size(), kCsvReportBufferLen);
  EXPECT_TRUE(std::equal(rd.begin(), rd.end(), req.begin()));
  EXPECT_TRUE(std::equal(mnonce.begin(), mnonce.end(), req.begin() + 64));
  Bytes both = rd;
  both.insert(both.end(), mnonce.begin(), mnonce.end());
  auto hash = crypto::Sm3(both);
  EXPECT_TRUE(std::equal(hash.begin(), hash.end(), req.begin() + 80));
}

TEST(DeviceAttesterTest, MissingDevicesAreUnavailable) {
  Bytes rd(64, 0);
  EXPECT_EQ(SevGuestAttester("/nonexistent/sev-guest").GetEvidence(rd).code(), AttestErrc::kUnavailable);
  EXPECT_EQ(TdxGuestAttester("/nonexistent/tdx_guest").GetEvidence(rd).code(), AttestErrc::kUnavailable);
  EXPECT_EQ(CsvGuestAttester("/nonexistent/csv-guest").GetEvidence(rd).code(), AttestErrc::kUnavailable);
}

}  // namespace
}  // namespace cllm::attestation
