// The JSON-lines codec of the worker protocol (PROTOCOL.md, "Worker protocol").
//
// decode_worker_message() turns one line the worker wrote into a typed message;
// the encode_* functions build the one-line commands the agent writes. This is
// the only code that reads or writes worker frames. Unknown keys are ignored;
// an unknown message type decodes to UnknownMessage (so a newer worker can add
// messages without breaking an older agent); anything that is not a JSON object
// with the required fields of its type is an ErrorCode::protocol Error, never an
// exception. Thread-safety: free functions over values.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/collection.h"
#include "common/error.h"
#include "common/test_result.h"

namespace drover::agent {

inline constexpr int k_worker_protocol = 1;

struct HelloMessage {
  int protocol = 0;
  std::int64_t pid = 0;
  std::string python;                 // "3.11.2"
  std::string pytest;                 // "7.2.1"
  std::vector<std::string> features;  // optional commands the worker understands ("cancel")
};
struct FatalMessage {
  std::string message;
};
struct CollectedMessage {
  common::Collection collection;
};
struct StartMessage {
  common::TestIndex index = 0;
};
struct ReportMessage {
  common::TestIndex index = 0;
  common::PhaseReport report;
};
struct FinishedMessage {
  common::TestIndex index = 0;
};
struct ByeMessage {
  int exitstatus = 0;
};
struct CancelledMessage {
  std::vector<common::TestIndex> indices;
};
// pytest_warning_recorded: `when` is "config", "collect" or "runtest".
struct WarningMessage {
  std::string when;
  std::string nodeid;
  common::Warning warning;
};
// A test ended the session (pytest.exit(), KeyboardInterrupt); the worker exits next.
struct ExitMessage {
  std::optional<common::TestIndex> index;  // the test running then, if any
  int returncode = 2;                      // pytest's exit code for it
  std::string message;                     // "_pytest.outcomes.Exit: bye", "KeyboardInterrupt"
  std::string detail;                      // further lines pytest prints below it (may be empty)
};
// pytest ended without a session and without an error (--help, --version, --fixtures, ...).
struct NoSessionMessage {
  int exitstatus = 0;
};
struct UnknownMessage {
  std::string type;
};

using WorkerMessage = std::variant<HelloMessage, FatalMessage, CollectedMessage, StartMessage,
                                   ReportMessage, FinishedMessage, ByeMessage, CancelledMessage,
                                   WarningMessage, ExitMessage, NoSessionMessage, UnknownMessage>;

// One line without its trailing newline (a trailing "\r" or "\n" is tolerated).
[[nodiscard]] common::Result<WorkerMessage> decode_worker_message(std::string_view line);

// Commands, each one line ending in "\n".
[[nodiscard]] std::string encode_run(std::span<const common::TestIndex> indices);
[[nodiscard]] std::string encode_cancel(std::span<const common::TestIndex> indices);
[[nodiscard]] std::string encode_stop();
[[nodiscard]] std::string encode_shutdown();

}  // namespace drover::agent
