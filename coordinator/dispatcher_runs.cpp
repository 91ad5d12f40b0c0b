// Dispatcher, part two: runs. Submission and planning, round-robin leasing,
// carrying out scheduler commands, stopping and finishing runs.
#include <algorithm>
#include <cctype>
#include <ctime>

#include <fmt/format.h>

#include "common/config.h"
#include "common/planner.h"
#include "coordinator/dispatcher.h"
#include "coordinator/dispatcher_state.h"
#include "coordinator/log.h"

namespace drover::coordinator {

namespace farm = common::farm;

std::string Dispatcher::new_run_id(double now) {
  const std::time_t seconds = static_cast<std::time_t>(now);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  for (;;) {
    std::string id = fmt::format("{:04}{:02}{:02}-{:02}{:02}{:02}-{}", utc.tm_year + 1900,
                                 utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                                 m_next_run++);
    auto stored = m_store.run(id);
    if (!m_runs.contains(id) && (!stored || !stored->has_value())) return id;
  }
}

void Dispatcher::on_submit(Out& out, Peer& client, farm::RunSubmit submit, double now) {
  auto refuse = [&](std::string code, std::string message) {
    log()->warn("refused run {} from {}: {}", submit.run_id, client.label, message);
    send(out, client, farm::ErrorMsg{std::move(code), std::move(message), submit.run_id}, now);
  };
  // Run ids name files and URLs (reports, /api/v1/runs/{id}): plain words only.
  const bool plain = submit.run_id.size() <= 128 && !submit.run_id.starts_with('.') &&
                     std::ranges::all_of(submit.run_id, [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' ||
                              c == '_' || c == '.';
                     });
  if (!plain) return refuse("usage", "a run id may hold only letters, digits, '-', '_' and '.'");
  if (!submit.run_id.empty()) {
    if (Run* run = find_run(submit.run_id)) {
      if (run->submit.collection.hash != submit.collection.hash) {
        return refuse("collection",
                      fmt::format("run {} is running with collection {}, not {}", run->id,
                                  run->submit.collection.hash, submit.collection.hash));
      }
      const std::string& running = run->submit.pytest_version;
      if (!running.empty() && !submit.pytest_version.empty() && running != submit.pytest_version) {
        return refuse("collection", fmt::format("run {} is running with pytest {}, not {}", run->id, running,
                                                submit.pytest_version));
      }
      run->clients.insert(client.id);
      log()->info("run {}: client {} joined", run->id, client.label);
      send(out, client, farm::RunAccepted{run->id, run->tests, true}, now);
      replay(out, client, run->id, now);
      return;
    }
    auto stored = m_store.run(submit.run_id);
    if (stored && stored->has_value()) {
      const RunRecord& record = **stored;
      if (record.collection_hash != submit.collection.hash) {
        return refuse("collection", fmt::format("run {} ran collection {}, not {}", record.id,
                                                record.collection_hash, submit.collection.hash));
      }
      send(out, client, farm::RunAccepted{record.id, record.tests, true}, now);
      replay(out, client, record.id, now);
      send(out, client,
           farm::RunFinished{record.id, record.state, record.reason, record.counts,
                             record.finished - record.created},
           now);
      return;
    }
  }
  auto group_by = common::parse_group_by(submit.group_by);
  if (!group_by) return refuse("usage", group_by.error().message);
  if (submit.max_losses < 1) return refuse("usage", "max_losses must be at least 1");
  if (!(submit.timeout >= 0 && submit.timeout <= common::k_max_timeout)) {  // also NaN
    return refuse("usage", "timeout must be from 0 to 1e9 seconds");
  }
  const auto& items = submit.collection.items;
  std::vector<common::TestIndex> selection = submit.selection;
  if (selection.empty()) {
    selection.resize(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) selection[i] = static_cast<common::TestIndex>(i);
  }
  if (std::ranges::any_of(selection, [&](common::TestIndex i) { return i >= items.size(); })) {
    return refuse("usage", "selection names a test index outside the collection");
  }

  // History plans the run; the client's own durations fill in what it lacks.
  common::Durations durations = m_store.durations().value_or(common::Durations{});
  for (const auto& [nodeid, seconds] : submit.durations) durations.try_emplace(nodeid, seconds);
  const auto estimates = common::estimate_durations(submit.collection, durations);
  int slots = 0;
  for (const auto& [id, peer] : m_peers) slots += peer->role == "agent" ? peer->slots : 0;
  slots = std::max(slots, submit.slots);
  auto units = common::make_units(submit.collection, selection, estimates, *group_by, std::max(slots, 1));
  int tests = 0;
  for (const auto& unit : units) tests += static_cast<int>(unit.tests.size());

  const std::string run_id = submit.run_id.empty() ? new_run_id(now) : submit.run_id;
  submit.run_id = run_id;
  RunRecord record;
  record.id = run_id;
  record.created = now;
  record.tests = tests;
  record.collection_hash = submit.collection.hash;
  record.workspace = submit.workspace;
  if (auto stored = m_store.create_run(record, submit); !stored) {
    return refuse("io", stored.error().message);
  }
  SchedulerOptions options;
  options.max_losses = submit.max_losses;
  options.speculate_at_tail = submit.speculate;
  const std::size_t unit_count = units.size();
  auto run = std::make_unique<Run>(run_id, std::move(submit), std::move(units), options, now);
  run->clients.insert(client.id);
  run->tests = tests;
  log()->info("run {}: submitted by {}: {} tests in {} units, {} agent slots", run_id, client.label,
              tests, unit_count, slots);
  send(out, client, farm::RunAccepted{run_id, tests, false}, now);
  m_run_order.push_back(run_id);
  m_runs[run_id] = std::move(run);
  fail_unservable(out, now);
}

void Dispatcher::replay(Out& out, Peer& client, const std::string& run_id, double now) {
  auto results = m_store.results(run_id);
  if (!results) {
    log()->error("run {}: {}", run_id, results.error().message);
    return;
  }
  for (common::TestResult& result : *results) send(out, client, farm::ResultStream{run_id, std::move(result)}, now);
}

// A pinned agent (a CI queue job's pool) serves its run only; a run without a
// workspace (a queue run) has nothing other agents could fetch.
bool Dispatcher::can_serve(const Peer& agent, const Run& run) {
  if (agent.role != "agent" || run.refused.contains(agent.label) || !version_conflict(agent, run).empty()) {
    return false;
  }
  return agent.pinned_run.empty() ? !run.submit.workspace.empty() : agent.pinned_run == run.id;
}

std::string Dispatcher::version_conflict(const Peer& agent, const Run& run) {
  const std::string& wanted = run.submit.pytest_version;
  auto found = agent.labels.find("pytest");
  if (wanted.empty() || found == agent.labels.end() || found->second == "unknown" || found->second == wanted) {
    return {};
  }
  return fmt::format("pytest {} on agent {}, the client has pytest {}", found->second, agent.label, wanted);
}

bool Dispatcher::has_server(const Run& run) const {
  return std::ranges::any_of(m_peers, [&](const auto& entry) { return can_serve(*entry.second, run); });
}

void Dispatcher::fail_unservable(Out& out, double now) {
  for (auto& [id, run] : m_runs) {
    if (!run->state.empty() || has_server(*run)) continue;
    std::string conflict;
    for (const auto& [peer_id, peer] : m_peers) {
      if (conflict.empty()) conflict = version_conflict(*peer, *run);
    }
    if (!conflict.empty()) {
      log()->warn("run {}: no agent can run it: {}", id, conflict);
      stop_run(out, *run, "failed", "no agent can run it: " + conflict, now);
    }
  }
}

void Dispatcher::dispatch(Out& out, double now) {
  // Queued work first, across all agents; only then tail speculation.
  for (bool queued_only : {true, false}) {
    for (auto& [id, peer] : m_peers) {
      if (peer->role != "agent") continue;
      while (peer->credits > 0 && lease_one(out, *peer, queued_only, now)) {
      }
    }
  }
}

// An agent's pool is warm for one run: switching runs means a new pool and a
// new collection. So an agent stays with its current run while that run has work
// and no more than its fair share of agents; otherwise it moves to a run with
// fewer agents than its share, taking those in round-robin order.
std::vector<Dispatcher::Run*> Dispatcher::lease_order(const Peer& agent, bool queued_only) {
  std::vector<Run*> open;  // round-robin order from the cursor
  const std::size_t count = m_run_order.size();
  for (std::size_t step = 0; step < count; ++step) {
    Run* run = find_run(m_run_order[(m_cursor + step) % count]);
    if (run == nullptr || !run->state.empty() || !can_serve(agent, *run)) continue;
    if (queued_only && run->scheduler.queued_tests() == 0) continue;
    open.push_back(run);
  }
  if (open.empty()) return open;
  std::map<std::string, std::size_t> serving;
  std::size_t agents = 0;
  for (const auto& [id, peer] : m_peers) {
    if (!std::ranges::any_of(open, [&](const Run* run) { return can_serve(*peer, *run); })) continue;
    ++agents;
    ++serving[peer->current_run];
  }
  const std::size_t share = (agents + open.size() - 1) / open.size();
  Run* current = nullptr;
  for (Run* run : open) current = run->id == agent.current_run ? run : current;
  std::vector<Run*> order;
  if (current != nullptr && serving[current->id] <= share) order.push_back(current);
  for (Run* run : open) {
    if (run != current && serving[run->id] < share) order.push_back(run);
  }
  if (current != nullptr && order.empty()) order.push_back(current);
  for (Run* run : open) {
    if (std::ranges::find(order, run) == order.end()) order.push_back(run);
  }
  return order;
}

bool Dispatcher::lease_from(Out& out, Run& run, Peer& agent, double now) {
  if (run.agents.insert(agent.label).second) run.scheduler.agent_joined(agent.label, agent.slots);
  const int before = agent.credits;
  apply(out, run, run.scheduler.request_work(agent.label, 1, now), now);
  if (agent.credits >= before) return false;
  agent.current_run = run.id;
  const auto at = std::ranges::find(m_run_order, run.id);
  m_cursor = (static_cast<std::size_t>(at - m_run_order.begin()) + 1) % m_run_order.size();
  return true;
}

bool Dispatcher::lease_one(Out& out, Peer& agent, bool queued_only, double now) {
  for (Run* run : lease_order(agent, queued_only)) {
    if (lease_from(out, *run, agent, now)) return true;
  }
  return false;
}

void Dispatcher::apply(Out& out, Run& run, std::vector<Command> commands, double now) {
  for (Command& command : commands) {
    if (auto* assign = std::get_if<AssignCommand>(&command)) {
      Peer* agent = agent_by_label(assign->lease.agent);
      if (agent == nullptr) {
        log()->error("run {}: lease {} for unknown agent {}", run.id, assign->lease.id, assign->lease.agent);
        continue;
      }
      farm::Lease lease;
      lease.run_id = run.id;
      lease.lease_id = assign->lease.id;
      lease.tests = assign->lease.tests;
      lease.speculative = assign->lease.speculative;
      lease.workspace = run.submit.workspace;
      lease.workdir = run.submit.workdir;
      lease.pytest_args = run.submit.pytest_args;
      lease.collection_hash = run.submit.collection.hash;
      lease.collection_size = static_cast<int>(run.submit.collection.items.size());
      lease.timeout = run.submit.timeout;
      agent->credits = std::max(0, agent->credits - 1);
      log()->debug("run {}: lease {} ({} tests{}) to {}", run.id, lease.lease_id, lease.tests.size(),
                   lease.speculative ? ", speculative" : "", agent->label);
      send(out, *agent, std::move(lease), now);
    } else if (auto* cancel = std::get_if<CancelCommand>(&command)) {
      if (Peer* agent = agent_by_label(cancel->agent)) {
        send(out, *agent, farm::Cancel{run.id, cancel->tests, "finished elsewhere", true}, now);
      }
    } else if (auto* final_result = std::get_if<FinalCommand>(&command)) {
      const common::TestResult& result = final_result->result;
      ++run.counts[std::string(common::to_string(result.final_status()))];
      if (result.duration() > 0.0 && result.index < run.submit.collection.items.size()) {
        run.durations[run.submit.collection.items[result.index].nodeid] = result.duration();
      }
      for (const std::string& client : run.clients) {
        auto found = m_peers.find(client);
        if (found != m_peers.end()) send(out, *found->second, farm::ResultStream{run.id, result}, now);
      }
      run.unstored.push_back(result);
    }
  }
}

void Dispatcher::stop_run(Out& out, Run& run, const std::string& state, const std::string& reason,
                          double now, bool stop_running) {
  run.state = state;
  run.reason = reason;
  run.scheduler.stop();
  apply(out, run, run.scheduler.fail_remaining(fmt::format("not run: {}", reason)), now);
  for (const std::string& label : run.agents) {
    if (Peer* agent = agent_by_label(label)) send(out, *agent, farm::Cancel{run.id, {}, reason, stop_running}, now);
  }
}

void Dispatcher::settle(Out& out, double now) {
  std::vector<std::string> done;
  for (auto& [id, run] : m_runs) {
    // Tests handed back after a stop would otherwise wait in the queue forever.
    if (!run->state.empty()) {
      apply(out, *run, run->scheduler.fail_remaining(fmt::format("not run: {}", run->reason)), now);
    }
    if (!run->unstored.empty()) {
      if (auto stored = m_store.add_results(run->id, run->unstored); !stored) {
        log()->error("run {}: {}", run->id, stored.error().message);
      }
      run->unstored.clear();
    }
    if (run->scheduler.done()) {
      done.push_back(id);
    } else if (run->state.empty()) {
      run->unserved_since = has_server(*run) ? 0.0 : (run->unserved_since > 0.0 ? run->unserved_since : now);
    }
  }
  for (const std::string& id : done) {
    std::unique_ptr<Run> run = std::move(m_runs[id]);
    m_runs.erase(id);
    std::erase(m_run_order, id);
    m_cursor = m_run_order.empty() ? 0 : m_cursor % m_run_order.size();
    const std::string state = run->state.empty() ? "finished" : run->state;
    const double elapsed = now - run->started;
    for (const std::string& client : run->clients) {
      auto found = m_peers.find(client);
      if (found == m_peers.end()) continue;
      send(out, *found->second, farm::RunFinished{id, state, run->reason, run->counts, elapsed}, now);
    }
    if (auto ok = m_store.finish_run(id, state, run->reason, now); !ok) {
      log()->error("run {}: {}", id, ok.error().message);
    }
    if (auto ok = m_store.record_durations(run->durations); !ok) {
      log()->error("run {}: {}", id, ok.error().message);
    }
    std::string counts;
    for (const auto& [status, count] : run->counts) counts += fmt::format(" {}={}", status, count);
    log()->info("run {}: {} in {:.2f} s:{}{}", id, state, elapsed, counts,
                run->reason.empty() ? "" : fmt::format(" ({})", run->reason));
  }
}

}  // namespace drover::coordinator
