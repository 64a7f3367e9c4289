// trust_common.h — how `cllm trust …` and `cllm model seal --register` reach
// cllm-trust's admin API: --trust URL, --trust-ca FILE (the pinned service
// certificate), --admin-token-file FILE; each falls back to an environment
// variable (CLLM_TRUST_URL, CLLM_TRUST_CA, CLLM_TRUST_ADMIN_TOKEN_FILE).
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "base/result.h"
#include "trust/trust_client.h"

namespace cllm::app {

struct TrustAdminArgs {
  std::string url, ca, token_file;
};

void AddTrustAdminOptions(CLI::App* cmd, TrustAdminArgs& args);

// TrustAdmin is an authenticated admin session over one pinned connection.
class TrustAdmin {
 public:
  static Result<TrustAdmin> Open(const TrustAdminArgs& args);
  // Call returns the JSON answer of a 2xx reply, or kPermission/kIo/... with
  // the service's "code: message (HTTP n)".
  Result<nlohmann::json> Call(const std::string& method, const std::string& target,
                              const std::optional<nlohmann::json>& body = std::nullopt);

 private:
  TrustAdmin(trust::TrustEndpoint ep, std::string token, std::shared_ptr<client::Connection> conn)
      : ep_(std::move(ep)), token_(std::move(token)), conn_(std::move(conn)) {}
  trust::TrustEndpoint ep_;
  std::string token_;
  std::shared_ptr<client::Connection> conn_;
};

}  // namespace cllm::app
