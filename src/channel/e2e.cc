#include "channel/e2e.h"

#include <algorithm>
#include <charconv>

#include "base/byte_reader.h"
#include "crypto/digest.h"

namespace cllm::channel::e2e {
namespace {

bool SameSuite(hpke::Suite a, hpke::Suite b) { return a.kem == b.kem && a.kdf == b.kdf && a.aead == b.aead; }

// KnownSuite: the suites of this protocol (docs/protocol.md, suites table).
bool KnownSuite(hpke::Suite s) { return SameSuite(s, hpke::kSuiteX25519) || SameSuite(s, hpke::kSuiteGmt); }

// The KEM's Npk, needed before the rest of a key config can be read.
size_t PublicKeySize(uint16_t kem_id) {
  switch (kem_id) {
    case static_cast<uint16_t>(hpke::Kem::kX25519HkdfSha256): return 32;
    case static_cast<uint16_t>(hpke::Kem::kSm2HkdfSm3): return 65;
    case static_cast<uint16_t>(hpke::Kem::kP256HkdfSha256): return 65;
    default: return 0;
  }
}

void PutU8(Bytes& out, uint8_t v) { out.push_back(v); }
void PutU16Be(Bytes& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}
void Append(Bytes& out, ByteSpan b) { out.insert(out.end(), b.begin(), b.end()); }
// LV2: a field of at most 65535 bytes with its 2-byte length (callers bound it).
void PutLv2(Bytes& out, std::string_view s) {
  PutU16Be(out, static_cast<uint16_t>(s.size()));
  Append(out, AsBytes(s));
}

Bytes EncodeHdr(uint8_t key_id, hpke::Suite s, hpke::Mode mode) {
  Bytes hdr;
  PutU8(hdr, key_id);
  PutU16Be(hdr, static_cast<uint16_t>(s.kem));
  PutU16Be(hdr, static_cast<uint16_t>(s.kdf));
  PutU16Be(hdr, static_cast<uint16_t>(s.aead));
  PutU8(hdr, static_cast<uint8_t>(mode));
  return hdr;
}

// RequestInfo is the HPKE info of a request: everything a router sees is
// bound into the key schedule, so changing a clear header (or moving the body
// to another route) makes the request undecryptable.
Bytes RequestInfo(ByteSpan hdr, std::string_view path, const RouterFields& f, std::string_view token,
                  std::string_view key_jws, hpke::Mode mode) {
  Bytes info = ToBytes(kRequestInfoLabel);
  PutU8(info, 0);
  Append(info, hdr);
  PutLv2(info, path);
  PutLv2(info, f.model);
  PutLv2(info, f.stream ? "1" : "0");
  PutLv2(info, std::to_string(f.size));
  if (mode == hpke::Mode::kAuth) {
    Append(info, crypto::Sha256(AsBytes(token)));
    Append(info, crypto::Sha256(AsBytes(key_jws)));
  }
  return info;
}

E2eResult<SecretBytes> ExportResponseSecret(const hpke::Context& ctx, hpke::Suite suite) {
  auto sizes = hpke::SuiteSizes(suite);
  if (!sizes.ok()) return MakeError(E2eErrc::kUnsupported, sizes.detail());
  auto secret = ctx.Export(AsBytes(kResponseExportLabel), sizes->n_k);
  if (!secret.ok()) return MakeError(E2eErrc::kInternal, "response secret: " + secret.detail());
  return std::move(secret).value();
}

// ParseSize reads Cllm-E2e-Size: decimal digits without a leading zero (one
// spelling per number: the number is what is bound), a bucket size.
E2eResult<size_t> ParseSize(std::string_view text) {
  if (text.empty() || text.size() > 8 || text[0] == '0' || !std::all_of(text.begin(), text.end(), [](char c) {
        return c >= '0' && c <= '9';
      })) {
    return MakeError(E2eErrc::kMalformed, "Cllm-E2e-Size must be a decimal bucket size (no leading zero)");
  }
  size_t v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  if (v > kMaxBucket) return MakeError(E2eErrc::kOversized, "Cllm-E2e-Size is over 4 MiB");
  if (v < kMinBucket || (v & (v - 1)) != 0) {
    return MakeError(E2eErrc::kMalformed, "Cllm-E2e-Size must be a power of two from 1024");
  }
  return v;
}

}  // namespace

const char* E2eErrcName(E2eErrc code) {
  switch (code) {
    case E2eErrc::kMalformed: return "e2e_malformed";
    case E2eErrc::kKeyUnknown: return "e2e_key_unknown";
    case E2eErrc::kDecryptFailed: return "e2e_decrypt_failed";
    case E2eErrc::kTruncated: return "e2e_truncated";
    case E2eErrc::kOversized: return "e2e_oversized";
    case E2eErrc::kClientToken: return "e2e_client_token";
    case E2eErrc::kUnsupported: return "e2e_unsupported";
    case E2eErrc::kInternal: return "e2e_internal";
  }
  return "e2e_unknown";
}

E2eResult<size_t> BucketFor(uint64_t content) {
  if (content > kMaxBucket) {
    return MakeError(E2eErrc::kOversized, "request of " + std::to_string(content) + " bytes is over the 4 MiB bucket");
  }
  size_t bucket = kMinBucket;
  while (bucket < content) bucket <<= 1;
  return bucket;
}

// ---------------------------------------------------------------------------
// Key configuration
// ---------------------------------------------------------------------------

Bytes EncodeKeyConfig(const KeyConfig& c) {
  Bytes out;
  PutU8(out, c.key_id);
  PutU16Be(out, static_cast<uint16_t>(c.suite.kem));
  Append(out, c.public_key);
  PutU16Be(out, 4);  // cipher suites: one (kdf_id, aead_id) pair
  PutU16Be(out, static_cast<uint16_t>(c.suite.kdf));
  PutU16Be(out, static_cast<uint16_t>(c.suite.aead));
  return out;
}

E2eResult<KeyConfig> ParseKeyConfig(ByteSpan bytes) {
  ByteReader r(bytes);
  auto fail = [](const std::string& what) { return MakeError(E2eErrc::kMalformed, "key config: " + what); };
  auto key_id = r.U8();
  auto kem = r.U16Be();
  if (!key_id.ok() || !kem.ok()) return fail("truncated header");
  const size_t n_pk = PublicKeySize(*kem);
  if (n_pk == 0) return MakeError(E2eErrc::kUnsupported, "key config: unknown kem_id " + std::to_string(*kem));
  auto pk = r.Bytes(n_pk);
  auto suites_len = r.U16Be();
  if (!pk.ok() || !suites_len.ok()) return fail("truncated public key");
  // One suite exactly: several would let a client and a server disagree on
  // which one a request uses.
  if (*suites_len != 4) return fail("exactly one cipher suite (length 4) expected");
  auto kdf = r.U16Be();
  auto aead = r.U16Be();
  if (!kdf.ok() || !aead.ok()) return fail("truncated cipher suite");
  if (!r.empty()) return fail("trailing bytes");
  KeyConfig c;
  c.key_id = *key_id;
  c.suite = hpke::Suite{static_cast<hpke::Kem>(*kem), static_cast<hpke::Kdf>(*kdf), static_cast<hpke::Aead>(*aead)};
  if (!KnownSuite(c.suite)) return MakeError(E2eErrc::kUnsupported, "key config: not a cllm-e2e suite");
  c.public_key.assign(pk->begin(), pk->end());
  return c;
}

std::array<uint8_t, 32> KeyConfigDigest(ByteSpan config_bytes) { return crypto::Sha256(config_bytes); }

E2eStatus KeyRing::Add(ByteSpan config_bytes, ByteSpan sk) {
  CLLM_ASSIGN_OR_RETURN(KeyConfig parsed, ParseKeyConfig(config_bytes));
  if (entries_.count(parsed.key_id)) {
    return MakeError(E2eErrc::kMalformed, "key ring: key_id " + std::to_string(parsed.key_id) + " twice");
  }
  auto pk = hpke::PublicKeyFromPrivate(parsed.suite.kem, sk);
  if (!pk.ok() || *pk != parsed.public_key) {
    return MakeError(E2eErrc::kMalformed, "key ring: the private key is not the config's public key");
  }
  Entry e;
  e.suite = parsed.suite;
  e.sk = SecretBytes(sk);
  e.config.assign(config_bytes.begin(), config_bytes.end());
  e.parsed = std::move(parsed);
  entries_.emplace(e.parsed.key_id, std::move(e));
  return OkStatus();
}

E2eResult<const KeyRing::Entry*> KeyRing::Find(uint8_t key_id) const {
  auto it = entries_.find(key_id);
  if (it == entries_.end()) return MakeError(E2eErrc::kKeyUnknown, "no key with key_id " + std::to_string(key_id));
  return &it->second;
}

// ---------------------------------------------------------------------------
// Client: seal
// ---------------------------------------------------------------------------

E2eResult<SealedRequest> SealRequest(const KeyConfig& config, std::string_view path, std::string_view model,
                                     bool stream, std::string_view authorization, std::string_view json,
                                     const ClientIdentity* client) {
  if (!KnownSuite(config.suite)) return MakeError(E2eErrc::kUnsupported, "not a cllm-e2e suite");
  if (path.size() > kMaxPathSize || model.size() > kMaxModelNameSize ||
      authorization.size() > kMaxAuthorizationSize) {
    return MakeError(E2eErrc::kOversized, "path, model or authorization over its limit");
  }
  if (client && (client->token.size() > kMaxClientHeaderSize || client->key_jws.size() > kMaxClientHeaderSize)) {
    return MakeError(E2eErrc::kOversized, "client token or key statement over 16 KiB");
  }
  // 2 + auth + 4 + json, checked (json is the caller's, possibly huge).
  uint64_t content = 0;
  if (!CheckedAdd(6 + authorization.size(), json.size(), &content)) {
    return MakeError(E2eErrc::kOversized, "request too large");
  }
  CLLM_ASSIGN_OR_RETURN(size_t bucket, BucketFor(content));

  SealedRequest out;
  out.fields = RouterFields{std::string(model), stream, bucket};
  const hpke::Mode mode = client ? hpke::Mode::kAuth : hpke::Mode::kBase;
  const Bytes hdr = EncodeHdr(config.key_id, config.suite, mode);
  const Bytes info = RequestInfo(hdr, path, out.fields, client ? client->token : "", client ? client->key_jws : "",
                                 mode);

  // pt = I2OSP(len(auth),2) ‖ auth ‖ I2OSP(len(json),4) ‖ json ‖ zeros (to the bucket)
  SecretBytes pt(bucket);
  uint8_t* p = pt.data();
  p[0] = static_cast<uint8_t>(authorization.size() >> 8);
  p[1] = static_cast<uint8_t>(authorization.size());
  std::copy(authorization.begin(), authorization.end(), p + 2);
  p += 2 + authorization.size();
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(json.size() >> (24 - 8 * i));
  std::copy(json.begin(), json.end(), p + 4);

  auto setup = client ? hpke::SetupAuthS(config.suite, config.public_key, info, client->sk.span())
                      : hpke::SetupBaseS(config.suite, config.public_key, info);
  if (!setup.ok()) return MakeError(E2eErrc::kMalformed, "HPKE setup to the key config: " + setup.detail());
  auto ct = setup->ctx.Seal(ByteSpan(), pt.span());
  if (!ct.ok()) return MakeError(E2eErrc::kInternal, "seal: " + ct.detail());
  CLLM_ASSIGN_OR_RETURN(out.response.secret, ExportResponseSecret(setup->ctx, config.suite));
  out.response.suite = config.suite;
  out.response.enc = setup->enc;

  out.body = hdr;
  Append(out.body, setup->enc);
  Append(out.body, *ct);
  out.headers = {{"Content-Type", kRequestContentType},
                 {"Cllm-E2e-Model", std::string(model)},
                 {"Cllm-E2e-Stream", stream ? "1" : "0"},
                 {"Cllm-E2e-Size", std::to_string(bucket)}};
  if (client) {
    out.headers.emplace_back("Cllm-E2e-Client-Token", client->token);
    out.headers.emplace_back("Cllm-E2e-Client-Key", client->key_jws);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Server: open
// ---------------------------------------------------------------------------

E2eResult<OpenedRequest> OpenRequest(const EncryptedRequest& in, const OpenOptions& options) {
  // 1. The clear headers, which info binds.
  if (in.path.size() > kMaxPathSize) return MakeError(E2eErrc::kOversized, "path over 1024 bytes");
  if (in.model_header.size() > kMaxModelNameSize) return MakeError(E2eErrc::kOversized, "Cllm-E2e-Model over 256 bytes");
  if (in.stream_header != "0" && in.stream_header != "1") {
    return MakeError(E2eErrc::kMalformed, "Cllm-E2e-Stream must be 0 or 1");
  }
  OpenedRequest out;
  out.fields.model = std::string(in.model_header);
  out.fields.stream = in.stream_header == "1";
  CLLM_ASSIGN_OR_RETURN(out.fields.size, ParseSize(in.size_header));

  // 2. hdr. Its suite must be the key's: a client holding an older config
  // for this key_id gets kKeyUnknown and refetches.
  ByteReader r(in.body);
  auto hdr = r.Bytes(kHdrSize);
  if (!hdr.ok()) return MakeError(E2eErrc::kMalformed, "body shorter than its header");
  ByteReader h(*hdr);
  const uint8_t key_id = h.U8().value_or(0);
  const hpke::Suite suite{static_cast<hpke::Kem>(h.U16Be().value_or(0)),
                          static_cast<hpke::Kdf>(h.U16Be().value_or(0)),
                          static_cast<hpke::Aead>(h.U16Be().value_or(0))};
  const uint8_t mode_byte = h.U8().value_or(0xff);
  if (mode_byte != static_cast<uint8_t>(hpke::Mode::kBase) && mode_byte != static_cast<uint8_t>(hpke::Mode::kAuth)) {
    return MakeError(E2eErrc::kMalformed, "mode must be 0 (base) or 2 (auth)");
  }
  out.mode = static_cast<hpke::Mode>(mode_byte);
  if (options.keys == nullptr) return MakeError(E2eErrc::kKeyUnknown, "this server holds no e2e key");
  CLLM_ASSIGN_OR_RETURN(const KeyRing::Entry* key, options.keys->Find(key_id));
  if (!SameSuite(key->suite, suite)) {
    return MakeError(E2eErrc::kKeyUnknown, "key_id " + std::to_string(key_id) + " is not of this suite");
  }

  // 3. Who may send: mutual mode checks the client BEFORE any decryption.
  const bool auth = out.mode == hpke::Mode::kAuth;
  if (!auth && options.require_client_token) {
    return MakeError(E2eErrc::kClientToken, "this server requires a client token (mutual mode)");
  }
  if (!auth && (!in.client_token.empty() || !in.client_key.empty())) {
    return MakeError(E2eErrc::kMalformed, "client token headers in base mode");
  }
  Bytes pk_s;
  if (auth) {
    if (in.client_token.empty() || in.client_key.empty()) {
      return MakeError(E2eErrc::kClientToken, "auth mode without Cllm-E2e-Client-Token and Cllm-E2e-Client-Key");
    }
    if (in.client_token.size() > kMaxClientHeaderSize || in.client_key.size() > kMaxClientHeaderSize) {
      return MakeError(E2eErrc::kClientToken, "client token or key statement over 16 KiB");
    }
    if (!options.client_verifier) return MakeError(E2eErrc::kClientToken, "this server takes no client tokens");
    auto verified = options.client_verifier(in.client_token, in.client_key, suite);
    if (!verified.ok()) return MakeError(E2eErrc::kClientToken, verified.detail());
    pk_s = std::move(verified).value();
  }

  // 4. Sizes: the body is exactly hdr ‖ enc ‖ ct of a bucket-sized plaintext.
  auto sizes = hpke::SuiteSizes(suite);
  if (!sizes.ok()) return MakeError(E2eErrc::kUnsupported, sizes.detail());
  if (r.remaining() != sizes->n_enc + out.fields.size + sizes->n_t) {
    return MakeError(E2eErrc::kMalformed, "body length does not match Cllm-E2e-Size");
  }
  ByteSpan enc = r.Bytes(sizes->n_enc).value();
  ByteSpan ct = r.rest();

  // 5. Decrypt.
  const Bytes info = RequestInfo(*hdr, in.path, out.fields, in.client_token, in.client_key, out.mode);
  // The ring checked the pair when the key was added: no pk(skR) per request.
  const hpke::RecipientKey recipient{key->sk.span(), key->parsed.public_key};
  auto ctx = auth ? hpke::SetupAuthR(suite, enc, recipient, info, pk_s) : hpke::SetupBaseR(suite, enc, recipient, info);
  if (!ctx.ok()) return MakeError(E2eErrc::kDecryptFailed, "HPKE setup failed");
  auto pt = ctx->Open(ByteSpan(), ct);
  if (!pt.ok()) return MakeError(E2eErrc::kDecryptFailed, "the request does not decrypt");

  // 6. The padded plaintext.
  ByteReader p(pt->span());
  auto auth_len = p.U16Be();
  if (!auth_len.ok() || *auth_len > kMaxAuthorizationSize) return MakeError(E2eErrc::kMalformed, "authorization length");
  auto auth_value = p.String(*auth_len);
  if (!auth_value.ok()) return MakeError(E2eErrc::kMalformed, "authorization past the plaintext");
  auto json_len = p.U32Be();
  if (!json_len.ok()) return MakeError(E2eErrc::kMalformed, "plaintext shorter than its lengths");
  auto json = p.String(*json_len);
  if (!json.ok()) return MakeError(E2eErrc::kMalformed, "JSON length past the plaintext");
  // Padding must be zero: nothing can ride in it unnoticed.
  uint8_t acc = 0;
  for (uint8_t b : p.rest()) acc |= b;
  if (acc != 0) return MakeError(E2eErrc::kMalformed, "non-zero padding");
  // The bucket is the smallest that fits, so the size says no more than needed.
  auto want = BucketFor(6 + uint64_t{*auth_len} + *json_len);
  if (!want.ok() || *want != out.fields.size) return MakeError(E2eErrc::kMalformed, "padded past the smallest bucket");
  out.authorization = std::string(*auth_value);
  out.json = std::string(*json);
  CLLM_ASSIGN_OR_RETURN(out.response.secret, ExportResponseSecret(*ctx, suite));
  out.response.suite = suite;
  out.response.enc.assign(enc.begin(), enc.end());
  return out;
}

}  // namespace cllm::channel::e2e
