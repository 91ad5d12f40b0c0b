// Error values crossing module boundaries.
//
// Every fallible function at a module boundary returns Result<T>: either the
// value or an Error with a code (which the CLI maps to an exit code) and a
// one-line message written for the user. Thread-safety: plain values.
#pragma once

#include <expected>
#include <string>
#include <utility>

namespace drover::common {

enum class ErrorCode {
  usage,       // bad flag, config key or value: pytest's exit code 4
  io,          // a file or pipe could not be read or written
  parse,       // malformed input (JSON, XML, YAML, protocol frame)
  protocol,    // a peer broke the protocol or speaks an unsupported version
  worker,      // a worker could not start or died before it was ready
  collection,  // collection failed or differs between workers
  incomplete,  // a merge found missing or duplicated tests
  interrupted, // stopped by a signal
  internal,    // anything else: pytest's exit code 3
};

struct Error {
  ErrorCode code = ErrorCode::internal;
  std::string message;
};

template <class T>
using Result = std::expected<T, Error>;

[[nodiscard]] inline std::unexpected<Error> fail(ErrorCode code, std::string message) {
  return std::unexpected<Error>(Error{code, std::move(message)});
}

}  // namespace drover::common
