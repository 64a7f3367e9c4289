// Fuzzes the TDX DCAP quote parser (v4/v5 header, TD 1.0/1.5 body, signature
// data, nested certification data) and what the verifier reads next from an
// untrusted quote: the PCK chain PEM and the PCK certificate's SGX extensions.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "attestation/tdx/pck.h"
#include "attestation/tdx/quote.h"
#include "crypto/x509.h"

using namespace cllm;
using namespace cllm::attestation::tdx;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteSpan in(data, size);
  (void)LooksLikeTdxQuote(in);
  auto quote = ParseQuote(in);
  if (!quote.ok()) return 0;
  // Views must stay inside the input.
  if (quote->quote_size > size || quote->signed_bytes.size() > size) __builtin_trap();
  std::string_view pem(reinterpret_cast<const char*>(quote->pck_chain_pem.data()), quote->pck_chain_pem.size());
  if (auto chain = crypto::Certificate::ParsePemBundle(pem); chain.ok() && !chain->empty()) {
    (void)PckExtensionsOf((*chain)[0]);
  }
  return 0;
}
