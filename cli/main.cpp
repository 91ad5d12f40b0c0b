// drover: the one binary. Parses the subcommand and hands over to it.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace {

// An option given twice takes its last value, as pytest's (argparse's) options do:
// `drover run -n 4 ... -n 2` runs two workers, as `pytest -n 4 ... -n 2` would.
void take_last_value(CLI::App& command) {
  for (CLI::Option* option : command.get_options()) {
    if (option->get_expected_min() == 1 && option->get_expected_max() == 1 && option->get_type_size_max() == 1) {
      option->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    }
  }
  for (CLI::App* sub : command.get_subcommands({})) take_last_value(*sub);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"drover: a distributed, sharded test orchestrator for pytest suites", "drover"};
  app.require_subcommand(1);
  app.set_version_flag("--version", drover::cli::k_version);
  bool check_args = false;
  app.add_flag("--check-args", check_args, "Parse and validate the command line, then exit without running");
  // Everything after the first "--" goes to pytest untouched.
  std::vector<std::string> args(argv + 1, argv + argc);
  std::vector<std::string> passthrough;
  if (auto dashes = std::find(args.begin(), args.end(), "--"); dashes != args.end()) {
    passthrough.assign(dashes + 1, args.end());
    args.erase(dashes, args.end());
  }
  // CLI11 reads "--flag=" (nothing after "=") as "--flag" and takes the next word as
  // its value: "--shard= --total-shards 2" would set --shard to "--total-shards".
  for (const auto& arg : args) {
    if (arg.size() > 3 && arg.starts_with("--") && arg.back() == '=' && arg.find('=') == arg.size() - 1) {
      std::fprintf(stderr, "ERROR: argument %s: expected one argument\n", arg.substr(0, arg.size() - 1).c_str());
      return drover::cli::k_exit_usage;
    }
  }
  int exit_code = 0;
  drover::cli::add_all_commands(app, exit_code, passthrough);
  // CLI11 would only say "A subcommand is required" for a mistyped one.
  if (!args.empty() && !args.front().starts_with("-")) {
    std::string known;
    bool found = false;
    for (const CLI::App* command : app.get_subcommands({})) {
      found = found || command->check_name(args.front());
      known += (known.empty() ? "" : ", ") + command->get_name();
    }
    if (!found) {
      std::fprintf(stderr, "ERROR: unknown command '%s' (choose from %s)\n", args.front().c_str(), known.c_str());
      return drover::cli::k_exit_usage;
    }
  }
  take_last_value(app);
  std::reverse(args.begin(), args.end());  // CLI11 takes a vector in reverse order
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ExtrasError& e) {
    // Mostly a pytest option given before "--": say where it goes.
    std::fprintf(stderr, "ERROR: %s (pytest's own options go after --, e.g. drover run -n 2 -- -p no:cacheprovider)\n",
                 e.what());
    return drover::cli::k_exit_usage;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "ERROR: %s\n", e.what());
    return drover::cli::k_exit_usage;
  }
  return exit_code;
}
