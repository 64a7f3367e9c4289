#include "server/structured_output.h"

namespace cllm::server {

ApiResult<std::shared_ptr<engine::TokenConstraint>> StructuredOutput::ConstraintFor(
    const std::string& user, const nlohmann::ordered_json& schema) {
  std::string key = user;
  key.push_back('\0');
  key += schema.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  std::lock_guard lock(mu_);
  for (auto it = grammars_.begin(); it != grammars_.end(); ++it) {
    if (it->first != key) continue;
    grammars_.splice(grammars_.begin(), grammars_, it);
    return grammars_.front().second->NewConstraint();
  }
  auto compiled = engine::grammar::CompileJsonSchema(schema);
  if (!compiled.ok()) return MakeError(ApiErrc::kBadRequest, "'response_format': " + compiled.detail());
  if (!vocab_) vocab_ = engine::grammar::VocabIndex::For(tok_);
  auto g = std::make_shared<engine::grammar::JsonGrammar>(std::move(compiled).value(), vocab_);
  if (!keep_) return g->NewConstraint();
  grammars_.emplace_front(std::move(key), g);
  if (grammars_.size() > kMaxGrammars) grammars_.pop_back();
  return g->NewConstraint();
}

size_t StructuredOutput::kept() {
  std::lock_guard lock(mu_);
  return grammars_.size();
}

}  // namespace cllm::server
