// HPKE known answers: RFC 9180 Appendix A (A.1 X25519/AES-128-GCM in all
// four modes, A.2.1 ChaCha20-Poly1305, A.3.1–A.3.3 P-256, A.7.1 export-only)
// — key schedule, several sequence numbers, exports — and RFC 5869 for the
// split HKDF. Round trips, tampering and keys are in hpke_test.cc.
#include "crypto/hpke.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "base/encoding.h"
#include "crypto/kdf.h"

namespace cllm::crypto::hpke {
namespace {

Bytes H(std::string_view hex) { return HexDecode(hex).value(); }
std::string Hex(ByteSpan b) { return HexEncode(b); }

// ---------------------------------------------------------------------------
// RFC 5869 Appendix A.1 through the separate Extract and Expand steps.
// ---------------------------------------------------------------------------

TEST(HkdfSplitTest, Rfc5869Case1) {
  SecretBytes prk = HkdfExtract(HashAlg::kSha256, H("000102030405060708090a0b0c"), Bytes(22, 0x0b));
  EXPECT_EQ(Hex(prk.span()), "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
  auto okm = HkdfExpand(HashAlg::kSha256, prk.span(), H("f0f1f2f3f4f5f6f7f8f9"), 42);
  ASSERT_TRUE(okm.ok());
  EXPECT_EQ(Hex(okm->span()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
            "34007208d5b887185865");
}

TEST(HkdfSplitTest, ExpandMatchesHkdfAndChecksLength) {
  auto one_shot = Hkdf(HashAlg::kSm3, Bytes(32, 7), Bytes(5, 1), AsBytes("ctx"), 100);
  SecretBytes prk = HkdfExtract(HashAlg::kSm3, Bytes(5, 1), Bytes(32, 7));
  auto split = HkdfExpand(HashAlg::kSm3, prk.span(), AsBytes("ctx"), 100);
  ASSERT_TRUE(one_shot.ok() && split.ok());
  EXPECT_EQ(Hex(one_shot->span()), Hex(split->span()));
  EXPECT_EQ(HkdfExpand(HashAlg::kSha256, prk.span(), {}, 0).code(), CryptoErrc::kInvalidArgument);
  EXPECT_EQ(HkdfExpand(HashAlg::kSha256, prk.span(), {}, 255 * 32 + 1).code(),
            CryptoErrc::kInvalidArgument);
  // A long info (HPKE exporter contexts are caller-chosen).
  EXPECT_TRUE(HkdfExpand(HashAlg::kSha256, prk.span(), Bytes(5000, 3), 32).ok());
}

// ---------------------------------------------------------------------------
// RFC 9180 Appendix A
// ---------------------------------------------------------------------------

// Every vector encrypts this pt with aad = "Count-<seq>" (hex in the RFC).
constexpr std::string_view kPt = "4265617574792069732074727574682c20747275746820626561757479";
constexpr std::string_view kInfo = "4f6465206f6e2061204772656369616e2055726e";
constexpr std::string_view kPsk =
    "0247fd33b913760fa1fa51e1892d9f307fbe65eb171e8132c2af18555a738b82";
constexpr std::string_view kPskId = "456e6e796e20447572696e206172616e204d6f726961";
// Exporter contexts of every vector, L = 32.
constexpr std::string_view kExportContexts[3] = {"", "00", "54657374436f6e74657874"};

struct Encryption {
  uint64_t seq;
  const char* ct;
};

struct Vector {
  const char* name;
  Suite suite;
  Mode mode;
  const char* ikm_e;
  const char* pk_em;  // = enc
  const char* sk_em;
  const char* ikm_r;
  const char* pk_rm;
  const char* sk_rm;
  const char* ikm_s = "";  // the S fields only in the Auth modes
  const char* pk_sm = "";
  const char* sk_sm = "";
  const char* shared_secret;
  const char* key;
  const char* base_nonce;
  const char* exporter_secret;
  std::vector<Encryption> encryptions;
  const char* exports[3];
};

constexpr Suite kX25519Aes128{Kem::kX25519HkdfSha256, Kdf::kHkdfSha256, Aead::kAes128Gcm};
constexpr Suite kX25519ChaCha{Kem::kX25519HkdfSha256, Kdf::kHkdfSha256, Aead::kChaCha20Poly1305};
constexpr Suite kP256Aes128{Kem::kP256HkdfSha256, Kdf::kHkdfSha256, Aead::kAes128Gcm};
constexpr Suite kX25519ExportOnly{Kem::kX25519HkdfSha256, Kdf::kHkdfSha256, Aead::kExportOnly};

// The values of RFC 9180 Appendix A.1.1–A.1.4, A.2.1, A.3.1–A.3.3 and A.7.1, as
// printed there (long values split in 64-digit pieces); the listed sequence
// numbers are a subset of each section's.
const std::vector<Vector>& Vectors() {
  static const std::vector<Vector> v = {
      {
          .name = "A.1.1 X25519 AES-128-GCM Base",
          .suite = kX25519Aes128,
          .mode = Mode::kBase,
          .ikm_e = "7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234",
          .pk_em = "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431",
          .sk_em = "52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736",
          .ikm_r = "6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037",
          .pk_rm = "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d",
          .sk_rm = "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8",
          .shared_secret = "fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc",
          .key = "4531685d41d65f03dc48f6b8302c05b0",
          .base_nonce = "56d890e5accaaf011cff4b7d",
          .exporter_secret = "45ff1c2e220db587171952c0592d5f5ebe103f1561a2614e38f2ffd47e99e3f8",
          .encryptions = {{0,
                           "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a9"
                           "6d8770ac83d07bea87e13c512a"},
                          {1,
                           "af2d7e9ac9ae7e270f46ba1f975be53c09f8d875bdc8535458c2494e8a6eab25"
                           "1c03d0c22a56b8ca42c2063b84"},
                          {2,
                           "498dfcabd92e8acedc281e85af1cb4e3e31c7dc394a1ca20e173cb7251649158"
                           "8d96a19ad4a683518973dcc180"},
                          {4,
                           "583bd32bc67a5994bb8ceaca813d369bca7b2a42408cddef5e22f880b631215a"
                           "09fc0012bc69fccaa251c0246d"},
                          {255,
                           "7175db9717964058640a3a11fb9007941a5d1757fda1a6935c805c21af32505b"
                           "f106deefec4a49ac38d71c9e0a"},
                          {256,
                           "957f9800542b0b8891badb026d79cc54597cb2d225b54c00c5238c25d05c30e3"
                           "fbeda97d2e0e1aba483a2df9f2"}},
          .exports = {"3853fe2b4035195a573ffc53856e77058e15d9ea064de3e59f4961d0095250ee",
                      "2e8f0b54673c7029649d4eb9d5e33bf1872cf76d623ff164ac185da9e88c21a5",
                      "e9e43065102c3836401bed8c3c3c75ae46be1639869391d62c61f1ec7af54931"},
      },
      {
          .name = "A.1.2 X25519 AES-128-GCM PSK",
          .suite = kX25519Aes128,
          .mode = Mode::kPsk,
          .ikm_e = "78628c354e46f3e169bd231be7b2ff1c77aa302460a26dbfa15515684c00130b",
          .pk_em = "0ad0950d9fb9588e59690b74f1237ecdf1d775cd60be2eca57af5a4b0471c91b",
          .sk_em = "463426a9ffb42bb17dbe6044b9abd1d4e4d95f9041cef0e99d7824eef2b6f588",
          .ikm_r = "d4a09d09f575fef425905d2ab396c1449141463f698f8efdb7accfaff8995098",
          .pk_rm = "9fed7e8c17387560e92cc6462a68049657246a09bfa8ade7aefe589672016366",
          .sk_rm = "c5eb01eb457fe6c6f57577c5413b931550a162c71a03ac8d196babbd4e5ce0fd",
          .shared_secret = "727699f009ffe3c076315019c69648366b69171439bd7dd0807743bde76986cd",
          .key = "15026dba546e3ae05836fc7de5a7bb26",
          .base_nonce = "9518635eba129d5ce0914555",
          .exporter_secret = "3d76025dbbedc49448ec3f9080a1abab6b06e91c0b11ad23c912f043a0ee7655",
          .encryptions = {{0,
                           "e52c6fed7f758d0cf7145689f21bc1be6ec9ea097fef4e959440012f4feb73fb"
                           "611b946199e681f4cfc34db8ea"},
                          {1,
                           "49f3b19b28a9ea9f43e8c71204c00d4a490ee7f61387b6719db765e948123b45"
                           "b61633ef059ba22cd62437c8ba"},
                          {256,
                           "c5bf246d4a790a12dcc9eed5eae525081e6fb541d5849e9ce8abd92a3bc15517"
                           "76bea16b4a518f23e237c14b59"}},
          .exports = {"dff17af354c8b41673567db6259fd6029967b4e1aad13023c2ae5df8f4f43bf6",
                      "6a847261d8207fe596befb52928463881ab493da345b10e1dcc645e3b94e2d95",
                      "8aff52b45a1be3a734bc7a41e20b4e055ad4c4d22104b0c20285a7c4302401cd"},
      },
      {
          .name = "A.1.3 X25519 AES-128-GCM Auth",
          .suite = kX25519Aes128,
          .mode = Mode::kAuth,
          .ikm_e = "6e6d8f200ea2fb20c30b003a8b4f433d2f4ed4c2658d5bc8ce2fef718059c9f7",
          .pk_em = "23fb952571a14a25e3d678140cd0e5eb47a0961bb18afcf85896e5453c312e76",
          .sk_em = "ff4442ef24fbc3c1ff86375b0be1e77e88a0de1e79b30896d73411c5ff4c3518",
          .ikm_r = "f1d4a30a4cef8d6d4e3b016e6fd3799ea057db4f345472ed302a67ce1c20cdec",
          .pk_rm = "1632d5c2f71c2b38d0a8fcc359355200caa8b1ffdf28618080466c909cb69b2e",
          .sk_rm = "fdea67cf831f1ca98d8e27b1f6abeb5b7745e9d35348b80fa407ff6958f9137e",
          .ikm_s = "94b020ce91d73fca4649006c7e7329a67b40c55e9e93cc907d282bbbff386f58",
          .pk_sm = "8b0c70873dc5aecb7f9ee4e62406a397b350e57012be45cf53b7105ae731790b",
          .sk_sm = "dc4a146313cce60a278a5323d321f051c5707e9c45ba21a3479fecdf76fc69dd",
          .shared_secret = "2d6db4cf719dc7293fcbf3fa64690708e44e2bebc81f84608677958c0d4448a7",
          .key = "b062cb2c4dd4bca0ad7c7a12bbc341e6",
          .base_nonce = "a1bc314c1942ade7051ffed0",
          .exporter_secret = "ee1a093e6e1c393c162ea98fdf20560c75909653550540a2700511b65c88c6f1",
          .encryptions = {{0,
                           "5fd92cc9d46dbf8943e72a07e42f363ed5f721212cd90bcfd072bfd9f44e06b8"
                           "0fd17824947496e21b680c141b"},
                          {1,
                           "d3736bb256c19bfa93d79e8f80b7971262cb7c887e35c26370cfed62254369a1"
                           "b52e3d505b79dd699f002bc8ed"},
                          {2,
                           "122175cfd5678e04894e4ff8789e85dd381df48dcaf970d52057df2c9acc3b12"
                           "1313a2bfeaa986050f82d93645"},
                          {255,
                           "55d53d85fe4d9e1e97903101eab0b4865ef20cef28765a47f840ff99625b7d69"
                           "dee927df1defa66a036fc58ff2"}},
          .exports = {"28c70088017d70c896a8420f04702c5a321d9cbf0279fba899b59e51bac72c85",
                      "25dfc004b0892be1888c3914977aa9c9bbaf2c7471708a49e1195af48a6f29ce",
                      "5a0131813abc9a522cad678eb6bafaabc43389934adb8097d23c5ff68059eb64"},
      },
      {
          .name = "A.1.4 X25519 AES-128-GCM AuthPSK",
          .suite = kX25519Aes128,
          .mode = Mode::kAuthPsk,
          .ikm_e = "4303619085a20ebcf18edd22782952b8a7161e1dbae6e46e143a52a96127cf84",
          .pk_em = "820818d3c23993492cc5623ab437a48a0a7ca3e9639c140fe1e33811eb844b7c",
          .sk_em = "14de82a5897b613616a00c39b87429df35bc2b426bcfd73febcb45e903490768",
          .ikm_r = "4b16221f3b269a88e207270b5e1de28cb01f847841b344b8314d6a622fe5ee90",
          .pk_rm = "1d11a3cd247ae48e901939659bd4d79b6b959e1f3e7d66663fbc9412dd4e0976",
          .sk_rm = "cb29a95649dc5656c2d054c1aa0d3df0493155e9d5da6d7e344ed8b6a64a9423",
          .ikm_s = "62f77dcf5df0dd7eac54eac9f654f426d4161ec850cc65c54f8b65d2e0b4e345",
          .pk_sm = "2bfb2eb18fcad1af0e4f99142a1c474ae74e21b9425fc5c589382c69b50cc57e",
          .sk_sm = "fc1c87d2f3832adb178b431fce2ac77c7ca2fd680f3406c77b5ecdf818b119f4",
          .shared_secret = "f9d0e870aba28d04709b2680cb8185466c6a6ff1d6e9d1091d5bf5e10ce3a577",
          .key = "1364ead92c47aa7becfa95203037b19a",
          .base_nonce = "99d8b5c54669807e9fc70df1",
          .exporter_secret = "f048d55eacbf60f9c6154bd4021774d1075ebf963c6adc71fa846f183ab2dde6",
          .encryptions = {{0,
                           "a84c64df1e11d8fd11450039d4fe64ff0c8a99fca0bd72c2d4c3e0400bc14a40"
                           "f27e45e141a24001697737533e"},
                          {1,
                           "4d19303b848f424fc3c3beca249b2c6de0a34083b8e909b6aa4c3688505c05ff"
                           "e0c8f57a0a4c5ab9da127435d9"},
                          {256,
                           "13239bab72e25e9fd5bb09695d23c90a24595158b99127505c8a9ff9f127e0d6"
                           "57f71af59d67d4f4971da028f9"}},
          .exports = {"08f7e20644bb9b8af54ad66d2067457c5f9fcb2a23d9f6cb4445c0797b330067",
                      "52e51ff7d436557ced5265ff8b94ce69cf7583f49cdb374e6aad801fc063b010",
                      "a30c20370c026bbea4dca51cb63761695132d342bae33a6a11527d3e7679436d"},
      },
      {
          .name = "A.2.1 X25519 ChaCha20-Poly1305 Base",
          .suite = kX25519ChaCha,
          .mode = Mode::kBase,
          .ikm_e = "909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b",
          .pk_em = "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a",
          .sk_em = "f4ec9b33b792c372c1d2c2063507b684ef925b8c75a42dbcbf57d63ccd381600",
          .ikm_r = "1ac01f181fdf9f352797655161c58b75c656a6cc2716dcb66372da835542e1df",
          .pk_rm = "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a",
          .sk_rm = "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb",
          .shared_secret = "0bbe78490412b4bbea4812666f7916932b828bba79942424abb65244930d69a7",
          .key = "ad2744de8e17f4ebba575b3f5f5a8fa1f69c2a07f6e7500bc60ca6e3e3ec1c91",
          .base_nonce = "5c4d98150661b848853b547f",
          .exporter_secret = "a3b010d4994890e2c6968a36f64470d3c824c8f5029942feb11e7a74b2921922",
          .encryptions = {{0,
                           "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db"
                           "21993c62ce81883d2dd1b51a28"},
                          {1,
                           "6b53c051e4199c518de79594e1c4ab18b96f081549d45ce015be002090bb119e"
                           "85285337cc95ba5f59992dc98c"},
                          {256,
                           "7a4a13e9ef23978e2c520fd4d2e757514ae160cd0cd05e556ef692370ca53076"
                           "214c0c40d4c728d6ed9e727a5b"}},
          .exports = {"4bbd6243b8bb54cec311fac9df81841b6fd61f56538a775e7c80a9f40160606e",
                      "8c1df14732580e5501b00f82b10a1647b40713191b7c1240ac80e2b68808ba69",
                      "5acb09211139c43b3090489a9da433e8a30ee7188ba8b0a9a1ccf0c229283e53"},
      },
      {
          .name = "A.3.1 P-256 AES-128-GCM Base",
          .suite = kP256Aes128,
          .mode = Mode::kBase,
          .ikm_e = "4270e54ffd08d79d5928020af4686d8f6b7d35dbe470265f1f5aa22816ce860e",
          .pk_em = "04a92719c6195d5085104f469a8b9814d5838ff72b60501e2c4466e5e67b325a"
                   "c98536d7b61a1af4b78e5b7f951c0900be863c403ce65c9bfcb9382657222d18"
                   "c4",
          .sk_em = "4995788ef4b9d6132b249ce59a77281493eb39af373d236a1fe415cb0c2d7beb",
          .ikm_r = "668b37171f1072f3cf12ea8a236a45df23fc13b82af3609ad1e354f6ef817550",
          .pk_rm = "04fe8c19ce0905191ebc298a9245792531f26f0cece2460639e8bc39cb7f706a"
                   "826a779b4cf969b8a0e539c7f62fb3d30ad6aa8f80e30f1d128aafd68a2ce72e"
                   "a0",
          .sk_rm = "f3ce7fdae57e1a310d87f1ebbde6f328be0a99cdbcadf4d6589cf29de4b8ffd2",
          .shared_secret = "c0d26aeab536609a572b07695d933b589dcf363ff9d93c93adea537aeabb8cb8",
          .key = "868c066ef58aae6dc589b6cfdd18f97e",
          .base_nonce = "4e0bc5018beba4bf004cca59",
          .exporter_secret = "14ad94af484a7ad3ef40e9f3be99ecc6fa9036df9d4920548424df127ee0d99f",
          .encryptions = {{0,
                           "5ad590bb8baa577f8619db35a36311226a896e7342a6d836d8b7bcd2f20b6c7f"
                           "9076ac232e3ab2523f39513434"},
                          {1,
                           "fa6f037b47fc21826b610172ca9637e82d6e5801eb31cbd3748271affd4ecb06"
                           "646e0329cbdf3c3cd655b28e82"},
                          {2,
                           "895cabfac50ce6c6eb02ffe6c048bf53b7f7be9a91fc559402cbc5b8dcaeb52b"
                           "2ccc93e466c28fb55fed7a7fec"},
                          {4,
                           "8787491ee8df99bc99a246c4b3216d3d57ab5076e18fa27133f520703bc70ec9"
                           "99dd36ce042e44f0c3169a6a8f"},
                          {255,
                           "2ad71c85bf3f45c6eca301426289854b31448bcf8a8ccb1deef3ebd87f60848a"
                           "a53c538c30a4dac71d619ee2cd"},
                          {256,
                           "10f179686aa2caec1758c8e554513f16472bd0a11e2a907dde0b212cbe87d74f"
                           "367f8ffe5e41cd3e9962a6afb2"}},
          .exports = {"5e9bc3d236e1911d95e65b576a8a86d478fb827e8bdfe77b741b289890490d4d",
                      "6cff87658931bda83dc857e6353efe4987a201b849658d9b047aab4cf216e796",
                      "d8f1ea7942adbba7412c6d431c62d01371ea476b823eb697e1f6e6cae1dab85a"},
      },
      {
          .name = "A.3.2 P-256 AES-128-GCM PSK",
          .suite = kP256Aes128,
          .mode = Mode::kPsk,
          .ikm_e = "2afa611d8b1a7b321c761b483b6a053579afa4f767450d3ad0f84a39fda587a6",
          .pk_em = "04305d35563527bce037773d79a13deabed0e8e7cde61eecee403496959e89e4"
                   "d0ca701726696d1485137ccb5341b3c1c7aaee90a4a02449725e744b1193b53b"
                   "5f",
          .sk_em = "57427244f6cc016cddf1c19c8973b4060aa13579b4c067fd5d93a5d74e32a90f",
          .ikm_r = "d42ef874c1913d9568c9405407c805baddaffd0898a00f1e84e154fa787b2429",
          .pk_rm = "040d97419ae99f13007a93996648b2674e5260a8ebd2b822e84899cd52d87446"
                   "ea394ca76223b76639eccdf00e1967db10ade37db4e7db476261fcc8df97c5ff"
                   "d1",
          .sk_rm = "438d8bcef33b89e0e9ae5eb0957c353c25a94584b0dd59c991372a75b43cb661",
          .shared_secret = "2e783ad86a1beae03b5749e0f3f5e9bb19cb7eb382f2fb2dd64c99f15ae0661b",
          .key = "55d9eb9d26911d4c514a990fa8d57048",
          .base_nonce = "b595dc6b2d7e2ed23af529b1",
          .exporter_secret = "895a723a1eab809804973a53c0ee18ece29b25a7555a4808277ad2651d66d705",
          .encryptions = {{0,
                           "90c4deb5b75318530194e4bb62f890b019b1397bbf9d0d6eb918890e1fb2be1a"
                           "c2603193b60a49c2126b75d0eb"},
                          {1,
                           "9e223384a3620f4a75b5a52f546b7262d8826dea18db5a365feb8b997180b22d"
                           "72dc1287f7089a1073a7102c27"},
                          {256,
                           "faf985208858b1253b97b60aecd28bc18737b58d1242370e7703ec33b73a4c31"
                           "a1afee300e349adef9015bbbfd"}},
          .exports = {"a115a59bf4dd8dc49332d6a0093af8efca1bcbfd3627d850173f5c4a55d0c185",
                      "4517eaede0669b16aac7c92d5762dd459c301fa10e02237cd5aeb9be969430c4",
                      "164e02144d44b607a7722e58b0f4156e67c0c2874d74cf71da6ca48a4cbdc5e0"},
      },
      {
          .name = "A.3.3 P-256 AES-128-GCM Auth",
          .suite = kP256Aes128,
          .mode = Mode::kAuth,
          .ikm_e = "798d82a8d9ea19dbc7f2c6dfa54e8a6706f7cdc119db0813dacf8440ab37c857",
          .pk_em = "042224f3ea800f7ec55c03f29fc9865f6ee27004f818fcbdc6dc68932c1e52e1"
                   "5b79e264a98f2c535ef06745f3d308624414153b22c7332bc1e691cb4af4d534"
                   "54",
          .sk_em = "6b8de0873aed0c1b2d09b8c7ed54cbf24fdf1dfc7a47fa501f918810642d7b91",
          .ikm_r = "7bc93bde8890d1fb55220e7f3b0c107ae7e6eda35ca4040bb6651284bf0747ee",
          .pk_rm = "04423e363e1cd54ce7b7573110ac121399acbc9ed815fae03b72ffbd4c18b018"
                   "36835c5a09513f28fc971b7266cfde2e96afe84bb0f266920e82c4f53b36e1a7"
                   "8d",
          .sk_rm = "d929ab4be2e59f6954d6bedd93e638f02d4046cef21115b00cdda2acb2a4440e",
          .ikm_s = "874baa0dcf93595a24a45a7f042e0d22d368747daaa7e19f80a802af19204ba8",
          .pk_sm = "04a817a0902bf28e036d66add5d544cc3a0457eab150f104285df1e293b5c10e"
                   "ef8651213e43d9cd9086c80b309df22cf37609f58c1127f7607e85f210b2804f"
                   "73",
          .sk_sm = "1120ac99fb1fccc1e8230502d245719d1b217fe20505c7648795139d177f0de9",
          .shared_secret = "d4aea336439aadf68f9348880aa358086f1480e7c167b6ef15453ba69b94b44f",
          .key = "19aa8472b3fdc530392b0e54ca17c0f5",
          .base_nonce = "b390052d26b67a5b8a8fcaa4",
          .exporter_secret = "f152759972660eb0e1db880835abd5de1c39c8e9cd269f6f082ed80e28acb164",
          .encryptions = {{0,
                           "82ffc8c44760db691a07c5627e5fc2c08e7a86979ee79b494a17cc3405446ac2"
                           "bdb8f265db4a099ed3289ffe19"},
                          {1,
                           "b0a705a54532c7b4f5907de51c13dffe1e08d55ee9ba59686114b05945494d96"
                           "725b239468f1229e3966aa1250"},
                          {4,
                           "04c8f7aae1584b61aa5816382cb0b834a5d744f420e6dffb5ddcec633a21b8b3"
                           "472820930c1ea9258b035937a2"},
                          {256,
                           "28e874512f8940fafc7d06135e7589f6b4198bc0f3a1c64702e72c9e6abaf9f0"
                           "5cb0d2f11b03a517898815c934"}},
          .exports = {"837e49c3ff629250c8d80d3c3fb957725ed481e59e2feb57afd9fe9a8c7c4497",
                      "594213f9018d614b82007a7021c3135bda7b380da4acd9ab27165c508640dbda",
                      "14fe634f95ca0d86e15247cca7de7ba9b73c9b9deb6437e1c832daf7291b79d5"},
      },
      {
          .name = "A.7.1 X25519 export-only Base",
          .suite = kX25519ExportOnly,
          .mode = Mode::kBase,
          .ikm_e = "55bc245ee4efda25d38f2d54d5bb6665291b99f8108a8c4b686c2b14893ea5d9",
          .pk_em = "e5e8f9bfff6c2f29791fc351d2c25ce1299aa5eaca78a757c0b4fb4bcd830918",
          .sk_em = "095182b502f1f91f63ba584c7c3ec473d617b8b4c2cec3fad5af7fa6748165ed",
          .ikm_r = "683ae0da1d22181e74ed2e503ebf82840deb1d5e872cade20f4b458d99783e31",
          .pk_rm = "194141ca6c3c3beb4792cd97ba0ea1faff09d98435012345766ee33aae2d7664",
          .sk_rm = "33d196c830a12f9ac65d6e565a590d80f04ee9b19c83c87f2c170d972a812848",
          .shared_secret = "e81716ce8f73141d4f25ee9098efc968c91e5b8ce52ffff59d64039e82918b66",
          .key = "",  // no key or nonce for export-only
          .base_nonce = "",
          .exporter_secret = "79dc8e0509cf4a3364ca027e5a0138235281611ca910e435e8ed58167c72f79b",
          .encryptions = {},
          .exports = {"7a36221bd56d50fb51ee65edfd98d06a23c4dc87085aa5866cb7087244bd2a36",
                      "d5535b87099c6c3ce80dc112a2671c6ec8e811a2f284f948cec6dd1708ee33f0",
                      "ffaabc85a776136ca0c378e5d084c9140ab552b78f039d2e8775f26efff4c70e"},
      },
  };
  return v;
}

bool HasPskMode(Mode m) { return m == Mode::kPsk || m == Mode::kAuthPsk; }
bool HasAuthMode(Mode m) { return m == Mode::kAuth || m == Mode::kAuthPsk; }

Bytes CountAad(uint64_t seq) { return ToBytes("Count-" + std::to_string(seq)); }

void CheckKeyPair(Kem kem, const char* ikm, const char* sk, const char* pk) {
  auto kp = DeriveKeyPair(kem, H(ikm));
  ASSERT_TRUE(kp.ok()) << kp.detail();
  EXPECT_EQ(Hex(kp->sk.span()), sk);
  EXPECT_EQ(Hex(kp->pk), pk);
  auto pk2 = PublicKeyFromPrivate(kem, H(sk));
  ASSERT_TRUE(pk2.ok()) << pk2.detail();
  EXPECT_EQ(Hex(*pk2), pk);
}

class Rfc9180VectorTest : public ::testing::TestWithParam<size_t> {};

TEST_P(Rfc9180VectorTest, MatchesAppendixA) {
  const Vector& v = Vectors()[GetParam()];
  SCOPED_TRACE(v.name);
  const Kem kem = v.suite.kem;
  const bool auth = HasAuthMode(v.mode);
  const Bytes psk = HasPskMode(v.mode) ? H(kPsk) : Bytes();
  const Bytes psk_id = HasPskMode(v.mode) ? H(kPskId) : Bytes();
  const Bytes sk_s = auth ? H(v.sk_sm) : Bytes();
  const Bytes pk_s = auth ? H(v.pk_sm) : Bytes();

  // DeriveKeyPair (§7.1.3) for every role.
  CheckKeyPair(kem, v.ikm_e, v.sk_em, v.pk_em);
  CheckKeyPair(kem, v.ikm_r, v.sk_rm, v.pk_rm);
  if (auth) CheckKeyPair(kem, v.ikm_s, v.sk_sm, v.pk_sm);

  // The KEM (§4.1).
  auto encap =
      auth ? AuthEncap(kem, H(v.pk_rm), sk_s, H(v.ikm_e)) : Encap(kem, H(v.pk_rm), H(v.ikm_e));
  ASSERT_TRUE(encap.ok()) << encap.detail();
  EXPECT_EQ(Hex(encap->enc), v.pk_em);
  EXPECT_EQ(Hex(encap->shared_secret.span()), v.shared_secret);
  auto decap =
      auth ? AuthDecap(kem, H(v.pk_em), H(v.sk_rm), pk_s) : Decap(kem, H(v.pk_em), H(v.sk_rm));
  ASSERT_TRUE(decap.ok()) << decap.detail();
  EXPECT_EQ(Hex(decap->span()), v.shared_secret);

  // The key schedule (§5.1) on both sides.
  auto sender = SetupS(v.mode, v.suite, H(v.pk_rm), H(kInfo), psk, psk_id, sk_s, H(v.ikm_e));
  ASSERT_TRUE(sender.ok()) << sender.detail();
  EXPECT_EQ(Hex(sender->enc), v.pk_em);
  auto recipient = SetupR(v.mode, v.suite, H(v.pk_em), H(v.sk_rm), H(kInfo), psk, psk_id, pk_s);
  ASSERT_TRUE(recipient.ok()) << recipient.detail();
  for (const Context* ctx : {&sender->ctx, &*recipient}) {
    EXPECT_EQ(Hex(ctx->key_for_testing()), v.key);
    EXPECT_EQ(Hex(ctx->base_nonce_for_testing()), v.base_nonce);
    EXPECT_EQ(Hex(ctx->exporter_secret_for_testing()), v.exporter_secret);
  }

  // Encryptions (§5.2) at the listed sequence numbers.
  for (const Encryption& e : v.encryptions) {
    SCOPED_TRACE("seq " + std::to_string(e.seq));
    sender->ctx.set_sequence_number_for_testing(e.seq);
    auto ct = sender->ctx.Seal(CountAad(e.seq), H(kPt));
    ASSERT_TRUE(ct.ok()) << ct.detail();
    EXPECT_EQ(Hex(*ct), e.ct);
    EXPECT_EQ(sender->ctx.sequence_number(), e.seq + 1);
    recipient->set_sequence_number_for_testing(e.seq);
    auto pt = recipient->Open(CountAad(e.seq), H(e.ct));
    ASSERT_TRUE(pt.ok()) << pt.detail();
    EXPECT_EQ(Hex(pt->span()), kPt);
  }

  // Exported values (§5.3), L = 32, from both sides.
  for (size_t i = 0; i < 3; ++i) {
    for (const Context* ctx : {&sender->ctx, &*recipient}) {
      auto out = ctx->Export(H(kExportContexts[i]), 32);
      ASSERT_TRUE(out.ok()) << out.detail();
      EXPECT_EQ(Hex(out->span()), v.exports[i]);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AppendixA, Rfc9180VectorTest, ::testing::Range<size_t>(0, 9));

TEST(HpkeVectorTest, SetupWithIkmEHooksMatchA11AndA13) {
  const Vector& base = Vectors()[0];
  auto s = SetupBaseSWithIkmE(base.suite, H(base.pk_rm), H(kInfo), H(base.ikm_e));
  ASSERT_TRUE(s.ok()) << s.detail();
  EXPECT_EQ(Hex(s->enc), base.pk_em);
  EXPECT_EQ(Hex(s->ctx.key_for_testing()), base.key);
  const Vector& auth = Vectors()[2];
  auto a = SetupAuthSWithIkmE(auth.suite, H(auth.pk_rm), H(kInfo), H(auth.sk_sm), H(auth.ikm_e));
  ASSERT_TRUE(a.ok()) << a.detail();
  EXPECT_EQ(Hex(a->enc), auth.pk_em);
  EXPECT_EQ(Hex(a->ctx.key_for_testing()), auth.key);
}

}  // namespace
}  // namespace cllm::crypto::hpke
