// The farm protocol: every message between clients, agents and the
// coordinator, and the one codec that turns them into ZeroMQ frames.
//
// A frame is one msgpack map {"p": "drover", "v": version, "t": type, "b": body}
// whose body is itself a map, so fields can be added without a version bump
// (decoders ignore unknown keys and default missing ones). Message type numbers
// are fixed forever: a retired number is never reused. Only this codec reads or
// writes frames and checks versions; handlers see typed structs. PROTOCOL.md,
// section "Farm protocol", lists every message, its direction and the heartbeat
// rules. Failure: decode() returns ErrorCode::parse for garbage or truncated
// frames, ErrorCode::protocol for an unsupported version or an unknown type;
// it never throws. Thread-safety: free functions over values.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/collection.h"
#include "common/error.h"
#include "common/test_result.h"

// Nested namespace: message names (Error, Lease, Hello) would otherwise collide
// with common::Error and coordinator::Lease.
namespace drover::common::farm {

// Version this build speaks, and the oldest it still understands.
inline constexpr int k_protocol_version = 1;
inline constexpr int k_min_protocol_version = 1;

// Heartbeats: each side sends one every interval when it has sent nothing else;
// a peer from which nothing arrived for `lost_after` intervals is lost.
// The coordinator announces the values it uses in Welcome.
inline constexpr int k_heartbeat_interval_ms = 1000;
inline constexpr int k_heartbeat_lost_after = 5;

enum class MessageType : std::uint16_t {
  hello = 1,
  welcome = 2,
  heartbeat = 3,
  work_request = 4,
  lease = 5,
  test_result = 6,
  lease_done = 7,
  hand_back = 8,
  cancel = 9,
  shutdown = 10,
  run_submit = 11,
  run_accepted = 12,
  result_stream = 13,
  run_finished = 14,
  error = 15,
};

// Peer -> coordinator, first message on a connection.
struct Hello {
  std::string role;  // "agent" or "client"
  std::string name;  // agent: host name or --name; client: user@host
  int protocol_min = k_min_protocol_version;
  int protocol_max = k_protocol_version;
  std::string drover_version;
  int slots = 0;  // agent: worker slots
  // agent: "platform" ("linux-x86_64"), "python" ("3.11.2"), "pytest" ("7.2.1"), user labels
  std::map<std::string, std::string> labels;
  std::vector<std::string> capabilities;
  // agent: serve only this run ("" = any). A CI queue job's pool serves its own run.
  std::string run_id;
};

// Coordinator -> peer, answer to Hello.
struct Welcome {
  int protocol = k_protocol_version;  // negotiated: the highest both speak
  std::string peer_id;                // the coordinator's name for this peer (log lines)
  int heartbeat_interval_ms = k_heartbeat_interval_ms;
  int heartbeat_lost_after = k_heartbeat_lost_after;
  std::vector<std::string> capabilities;
};

// Both ways, any peer. Carries nothing: arrival is the signal.
struct Heartbeat {
  std::uint64_t seq = 0;
};

// Agent -> coordinator: "I can take `credits` more leases now" (free slots).
// Replaces any earlier request; the coordinator keeps the credits outstanding
// and sends leases as work appears, one credit per lease.
struct WorkRequest {
  int credits = 0;
};

// Coordinator -> agent: run these tests (indices into the run's collection, in order).
struct Lease {
  std::string run_id;
  std::uint64_t lease_id = 0;
  std::vector<TestIndex> tests;
  bool speculative = false;
  std::string workspace;        // sha256 of the workspace bundle (GET /api/v1/workspaces/{sha256})
  std::string workdir;          // directory inside the workspace pytest runs from; "" = its root
  std::vector<std::string> pytest_args;
  std::string collection_hash;  // the agent's own collection must hash to this
  int collection_size = 0;
  double timeout = 0;  // the run's per-test timeout in seconds; 0 = the agent's own --timeout
};

// Agent -> coordinator: one finished test of a lease (real or synthetic).
struct TestResultMsg {
  std::string run_id;
  std::uint64_t lease_id = 0;
  TestResult result;
};

// Agent -> coordinator: every test of the lease was reported or handed back.
struct LeaseDone {
  std::string run_id;
  std::uint64_t lease_id = 0;
};

// Agent -> coordinator: tests of a lease the agent will not run; back to the queue.
struct HandBack {
  std::string run_id;
  std::uint64_t lease_id = 0;
  std::vector<TestIndex> tests;
  std::string reason;
};

// Coordinator -> agent: drop these tests of the run if not started (empty = the whole run).
// Client -> coordinator: stop the run (-x, --maxfail, Ctrl-C); `tests` is ignored.
struct Cancel {
  std::string run_id;
  std::vector<TestIndex> tests;
  std::string reason;
  // Also stop the cancelled tests already running (their worker is killed): their
  // results would not count (a copy that lost, a lease taken over, an interrupted run).
  // False for -x/--maxfail, whose running tests finish and report, as in pytest-xdist.
  bool stop_running = false;
};

// Either way: the sender is going away now (agent/client exit, coordinator stop).
struct Shutdown {
  std::string reason;
};

// Client -> coordinator: start (or join, same run_id and collection hash) a run.
struct RunSubmit {
  std::string run_id;  // "" = the coordinator picks one
  std::string workspace;
  std::string workdir;
  std::vector<std::string> pytest_args;
  Collection collection;          // the client's own collection; agents must match its hash
  std::vector<TestIndex> selection;  // tests to run; empty = every collected test
  std::string group_by = "file";  // "none" | "file" | "class" (planner GroupBy words)
  std::map<std::string, double> durations;  // the client's known durations, merged with history
  bool speculate = true;
  int max_losses = 2;
  // A CI queue run: it outlives its clients (jobs come and go) and, having no
  // workspace, is served only by agents pinned to it (Hello.run_id).
  bool queue = false;
  int slots = 0;  // worker slots expected to serve the run (0 = those connected now); sizes units
  std::string pytest_version;  // the client's; agents with another pytest cannot serve the run
  double timeout = 0;  // the client's --timeout (0: none given; agents use their own)
};

// Coordinator -> client.
struct RunAccepted {
  std::string run_id;
  int tests = 0;        // tests queued
  bool joined = false;  // the run already existed; this client now also receives its results
};

// Coordinator -> client: the one final result of a test (after deduplication).
struct ResultStream {
  std::string run_id;
  TestResult result;
};

// Coordinator -> client: no more results will come for this run.
struct RunFinished {
  std::string run_id;
  std::string state;  // "finished", "cancelled", "failed"
  std::string reason; // why, when not "finished"
  std::map<std::string, int> counts;  // pytest status word -> tests ("passed": 3, ...)
  double elapsed = 0.0;
};

// Any direction: the request could not be served. Agent -> coordinator with a
// run_id: this agent cannot serve that run (e.g. collection mismatch).
struct ErrorMsg {
  std::string code;  // ErrorCode word: "usage", "protocol", "collection", ...
  std::string message;
  std::string run_id;
};

using Message = std::variant<Hello, Welcome, Heartbeat, WorkRequest, Lease, TestResultMsg,
                             LeaseDone, HandBack, Cancel, Shutdown, RunSubmit, RunAccepted,
                             ResultStream, RunFinished, ErrorMsg>;

struct Envelope {
  int version = k_protocol_version;
  MessageType type = MessageType::heartbeat;
  Message message;
};

[[nodiscard]] MessageType type_of(const Message& message);
[[nodiscard]] std::string_view to_string(MessageType type);
[[nodiscard]] std::string_view to_string(ErrorCode code);
[[nodiscard]] ErrorCode parse_error_code(std::string_view word);  // unknown -> internal

// One frame, encoded at `version` (the negotiated one; the default before Welcome).
[[nodiscard]] std::string encode(const Message& message, int version = k_protocol_version);

// Decodes one frame. A version outside [k_min_protocol_version, k_protocol_version]
// is rejected, except for Hello, which any version may send so negotiation can answer.
[[nodiscard]] Result<Envelope> decode(std::string_view frame);

// The version to speak with a peer that sent `hello`, or ErrorCode::protocol
// with a message naming both ranges.
[[nodiscard]] Result<int> negotiate(const Hello& hello);

}  // namespace drover::common::farm
