// `drover agent`: a machine's warm pool serving a coordinator.
//
// The agent connects a DEALER to the coordinator, says Hello with its slots and
// labels, heartbeats, and asks for work with credits = the leases it can hold
// (free slots plus one lease of lookahead per slot, so workers never starve for
// a nextitem). Leases go through a FarmMailbox to a session thread that fetches
// the run's workspace (cached by hash under --workdir), starts a Pool there with
// the run's pytest arguments, checks that its collection hashes to the run's
// (a mismatch hands the lease back and tells the coordinator, which then sends
// this agent no more of that run), and runs leases on the same warm workers
// until another run needs the machine. Results stream back as tests finish;
// tests of a crashed worker are handed back by the Pool.
// When the coordinator goes silent (no frame for its heartbeat_lost_after
// intervals) or says Shutdown, the agent drops its pool (the coordinator has
// requeued its leases) and reconnects with exponential backoff (0.5 s .. 10 s).
// Failure: run() returns an Error only when retrying cannot help: the
// coordinator refused the agent's CURVE key or protocol version.
// Thread-safety: run() is called once, from one thread; `stop` may be set from
// a signal handler.
#pragma once

#include <atomic>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/pool.h"
#include "common/error.h"
#include "common/zmq_socket.h"

namespace drover::agent {

struct FarmAgentOptions {
  std::string endpoint;     // "tcp://host:5555"
  std::string http_server;  // "http://host:8080", for workspace bundles
  std::string http_token;
  std::string name;         // shown in results as NAME/gw0
  int slots = 1;
  std::string python = "python3";
  std::filesystem::path worker_path;  // folder holding the drover_worker package
  std::filesystem::path workdir;      // workspaces/ and tmp/ go here
  double timeout = 0.0;               // per-test seconds; 0 = none
  int max_worker_restart = -1;
  WorkerStart worker_start = WorkerStart::automatic;  // PoolOptions::worker_start
  std::size_t capture_limit = 1 << 20;  // bytes per captured-output section
  std::optional<common::CurveClientOptions> curve;
  std::map<std::string, std::string> labels;  // platform, python, pytest, ...
  std::string drover_version;
  // A CI queue job's pool: serve only this run, in this checkout (no workspace
  // bundle), logging only warnings (the job's terminal belongs to its report).
  std::string run_id;
  std::filesystem::path checkout;
  bool quiet = false;
  // A pool the job already started (and collected with) for its run: used for the
  // first leases whose pytest arguments and collection hash match, instead of
  // starting a second pool. Owned by the caller; outlives run().
  Pool* warm_pool = nullptr;
  std::vector<std::string> warm_pytest_args;
  std::string warm_collection_hash;
};

// platform / python / pytest labels for Hello ("linux-x86_64", "3.11.2", "7.2.1";
// "unknown" when `python` cannot tell).
[[nodiscard]] std::map<std::string, std::string> detect_labels(const std::string& python);

class FarmAgent {
 public:
  explicit FarmAgent(FarmAgentOptions options);
  [[nodiscard]] common::Result<void> run(const std::atomic<bool>& stop);

 private:
  FarmAgentOptions m_options;
};

}  // namespace drover::agent
