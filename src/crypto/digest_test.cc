// Known-answer tests: FIPS 180-4 examples (SHA-2), GB/T 32905-2016 examples (SM3).
#include "crypto/digest.h"

#include <gtest/gtest.h>

#include <string>

#include "base/encoding.h"

namespace cllm::crypto {
namespace {

std::string Hex(ByteSpan b) { return HexEncode(b); }

TEST(DigestTest, Sha2Fips180Abc) {
  auto abc = AsBytes("abc");
  EXPECT_EQ(Hex(Sha256(abc)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Hex(Sha384(abc)),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
            "8086072ba1e7cc2358baeca134c825a7");
  EXPECT_EQ(Hex(Sha512(abc)),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
}

TEST(DigestTest, Sha256TwoBlockMessage) {
  EXPECT_EQ(Hex(Sha256(AsBytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(DigestTest, Sm3GbT32905Examples) {
  EXPECT_EQ(Hex(Sm3(AsBytes("abc"))),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
  std::string m;
  for (int i = 0; i < 16; ++i) m += "abcd";
  EXPECT_EQ(Hex(Sm3(AsBytes(m))),
            "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732");
}

TEST(DigestTest, IncrementalEqualsOneShot) {
  std::string data(1000, 'x');
  for (HashAlg alg : {HashAlg::kSha256, HashAlg::kSha384, HashAlg::kSha512, HashAlg::kSm3}) {
    Hasher h(alg);
    h.Update(AsBytes(std::string_view(data).substr(0, 333)));
    h.Update(AsBytes(std::string_view(data).substr(333)));
    Bytes inc = h.Finish();
    EXPECT_EQ(inc, Digest(alg, AsBytes(data))) << HashAlgName(alg);
    EXPECT_EQ(inc.size(), DigestSize(alg));
    // Finish resets the hasher.
    h.Update(AsBytes(data));
    EXPECT_EQ(h.Finish(), inc);
  }
}

}  // namespace
}  // namespace cllm::crypto
