#include "apps/cllm/trust_common.h"

#include <cstdlib>

#include "base/file.h"

namespace cllm::app {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace

void AddTrustAdminOptions(CLI::App* cmd, TrustAdminArgs& a) {
  cmd->add_option("--trust", a.url, "cllm-trust URL (default $CLLM_TRUST_URL)");
  cmd->add_option("--trust-ca", a.ca, "cllm-trust's certificate, pinned (default $CLLM_TRUST_CA)");
  cmd->add_option("--admin-token-file", a.token_file, "Admin token file (default $CLLM_TRUST_ADMIN_TOKEN_FILE)");
}

Result<TrustAdmin> TrustAdmin::Open(const TrustAdminArgs& in) {
  TrustAdminArgs a = in;
  if (a.url.empty()) a.url = Env("CLLM_TRUST_URL");
  if (a.ca.empty()) a.ca = Env("CLLM_TRUST_CA");
  if (a.token_file.empty()) a.token_file = Env("CLLM_TRUST_ADMIN_TOKEN_FILE");
  if (a.url.empty() || a.ca.empty() || a.token_file.empty()) {
    return MakeError(Errc::kInvalidArgument,
                     "cllm-trust admin needs --trust URL, --trust-ca FILE and --admin-token-file FILE (or "
                     "CLLM_TRUST_URL, CLLM_TRUST_CA, CLLM_TRUST_ADMIN_TOKEN_FILE)");
  }
  auto ep = trust::LoadTrustEndpoint(a.url, a.ca);
  if (!ep.ok()) return MakeError(Errc::kInvalidArgument, ep.detail());
  auto token = ReadTextFile(a.token_file, 4096);
  if (!token.ok()) return MakeError(Errc::kInvalidArgument, "--admin-token-file: " + token.detail());
  while (!token->empty() && (token->back() == '\n' || token->back() == '\r' || token->back() == ' ')) token->pop_back();
  auto conn = client::ConnectPinned(ep->url, ep->ca);
  if (!conn.ok()) return MakeError(Errc::kIo, "cllm-trust at " + a.url + ": " + conn.detail());
  return TrustAdmin(std::move(ep).value(), std::move(token).value(), std::move(conn).value());
}

Result<nlohmann::json> TrustAdmin::Call(const std::string& method, const std::string& target,
                                        const std::optional<nlohmann::json>& body) {
  auto r = trust::TrustCall(*conn_, method, target, body, token_);
  if (!r.ok()) return MakeError(Errc::kIo, std::string(client::ClientErrcName(r.code())) + ": " + r.detail());
  if (r->status / 100 != 2) {
    return MakeError(r->status == 401 || r->status == 403 ? Errc::kPermission : Errc::kInvalidArgument,
                     trust::ErrorOf(*r));
  }
  return r->body;
}

}  // namespace cllm::app
