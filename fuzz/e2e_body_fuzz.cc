// Fuzzes what an encrypted-bodies endpoint parses from the network
// (docs/protocol.md, "Encrypted bodies"): key configs (clients parse them
// from GET /v1/e2e/keys), sealed requests (replicas open them, with the
// router headers) and sealed answers fed in pieces (clients open them).
// The first input byte picks the parser and the suite.
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/check.h"
#include "channel/e2e.h"
#include "channel/e2e_response.h"
#include "crypto/hpke.h"

namespace {

namespace e2e = cllm::channel::e2e;
namespace hpke = cllm::crypto::hpke;

// A fixed key ring of one key per suite (derived, so runs are reproducible).
const e2e::KeyRing& Ring() {
  static const e2e::KeyRing* ring = [] {
    auto* r = new e2e::KeyRing();
    uint8_t id = 1;
    for (const hpke::Suite& suite : {hpke::kSuiteX25519, hpke::kSuiteGmt}) {
      const cllm::Bytes ikm(32, id);
      auto kp = hpke::DeriveKeyPair(suite.kem, ikm).value();
      e2e::KeyConfig cfg{id, suite, kp.pk};
      CLLM_CHECK(r->Add(e2e::EncodeKeyConfig(cfg), kp.sk.span()).ok());
      ++id;
    }
    return r;
  }();
  return *ring;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  const cllm::ByteSpan rest(data + 1, size - 1);
  switch (mode % 3) {
    case 0: {  // key config: whatever parses re-encodes to the same bytes
      auto cfg = e2e::ParseKeyConfig(rest);
      if (cfg.ok()) CLLM_CHECK(e2e::EncodeKeyConfig(*cfg) == cllm::Bytes(rest.begin(), rest.end()));
      break;
    }
    case 1: {  // a sealed request with plausible router headers
      e2e::EncryptedRequest in;
      in.path = "/v1/chat/completions";
      in.model_header = "m";
      in.stream_header = (mode & 4) ? "1" : "0";
      const std::string size_header = std::to_string(rest.size() > 64 ? 1024 : 2048);
      in.size_header = size_header;
      in.body = rest;
      e2e::OpenOptions o;
      o.keys = &Ring();
      (void)e2e::OpenRequest(in, o);
      break;
    }
    case 2: {  // a sealed answer, fed in two pieces
      e2e::ResponseSecret secret;
      secret.suite = (mode & 4) ? hpke::kSuiteGmt : hpke::kSuiteX25519;
      secret.enc = cllm::Bytes(32, 7);
      secret.secret = cllm::SecretBytes(cllm::Bytes((mode & 4) ? 48 : 32, 9));
      auto opener = e2e::ResponseOpener::Create(secret);
      if (!opener.ok()) break;
      const size_t cut = rest.empty() ? 0 : (mode >> 3) % rest.size();
      (void)opener->Feed(rest.subspan(0, cut));
      (void)opener->Feed(rest.subspan(cut));
      (void)opener->Finish();
      break;
    }
  }
  return 0;
}
