// lexer.h — template source → tokens, with jinja2's whitespace control.
//
// Set up as Hugging Face renders chat templates: trim_blocks (the first
// newline after a block or comment tag is dropped), lstrip_blocks (spaces
// and tabs before a block or comment tag at the start of a line are
// dropped), `-` on a tag strips all whitespace on that side, `+` keeps it.
// Newlines are normalised to "\n" and one trailing newline of the source is
// dropped (jinja2's keep_trailing_newline=False).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "jinja/error.h"

namespace cllm::jinja {

enum class Tok {
  kText,        // literal template text (after whitespace control)
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,
  kString,
  kInt,
  kFloat,
  kOp,          // operators and punctuation: + - * / // % ** ~ == != < > <= >= = ( ) [ ] { } , . : |
  kEof,
};

struct Token {
  Tok kind;
  std::string text;  // kText, kName, kString (unescaped), kOp
  int64_t i = 0;     // kInt
  double f = 0;      // kFloat
  Pos pos;
};

// Lex tokenizes a whole template; a syntax error throws Failure (kSyntax).
// `max_tokens` bounds the work on hostile input.
std::vector<Token> Lex(std::string_view source, size_t max_tokens);

}  // namespace cllm::jinja
