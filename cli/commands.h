// The drover subcommands. Each add_*_command registers one CLI11 subcommand on
// `app`; its callback runs the command and stores pytest's exit code in
// `exit_code`. Commands print their own one-line errors. A callback must
// return right after validating its arguments when check_args_only(app) is
// true (the global --check-args flag used to lint CI files).
// Thread-safety: called once from main.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace drover::cli {

inline constexpr const char* k_version = "0.1.0";

// pytest's exit codes.
inline constexpr int k_exit_ok = 0;
inline constexpr int k_exit_tests_failed = 1;
inline constexpr int k_exit_interrupted = 2;
inline constexpr int k_exit_internal = 3;
inline constexpr int k_exit_usage = 4;
inline constexpr int k_exit_no_tests = 5;

[[nodiscard]] inline bool check_args_only(const CLI::App& command) {
  const CLI::App* root = &command;
  while (root->get_parent() != nullptr) root = root->get_parent();
  return root->get_option("--check-args")->count() > 0;
}

// `passthrough` is what followed "--" on the command line: it goes to pytest unchanged.
void add_run_command(CLI::App& app, int& exit_code, const std::vector<std::string>& passthrough);
void add_plan_command(CLI::App& app, int& exit_code, const std::vector<std::string>& passthrough);
void add_merge_command(CLI::App& app, int& exit_code);

// Registers every subcommand above (and the farm ones): defined in commands.cpp.
void add_all_commands(CLI::App& app, int& exit_code, const std::vector<std::string>& passthrough);

}  // namespace drover::cli
