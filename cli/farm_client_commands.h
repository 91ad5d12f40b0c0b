// The farm's agent- and client-side subcommands: `drover agent`, `drover report
// download`, `drover durations pull|push`. Same contract as cli/commands.h:
// each registers one CLI11 subcommand whose callback stores pytest's exit code
// in `exit_code`, prints its own one-line errors, and returns right after
// validating its arguments under --check-args. Thread-safety: called once from main.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <string_view>

#include "common/error.h"

namespace drover::cli {

void add_agent_command(CLI::App& app, int& exit_code);
void add_report_command(CLI::App& app, int& exit_code);
void add_durations_command(CLI::App& app, int& exit_code);

// Shared by the agent and the client (defined in agent_command.cpp):
// "tcp://host:5555" -> "http://host:8080", the coordinator's default HTTP API.
[[nodiscard]] common::Result<std::string> default_http_url(const std::string& endpoint,
                                                          std::string_view flag = "--connect");
// A Z85 public key given as itself or as a key file.
[[nodiscard]] common::Result<std::string> read_public_key(const std::string& key_or_file);

}  // namespace drover::cli
