// service_e2e.cc — encrypted bodies on the service: open the request with the
// key ring, answer its inner request through the ordinary routes, seal the
// answer (docs/protocol.md "Encrypted bodies").
//
// What is logged and counted is the outer request: route, sizes (the bucket,
// not the prompt's length), timings, and the user once the inner API key
// authenticated. The inner JSON and Authorization are never logged.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>

#include "channel/e2e_response.h"
#include "server/e2e_writer.h"
#include "server/service.h"

namespace cllm::server {
namespace {

namespace e2e = channel::e2e;

int E2eHttpStatus(e2e::E2eErrc code) {
  switch (code) {
    case e2e::E2eErrc::kKeyUnknown: return 421;  // Misdirected: this key is not (or no longer) here
    case e2e::E2eErrc::kClientToken: return 401;
    case e2e::E2eErrc::kOversized: return 413;
    case e2e::E2eErrc::kInternal: return 500;
    case e2e::E2eErrc::kMalformed:
    case e2e::E2eErrc::kDecryptFailed:
    case e2e::E2eErrc::kTruncated:
    case e2e::E2eErrc::kUnsupported: return 400;
  }
  return 400;
}

// The clear error of a request that was not decrypted. The detail is ours
// (never the request's plaintext, which we do not have).
std::string E2eErrorBody(e2e::E2eErrc code, const std::string& detail) {
  nlohmann::json j = {{"error",
                       {{"message", detail.substr(0, 256)},
                        {"type", "e2e_error"},
                        {"param", nullptr},
                        {"code", e2e::E2eErrcName(code)}}}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Only the POST API routes take encrypted bodies: GET routes and probes have
// nothing to hide and no body.
bool IsE2eRoute(const std::string& path) {
  return path == "/v1/chat/completions" || path == "/v1/completions" || path == "/v1/embeddings" ||
         path == "/tokenize" || path == "/detokenize";
}

}  // namespace

bool Service::IsE2eRequest(const net::Request& req) {
  std::string ct = req.Header("content-type");
  ct = ct.substr(0, ct.find(';'));
  while (!ct.empty() && (ct.back() == ' ' || ct.back() == '\t')) ct.pop_back();
  std::transform(ct.begin(), ct.end(), ct.begin(), [](unsigned char c) { return std::tolower(c); });
  return ct == e2e::kRequestContentType;
}

void Service::SetE2eKeys(std::shared_ptr<const e2e::KeyRing> keys) {
  std::lock_guard<std::mutex> lock(e2e_mu_);
  e2e_keys_ = std::move(keys);
}

void Service::SetE2eClientVerifier(e2e::ClientKeyVerifier verifier, bool require) {
  std::lock_guard<std::mutex> lock(e2e_mu_);
  e2e_client_verifier_ = std::move(verifier);
  e2e_require_client_ = require;
}

void Service::Encrypted(const net::Request& req, const std::shared_ptr<ObservedWriter>& observed) {
  const std::string path = req.Path();
  auto fail = [&](e2e::E2eErrc code, const std::string& detail) {
    ++requests_failed_;
    if (code == e2e::E2eErrc::kClientToken) ++requests_unauthorized_;
    observed->Send(E2eHttpStatus(code), "application/json", E2eErrorBody(code, detail));
  };
  if (!IsE2eRoute(path)) {
    return SendError(*observed, MakeError(ApiErrc::kNotFound, "no encrypted route POST " + path.substr(0, 128)));
  }
  std::shared_ptr<const e2e::KeyRing> keys;
  e2e::OpenOptions options;
  {
    std::lock_guard<std::mutex> lock(e2e_mu_);
    keys = e2e_keys_;
    options.client_verifier = e2e_client_verifier_;
    options.require_client_token = e2e_require_client_;
  }
  options.keys = keys.get();
  e2e::EncryptedRequest in;
  in.path = path;
  const std::string model = req.Header(e2e::kModelHeader), stream = req.Header(e2e::kStreamHeader),
                    size = req.Header(e2e::kSizeHeader), token = req.Header(e2e::kClientTokenHeader),
                    client_key = req.Header(e2e::kClientKeyHeader);
  in.model_header = model;
  in.stream_header = stream;
  in.size_header = size;
  in.client_token = token;
  in.client_key = client_key;
  in.body = AsBytes(req.body);
  auto opened = e2e::OpenRequest(in, options);
  if (!opened.ok()) return fail(opened.code(), opened.detail());
  auto sealer = e2e::ResponseSealer::Create(opened->response);
  if (!sealer.ok()) return fail(sealer.code(), sealer.detail());

  // The inner request: same method and target, the sealed Authorization and
  // JSON; nothing else of the outer headers (a proxy's own headers are not
  // the client's).
  net::Request inner;
  inner.method = req.method;
  inner.target = req.target;
  inner.headers["content-type"] = "application/json";
  if (!opened->authorization.empty()) inner.headers["authorization"] = std::move(opened->authorization);
  inner.body = std::move(opened->json);
  auto sealed = std::make_shared<E2eWriter>(observed, std::move(sealer).value());
  Route(inner, sealed, observed.get(), /*e2e_mutual=*/opened->mode == e2e::hpke::Mode::kAuth);
}

}  // namespace cllm::server
