// `drover run --coordinator tcp://HOST:PORT`: the farm client.
//
// Collects locally (one warm worker, the same path as a local run) to get the
// collection and its hash, packs the current directory into a content-addressed
// workspace bundle and uploads it unless the coordinator already has it (with
// --workspace PATH nothing is uploaded: agents use their own checkout at PATH,
// which must pack to the same hash), submits the run, prints its id, and
// streams results into the usual terminal output, JUnit XML and durations
// file. -x/--maxfail and Ctrl-C cancel the run on the coordinator.
// CI queue mode (--shard i --total-shards N --run-id ID): the first job creates
// the run, later ones join it (same collection hash, else refused); each job
// serves the run with its own warm pool as a pinned agent in its own checkout
// (no upload), reports and writes JUnit for the tests its pool ran, and stays
// until the whole run is done so a dead job's tests still find a home. A
// coordinator that does not answer in --connect-timeout seconds: a warning and
// nullopt, and the caller runs static shard i instead.
// Ctrl-C in a queue job leaves the run to the other jobs instead of cancelling it.
// Settings that have no run flag come from the environment:
//   DROVER_HTTP        coordinator HTTP API (default http://HOST:8080)
//   DROVER_TOKEN       bearer token for it
//   DROVER_SERVER_KEY  coordinator CURVE public key (Z85 or key file)
//   DROVER_KEY_FILE    this client's CURVE key pair
// Returns pytest's exit code; errors are printed as one line.
// Thread-safety: call once, from the main thread (installs SIGINT/SIGTERM handlers).
#pragma once

#include <optional>

#include "cli/run_options.h"

namespace drover::cli {

// pytest's exit code, or nullopt: CI queue mode found no coordinator; run the static shard.
[[nodiscard]] std::optional<int> run_remote(const RunOptions& options);

}  // namespace drover::cli
