// result.h — the error-carrying return type used for everything that comes from
// outside the process (files, evidence, certificates, HTTP, JSON).
//
// A Result<T, Code> holds either a value of type T or an Error<Code>: an
// `enum class` code that tests and callers branch on, plus a human-readable
// detail for operators. It never mixes success with data: value() on an error
// (or error() on a success) is a broken invariant of the caller and aborts.
//
//   Result<Header, GgufErrc> ParseHeader(ByteReader& r);
//   CLLM_ASSIGN_OR_RETURN(auto header, ParseHeader(r));
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "base/check.h"

namespace cllm {

// Errc is the generic code set for base-level failures; each library defines
// its own `enum class` for its domain (GgufErrc, AttestErrc, ...).
enum class Errc {
  kOk = 0,
  kInvalidArgument,
  kOutOfRange,   // a read or index past the end of untrusted input
  kOverflow,     // an arithmetic overflow in a size computed from input
  kParse,        // malformed text or structure
  kNotFound,
  kIo,
  kPermission,
  kUnsupported,
  kCrypto,       // a cryptographic operation or check failed
  kInternal,
};

// ErrcName returns a stable lowercase identifier ("out_of_range") for `code`.
const char* ErrcName(Errc code);

template <typename Code>
struct Error {
  Code code;
  std::string detail;
};

// MakeError builds an Error<Code>; it converts into any Result<T, Code>.
template <typename Code>
Error<Code> MakeError(Code code, std::string detail) {
  return Error<Code>{code, std::move(detail)};
}

template <typename T, typename Code = Errc>
class [[nodiscard]] Result {
 public:
  using value_type = T;
  using code_type = Code;

  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error<Code> error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    CLLM_CHECK_MSG(ok(), "value() on error result");
    return std::get<0>(v_);
  }
  const T& value() const& {
    CLLM_CHECK_MSG(ok(), "value() on error result");
    return std::get<0>(v_);
  }
  T&& value() && {
    CLLM_CHECK_MSG(ok(), "value() on error result");
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error<Code>& error() const& {
    CLLM_CHECK_MSG(!ok(), "error() on ok result");
    return std::get<1>(v_);
  }
  Error<Code>&& error() && {
    CLLM_CHECK_MSG(!ok(), "error() on ok result");
    return std::get<1>(std::move(v_));
  }
  Code code() const { return error().code; }
  const std::string& detail() const { return error().detail; }

  T value_or(T fallback) const& { return ok() ? std::get<0>(v_) : std::move(fallback); }

 private:
  std::variant<T, Error<Code>> v_;
};

// Status is a Result without a value.
struct Ok {};
template <typename Code = Errc>
using Status = Result<Ok, Code>;

inline Ok OkStatus() { return Ok{}; }

}  // namespace cllm

#define CLLM_CONCAT_INNER_(a, b) a##b
#define CLLM_CONCAT_(a, b) CLLM_CONCAT_INNER_(a, b)

// CLLM_RETURN_IF_ERROR(expr): returns the error of `expr` (a Result/Status with
// the same code type as the enclosing function) when it is not ok.
#define CLLM_RETURN_IF_ERROR(expr)                              \
  do {                                                          \
    auto&& cllm_status_ = (expr);                               \
    if (!cllm_status_.ok()) return std::move(cllm_status_).error(); \
  } while (0)

// CLLM_ASSIGN_OR_RETURN(lhs, expr): evaluates `expr`; on error returns it, on
// success moves the value into `lhs` (which may be a declaration).
#define CLLM_ASSIGN_OR_RETURN(lhs, expr) \
  CLLM_ASSIGN_OR_RETURN_IMPL_(CLLM_CONCAT_(cllm_result_, __LINE__), lhs, expr)
#define CLLM_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return std::move(tmp).error();     \
  lhs = std::move(tmp).value()
