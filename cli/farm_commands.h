// The farm subcommands: `drover coordinator` and `drover keygen` (and, from the
// agent side, whatever that side adds here). Same contract as cli/commands.h:
// each registers one CLI11 subcommand whose callback stores pytest's exit code
// in `exit_code`, prints its own one-line errors, and returns right after
// validating its arguments under --check-args. Thread-safety: called once from main.
#pragma once

#include <CLI/CLI.hpp>

namespace drover::cli {

void add_coordinator_command(CLI::App& app, int& exit_code);
void add_keygen_command(CLI::App& app, int& exit_code);

}  // namespace drover::cli
