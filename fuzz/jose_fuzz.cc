// Fuzzes the JOSE verifiers: compact JWS/JWT and JWE from the network, JWKs
// and JWKS from peers. Every input must give a JoseErrc or a result, never a
// crash, a leak or an abort. The first byte picks the entry point.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "trust/jose.h"

namespace {

// The RFC 6979 A.2.5 P-256 key, as in src/trust/jose_test.cc; the corpus
// holds tokens made for it, so mutations reach the signature and AEAD code.
constexpr std::string_view kPem = R"(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgya+p2EW6dRZrXCFX
Z7HWk05Qw9s26JsSe4piKxIPZyGhRANCAARg/tS6JVqdMclh63TGNW1owEm4kjth
+mzmaWIuYPKftnkD/hAIuLyZpBrp6VYovGTy8bIMLX6fUXejwpTURiKZ
-----END PRIVATE KEY-----
)";

struct Keys {
  cllm::crypto::PrivateKey priv = cllm::crypto::PrivateKey::FromPem(kPem).value();
  nlohmann::json jwks = {{"keys", {cllm::trust::PublicJwk(priv.public_key(), "py")}}};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Keys keys;
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      (void)cllm::trust::VerifyJws(text, keys.priv.public_key());
      break;
    case 1: {
      cllm::trust::JwtCheck check{std::chrono::system_clock::time_point(std::chrono::seconds(1900000000)), "py"};
      (void)cllm::trust::VerifyJwt(text, keys.jwks, check);
      break;
    }
    case 2:
      (void)cllm::trust::DecryptJwe(text, keys.priv);
      break;
    case 3: {
      auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
      if (!j.is_discarded() && j.is_object()) {
        (void)cllm::trust::PublicKeyFromJwk(j);
        (void)cllm::trust::JwkThumbprint(j);
      }
      break;
    }
  }
  return 0;
}
