// structured_output.h — the constraints of requests with a response_format.
//
// The vocabulary index (engine/grammar) is built on the first structured
// request (about a second for a 150k-token vocabulary, then shared). A
// compiled grammar is kept per (user, schema), so a client repeating its
// schema reuses the allowed sets cached by matcher state; never across users,
// whose timing would otherwise tell which schemas others use. The kMaxGrammars
// kept are in equal shares, one per user (API key): a user's new grammar
// evicts only that user's own least recently used one, so no user's schemas
// make another's slower either (with one shared LRU, a user timing its own
// schema's compilation would learn how many others used structured output).
// More users than grammars: nothing is kept. Without user identities (an
// anonymous server: every caller is the one user "") nothing is kept, so one
// caller's schema never makes another's faster.
#pragma once

#include <list>
#include <map>
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
  static constexpr size_t kMaxGrammars = 16;  // compiled grammars kept, all users together, each caching ≤ 8 MiB

  // users: how many users share kMaxGrammars (each keeps kMaxGrammars /
  // users, its own LRU); 0 (an anonymous server): compile each request's
  // schema afresh (only the public vocabulary index is shared).
  StructuredOutput(const engine::Tokenizer& tok, size_t users)
      : tok_(tok), per_user_(users == 0 ? 0 : kMaxGrammars / users) {}

  // ConstraintFor returns a fresh constraint for one sequence of `user`
  // whose output must match `schema`; kBadRequest naming response_format if
  // the schema does not compile.
  ApiResult<std::shared_ptr<engine::TokenConstraint>> ConstraintFor(const std::string& user,
                                                                    const nlohmann::ordered_json& schema);
  // kept is the number of compiled grammars held now (tests).
  size_t kept();
  size_t per_user() const { return per_user_; }

 private:
  const engine::Tokenizer& tok_;
  using Kept = std::list<std::pair<std::string, std::shared_ptr<engine::grammar::JsonGrammar>>>;  // schema → grammar
  const size_t per_user_;
  std::mutex mu_;
  std::shared_ptr<const engine::grammar::VocabIndex> vocab_;
  std::map<std::string, Kept, std::less<>> grammars_;  // by user, each most recent first
};

}  // namespace cllm::server
