#include "coordinator/dispatcher.h"

#include <algorithm>
#include <ctime>
#include <limits>
#include <numeric>

#include <fmt/format.h>

#include "common/planner.h"
#include "coordinator/dispatcher_state.h"
#include "coordinator/log.h"

namespace drover::coordinator {

namespace farm = common::farm;

Dispatcher::Dispatcher(Store& store, DispatcherOptions options)
    : m_store(store), m_options(options) {}
Dispatcher::~Dispatcher() = default;

std::size_t Dispatcher::agent_count() const {
  return static_cast<std::size_t>(std::ranges::count_if(
      m_peers, [](const auto& entry) { return entry.second->role == "agent"; }));
}
std::size_t Dispatcher::client_count() const { return m_peers.size() - agent_count(); }
std::size_t Dispatcher::active_runs() const { return m_runs.size(); }

void Dispatcher::send(Out& out, Peer& peer, farm::Message message, double now) {
  peer.last_sent = now;
  out.push_back(Outgoing{peer.id, std::move(message), peer.version});
}

Dispatcher::Run* Dispatcher::find_run(const std::string& run_id) {
  auto found = m_runs.find(run_id);
  return found == m_runs.end() ? nullptr : found->second.get();
}

Dispatcher::Peer* Dispatcher::agent_by_label(const std::string& label) {
  for (auto& [id, peer] : m_peers) {
    if (peer->label == label) return peer.get();
  }
  return nullptr;
}

std::vector<Outgoing> Dispatcher::on_bad_frame(const std::string& peer, const common::Error& error,
                                               double now) {
  auto found = m_peers.find(peer);
  if (found != m_peers.end()) found->second->last_seen = now;
  log()->warn("dropped frame from {}: {}",
              found != m_peers.end() ? found->second->label : "unknown peer", error.message);
  return {};
}

std::vector<Outgoing> Dispatcher::on_message(const std::string& id, const std::string& key_role,
                                             farm::Envelope envelope, double now) {
  Out out;
  if (auto* hello = std::get_if<farm::Hello>(&envelope.message)) {
    on_hello(out, id, key_role, *hello, now);
    settle(out, now);
    return out;
  }
  auto found = m_peers.find(id);
  if (found == m_peers.end()) {
    // A peer we do not know (never said Hello, or lost): tell it to start over.
    if (envelope.type != farm::MessageType::shutdown) {
      out.push_back(Outgoing{id, farm::ErrorMsg{"protocol", "send Hello first", ""},
                             farm::k_protocol_version});
    }
    return out;
  }
  Peer& peer = *found->second;
  peer.last_seen = now;
  const bool agent = peer.role == "agent";
  std::visit(
      [&](auto& message) {
        using T = std::decay_t<decltype(message)>;
        if constexpr (std::is_same_v<T, farm::Heartbeat> || std::is_same_v<T, farm::LeaseDone>) {
          // Arrival is all that matters.
        } else if constexpr (std::is_same_v<T, farm::WorkRequest>) {
          if (agent) peer.credits = std::clamp(message.credits, 0, 1000);
        } else if constexpr (std::is_same_v<T, farm::TestResultMsg>) {
          Run* run = agent ? find_run(message.run_id) : nullptr;
          if (run == nullptr) return;
          if (message.result.index >= run->submit.collection.items.size()) {
            log()->warn("run {}: agent {} reported unknown test {}", run->id, peer.label,
                        message.result.index);
            return;
          }
          if (message.result.phases.empty()) {  // the codec refuses these; never trust one
            log()->warn("run {}: agent {} reported test {} without phases", run->id, peer.label,
                        message.result.index);
            return;
          }
          // Only a test the agent holds now: not one it was never given, nor one taken
          // from it (lost, or its lease moved to another agent), which runs elsewhere.
          if (!run->scheduler.holds(peer.label, message.result.index)) {
            log()->warn("run {}: agent {} reported test {}, which it does not hold", run->id, peer.label,
                        message.result.index);
            return;
          }
          apply(out, *run, run->scheduler.result(peer.label, std::move(message.result)), now);
        } else if constexpr (std::is_same_v<T, farm::HandBack>) {
          Run* run = agent ? find_run(message.run_id) : nullptr;
          if (run == nullptr) return;
          log()->info("run {}: agent {} handed back {} tests: {}", run->id, peer.label,
                      message.tests.size(), message.reason);
          apply(out, *run, run->scheduler.hand_back(peer.label, message.lease_id, message.tests), now);
        } else if constexpr (std::is_same_v<T, farm::Cancel>) {
          Run* run = !agent ? find_run(message.run_id) : nullptr;
          if (run != nullptr && run->state.empty()) {
            log()->info("run {}: cancelled by client {}: {}", run->id, peer.label, message.reason);
            stop_run(out, *run, "cancelled", message.reason.empty() ? "cancelled" : message.reason, now,
                     message.stop_running);
          }
        } else if constexpr (std::is_same_v<T, farm::Shutdown>) {
          peer_lost(out, peer.id, fmt::format("left: {}", message.reason), now);
        } else if constexpr (std::is_same_v<T, farm::RunSubmit>) {
          if (agent) {
            send(out, peer, farm::ErrorMsg{"protocol", "agents cannot submit runs", message.run_id}, now);
          } else {
            on_submit(out, peer, std::move(message), now);
          }
        } else if constexpr (std::is_same_v<T, farm::ErrorMsg>) {
          if (agent && !message.run_id.empty()) {
            on_agent_error(out, peer, message, now);
          } else {
            log()->warn("{} reported {} error: {}", peer.label, message.code, message.message);
          }
        } else {
          log()->warn("dropped {} from {}: not a message peers send",
                      farm::to_string(envelope.type), peer.label);
        }
      },
      envelope.message);
  dispatch(out, now);
  settle(out, now);
  return out;
}

void Dispatcher::on_hello(Out& out, const std::string& id, const std::string& key_role,
                          const farm::Hello& hello, double now) {
  if (m_peers.contains(id)) peer_lost(out, id, "said Hello again", now);
  auto refuse = [&](std::string code, std::string message) {
    log()->warn("refused {} '{}': {}", hello.role, hello.name, message);
    out.push_back(Outgoing{id, farm::ErrorMsg{std::move(code), std::move(message), ""},
                           farm::k_protocol_version});
  };
  auto version = farm::negotiate(hello);
  if (!version) return refuse("protocol", version.error().message);
  if (hello.role != "agent" && hello.role != "client") {
    return refuse("protocol", fmt::format("unknown role '{}'", hello.role));
  }
  if (m_options.enforce_key_roles && key_role != hello.role && key_role != "job") {
    return refuse("protocol", fmt::format("this key is not allowed to connect as {}", hello.role));
  }
  if (hello.role == "agent" && hello.slots <= 0) return refuse("usage", "an agent needs at least 1 slot");
  auto peer = std::make_unique<Peer>();
  peer->id = id;
  peer->role = hello.role;
  peer->slots = hello.slots;
  peer->version = *version;
  peer->last_seen = now;
  if (hello.role == "agent") {
    peer->pinned_run = hello.run_id;
    peer->labels = hello.labels;
  }
  peer->label = fmt::format("{}{}#{}", hello.role == "client" ? "client:" : "",
                            hello.name.empty() ? "anonymous" : hello.name, m_next_peer++);
  Peer& added = *peer;
  m_peers[id] = std::move(peer);
  std::string labels;
  for (const auto& [key, value] : hello.labels) labels += fmt::format(" {}={}", key, value);
  log()->info("{} {} connected (protocol {}, {} slots){}", hello.role, added.label, *version,
              hello.slots, labels);
  farm::Welcome welcome;
  welcome.protocol = *version;
  welcome.peer_id = added.label;
  welcome.heartbeat_interval_ms = m_options.heartbeat_interval_ms;
  welcome.heartbeat_lost_after = m_options.heartbeat_lost_after;
  send(out, added, std::move(welcome), now);
  if (added.role == "agent") fail_unservable(out, now);
}

void Dispatcher::on_agent_error(Out& out, Peer& agent, const farm::ErrorMsg& error, double now) {
  Run* run = find_run(error.run_id);
  if (run == nullptr) return;
  log()->warn("run {}: agent {} cannot serve it: {}", run->id, agent.label, error.message);
  run->refused.insert(agent.label);
  if (!has_server(*run) && run->state.empty()) {
    stop_run(out, *run, "failed", fmt::format("no agent can run it: {}", error.message), now);
  }
}

void Dispatcher::peer_lost(Out& out, const std::string& id, const std::string& reason, double now) {
  auto found = m_peers.find(id);
  if (found == m_peers.end()) return;
  std::unique_ptr<Peer> peer = std::move(found->second);
  m_peers.erase(found);
  // Leaving with Shutdown is the normal end of a client; only silence is a warning.
  log()->log(reason.starts_with("left") ? spdlog::level::info : spdlog::level::warn, "{} {} {}",
             peer->role, peer->label, reason.starts_with("left") ? reason : "lost: " + reason);
  for (auto& [run_id, run] : m_runs) {
    if (peer->role == "agent" && run->agents.contains(peer->label)) {
      run->agents.erase(peer->label);
      apply(out, *run, run->scheduler.agent_lost(peer->label, reason), now);
    }
    // A queue run outlives its clients: CI jobs come and go, the run ends when its tests do.
    if (peer->role == "client" && run->clients.erase(id) > 0 && run->clients.empty() &&
        run->state.empty() && !run->submit.queue) {
      stop_run(out, *run, "cancelled", "client lost", now);
    }
  }
  dispatch(out, now);
  settle(out, now);
}

std::vector<Outgoing> Dispatcher::tick(double now) {
  Out out;
  const double interval = m_options.heartbeat_interval_ms / 1000.0;
  const double lost_after = interval * m_options.heartbeat_lost_after;
  std::vector<std::string> silent;
  for (auto& [id, peer] : m_peers) {
    if (now - peer->last_seen > lost_after) {
      silent.push_back(id);
    } else if (now - peer->last_sent >= interval) {
      send(out, *peer, farm::Heartbeat{++peer->beat}, now);
    }
  }
  for (const std::string& id : silent) {
    peer_lost(out, id, fmt::format("no heartbeat for {:.1f} s", lost_after), now);
  }
  for (auto& [run_id, run] : m_runs) {
    if (run->state.empty() && run->unserved_since > 0.0 &&
        now - run->unserved_since >= m_options.no_agent_timeout_s) {
      log()->warn("run {}: no agent for {:.0f} s; closing it", run_id, now - run->unserved_since);
      stop_run(out, *run, "failed", "no agent left", now);
    }
  }
  settle(out, now);
  return out;
}

double Dispatcher::next_tick() const {
  const double interval = m_options.heartbeat_interval_ms / 1000.0;
  const double lost_after = interval * m_options.heartbeat_lost_after;
  double next = std::numeric_limits<double>::infinity();
  for (const auto& [id, peer] : m_peers) {
    next = std::min({next, peer->last_sent + interval, peer->last_seen + lost_after});
  }
  for (const auto& [id, run] : m_runs) {
    if (run->state.empty() && run->unserved_since > 0.0) {
      next = std::min(next, run->unserved_since + m_options.no_agent_timeout_s);
    }
  }
  return next;
}

std::vector<Outgoing> Dispatcher::shutdown(const std::string& reason, double now) {
  Out out;
  for (auto& [id, run] : m_runs) {
    if (run->state.empty()) stop_run(out, *run, "failed", reason, now);
    // Nothing will report any more: tests still leased get their error too, streamed
    // to the clients before Shutdown, so every test of the run has one result.
    apply(out, *run, run->scheduler.fail_unfinished(fmt::format("not run: {}", run->reason)), now);
  }
  for (auto& [id, peer] : m_peers) send(out, *peer, farm::Shutdown{reason}, now);
  // Results already in hand are kept; runs end as failed with `reason`.
  for (auto& [id, run] : m_runs) {
    if (!run->unstored.empty()) (void)m_store.add_results(run->id, run->unstored);
    (void)m_store.finish_run(run->id, run->state, run->reason, now);
  }
  m_runs.clear();
  m_run_order.clear();
  return out;
}

}  // namespace drover::coordinator
