// Private to the Dispatcher: the state of one peer and one active run, shared
// by dispatcher.cpp (peers, heartbeats) and dispatcher_runs.cpp (runs).
// Thread-safety: owned by the Dispatcher's thread.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/durations.h"
#include "common/protocol.h"
#include "coordinator/dispatcher.h"

namespace drover::coordinator {


struct Dispatcher::Peer {
  std::string id;     // routing id
  std::string label;  // "build-7#3": log lines and the scheduler's AgentId
  std::string role;   // "agent" | "client"
  int slots = 0;
  int credits = 0;
  int version = common::farm::k_protocol_version;
  double last_seen = 0.0;
  double last_sent = 0.0;
  std::uint64_t beat = 0;
  std::string current_run;  // run of its latest lease: its warm pool serves that run
  std::string pinned_run;   // agent: serves only this run (a CI queue job's pool)
  std::map<std::string, std::string> labels;  // Hello's: platform, python, pytest, ...
};

struct Dispatcher::Run {
  std::string id;
  common::farm::RunSubmit submit;
  Scheduler scheduler;
  std::set<std::string> clients;   // routing ids of clients receiving results
  std::set<std::string> agents;    // labels of agents that joined the scheduler
  std::set<std::string> refused;   // labels of agents that cannot serve this run
  std::vector<common::TestResult> unstored;
  common::Durations durations;     // new history from this run
  std::map<std::string, int> counts;
  double started = 0.0;
  double unserved_since = 0.0;  // since when no connected agent can serve it; 0 = served
  int tests = 0;      // tests the run was asked to run
  std::string state;  // set when stopped: "cancelled" | "failed"
  std::string reason;

  Run(std::string run_id, common::farm::RunSubmit submission, std::vector<common::WorkUnit> units,
      SchedulerOptions options, double now)
      : id(std::move(run_id)), submit(std::move(submission)),
        scheduler(std::move(units), options), started(now) {}
};

}  // namespace drover::coordinator
