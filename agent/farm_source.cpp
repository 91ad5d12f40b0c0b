#include "agent/farm_source.h"

#include <algorithm>

#include "common/config.h"
#include <chrono>
#include <map>
#include <utility>

namespace drover::agent {

namespace farm = common::farm;

RunKey key_of(const farm::Lease& lease) {
  // A timeout the coordinator should have refused falls back to the agent's own.
  const bool usable = lease.timeout >= 0 && lease.timeout <= common::k_max_timeout;
  return {lease.run_id, lease.workspace, lease.workdir, lease.pytest_args, lease.collection_hash,
          usable ? lease.timeout : 0.0};
}

FarmMailbox::FarmMailbox(int slots, int lookahead_per_slot)
    : m_capacity(std::max(1, slots) * (1 + std::max(0, lookahead_per_slot))) {}

void FarmMailbox::hand_back_locked(const std::string& run_id, std::uint64_t lease,
                                   std::vector<TestIndex> tests, const std::string& reason) {
  if (!tests.empty()) m_outgoing.push_back(farm::HandBack{run_id, lease, std::move(tests), reason});
  m_outgoing.push_back(farm::LeaseDone{run_id, lease});
}

void FarmMailbox::finish_test_locked(std::uint64_t lease, TestIndex index) {
  auto it = m_active.find(lease);
  if (it == m_active.end()) return;
  it->second.remaining.erase(index);
  if (it->second.remaining.empty()) {
    m_outgoing.push_back(farm::LeaseDone{it->second.run_id, lease});
    m_active.erase(it);
  }
}

void FarmMailbox::add_lease(farm::Lease lease) {
  std::lock_guard lock(m_mutex);
  if (m_refused_runs.contains(lease.run_id)) {
    hand_back_locked(lease.run_id, lease.lease_id, std::move(lease.tests), "agent cannot serve this run");
    return;
  }
  if (m_cancelled_runs.contains(lease.run_id) || m_closed) {
    hand_back_locked(lease.run_id, lease.lease_id, std::move(lease.tests), "cancelled");
    return;
  }
  // A test leased again (after a steal, a lost copy elsewhere) must run here: it is no
  // longer cancelled.
  if (auto dropped = m_cancelled.find(lease.run_id); dropped != m_cancelled.end()) {
    for (TestIndex test : lease.tests) dropped->second.erase(test);
  }
  if (auto pending = m_pending_cancels.find(lease.run_id); pending != m_pending_cancels.end()) {
    std::erase_if(pending->second, [&](const Cancellation& c) { return std::ranges::count(lease.tests, c.test) > 0; });
  }
  m_buffer.push_back(std::move(lease));
  m_arrived.notify_all();
}

void FarmMailbox::cancel(const farm::Cancel& cancel) {
  std::lock_guard lock(m_mutex);
  if (cancel.tests.empty()) {
    m_cancelled_runs.insert(cancel.run_id);
    for (auto it = m_buffer.begin(); it != m_buffer.end();) {
      if (it->run_id != cancel.run_id) {
        ++it;
        continue;
      }
      hand_back_locked(it->run_id, it->lease_id, std::move(it->tests), "cancelled");
      it = m_buffer.erase(it);
    }
    // Its tests the pool holds are dropped where not started and handed back (the
    // coordinator closes them as "not run"); the pool serves on.
    for (const auto& [lease, active] : m_active) {
      if (active.run_id != cancel.run_id) continue;
      auto& pending = m_pending_cancels[cancel.run_id];
      for (TestIndex test : active.remaining) pending.push_back({test, cancel.stop_running});
    }
    return;
  }
  auto& dropped = m_cancelled[cancel.run_id];
  dropped.insert(cancel.tests.begin(), cancel.tests.end());
  auto& pending = m_pending_cancels[cancel.run_id];
  for (TestIndex test : cancel.tests) pending.push_back({test, cancel.stop_running});
  for (auto it = m_buffer.begin(); it != m_buffer.end();) {
    if (it->run_id == cancel.run_id) std::erase_if(it->tests, [&](TestIndex t) { return dropped.contains(t); });
    if (it->run_id == cancel.run_id && it->tests.empty()) {
      m_outgoing.push_back(farm::LeaseDone{it->run_id, it->lease_id});
      it = m_buffer.erase(it);
    } else {
      ++it;
    }
  }
}

void FarmMailbox::abort() {
  std::lock_guard lock(m_mutex);
  ++m_epoch;
  m_buffer.clear();
  m_active.clear();
  m_outgoing.clear();
  m_cancelled.clear();
  m_pending_cancels.clear();
  m_cancelled_runs.clear();
  if (m_pool != nullptr) m_pool->interrupt();
}

std::vector<farm::Message> FarmMailbox::take_outgoing() {
  std::lock_guard lock(m_mutex);
  return std::exchange(m_outgoing, {});
}

int FarmMailbox::wanted_credits() const {
  std::lock_guard lock(m_mutex);
  if (m_closed) return 0;
  return std::max(0, m_capacity - static_cast<int>(m_buffer.size() + m_active.size()));
}

void FarmMailbox::close() {
  std::lock_guard lock(m_mutex);
  m_closed = true;
  if (m_pool != nullptr) m_pool->interrupt();
  m_arrived.notify_all();
}

std::optional<RunKey> FarmMailbox::next_key(int timeout_ms) {
  std::unique_lock lock(m_mutex);
  m_arrived.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                     [this] { return m_closed || !m_buffer.empty(); });
  if (m_closed || m_buffer.empty()) return std::nullopt;
  return key_of(m_buffer.front());
}

bool FarmMailbox::closed() const {
  std::lock_guard lock(m_mutex);
  return m_closed;
}

void FarmMailbox::refuse_run(const std::string& run_id, common::ErrorCode code, const std::string& message) {
  std::lock_guard lock(m_mutex);
  m_refused_runs.insert(run_id);
  for (auto it = m_buffer.begin(); it != m_buffer.end();) {
    if (it->run_id != run_id) {
      ++it;
      continue;
    }
    hand_back_locked(it->run_id, it->lease_id, std::move(it->tests), message);
    it = m_buffer.erase(it);
  }
  m_outgoing.push_back(farm::ErrorMsg{std::string(farm::to_string(code)), message, run_id});
}

void FarmMailbox::set_pool(Pool* pool) {
  std::lock_guard lock(m_mutex);
  m_pool = pool;
  // A close() or abort() that came while no pool was registered still applies.
  if (m_pool != nullptr && m_closed) m_pool->interrupt();
}

FarmWorkSource::FarmWorkSource(FarmMailbox& mailbox, RunKey key, std::string agent_name)
    : m_mailbox(mailbox), m_key(std::move(key)), m_agent_name(std::move(agent_name)) {
  std::lock_guard lock(m_mailbox.m_mutex);
  m_epoch = m_mailbox.m_epoch;
}

std::vector<WorkLease> FarmWorkSource::request(int credits) {
  std::lock_guard lock(m_mailbox.m_mutex);
  std::vector<WorkLease> out;
  if (m_epoch != m_mailbox.m_epoch || m_mailbox.m_closed) return out;
  auto& buffer = m_mailbox.m_buffer;
  // Test indices the pool holds, by run: another run's lease naming one of them waits.
  std::map<TestIndex, std::string> held;
  for (const auto& [id, active] : m_mailbox.m_active) {
    for (TestIndex test : active.remaining) held.emplace(test, active.run_id);
  }
  for (auto it = buffer.begin(); it != buffer.end() && static_cast<int>(out.size()) < credits;) {
    const bool clash = std::ranges::any_of(it->tests, [&](TestIndex test) {
      auto found = held.find(test);
      return found != held.end() && found->second != it->run_id;
    });
    if (key_of(*it) != m_key || clash) {
      ++it;
      continue;
    }
    for (TestIndex test : it->tests) held.emplace(test, it->run_id);
    FarmMailbox::Active active{it->run_id, {it->tests.begin(), it->tests.end()}};
    if (active.remaining.empty()) {
      m_mailbox.m_outgoing.push_back(farm::LeaseDone{it->run_id, it->lease_id});
    } else {
      m_mailbox.m_active.emplace(it->lease_id, std::move(active));
      out.push_back(WorkLease{it->lease_id, std::move(it->tests)});
    }
    it = buffer.erase(it);
  }
  return out;
}

bool FarmWorkSource::exhausted() {
  std::lock_guard lock(m_mailbox.m_mutex);
  if (m_epoch != m_mailbox.m_epoch || m_mailbox.m_closed) return true;
  // Work for another pool is waiting and none for ours: wind down so its pool can start.
  const auto& buffer = m_mailbox.m_buffer;
  const bool ours = std::any_of(buffer.begin(), buffer.end(), [&](const auto& l) { return key_of(l) == m_key; });
  return !ours && !buffer.empty();
}

bool FarmWorkSource::stopping() {
  std::lock_guard lock(m_mailbox.m_mutex);
  return m_epoch != m_mailbox.m_epoch || m_mailbox.m_closed;
}

std::vector<Cancellation> FarmWorkSource::take_cancellations() {
  std::lock_guard lock(m_mailbox.m_mutex);
  // Only tests of the cancelled run: the pool may hold another run's test with the same
  // index (runs sharing a workspace and arguments share the pool).
  std::vector<Cancellation> cancellations;
  for (const auto& [run, pending] : m_mailbox.m_pending_cancels) {
    for (const Cancellation& cancellation : pending) {
      const bool held = std::ranges::any_of(m_mailbox.m_active, [&](const auto& entry) {
        return entry.second.run_id == run && entry.second.remaining.contains(cancellation.test);
      });
      if (held) cancellations.push_back(cancellation);
    }
  }
  m_mailbox.m_pending_cancels.clear();
  return cancellations;
}

void FarmWorkSource::completed(common::TestResult result) {
  std::lock_guard lock(m_mailbox.m_mutex);
  if (m_epoch != m_mailbox.m_epoch) return;  // the coordinator requeued it already
  // Indices are unique among the held leases (see request()), so the lease is found.
  std::uint64_t lease = 0;
  std::string run_id = m_key.run_id;
  for (const auto& [id, active] : m_mailbox.m_active) {
    if (active.remaining.contains(result.index)) {
      lease = id;
      run_id = active.run_id;
      break;
    }
  }
  const TestIndex index = result.index;
  result.worker = m_agent_name + "/" + result.worker;
  m_mailbox.m_outgoing.push_back(farm::TestResultMsg{run_id, lease, std::move(result)});
  m_mailbox.finish_test_locked(lease, index);
}

void FarmWorkSource::handed_back(std::uint64_t lease, std::vector<TestIndex> tests) {
  std::lock_guard lock(m_mailbox.m_mutex);
  if (m_epoch != m_mailbox.m_epoch) return;
  auto active = m_mailbox.m_active.find(lease);
  const std::string run_id = active != m_mailbox.m_active.end() ? active->second.run_id : m_key.run_id;
  const auto& dropped = m_mailbox.m_cancelled[run_id];
  std::vector<TestIndex> back;
  for (TestIndex t : tests) {
    if (!dropped.contains(t)) back.push_back(t);
  }
  if (!back.empty()) {
    m_mailbox.m_outgoing.push_back(farm::HandBack{run_id, lease, back, "not run on this agent"});
  }
  for (TestIndex t : tests) m_mailbox.finish_test_locked(lease, t);
}

}  // namespace drover::agent
