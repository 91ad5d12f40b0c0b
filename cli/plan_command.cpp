// `drover plan`: collect once, print the static shard plan and its imbalance.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "agent/pool.h"
#include "cli/commands.h"
#include "cli/run_options.h"
#include "cli/session.h"
#include "common/durations.h"
#include "common/planner.h"

namespace drover::cli {
namespace {

const char* n_or_s(std::size_t n, const char* one, const char* many) { return n == 1 ? one : many; }

struct PlanFlags {
  RunFlags run;
  std::string json_path;  // "-" for stdout
};

int run_plan(const RunOptions& options, const PlanFlags& flags, int total_shards) {
  auto pool_opts = pool_options(options, 1);
  if (!pool_opts) {
    print_error(pool_opts.error());
    return exit_code_for(pool_opts.error());
  }
  agent::Pool pool(*pool_opts);
  InterruptGuard guard(pool);
  auto collection = pool.start();
  if (!collection) {
    print_error(collection.error());
    return exit_code_for(collection.error());
  }
  const auto durations_file = durations_path(options, collection->rootdir);
  auto durations = load_plan_durations(durations_file);
  if (!durations) {
    print_error(durations.error());
    return exit_code_for(durations.error());
  }
  if (stops_on_collection_errors(options, *collection)) {
    print_error({common::ErrorCode::collection, "collection failed in " + collection->errors.front().nodeid +
                                                    " (use --continue-on-collection-errors to plan anyway)"});
    return k_exit_interrupted;
  }
  const auto estimates = common::estimate_durations(*collection, *durations);
  const auto shards = common::plan_shards(*collection, estimates, options.group_by, total_shards);
  double total = 0.0;
  double longest = 0.0;
  for (const auto& shard : shards) {
    total += shard.estimate;
    longest = std::max(longest, shard.estimate);
  }
  const double mean = total / static_cast<double>(shards.size());
  const double imbalance = mean > 0 ? longest / mean : 1.0;

  if (!flags.json_path.empty()) {
    nlohmann::json out;
    out["total_shards"] = total_shards;
    out["collection_hash"] = collection->hash;
    out["group_by"] = std::string(common::to_string(options.group_by));
    out["imbalance"] = imbalance;
    out["shards"] = nlohmann::json::array();
    for (std::size_t i = 0; i < shards.size(); ++i) {
      nlohmann::json nodeids = nlohmann::json::array();
      for (auto index : shards[i].tests) nodeids.push_back(collection->items[index].nodeid);
      out["shards"].push_back({{"index", i},
                               {"tests", shards[i].tests.size()},
                               {"estimate", shards[i].estimate},
                               {"nodeids", std::move(nodeids)}});
    }
    const std::string text = out.dump(2) + "\n";
    if (flags.json_path == "-") {
      std::fputs(text.c_str(), stdout);
    } else {
      std::ofstream file(flags.json_path);
      if (!(file << text)) {
        print_error({common::ErrorCode::io, flags.json_path + ": cannot write"});
        return k_exit_internal;
      }
    }
    if (flags.json_path == "-") return collection->items.empty() ? k_exit_no_tests : k_exit_ok;
  }
  const auto tests = [](std::size_t n) { return n == 1 ? "test " : "tests"; };
  std::printf("%zu %s in %d %s (group by %s), durations from %s\n", collection->items.size(),
              n_or_s(collection->items.size(), "test", "tests"), total_shards, n_or_s(total_shards, "shard", "shards"),
              std::string(common::to_string(options.group_by)).c_str(), durations_file.string().c_str());
  for (std::size_t i = 0; i < shards.size(); ++i) {
    std::printf("shard %zu: %5zu %s  %9.2fs\n", i, shards[i].tests.size(), tests(shards[i].tests.size()),
                shards[i].estimate);
  }
  std::printf("imbalance (max/mean): %.3f\n", imbalance);
  return collection->items.empty() ? k_exit_no_tests : k_exit_ok;
}

}  // namespace

void add_plan_command(CLI::App& app, int& exit_code, const std::vector<std::string>& passthrough) {
  auto* command = app.add_subcommand("plan", "Print the static shard plan for this suite");
  auto flags = std::make_shared<PlanFlags>();
  add_run_flags(*command, flags->run, false);
  auto total = std::make_shared<std::string>();
  command->add_option("--total-shards", *total, "Number of shards")->required();
  command->add_option("--json", flags->json_path, "Write the plan as JSON to this file ('-' for stdout)")
      ->expected(0, 1)
      ->default_str("-");
  command->callback([command, flags, total, &exit_code, &passthrough] {
    flags->run.pytest_args = passthrough;
    flags->run.total_shards = *total;
    flags->run.shard = "0";
    auto options = resolve_run_options(flags->run, process_env());
    if (!options) {
      print_error(options.error());
      exit_code = exit_code_for(options.error());
      return;
    }
    if (check_args_only(*command)) return;
    if (command->get_option("--json")->count() > 0 && flags->json_path.empty()) flags->json_path = "-";
    exit_code = run_plan(*options, *flags, options->shard->total);
  });
}

}  // namespace drover::cli
