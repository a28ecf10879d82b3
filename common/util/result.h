// Errors as values for common/ and capture/, which link no LLVM (analyze/ converts these
// into llvm::Error at its boundary). No exceptions cross a module boundary.
#pragma once

#include "common/util/terminal_text.h"

#include <string>
#include <utility>
#include <variant>

namespace procsnap {

// What kind of failure, so callers can pick an exit code or a retry without parsing text.
enum class ErrorCode {
  Generic,
  InvalidArgument,
  Malformed, // input text or bytes do not follow their grammar
  TornRead,  // a /proc file changed while it was read: retry
  NotFound,  // no such file or process
  PermissionDenied,
  ProcessGone, // the target exited during the operation
  Io,
  NoSpace,     // ENOSPC / EDQUOT
  Corrupt,     // checksum or hash mismatch, impossible values
  Truncated,   // input ends early
  Unsupported, // e.g. a newer archive version
  Interrupted, // a signal asked us to stop
};

struct Error {
  ErrorCode code = ErrorCode::Generic;
  std::string message; // lowercase, no final period, one line

  // Messages quote paths, /proc text and archive strings: escaped here, once for all of
  // common/ and capture/, so every message is one line with no control character.
  static Error make(ErrorCode code, std::string message) {
    return Error{code,
                 needsTerminalEscape(message) ? escapeForTerminal(message) : std::move(message)};
  }
};

// Result<T> holds a T or an Error. Result<void> holds nothing or an Error.
template <typename T> class [[nodiscard]] Result {
public:
  Result(T value) : state_(std::move(value)) {}
  Result(Error error) : state_(std::move(error)) {}

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { return std::get<1>(state_); }
  Error takeError() && { return std::get<1>(std::move(state_)); }

private:
  std::variant<T, Error> state_;
};

template <> class [[nodiscard]] Result<void> {
public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }
  Error takeError() && { return std::move(error_); }

private:
  Error error_;
  bool ok_ = true;
};

inline Result<void> success() {
  return Result<void>();
}

// Returns the error of a failed Result from the enclosing function.
#define PROCSNAP_TRY(expr)                                                                         \
  do {                                                                                             \
    auto&& procsnap_try_result_ = (expr);                                                          \
    if (!procsnap_try_result_.ok())                                                                \
      return std::move(procsnap_try_result_).takeError();                                          \
  } while (0)

} // namespace procsnap
