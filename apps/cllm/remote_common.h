// remote_common.h — helpers shared by the client subcommands (attest URL,
// chat, proxy, bench serve): policy loading, URL parsing, client deadlines,
// and OrExit, a value-or-exit-code for command code.
#pragma once

#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "apps/cllm/command.h"
#include "attestation/pinning.h"
#include "attestation/policy.h"
#include "client/client.h"
#include "client/replicas.h"

namespace cllm::app {

struct ExitWith {
  explicit ExitWith(int c) : code(c) {}
  int code;
};

// OrExit holds a value, or the exit code the command should return (the
// error was already printed).
template <typename T>
class OrExit {
 public:
  OrExit(T v) : value_(std::move(v)) {}  // NOLINT: implicit by design
  OrExit(ExitWith e) : code_(e.code) {}  // NOLINT
  bool ok() const { return value_.has_value(); }
  int exit_code() const { return code_; }
  T& operator*() { return *value_; }
  T* operator->() { return &*value_; }

 private:
  std::optional<T> value_;
  int code_ = 0;
};
template <typename T>
using ClientResultOrExit = OrExit<T>;

#define CLLM_OE_CONCAT2(a, b) a##b
#define CLLM_OE_CONCAT(a, b) CLLM_OE_CONCAT2(a, b)
#define CLLM_ASSIGN_OR_EXIT(lhs, expr)                          \
  auto CLLM_OE_CONCAT(oe_, __LINE__) = (expr);                  \
  if (!CLLM_OE_CONCAT(oe_, __LINE__).ok()) return CLLM_OE_CONCAT(oe_, __LINE__).exit_code(); \
  lhs = std::move(*CLLM_OE_CONCAT(oe_, __LINE__))

// AddUnpinnedFlag adds --insecure-accept-unpinned to a client command.
inline void AddUnpinnedFlag(CLI::App* cmd, bool* flag) {
  cmd->add_flag(attestation::kUnpinnedOptOutFlag, *flag,
                "INSECURE: accept a TEE whose launch measurement / model digest the policy does not pin "
                "(any genuine CVM running any code and model); warns on every use");
}

// LoadClientPolicy reads --policy, or the default client policy (hardware
// TEEs only, no sim, no debug, UpToDate, nothing pinned — so every server is
// refused as not pinned) when `path` is empty. `accept_unpinned` is the
// --insecure-accept-unpinned flag: it turns the pinning requirement off and
// prints the warning, every run.
inline OrExit<attestation::Policy> LoadClientPolicy(const std::string& path, bool accept_unpinned = false) {
  attestation::Policy policy = attestation::Policy::Default();
  if (!path.empty()) {
    auto p = attestation::LoadPolicy(path);
    if (!p.ok()) return ExitWith(Fail(std::string(attestation::AttestErrcName(p.code())) + ": " + p.detail(), 2));
    policy = std::move(p).value();
  }
  if (accept_unpinned) {
    policy.insecure_accept_unpinned = true;
    std::fprintf(stderr, "cllm: %s\n", attestation::UnpinnedWarning().c_str());
  }
  return policy;
}

inline OrExit<client::Url> ParseServerUrl(const std::string& s) {
  auto u = client::ParseUrl(s);
  if (!u.ok()) return ExitWith(Fail(u.detail(), 2));
  if (!u->tls) return ExitWith(Fail("the server URL must be https:// (attested); got " + s, 2));
  return std::move(u).value();
}

// ParseServerUrls reads replica URLs (repeated options, comma lists) that
// must all be https:// (client/replicas.h).
inline OrExit<std::vector<client::Url>> ParseServerUrls(const std::vector<std::string>& specs) {
  auto u = client::ParseReplicaUrls(specs);
  if (!u.ok()) return ExitWith(Fail(u.detail(), 2));
  for (const auto& one : *u) {
    if (!one.tls) return ExitWith(Fail("the server URL must be https:// (attested); got " + client::UrlText(one), 2));
  }
  return std::move(u).value();
}

// AddAttemptsFlag adds --attempts (failover across replicas).
inline void AddAttemptsFlag(CLI::App* cmd, int* attempts) {
  cmd->add_option("--attempts", *attempts,
                  "Attempts per request across replicas when one fails before answering (0: max(3, replicas))")
      ->check(CLI::Range(0, 32))
      ->capture_default_str();
}

// TimeoutArgs are the client deadlines a user can set (net/client.h).
struct TimeoutArgs {
  double connect_s = 10;   // --connect-timeout: DNS + TCP connect, and then the TLS handshake
  double response_s = 60;  // --timeout: for the response head, and between streamed chunks
  double body_s = 3600;    // --body-timeout: a whole response body
  net::ClientOptions Options() const {
    net::ClientOptions o;
    auto ms = [](double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000)); };
    o.connect_timeout = o.handshake_timeout = ms(connect_s);
    o.head_timeout = o.chunk_timeout = ms(response_s);
    o.body_timeout = ms(body_s);
    return o;
  }
};

inline void AddTimeoutFlags(CLI::App* cmd, TimeoutArgs* t) {
  cmd->add_option("--connect-timeout", t->connect_s, "Seconds for DNS + TCP connect, and again for the TLS handshake")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  cmd->add_option("--timeout", t->response_s,
                  "Seconds to wait for a response to start, and between streamed chunks")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  cmd->add_option("--body-timeout", t->body_s,
                  "Seconds for a whole response body, however it trickles (a long streamed answer must fit)")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
}

}  // namespace cllm::app
