// parser.h — tokens → the statement tree, by jinja2's grammar and precedence.
#pragma once

#include <vector>

#include "jinja/ast.h"
#include "jinja/lexer.h"

namespace cllm::jinja {

// kBodyVar names the value a {% filter %} block's filters apply to.
inline constexpr const char* kBodyVar = "\x01body";

// Parse builds the tree; a syntax error throws Failure (kSyntax), nesting
// deeper than `max_depth` throws kLimit.
Body Parse(const std::vector<Token>& tokens, int max_depth);

}  // namespace cllm::jinja
