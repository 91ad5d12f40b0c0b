// `drover merge REPORT... -o OUT`: one JUnit report from many (the shards of a
// CI matrix, or any pytest reports), checked for completeness.
//
// Exit codes: 0 merged and complete; 1 incomplete (a shard or test missing or
// duplicated, collection hashes differ), unless --allow-incomplete; 3 the
// merged report or durations file could not be written; 4 usage error or an
// input that cannot be read (missing, malformed, not JUnit XML, bad durations
// file); 5 complete but without a single test (pytest's "no tests collected").
// The merged report is written even when incomplete.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/session.h"
#include "common/durations.h"
#include "common/junit_merge.h"
#include "common/junit_read.h"

namespace drover::cli {
namespace {

struct MergeFlags {
  std::vector<std::string> reports;
  std::string output;
  std::string durations;
  bool allow_incomplete = false;
};

int update_durations(const MergeFlags& flags, const common::MergedReport& merged) {
  auto durations = common::load_durations(flags.durations);
  if (!durations) {
    print_error(durations.error());
    return k_exit_usage;
  }
  const auto exists = [](const std::string& path) {
    std::error_code ec;
    return std::filesystem::is_regular_file(path, ec);
  };
  const int recorded = common::update_durations_from_merge(*durations, merged.case_times, exists);
  if (auto saved = common::save_durations(flags.durations, *durations); !saved) {
    print_error(saved.error());
    return k_exit_internal;
  }
  std::printf("updated %s: %d tests\n", flags.durations.c_str(), recorded);
  return k_exit_ok;
}

int run_merge(const MergeFlags& flags) {
  std::vector<common::JunitFile> files;
  bool unreadable = false;
  for (const std::string& path : flags.reports) {
    auto file = common::read_junit(path);
    if (!file) {
      print_error(file.error());
      unreadable = true;
      continue;
    }
    files.push_back(std::move(*file));
  }
  if (unreadable) return k_exit_usage;

  const common::MergedReport merged = common::merge_junit(files, k_version);
  if (auto saved = common::save_xml_atomically(flags.output, *merged.document); !saved) {
    print_error(saved.error());
    return k_exit_internal;
  }
  std::error_code ec;
  const auto absolute = std::filesystem::absolute(flags.output, ec);
  std::printf("generated xml file: %s\n", (ec ? flags.output : absolute.string()).c_str());

  std::fflush(stdout);
  const char* level = flags.allow_incomplete ? "WARNING" : "ERROR";
  for (const std::string& problem : merged.problems) std::fprintf(stderr, "%s: %s\n", level, problem.c_str());
  std::printf("merged %d report%s: %s\n", merged.reports, merged.reports == 1 ? "" : "s",
              common::summary_words(merged.counts, merged.time).c_str());
  // After the verdict, so a durations problem never hides a missing shard; an
  // incomplete report stays exit 1 whatever happens to the durations file.
  const int durations_code = flags.durations.empty() ? k_exit_ok : update_durations(flags, merged);
  if (!merged.problems.empty() && !flags.allow_incomplete) {
    std::fflush(stdout);
    std::fprintf(stderr, "ERROR: merged report is incomplete (%zu problem%s); --allow-incomplete accepts it\n",
                 merged.problems.size(), merged.problems.size() == 1 ? "" : "s");
    return k_exit_tests_failed;
  }
  if (durations_code != k_exit_ok) return durations_code;
  return merged.tests == 0 ? k_exit_no_tests : k_exit_ok;
}

}  // namespace

void add_merge_command(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<MergeFlags>();
  CLI::App* command = app.add_subcommand("merge", "Merge JUnit XML reports (e.g. of all shards of a run) into one");
  // Paths are checked when the command runs, not by CLI11: --check-args lints CI
  // files whose reports do not exist yet.
  command->add_option("reports", flags->reports, "JUnit XML reports to merge")->required();
  command->add_option("-o,--output", flags->output, "Where to write the merged report")->required();
  command->add_option("--durations", flags->durations,
                      "Update this durations file (.test_durations) with the merged test times");
  command->add_flag("--allow-incomplete", flags->allow_incomplete,
                    "Exit 0 even when shards or tests are missing or duplicated (problems become warnings)");
  command->callback([&exit_code, flags, command] {
    if (check_args_only(*command)) {
      exit_code = k_exit_ok;
      return;
    }
    exit_code = run_merge(*flags);
  });
}

}  // namespace drover::cli
