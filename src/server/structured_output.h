// structured_output.h — the constraints of requests with a response_format.
//
// The vocabulary index (engine/grammar) is built on the first structured
// request (about a second for a 150k-token vocabulary, then shared). A
// compiled grammar is kept per (user, schema), so a client repeating its
// schema reuses the allowed sets cached by matcher state; never across users,
// whose timing would otherwise tell which schemas others use. Without user
// identities (an anonymous server: every caller is the one user "") nothing
// is kept, so one caller's schema never makes another's faster.
#pragma once

#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "engine/grammar/json_constraint.h"
#include "server/openai_api.h"

namespace cllm::server {

class StructuredOutput {
 public:
  static constexpr size_t kMaxGrammars = 16;  // compiled grammars kept (LRU), each caching ≤ 8 MiB

  // keep_per_user: keep compiled grammars per (user, schema); false: compile
  // each request's schema afresh (only the public vocabulary index is shared).
  StructuredOutput(const engine::Tokenizer& tok, bool keep_per_user) : tok_(tok), keep_(keep_per_user) {}

  // ConstraintFor returns a fresh constraint for one sequence of `user`
  // whose output must match `schema`; kBadRequest naming response_format if
  // the schema does not compile.
  ApiResult<std::shared_ptr<engine::TokenConstraint>> ConstraintFor(const std::string& user,
                                                                    const nlohmann::ordered_json& schema);
  // kept is the number of compiled grammars held now (tests).
  size_t kept();

 private:
  const engine::Tokenizer& tok_;
  const bool keep_;
  std::mutex mu_;
  std::shared_ptr<const engine::grammar::VocabIndex> vocab_;
  std::list<std::pair<std::string, std::shared_ptr<engine::grammar::JsonGrammar>>> grammars_;  // most recent first
};

}  // namespace cllm::server
