// Fuzzes certificate, CRL and key parsing through the crypto wrappers, and the
// accessors that attestation code calls on untrusted certificates.
#include <cstddef>
#include <cstdint>

#include "crypto/keys.h"
#include "crypto/x509.h"

using namespace cllm;
using namespace cllm::crypto;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteSpan in(data, size);
  if (auto cert = Certificate::FromDer(in); cert.ok()) {
    (void)cert->Subject();
    (void)cert->Issuer();
    (void)cert->SubjectCommonName();
    (void)cert->SerialHex();
    (void)cert->NotBefore();
    (void)cert->NotAfter();
    (void)cert->Extension("1.3.6.1.4.1.3704.1.4");
    (void)cert->ExtensionOids();
    (void)cert->TbsDer();
    (void)cert->SignatureValue();
    if (auto key = cert->GetPublicKey(); key.ok()) {
      (void)cert->VerifySignedBy(*key);
      (void)key->type();
      (void)key->EcPoint();
      (void)key->ToSpkiDer();
    }
  }
  (void)Certificate::ParsePemBundle(AsChars(in));
  (void)Crl::FromDer(in);
  (void)PublicKey::FromSpkiDer(in);
  (void)DerSigToRaw(in, 48);
  return 0;
}
