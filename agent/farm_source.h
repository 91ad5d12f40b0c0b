// The agent's side of farm work: a mailbox between the thread that talks to
// the coordinator and the thread that drives the warm Pool, and the WorkSource
// that lets an unchanged Pool pull leases from it.
//
// The network thread puts leases and cancellations in and takes protocol
// messages (TestResult, HandBack, LeaseDone) out; the session thread takes
// leases for the run its pool serves and reports results. Leases of one run
// with the same workspace and pytest arguments share one pool, so workers stay
// warm from lease to lease; a lease of another run makes the current source
// exhausted, so the pool winds down and a new one starts for the next run.
// A pool may hold leases of several runs at once, but never the same test index of
// two runs (results and cancellations are matched by index): such a lease waits.
// The mailbox asks for `lookahead` leases per slot beyond what it holds, so a
// worker's next lease is already here when its last test needs a nextitem.
// abort() (coordinator lost) drops everything: sources of the old connection
// report stopping() and their results are discarded, as the coordinator has
// already requeued their tests.
// Thread-safety: every FarmMailbox member locks; a FarmWorkSource is used by
// the one thread that drives its Pool.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/pool.h"
#include "common/protocol.h"

namespace drover::agent {

// What must be equal for two leases to run on the same pool: the same code, the
// same pytest arguments and collection. Leases of several runs that agree share the
// pool, so workers stay warm from run to run; `run_id` (the first run's) only names it.
struct RunKey {
  std::string run_id;
  std::string workspace;
  std::string workdir;
  std::vector<std::string> pytest_args;
  std::string collection_hash;
  double timeout = 0;  // the run's; 0 = the agent's own
  bool operator==(const RunKey& other) const {
    return workspace == other.workspace && workdir == other.workdir && pytest_args == other.pytest_args &&
           collection_hash == other.collection_hash && timeout == other.timeout;
  }
};
[[nodiscard]] RunKey key_of(const common::farm::Lease& lease);

class FarmMailbox {
 public:
  FarmMailbox(int slots, int lookahead_per_slot = 1);

  // ---- network thread
  void add_lease(common::farm::Lease lease);
  void cancel(const common::farm::Cancel& cancel);
  // The coordinator is gone: drop leases, pending messages and active sources.
  void abort();
  [[nodiscard]] std::vector<common::farm::Message> take_outgoing();
  // Leases this agent can take now: capacity minus leases it holds.
  [[nodiscard]] int wanted_credits() const;
  // Asks the session thread to finish; wakes a waiting next_key().
  void close();

  // ---- session thread
  // Waits up to timeout_ms for a lease; its key, or nullopt (timeout or closed).
  [[nodiscard]] std::optional<RunKey> next_key(int timeout_ms);
  [[nodiscard]] bool closed() const;
  // This agent cannot serve the run: its held leases go back, with an Error to the coordinator.
  void refuse_run(const std::string& run_id, common::ErrorCode code, const std::string& message);
  // The pool to interrupt on abort()/close(); nullptr when none.
  void set_pool(Pool* pool);

 private:
  friend class FarmWorkSource;
  struct Active {
    std::string run_id;
    std::set<TestIndex> remaining;
  };

  void hand_back_locked(const std::string& run_id, std::uint64_t lease, std::vector<TestIndex> tests,
                        const std::string& reason);
  void finish_test_locked(std::uint64_t lease, TestIndex index);

  mutable std::mutex m_mutex;
  std::condition_variable m_arrived;
  int m_capacity;
  std::uint64_t m_epoch = 0;
  bool m_closed = false;
  std::deque<common::farm::Lease> m_buffer;
  std::map<std::uint64_t, Active> m_active;  // lease id -> tests not yet reported
  std::map<std::string, std::set<TestIndex>> m_cancelled;  // run -> tests to drop
  std::map<std::string, std::vector<Cancellation>> m_pending_cancels;  // not yet seen by the pool
  std::set<std::string> m_cancelled_runs;
  std::set<std::string> m_refused_runs;
  std::vector<common::farm::Message> m_outgoing;
  Pool* m_pool = nullptr;
};

// A Pool's view of the mailbox for one RunKey.
class FarmWorkSource final : public WorkSource {
 public:
  // `agent_name` prefixes worker names in results ("agent-1/gw0").
  FarmWorkSource(FarmMailbox& mailbox, RunKey key, std::string agent_name);

  [[nodiscard]] std::vector<WorkLease> request(int credits) override;
  [[nodiscard]] bool exhausted() override;
  [[nodiscard]] bool stopping() override;
  [[nodiscard]] std::vector<Cancellation> take_cancellations() override;
  void completed(common::TestResult result) override;
  void handed_back(std::uint64_t lease, std::vector<TestIndex> tests) override;
  [[nodiscard]] int poll_interval_ms() const override { return 50; }

 private:
  FarmMailbox& m_mailbox;
  RunKey m_key;
  std::string m_agent_name;
  std::uint64_t m_epoch;
};

}  // namespace drover::agent
