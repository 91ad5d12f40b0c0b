#include "cli/commands.h"

#include "cli/farm_client_commands.h"
#include "cli/farm_commands.h"

namespace drover::cli {

void add_all_commands(CLI::App& app, int& exit_code, const std::vector<std::string>& passthrough) {
  add_run_command(app, exit_code, passthrough);
  add_plan_command(app, exit_code, passthrough);
  add_merge_command(app, exit_code);
  add_coordinator_command(app, exit_code);
  add_keygen_command(app, exit_code);
  add_agent_command(app, exit_code);
  add_report_command(app, exit_code);
  add_durations_command(app, exit_code);
}

}  // namespace drover::cli
