// `cllm attest https://HOST:PORT` and `cllm chat https://HOST:PORT`: talk to
// a cllm server only after its RA-TLS evidence verified against a policy.
//
// Both refuse a genuine server whose launch measurement or model digest the
// policy does not pin (attestation/pinning.h) unless --insecure-accept-unpinned.
//
// `cllm chat` takes several replica URLs (or one relay address): a request
// that fails before any response byte goes to another replica, verified
// first; an answer cut off mid-stream is an error, never retried
// (client/failover_client.h).
//
// Exit codes: 0 ok; 1 the server was refused (attestation, policy, not
// pinned) or answered with an error; 2 usage, connection or input error;
// 3 the answer was cut off mid-stream (what arrived was printed, the rest is
// missing).
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "apps/cllm/command.h"
#include "apps/cllm/e2e_common.h"
#include "apps/cllm/remote_common.h"
#include "apps/cllm/split_common.h"
#include "base/encoding.h"
#include "base/utf8.h"
#include "base/time.h"
#include "client/failover_client.h"
#include "client/sse.h"
#include "trust/token_claims.h"
#include "trust/trust_client.h"

namespace cllm::app {
namespace {

using nlohmann::json;

struct RemoteArgs {
  std::string url;
  std::vector<std::string> urls;  // chat: replicas (repeated, comma lists)
  int attempts = 0;               // chat: --attempts
  std::string policy;
  bool json = false;
  bool accept_unpinned = false;  // --insecure-accept-unpinned
  // token mode: accept the server on its cllm-trust token
  bool via_token = false;
  std::string trust_url, trust_ca;
  std::vector<std::string> token_policies;  // --token-policy: cllm-trust policies whose tokens count
  // chat
  std::string api_key;
  std::string model;
  std::string prompt;
  std::string system;
  int max_tokens = 256;
  double temperature = 0.7;
  TimeoutArgs timeouts;  // --connect-timeout, --timeout
  // chat --e2e: bodies sealed to the fleet key (e2e_common.h)
  bool e2e = false;
  std::string suite = "x25519", upstream_ca;
  E2eArgs e2e_client;  // --client-tee, --client-sim-key, --client-token-policy (mutual mode)
  // chat --split: user turns go as noisy embedding rows (split_common.h)
  SplitArgs split;
};

// ChatTemplateClaim: "model" (the model's own template, covered by the model
// digest) or the SHA-256 of the host-supplied one the policy accepted.
std::string ChatTemplateClaim(const channel::ServingClaims& s) {
  return s.chat_template_digest ? HexEncode(*s.chat_template_digest) : "model";
}

// Consent says whether the user's `policy` accepts one serving claim, the
// member `claim` of `s`, on its own (the others at values it accepts: its
// padding floor may be above the default): "accepted by the policy" or
// "REFUSED by the policy". Without a policy (the token path, which only gets
// here accepted) it is accepted.
using Serving = channel::ServingClaims;
template <typename T>
std::string Consent(const attestation::Policy* policy, const Serving& s, T Serving::*claim) {
  if (policy == nullptr) return "accepted by the policy";
  Serving one;
  one.stream_pad = std::max(policy->min_stream_pad, channel::kDefaultStreamPad);
  one.stream_coalesce_ms = policy->min_stream_coalesce_ms;
  one.*claim = s.*claim;
  return channel::CheckServing(one, *policy).ok() ? "accepted by the policy" : "REFUSED by the policy";
}

// PaddingText describes a server's TLS record padding block (--stream-pad).
std::string PaddingText(const Serving& s, const attestation::Policy* policy) {
  const uint32_t pad = s.stream_pad;
  const std::string consent = Consent(policy, s, &Serving::stream_pad);
  if (pad == 0) return "OFF (" + consent + "): the network sees each streamed token's length";
  std::string out = std::to_string(pad) + "-byte blocks";
  if (pad < channel::kDefaultStreamPad) return out + " (below the default 512, " + consent + ")";
  if (policy != nullptr && pad < policy->min_stream_pad) {
    return out + " (below the policy's min_stream_pad " + std::to_string(policy->min_stream_pad) + ", " + consent + ")";
  }
  return out;
}

// TimingText describes how a server sends streamed text (--stream-coalesce-ms).
std::string TimingText(const Serving& s, const attestation::Policy* policy) {
  const std::string consent = Consent(policy, s, &Serving::stream_coalesce_ms);
  if (s.stream_coalesce_ms == 0) {
    return "token by token (" + consent + "): the network sees when each streamed token is made";
  }
  return "held and sent every " + std::to_string(s.stream_coalesce_ms) + " ms (--stream-coalesce-ms, " + consent +
         "): per-token timing hidden";
}

// ObserversText says who besides the user sees the server's work: a plain
// listener (--debug-listen) and /metrics readers (--metrics-keys).
std::string ObserversText(const Serving& s, const attestation::Policy* policy) {
  const bool metrics = !s.metrics_readers.empty();
  if (!s.debug_listener && !metrics) return "attested listener only; /metrics closed";
  std::string out;
  if (s.debug_listener) {
    out = "ALSO PLAIN HTTP (--debug-listen, " + Consent(policy, s, &Serving::debug_listener) +
          "): unattested" + (metrics ? "" : ", /metrics open there");
  }
  if (metrics) {
    std::string keys;
    for (const auto& d : s.metrics_readers) keys += (keys.empty() ? "" : ", ") + HexEncode(d).substr(0, 16) + "…";
    out += std::string(out.empty() ? "" : "; ") + "/metrics for the holders of " +
           std::to_string(s.metrics_readers.size()) + " key(s) (--metrics-keys, SHA-256 " + keys + "; " +
           Consent(policy, s, &Serving::metrics_readers) + ")";
  }
  return out;
}

json ServerJson(const channel::VerifiedServer& s) {
  const auto& c = s.claims;
  return {{"platform", attestation::PlatformName(c.platform())},
          {"simulated", c.simulated()},
          {"measurement", HexEncode(c.measurement())},
          {"tcb_status", attestation::TcbStatusName(c.tcb_status())},
          {"debug", c.debug()},
          {"binary_digest", HexEncode(s.payload.binary_digest)},
          {"model_digest", HexEncode(s.payload.model_digest)},
          {"model_name", s.payload.model_name},
          {"chat_template", ChatTemplateClaim(s.payload.serving)},
          {"model_from_untrusted_disk", s.payload.serving.model_from_untrusted_disk},
          {"memory_locked", !s.payload.serving.memory_unlocked},
          {"stream_pad", s.payload.serving.stream_pad},
          {"stream_coalesce_ms", s.payload.serving.stream_coalesce_ms},
          {"debug_listener", s.payload.serving.debug_listener},
          {"metrics_keys", !s.payload.serving.metrics_readers.empty()},
          {"metrics_readers", trust::MetricsReadersClaim(s.payload.serving)},
          {"tls_key_sha256", HexEncode(s.spki_sha256)}};
}

// What the client established about the server, either way.
struct ServerView {
  std::string platform, model_name, model_digest, binary_digest;
  bool simulated = true;
};

// ConnectViaToken verifies the server on its cllm-trust token: JWKS from
// the pinned service, then the token check in the handshake.
OrExit<trust::TokenConnection> ConnectWithToken(const RemoteArgs& a, attestation::Policy policy,
                                                const client::Url& url) {
  if (a.trust_url.empty() || a.trust_ca.empty()) {
    return ExitWith(Fail("--via-token needs --trust URL and --trust-ca FILE (the cllm-trust you rely on)", 2));
  }
  // --token-policy adds to the policy file's "token_policies".
  policy.token_policies.insert(policy.token_policies.end(), a.token_policies.begin(), a.token_policies.end());
  auto ep = trust::LoadTrustEndpoint(a.trust_url, a.trust_ca);
  if (!ep.ok()) return ExitWith(Fail(ep.detail(), 2));
  auto jwks = trust::FetchJwks(*ep);
  if (!jwks.ok()) return ExitWith(Fail("cllm-trust JWKS: " + jwks.detail(), 2));
  auto tc = trust::ConnectViaToken(url, *jwks, policy);
  if (!tc.ok()) {
    return ExitWith(Fail(std::string(client::ClientErrcName(tc.code())) + ": " + tc.detail(),
                         tc.code() == client::ClientErrc::kAttestation ? 1 : 2));
  }
  return std::move(tc).value();
}

ServerView ViewOf(const trust::TokenVerifiedServer& s) {
  return {attestation::PlatformName(s.appraised.platform()), s.payload.model_name, HexEncode(s.payload.model_digest),
          HexEncode(s.payload.binary_digest), s.appraised.simulated()};
}

int AttestViaToken(const RemoteArgs& a, const attestation::Policy& policy, const client::Url& url) {
  CLLM_ASSIGN_OR_EXIT(auto tc, ConnectWithToken(a, policy, url));
  const json& c = tc.server.claims;
  if (a.json) {
    std::printf("%s\n", json{{"url", a.url}, {"verdict", "ok"}, {"mode", "token"}, {"tls", tc.conn->TlsDescription()},
                             {"token_claims", c}}.dump(2).c_str());
    return 0;
  }
  std::printf("server: %s (%s)\n", a.url.c_str(), tc.conn->TlsDescription().c_str());
  std::printf("  ✓ cllm-trust token verified (issuer %s at %s) and bound to the TLS key%s\n",
              c.value("iss", "").c_str(), a.trust_url.c_str(), c.value("simulated", true) ? " [SIMULATED TEE]" : "");
  std::printf("\n  platform       %s%s\n", c.value("tee", "").c_str(), c.value("simulated", true) ? " (SIMULATED)" : "");
  const auto& ap = tc.server.appraised;  // the token's claims as our policy appraised them
  std::printf("  measurement    %s\n  tcb_status     %s\n  debug          %s\n", HexEncode(ap.measurement()).c_str(),
              attestation::TcbStatusName(ap.tcb_status()), ap.debug() ? "true" : "false");
  for (const auto& [component, svn] : ap.tcb()) std::printf("  tcb            %s = %llu\n", component.c_str(),
                                                             static_cast<unsigned long long>(svn));
  std::printf("  binary digest  %s\n  model          %s\n  model digest   %s\n", c.value("binary_digest", "").c_str(),
              c.value("model_name", "").c_str(), c.value("model_digest", "").c_str());
  const auto& templ = tc.server.payload.serving.chat_template_digest;
  std::printf("  chat template  %s\n", templ ? (HexEncode(*templ) + " (supplied by the host, accepted by the policy)").c_str()
                                              : "the model's own");
  if (tc.server.payload.serving.model_from_untrusted_disk) {
    std::printf("  model loading  MAPPED FROM AN UNTRUSTED DISK (accepted by the policy)\n");
  }
  if (tc.server.payload.serving.memory_unlocked) {
    std::printf("  memory         NOT LOCKED (accepted by the policy)\n");
  }
  std::printf("  record padding %s\n", PaddingText(tc.server.payload.serving, nullptr).c_str());
  std::printf("  stream timing  %s\n", TimingText(tc.server.payload.serving, nullptr).c_str());
  std::printf("  listeners      %s\n", ObserversText(tc.server.payload.serving, nullptr).c_str());
  std::printf("  token          %s, cllm-trust policy %s, expires %s\n", c.value("jti", "").c_str(),
              c.value("policy", "").c_str(),
              FormatUtcTime(TimePoint(std::chrono::seconds(c.value("exp", int64_t{0})))).c_str());
  std::printf("\nverdict: OK via cllm-trust token%s\n", c.value("simulated", true) ? " (SIMULATED TEE)" : "");
  return 0;
}

// CheckTokenFlags refuses --token-policy without --via-token (it would be
// silently ignored by local evidence verification).
int CheckTokenFlags(const RemoteArgs& a) {
  if (!a.token_policies.empty() && !a.via_token) {
    return Fail("--token-policy applies to --via-token (the cllm-trust policy a token was appraised under)", 2);
  }
  return 0;
}

attestation::PinningSubject SubjectOf(const channel::VerifiedServer& s) {
  return attestation::SubjectOf(s.claims, Bytes(s.payload.model_digest.begin(), s.payload.model_digest.end()));
}

// E2eArgsOf gathers the --e2e flags of attest and chat (their own --suite,
// --trust, --trust-ca, --upstream-ca and the mutual-mode flags).
E2eArgs E2eArgsOf(const RemoteArgs& a) {
  E2eArgs e = a.e2e_client;
  e.enabled = true;
  e.suite = a.suite;
  e.trust_url = a.trust_url;
  e.trust_ca = a.trust_ca;
  e.upstream_ca = a.upstream_ca;
  return e;
}

// AttestE2e is `cllm attest --e2e URL`: what a client of encrypted bodies
// relies on — the fleet key list the URL serves, each statement verified
// under cllm-trust's JWKS and each release policy held against the client
// policy — explained, with the key requests would be sealed to.
int AttestE2e(const RemoteArgs& a, const attestation::Policy& policy) {
  auto parsed = client::ParseUrl(a.url);
  if (!parsed.ok()) return Fail(parsed.detail(), 2);
  E2eArgs e = E2eArgsOf(a);
  e.client_tee.clear();  // explaining needs no client attestation
  std::printf("fleet keys served by %s, verified under cllm-trust %s:\n", a.url.c_str(), a.trust_url.c_str());
  CLLM_ASSIGN_OR_EXIT(E2eSetup setup, MakeE2e(e, policy, {*parsed}, a.timeouts.Options()));
  for (const auto& line : setup.explanation) std::printf("  %s\n", line.c_str());
  std::printf("\nverdict: OK — requests would be sealed to fleet key %u (suite %s); only replicas whose tokens "
              "satisfy its release policy, which is at least as strict as this client policy, can open them%s\n",
              static_cast<unsigned>(setup.session->current().key_id), a.suite.c_str(),
              policy.insecure_accept_unpinned ? " (UNPINNED: not checked against pinned values)" : "");
  return 0;
}

int AttestServer(const RemoteArgs& a) {
  if (a.e2e) {
    CLLM_ASSIGN_OR_EXIT(auto e2e_policy, LoadClientPolicy(a.policy, a.accept_unpinned));
    return AttestE2e(a, e2e_policy);
  }
  if (int rc = CheckTokenFlags(a); rc != 0) return rc;
  CLLM_ASSIGN_OR_EXIT(auto policy, LoadClientPolicy(a.policy, a.accept_unpinned));
  if (a.via_token) {
    CLLM_ASSIGN_OR_EXIT(auto u, ParseServerUrl(a.url));
    return AttestViaToken(a, policy, u);
  }
  CLLM_ASSIGN_OR_EXIT(auto url, ParseServerUrl(a.url));
  // `cllm attest URL` explains what the server is even when the policy does
  // not pin it (that is how one learns what to compare with the published
  // reference values); the pinning verdict comes at the end. It sends only
  // the nonce request, nothing confidential.
  attestation::Policy explain = policy;
  explain.insecure_accept_unpinned = true;
  explain.explain_serving = true;  // shown below, then appraised with `policy`
  auto conn = client::Connect(url, explain, nullptr, a.timeouts.Options());
  json out = {{"url", a.url}};
  if (!conn.ok()) {
    out["verdict"] = "refused";
    const std::string detail = EscapeForDisplay(conn.detail());  // may quote the server's bytes
    out["error"] = {{"code", client::ClientErrcName(conn.code())}, {"detail", detail}};
    if (a.json) {
      std::printf("%s\n", out.dump(2).c_str());
    } else {
      std::printf("server: %s\n  ✗ %s: %s\n\nverdict: REFUSED\n", a.url.c_str(), client::ClientErrcName(conn.code()),
                  detail.c_str());
    }
    return conn.code() == client::ClientErrc::kAttestation ? 1 : 2;
  }
  const auto& s = *(*conn)->server();
  // A second, nonce-bound check: evidence produced now, for this connection's key.
  auto fresh = client::FetchAttestation(**conn, explain);
  // The pinning verdict (attestation/pinning.h), unless the user opted out.
  std::vector<attestation::UnpinnedValue> unpinned;
  attestation::AttestStatus pinning = OkStatus();
  if (!policy.insecure_accept_unpinned) {
    unpinned = attestation::FindUnpinned(policy, SubjectOf(s));
    pinning = attestation::CheckPinned(policy, SubjectOf(s));
  }
  // The serving claims (a host template, the model's loading, memory,
  // padding, listeners) under the user's policy.
  auto serving_verdict = channel::CheckServing(s.payload.serving, policy);
  // The fresh evidence (made now, for our nonce) must claim what the
  // certificate does: it was verified with the explain policy too.
  if (fresh.ok() && !(fresh->payload.serving == s.payload.serving)) {
    fresh = MakeError(client::ClientErrc::kAttestation,
                      "the fresh evidence's serving claims differ from the certificate's");
  }
  const bool ok = fresh.ok() && pinning.ok() && serving_verdict.ok();
  out["server"] = ServerJson(s);
  out["tls"] = (*conn)->TlsDescription();
  out["fresh_evidence"] = fresh.ok() ? json("verified") : json(fresh.detail());
  out["pinning"] = policy.insecure_accept_unpinned ? json("not enforced (--insecure-accept-unpinned)")
                                                   : json(pinning.ok() ? "pinned" : "not pinned");
  out["verdict"] = ok ? "ok" : "refused";
  out["serving"] = serving_verdict.ok() ? json("accepted") : json(serving_verdict.detail());
  // "error" is the first failure in the text verdict's order: fresh evidence,
  // serving claims, pinning.
  if (!fresh.ok()) {
    out["error"] = {{"code", client::ClientErrcName(fresh.code())}, {"detail", fresh.detail()}};
  } else if (!serving_verdict.ok()) {
    out["error"] = {{"code", channel::ChannelErrcName(serving_verdict.code())}, {"detail", serving_verdict.detail()}};
  } else if (!pinning.ok()) {
    out["error"] = {{"code", "not_pinned"}, {"detail", pinning.detail()}};
  }
  if (a.json) {
    std::printf("%s\n", out.dump(2).c_str());
    return ok ? 0 : 1;
  }
  const auto& c = s.claims;
  std::printf("server: %s (%s)\n", a.url.c_str(), (*conn)->TlsDescription().c_str());
  std::printf("  ✓ certificate evidence verified and bound to the TLS key%s\n",
              c.simulated() ? " [SIMULATED TEE — not hardware]" : "");
  std::printf("  %s fresh evidence for our nonce: %s\n", fresh.ok() ? "✓" : "✗",
              fresh.ok() ? "verified" : fresh.detail().c_str());
  std::printf("\n  platform       %s%s\n", attestation::PlatformName(c.platform()), c.simulated() ? " (SIMULATED)" : "");
  std::printf("  measurement    %s\n", HexEncode(c.measurement()).c_str());
  std::printf("  tcb_status     %s\n", attestation::TcbStatusName(c.tcb_status()));
  std::printf("  debug          %s\n", c.debug() ? "true" : "false");
  std::printf("  binary digest  %s\n", HexEncode(s.payload.binary_digest).c_str());
  std::printf("  model          %s\n  model digest   %s\n", s.payload.model_name.c_str(),
              HexEncode(s.payload.model_digest).c_str());
  const channel::ServingClaims& serving = s.payload.serving;
  std::printf("  chat template  %s\n", serving.chat_template_digest
                                           ? (HexEncode(*serving.chat_template_digest) + " (supplied by the host, " +
                                              Consent(&policy, serving, &Serving::chat_template_digest) + ")").c_str()
                                           : "the model's own");
  std::printf("  model loading  %s\n", serving.model_from_untrusted_disk
                                           ? ("MAPPED FROM AN UNTRUSTED DISK (" +
                                              Consent(&policy, serving, &Serving::model_from_untrusted_disk) +
                                              "): the model digest does not prove the bytes served").c_str()
                                           : "read once into memory: the model digest is of the bytes served");
  std::printf("  memory         %s\n", serving.memory_unlocked
                                           ? ("NOT LOCKED (" + Consent(&policy, serving, &Serving::memory_unlocked) +
                                              "): prompts may be swapped to the host's disk").c_str()
                                           : "locked: never swapped to the host's disk");
  std::printf("  record padding %s\n", PaddingText(serving, &policy).c_str());
  std::printf("  stream timing  %s\n", TimingText(serving, &policy).c_str());
  std::printf("  listeners      %s\n", ObserversText(serving, &policy).c_str());
  if (!serving_verdict.ok()) std::printf("  ✗ %s\n", serving_verdict.detail().c_str());
  std::printf("\npinning:\n");
  if (policy.insecure_accept_unpinned) {
    std::printf("  ! NOT ENFORCED (%s): any genuine TEE with any code and model is accepted\n",
                attestation::kUnpinnedOptOutFlag);
  } else if (unpinned.empty()) {
    std::printf("  ✓ launch measurement%s and model digest pinned by the policy and matched\n",
                c.simulated() ? " (not required for the simulated TEE)" : "");
  }
  for (const auto& u : unpinned) {
    std::printf("  ✗ %s is not pinned: the server reported %s\n      %s\n", u.name.c_str(),
                u.seen.empty() ? "(no value)" : u.seen.c_str(), u.how.c_str());
  }
  if (policy.binary_digests.empty()) {
    std::printf("  ! the policy pins no binary digest: any server build inside the measured image is accepted\n");
  }
  const char* verdict = !fresh.ok() ? "REFUSED"
                        : !serving_verdict.ok() ? "REFUSED (serving claims not accepted by the policy)"
                        : !pinning.ok() ? (c.simulated() ? "REFUSED (not pinned; SIMULATED TEE)"
                                                         : "REFUSED (not pinned: genuine TEE, unknown code or model)")
                        : policy.insecure_accept_unpinned ? "ACCEPTED UNPINNED (INSECURE)"
                        : c.simulated() ? "OK (SIMULATED TEE)"
                                        : "OK";
  std::printf("\nverdict: %s\n", verdict);
  return ok ? 0 : 1;
}

// StreamChat sends the conversation and prints the reply as it streams;
// returns the full reply text.
ClientResultOrExit<std::string> StreamChat(client::FailoverClient& fc, const RemoteArgs& a, const json& messages,
                                           const std::string& model, client::E2eSession* e2e = nullptr) {
  json req = {{"model", model}, {"messages", messages}, {"stream", true}, {"max_tokens", a.max_tokens},
              {"temperature", a.temperature}};
  std::map<std::string, std::string> headers;
  if (!a.api_key.empty()) headers["Authorization"] = "Bearer " + a.api_key;
  client::SseParser sse;
  std::string reply;
  // With --e2e the same request goes sealed (and the API key inside it).
  auto send = [&](const client::BodyCallback& on_body) {
    if (e2e != nullptr) {
      return client::E2eExchange(fc, *e2e, "/v1/chat/completions", req.dump(),
                                 a.api_key.empty() ? "" : "Bearer " + a.api_key, on_body);
    }
    return fc.Request("POST", "/v1/chat/completions", req.dump(), headers, on_body);
  };
  auto r = send([&](std::string_view bytes) {
    return sse.Feed(bytes, [&](const client::SseEvent& event) {
      const client::CompletionEvent e = client::ClassifyCompletionEvent(event);
      if (e.kind == client::CompletionEvent::Kind::kError) {
        std::fprintf(stderr, "\n[server error: %s]\n", e.text.c_str());
      } else if (e.kind == client::CompletionEvent::Kind::kText && !e.text.empty()) {
        reply += e.text;
        std::fwrite(e.text.data(), 1, e.text.size(), stdout);
        std::fflush(stdout);
      }
    });
  });
  if (!r.ok()) {
    if (r.code() == client::ClientErrc::kIncomplete) {
      std::printf("\n");
      std::fflush(stdout);
      return ExitWith(Fail(r.detail(), 3));
    }
    // A sealed request the replica refused (a clear e2e error: key, client token) is
    // a refusal like a non-200 answer: exit 1.
    const bool refused = r.code() == client::ClientErrc::kAttestation ||
                         (e2e != nullptr && r.code() == client::ClientErrc::kHttp);
    return ExitWith(Fail(std::string(client::ClientErrcName(r.code())) + ": " + r.detail(), refused ? 1 : 2));
  }
  if (r->status != 200) {
    auto j = json::parse(r->body, nullptr, false);
    std::string msg = !j.is_discarded() && j.contains("error") && j["error"].is_object() &&
                              j["error"].contains("message") && j["error"]["message"].is_string()
                          ? j["error"]["message"].get<std::string>()
                          : r->body;
    return ExitWith(Fail("server answered " + std::to_string(r->status) + ": " + msg, 1));
  }
  std::printf("\n");
  return reply;
}

// SplitTurn is what a user turn carries under --split: one prompt_embeds
// part (no text part), built here, with the privacy it spent printed to
// stderr. The history keeps these parts, so later requests resend the same
// rows: no fresh noise for the server to average, no budget spent again.
struct SplitTurns {
  SplitSetup* setup = nullptr;
  split::SystemRandom random;
  double spent = 0;  // ε over the session so far
};

OrExit<json> UserContent(const std::string& text, SplitTurns* split) {
  if (split == nullptr || split->setup == nullptr) return json(text);
  SplitSetup& s = *split->setup;
  auto e = split::EmbedText(*s.model, text, /*add_bos=*/false, s.options, s.policy, split->random);
  if (!e.ok()) return ExitWith(Fail("--split: " + e.detail(), 2));
  split->spent += e->epsilon_total;
  std::fprintf(stderr, "[split: %u tokens embedded here, %u perturbed at ε = %s (k = %u): this message spends ε = %s; "
               "session total ε = %s]\n", e->n_rows, e->num_perturbed, EpsilonText(s.options.epsilon).c_str(),
               s.options.k, EpsilonText(e->epsilon_total).c_str(), EpsilonText(split->spent).c_str());
  return json::array({split::PromptEmbedsPart(*e)});
}

// RunConversation runs the one-shot or interactive chat over `fc`.
int RunConversation(client::FailoverClient& fc, const RemoteArgs& a, const std::string& model,
                    client::E2eSession* e2e, SplitSetup* split_setup) {
  SplitTurns split;
  split.setup = split_setup;
  SplitTurns* turns = split_setup != nullptr ? &split : nullptr;
  json messages = json::array();
  if (!a.system.empty()) messages.push_back({{"role", "system"}, {"content", a.system}});
  if (!a.prompt.empty()) {  // one-shot
    CLLM_ASSIGN_OR_EXIT(json content, UserContent(a.prompt, turns));
    messages.push_back({{"role", "user"}, {"content", std::move(content)}});
    auto reply = StreamChat(fc, a, messages, model, e2e);
    return reply.ok() ? 0 : reply.exit_code();
  }
  const bool tty = ::isatty(STDIN_FILENO);
  if (tty) std::fprintf(stderr, "type a message and press Enter; an empty line or Ctrl-D ends the chat\n");
  std::string line;
  for (;;) {
    if (tty) std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line) || (tty && line.empty())) break;
    if (line.empty()) continue;
    CLLM_ASSIGN_OR_EXIT(json content, UserContent(line, turns));
    messages.push_back({{"role", "user"}, {"content", std::move(content)}});
    auto reply = StreamChat(fc, a, messages, model, e2e);
    if (!reply.ok()) return reply.exit_code();
    messages.push_back({{"role", "assistant"}, {"content", *reply}});
  }
  return 0;
}

// ChatE2e is `cllm chat --e2e URL`: the URL is any HTTP endpoint in front of
// the replicas (a TLS-terminating gateway); what is verified before the
// first message is the fleet key list (e2e_common.h).
int ChatE2e(const RemoteArgs& a, const attestation::Policy& policy, SplitSetup* split) {
  auto parsed = client::ParseReplicaUrls(a.urls);
  if (!parsed.ok()) return Fail(parsed.detail(), 2);
  std::vector<client::Url> urls = std::move(parsed).value();
  const net::ClientOptions options = a.timeouts.Options();
  E2eArgs e = E2eArgsOf(a);
  CLLM_ASSIGN_OR_EXIT(E2eSetup setup, MakeE2e(e, policy, urls, options));
  client::FailoverOptions fo;
  fo.max_attempts = a.attempts;
  auto replicas = std::make_shared<client::ReplicaSet>(std::move(urls), fo);
  client::FailoverClient fc(replicas, [roots = setup.upstream_roots, options](const client::Url& url) {
    return ConnectE2eUpstream(url, roots, options);
  });
  std::fprintf(stderr, "sealing every message end to end (e2e, suite %s%s) to fleet key %u — verified:\n",
               a.suite.c_str(), setup.mutual ? ", mutual: HPKE auth mode with this client's attested key" : "",
               static_cast<unsigned>(setup.session->current().key_id));
  for (const auto& line : setup.explanation) std::fprintf(stderr, "  %s\n", line.c_str());
  if (policy.insecure_accept_unpinned) {
    std::fprintf(stderr, "  UNPINNED: the release policy was NOT checked against pinned values\n");
  }
  return RunConversation(fc, a, a.model, setup.session.get(), split);
}

int Chat(RemoteArgs a) {
  if (a.api_key.empty()) {
    if (const char* k = std::getenv("CLLM_API_KEY")) a.api_key = k;
  }
  // --split: the embeddings are loaded (and the flags checked) before any
  // connection, so a wrong file fails fast.
  std::optional<SplitSetup> split_setup;
  if (a.split.enabled) {
    CLLM_ASSIGN_OR_EXIT(SplitSetup s, LoadSplit(a.split, {a.trust_url, a.trust_ca, a.e2e_client.client_tee, a.e2e_client.client_sim_key}));
    split_setup = std::move(s);
    std::fprintf(stderr, "split inference: user turns are embedded here and sent as rows only — %s%s\n",
                 split_setup->description.c_str(),
                 a.system.empty() ? "" : "; the --system message is sent as text");
  } else if (!a.split.epsilon.empty() || !a.split.embeddings.empty()) {
    return Fail("--epsilon and --split-embeddings apply to --split", 2);
  }
  SplitSetup* split = split_setup ? &*split_setup : nullptr;
  if (a.e2e) {
    if (a.via_token) return Fail("--e2e and --via-token are two different ways to reach the fleet; choose one", 2);
    CLLM_ASSIGN_OR_EXIT(auto e2e_policy, LoadClientPolicy(a.policy, a.accept_unpinned));
    return ChatE2e(a, e2e_policy, split);
  }
  if (int rc = CheckTokenFlags(a); rc != 0) return rc;
  CLLM_ASSIGN_OR_EXIT(auto policy, LoadClientPolicy(a.policy, a.accept_unpinned));
  CLLM_ASSIGN_OR_EXIT(auto urls, ParseServerUrls(a.urls));
  client::FailoverOptions fo;
  fo.max_attempts = a.attempts;
  auto replicas = std::make_shared<client::ReplicaSet>(std::move(urls), fo);
  // Every new connection, to whichever replica, is verified in its own
  // handshake: on its evidence, or on its cllm-trust token.
  ServerView v;
  client::Connector connector;
  nlohmann::json jwks;
  if (a.via_token) {
    if (a.trust_url.empty() || a.trust_ca.empty()) {
      return Fail("--via-token needs --trust URL and --trust-ca FILE (the cllm-trust you rely on)", 2);
    }
    policy.token_policies.insert(policy.token_policies.end(), a.token_policies.begin(), a.token_policies.end());
    auto ep = trust::LoadTrustEndpoint(a.trust_url, a.trust_ca);
    if (!ep.ok()) return Fail(ep.detail(), 2);
    auto j = trust::FetchJwks(*ep);
    if (!j.ok()) return Fail("cllm-trust JWKS: " + j.detail(), 2);
    jwks = std::move(j).value();
    connector = [&](const client::Url& url) -> client::ClientResult<std::unique_ptr<client::Connection>> {
      CLLM_ASSIGN_OR_RETURN(auto tc, trust::ConnectViaToken(url, jwks, policy));
      v = ViewOf(tc.server);
      return std::move(tc.conn);
    };
  } else {
    const net::ClientOptions options = a.timeouts.Options();
    connector = [&, options](const client::Url& url) -> client::ClientResult<std::unique_ptr<client::Connection>> {
      CLLM_ASSIGN_OR_RETURN(auto c, client::Connect(url, policy, nullptr, options));
      const auto& s = *c->server();
      v = {attestation::PlatformName(s.claims.platform()), s.payload.model_name, HexEncode(s.payload.model_digest),
           HexEncode(s.payload.binary_digest), s.claims.simulated()};
      return c;
    };
  }
  client::FailoverClient fc(replicas, connector);
  auto first = fc.Connect();
  if (!first.ok()) return Fail(std::string(client::ClientErrcName(first.code())) + ": " + first.detail(),
                               first.code() == client::ClientErrc::kAttestation ? 1 : 2);
  fc.OnSwitch([&](const std::string& replica, const std::string& why) {
    std::fprintf(stderr, "cllm: failed before answering: %s; continuing on %s (verified: %s, model %s)\n",
                 why.c_str(), replica.c_str(), v.platform.c_str(), v.model_name.c_str());
  });
  // "TEE verified" only when the policy pinned what it runs; with the opt-out
  // the line says so.
  std::string what = v.simulated ? " [SIMULATED TEE — not hardware]" : " TEE verified (measurement and model pinned)";
  if (policy.insecure_accept_unpinned) {
    what = v.simulated ? " [SIMULATED TEE — not hardware], UNPINNED: model NOT verified"
                       : " genuine TEE, UNPINNED: code and model NOT verified";
  }
  std::fprintf(stderr, "connected to %s — %s%s, model %s (digest %s…), binary %s…%s%s\n", fc.replica().c_str(),
               v.platform.c_str(), what.c_str(), v.model_name.c_str(), v.model_digest.substr(0, 16).c_str(),
               v.binary_digest.substr(0, 16).c_str(), a.via_token ? " (via cllm-trust token)" : "",
               replicas->size() > 1 ? (", failover across " + std::to_string(replicas->size()) + " replicas").c_str()
                                    : "");
  return RunConversation(fc, a, a.model.empty() ? v.model_name : a.model, nullptr, split);
}

constexpr char kPolicyHelp[] =
    "Client policy JSON pinning the server's reference values (`cllm policy pin`); without it every server is "
    "refused as not pinned";

void Setup(CLI::App& app, CommandContext& ctx) {
  static RemoteArgs attest_args;
  CLI::App* attest = SubcommandGroup(app, "attest", "Verify and explain TEE attestation evidence");
  attest->require_subcommand(0, 1);  // `cllm attest URL` has none
  attest->add_option("url", attest_args.url, "https://HOST:PORT of a cllm server to verify and explain");
  attest->add_option("--policy", attest_args.policy, kPolicyHelp);
  attest->add_flag("--json", attest_args.json, "Print one JSON object");
  AddUnpinnedFlag(attest, &attest_args.accept_unpinned);
  attest->add_flag("--via-token", attest_args.via_token,
                   "Accept the server on its cllm-trust token (needs --trust, --trust-ca) instead of local evidence");
  attest->add_option("--trust", attest_args.trust_url, "cllm-trust URL whose tokens you accept");
  attest->add_option("--trust-ca", attest_args.trust_ca, "cllm-trust's certificate (pinned)");
  attest->add_option("--token-policy", attest_args.token_policies,
                     "With --via-token: accept only tokens cllm-trust appraised under this policy (repeatable)");
  AddTimeoutFlags(attest, &attest_args.timeouts);
  attest->add_flag("--e2e", attest_args.e2e,
                   "Explain the fleet keys URL serves for encrypted bodies (statements, release policies against "
                   "--policy); needs --trust, --trust-ca");
  attest->add_option("--suite", attest_args.suite, "--e2e: x25519 or gmt")
      ->check(CLI::IsMember({"x25519", "gmt"}))
      ->capture_default_str();
  attest->add_option("--upstream-ca", attest_args.upstream_ca, "--e2e: PEM roots of an https:// gateway");
  attest->callback([&ctx, attest] {
    if (!attest->get_subcommands().empty()) return;
    if (attest_args.url.empty()) {
      ctx.exit_code = Fail("give a server URL (cllm attest https://HOST:PORT) or a subcommand; see --help", 2);
      return;
    }
    ctx.exit_code = AttestServer(attest_args);
  });

  static RemoteArgs chat_args;
  auto* chat = app.add_subcommand("chat", "Chat with an attested cllm server (streaming, multi-turn)");
  chat->add_option("url", chat_args.urls,
                   "https://HOST:PORT; several (or a comma list) are replicas to fail over between; one relay "
                   "address also works (each new connection is verified)")
      ->required();
  AddAttemptsFlag(chat, &chat_args.attempts);
  chat->add_option("--policy", chat_args.policy, kPolicyHelp);
  chat->add_option("--api-key", chat_args.api_key, "API key (default: $CLLM_API_KEY)");
  chat->add_option("--model", chat_args.model, "Model name (default: the one the server attests)");
  chat->add_option("-p,--prompt", chat_args.prompt, "Send one message, print the reply, exit");
  chat->add_option("--system", chat_args.system, "System message");
  chat->add_option("-n,--max-tokens", chat_args.max_tokens, "Reply length limit")->check(CLI::Range(1, 32768));
  chat->add_option("--temperature", chat_args.temperature, "Sampling temperature (0: greedy)")
      ->check(CLI::Range(0.0, 2.0));
  chat->add_flag("--via-token", chat_args.via_token,
                 "Accept the server on its cllm-trust token (needs --trust, --trust-ca) instead of local evidence");
  chat->add_option("--trust", chat_args.trust_url, "cllm-trust URL whose tokens you accept");
  chat->add_option("--trust-ca", chat_args.trust_ca, "cllm-trust's certificate (pinned)");
  chat->add_option("--token-policy", chat_args.token_policies,
                   "With --via-token: accept only tokens cllm-trust appraised under this policy (repeatable)");
  AddUnpinnedFlag(chat, &chat_args.accept_unpinned);
  AddTimeoutFlags(chat, &chat_args.timeouts);
  chat->add_flag("--e2e", chat_args.e2e,
                 "Seal every message with HPKE to the fleet key cllm-trust releases only to attested replicas; URL "
                 "may then be any gateway terminating TLS (needs --trust, --trust-ca)");
  chat->add_option("--suite", chat_args.suite, "--e2e cipher suite: x25519 or gmt (SM2/SM3/SM4)")
      ->check(CLI::IsMember({"x25519", "gmt"}))
      ->capture_default_str();
  chat->add_option("--upstream-ca", chat_args.upstream_ca, "--e2e: PEM roots of an https:// gateway's certificate");
  AddE2eClientFlags(chat, &chat_args.e2e_client);
  AddSplitFlags(chat, &chat_args.split);
  chat->callback([&ctx] { ctx.exit_code = Chat(chat_args); });
}

CommandRegistration reg{"remote", 45, Setup};

}  // namespace
}  // namespace cllm::app
