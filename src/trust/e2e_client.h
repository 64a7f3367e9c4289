// e2e_client.h — mutual mode of encrypted bodies (docs/protocol.md
// "Encrypted bodies", mutual mode): a client in a confidential VM proves it
// is attested with its cllm-trust token and binds an HPKE key to it; the
// request is then sealed in HPKE auth mode with that key, so only that
// client could have sent it.
//
//   Cllm-E2e-Client-Token: the client's cllm-trust JWT (cnf = its P-256 key)
//   Cllm-E2e-Client-Key:   compact JWS (ES256) by the cnf key over
//                          {"hpke_pk": b64url(pkS), "suite": "x25519"|"gmt", "iat": unix}
//
// The server checks, before decrypting anything:
//   1. the token: ES256 under cllm-trust's JWKS, iss, exp/nbf/iat with
//      leeway, claims format (trust::VerifyToken); not a replay token;
//   2. the token's "policy" is one the server accepts (empty list: any);
//   3. the JWS verifies under the token's cnf key (ES256 only);
//   4. its payload: exactly the three members, suite = the request's suite,
//      iat within ±120 s of now, hpke_pk a valid public key of the suite's KEM;
//   5. with the server's own policy for clients (cllm-server
//      --e2e-client-policy), the token's claims appraised under it as a
//      client's, with the code that appraises evidence (platform, debug, TCB,
//      measurements, fields; its token_policies, binary and model digests
//      when listed), and a token making serving claims (a server's) refused
//      — after 3-4, so only the key's holder learns why it was refused;
// and returns pkS for SetupAuthR. Any failure is one kClientToken.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attestation/policy.h"
#include "channel/e2e.h"
#include "crypto/keys.h"
#include "trust/jose.h"
#include "trust/token_verifier.h"

namespace cllm::trust {

struct E2eClientPolicy {
  std::shared_ptr<const JwksSource> jwks;      // cllm-trust's, refreshed on rotation
  std::string expected_issuer = "cllm-trust";
  std::vector<std::string> accepted_policies;  // the token's "policy"; empty: any
  std::optional<attestation::Policy> appraisal;  // the server's own policy for clients, if any
  std::chrono::seconds iat_window{120};
  // The clock (tests pass a fixed one); null: the system clock.
  std::function<std::chrono::system_clock::time_point()> now;
};

// MakeE2eClientVerifier returns the check above for Service::SetE2eClientVerifier.
channel::e2e::ClientKeyVerifier MakeE2eClientVerifier(E2eClientPolicy policy);

// SignE2eClientKey is the client's side: the statement binding `hpke_pk` to
// the token's cnf key `cnf_key`.
JoseResult<std::string> SignE2eClientKey(const crypto::PrivateKey& cnf_key, ByteSpan hpke_pk,
                                         crypto::hpke::Suite suite, int64_t iat);

}  // namespace cllm::trust
