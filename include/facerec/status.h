// Status and Result<T>: how every public facerec call reports failure.
//
// No exception escapes a public API. A caller error (bad file, bad argument)
// is a Status with a category and a human message; an internal invariant
// breaking is FACEREC_ASSERT, which aborts with file:line.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

namespace facerec {

enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,  // the caller passed something unusable (bad flag, bad name)
  kNotFound,         // a file, person or model that does not exist
  kIo,               // reading or writing failed
  kDecode,           // not an image, truncated, corrupt
  kTooLarge,         // over a configured size limit
  kModel,            // a model file that cannot be loaded or does not fit its spec
  kHashMismatch,     // a downloaded or configured file whose sha256 is wrong
  kNoFace,           // no face where one was required
  kMismatch,         // e.g. a gallery built with another embedder
  kDatabase,         // SQLite failure
  kCancelled,        // interrupted by the user
  kInternal,
  kAlreadyExists,    // e.g. renaming a person to a name already enrolled
};

const char* to_string(ErrorCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return {}; }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "category: message", for logs and CLI output.
  std::string to_string() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

// A value or a Status. Access value() only when ok(); doing otherwise is a bug
// and aborts.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.ok()) status_ = Status(ErrorCode::kInternal, "Result built from an ok Status");
  }
  Result(ErrorCode code, std::string message) : status_(code, std::move(message)) {}

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { check(); return *value_; }
  const T& value() const& { check(); return *value_; }
  T&& value() && { check(); return std::move(*value_); }
  T* operator->() { check(); return &*value_; }
  const T* operator->() const { check(); return &*value_; }
  T& operator*() & { check(); return *value_; }

 private:
  void check() const {
    if (!value_) {
      std::fprintf(stderr, "facerec: value() on a failed Result: %s\n", status_.to_string().c_str());
      std::abort();
    }
  }
  std::optional<T> value_;
  Status status_;
};

namespace internal {
// The Status of a Status or a Result, for FACEREC_RETURN_IF_ERROR.
inline const Status& status_of(const Status& s) { return s; }
template <class T>
const Status& status_of(const Result<T>& r) { return r.status(); }
}  // namespace internal

}  // namespace facerec

// Internal invariants only; never for user input.
#define FACEREC_ASSERT(cond)                                                             \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "facerec internal error: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

// Declares/assigns `lhs` from a Result-returning expression, or returns its
// Status from the current function:
//   FACEREC_ASSIGN_OR_RETURN(cv::Mat img, load_image(path));
#define FACEREC_CONCAT_INNER_(a, b) a##b
#define FACEREC_CONCAT_(a, b) FACEREC_CONCAT_INNER_(a, b)
#define FACEREC_ASSIGN_OR_RETURN(lhs, expr) \
  FACEREC_ASSIGN_OR_RETURN_IMPL_(FACEREC_CONCAT_(facerec_result_, __LINE__), lhs, expr)
#define FACEREC_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()

// Propagate a failed Status/Result from the current function, as a Status.
// The Status is copied while `expr`'s temporaries are alive: binding a
// reference to `make_result().status()` would dangle past the full expression
// (found by AddressSanitizer: stack-use-after-scope in run_lfw_open_set).
#define FACEREC_RETURN_IF_ERROR(expr)                                          \
  do {                                                                         \
    const ::facerec::Status facerec_s_ = ::facerec::internal::status_of(expr); \
    if (!facerec_s_.ok()) return facerec_s_;                                   \
  } while (0)
