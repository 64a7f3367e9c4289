#include "server/structured_output.h"

namespace cllm::server {

ApiResult<std::shared_ptr<engine::TokenConstraint>> StructuredOutput::ConstraintFor(
    const std::string& user, const nlohmann::ordered_json& schema) {
  const std::string text = schema.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  std::lock_guard lock(mu_);
  if (auto mine = grammars_.find(user); mine != grammars_.end()) {
    Kept& kept = mine->second;
    for (auto it = kept.begin(); it != kept.end(); ++it) {
      if (it->first != text) continue;
      kept.splice(kept.begin(), kept, it);
      return kept.front().second->NewConstraint();
    }
  }
  auto compiled = engine::grammar::CompileJsonSchema(schema);
  if (!compiled.ok()) return MakeError(ApiErrc::kBadRequest, "'response_format': " + compiled.detail());
  if (!vocab_) vocab_ = engine::grammar::VocabIndex::For(tok_);
  auto g = std::make_shared<engine::grammar::JsonGrammar>(std::move(compiled).value(), vocab_);
  if (per_user_ == 0) return g->NewConstraint();
  // Only this user's own grammars make room for this user's.
  Kept& kept = grammars_[user];
  kept.emplace_front(text, g);
  if (kept.size() > per_user_) kept.pop_back();
  return g->NewConstraint();
}

size_t StructuredOutput::kept() {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [user, kept] : grammars_) n += kept.size();
  return n;
}

}  // namespace cllm::server
