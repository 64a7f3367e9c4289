// error.h — the renderer's error codes, and the exception that carries one
// inside the library (never out of it: template.cc turns it into a Result).
#pragma once

#include <string>
#include <utility>

namespace cllm::jinja {

enum class JinjaErrc {
  kSyntax = 1,  // the template does not parse (or uses an unsupported statement)
  kRender,      // rendering failed: a type error, an undefined value used, a bad call
  kRaised,      // the template called raise_exception(message)
  kLimit,       // a resource limit was hit (output size, loop iterations, nesting, recursion)
};
const char* JinjaErrcName(JinjaErrc code);

// Pos is a 1-based line and column in the template source.
struct Pos {
  int line = 1;
  int col = 1;
};

// Failure is thrown inside the library only.
struct Failure {
  JinjaErrc code;
  std::string message;
  Pos pos;
  bool has_pos = false;
};

[[noreturn]] inline void Fail(JinjaErrc code, std::string message) {
  throw Failure{code, std::move(message), {}, false};
}
[[noreturn]] inline void FailAt(JinjaErrc code, Pos pos, std::string message) {
  throw Failure{code, std::move(message), pos, true};
}

}  // namespace cllm::jinja
