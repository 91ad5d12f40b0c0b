// The coordinator's brain between the sockets and the schedulers: peers
// (agents and clients), their heartbeats and credits, and the active runs,
// each driven by its own Scheduler.
//
// Decoded messages and clock ticks go in; messages to send come out, so the
// whole farm logic runs in tests with no socket and a fake clock. Runs with
// queued work share the agents evenly (an agent stays with its run, whose warm
// pool it has, unless another run has fewer than its share); an agent that
// goes silent or leaves loses its leases (Scheduler::agent_lost). Final
// results are stored (Store), streamed to the run's clients, and feed the
// duration history that plans the next runs.
// Failure: a peer's bad message is answered with an Error message or dropped
// with a log line; store errors are logged and the run goes on in memory.
// Thread-safety: none; the coordinator's loop thread owns it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/protocol.h"
#include "coordinator/scheduler.h"
#include "coordinator/store.h"

namespace drover::coordinator {

struct DispatcherOptions {
  int heartbeat_interval_ms = common::farm::k_heartbeat_interval_ms;
  int heartbeat_lost_after = common::farm::k_heartbeat_lost_after;
  // With CURVE every connection has a key role; Hello's role must match it
  // ("job" keys, for CI queue jobs, may connect as agent and as client).
  bool enforce_key_roles = false;
  // A run that no connected agent can serve for this long is closed: its
  // remaining tests get "not run: no agent left" errors.
  double no_agent_timeout_s = 300.0;
};

struct Outgoing {
  std::string peer;  // ZeroMQ routing id
  common::farm::Message message;
  int version = common::farm::k_protocol_version;  // the peer's negotiated version
};

class Dispatcher {
 public:
  Dispatcher(Store& store, DispatcherOptions options);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // One decoded frame from `peer`; `key_role` is its CURVE key's role ("" without CURVE).
  // `now` is unix time in seconds.
  [[nodiscard]] std::vector<Outgoing> on_message(const std::string& peer, const std::string& key_role,
                                                 common::farm::Envelope envelope, double now);
  // A frame from `peer` that did not decode; logged, counts as a sign of life.
  [[nodiscard]] std::vector<Outgoing> on_bad_frame(const std::string& peer,
                                                   const common::Error& error, double now);
  // Sends due heartbeats and drops peers silent for too long.
  [[nodiscard]] std::vector<Outgoing> tick(double now);
  // When tick() next has something to do (unix seconds).
  [[nodiscard]] double next_tick() const;
  // The coordinator is stopping: Shutdown to every peer; active runs become "failed".
  [[nodiscard]] std::vector<Outgoing> shutdown(const std::string& reason, double now);

  [[nodiscard]] std::size_t agent_count() const;
  [[nodiscard]] std::size_t client_count() const;
  [[nodiscard]] std::size_t active_runs() const;

 private:
  struct Peer;
  struct Run;
  using Out = std::vector<Outgoing>;

  void send(Out& out, Peer& peer, common::farm::Message message, double now);
  void on_hello(Out& out, const std::string& id, const std::string& key_role,
                const common::farm::Hello& hello, double now);
  void on_submit(Out& out, Peer& client, common::farm::RunSubmit submit, double now);
  void on_agent_error(Out& out, Peer& agent, const common::farm::ErrorMsg& error, double now);
  void peer_lost(Out& out, const std::string& id, const std::string& reason, double now);
  void dispatch(Out& out, double now);
  bool lease_one(Out& out, Peer& agent, bool queued_only, double now);
  // Runs to try for `agent`'s next lease, best first.
  [[nodiscard]] std::vector<Run*> lease_order(const Peer& agent, bool queued_only);
  bool lease_from(Out& out, Run& run, Peer& agent, double now);
  void apply(Out& out, Run& run, std::vector<Command> commands, double now);
  // Closes the queued tests as "not run: REASON" and cancels the agents' leases;
  // `stop_running`: the agents also stop the run's tests already running (see farm::Cancel).
  void stop_run(Out& out, Run& run, const std::string& state, const std::string& reason, double now,
                bool stop_running = true);
  // A client joining a run gets every result it missed.
  void replay(Out& out, Peer& client, const std::string& run_id, double now);
  [[nodiscard]] static bool can_serve(const Peer& agent, const Run& run);
  // Whether some connected agent can serve `run`.
  [[nodiscard]] bool has_server(const Run& run) const;
  // Why `agent` cannot run `run`'s tests in the same pytest ("" when it can).
  [[nodiscard]] static std::string version_conflict(const Peer& agent, const Run& run);
  // Fails runs that no connected agent can serve for lack of the right pytest.
  void fail_unservable(Out& out, double now);
  // Stores pending results and finishes runs that are done.
  void settle(Out& out, double now);
  [[nodiscard]] std::string new_run_id(double now);
  Run* find_run(const std::string& run_id);
  Peer* agent_by_label(const std::string& label);

  Store& m_store;
  DispatcherOptions m_options;
  std::map<std::string, std::unique_ptr<Peer>> m_peers;  // by routing id
  std::map<std::string, std::unique_ptr<Run>> m_runs;    // active runs by id
  std::vector<std::string> m_run_order;                  // round-robin order of active runs
  std::size_t m_cursor = 0;
  std::uint64_t m_next_peer = 1;
  std::uint64_t m_next_run = 1;
};

}  // namespace drover::coordinator
