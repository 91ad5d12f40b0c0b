// `drover durations pull|push`: move the durations history between the
// coordinator (SQLite) and a pytest-split `.test_durations` file.
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "cli/farm_client_commands.h"
#include "cli/session.h"
#include "common/durations.h"
#include "common/http_client.h"

namespace drover::cli {
namespace {

using common::ErrorCode;

struct DurationsFlags {
  std::string server;
  std::string token;
  std::string file;
};

std::string token_of(const DurationsFlags& flags) {
  if (!flags.token.empty()) return flags.token;
  const char* env = std::getenv("DROVER_TOKEN");
  return env != nullptr ? env : "";
}

int pull(const DurationsFlags& flags) {
  auto http = common::make_http_client(common::HttpOptions{token_of(flags)});
  const std::string url = common::join_url(flags.server, "/api/v1/durations");
  auto response = common::expect_ok("GET", url, http->get(url));
  if (!response) {
    print_error(response.error());
    return exit_code_for(response.error());
  }
  // The server's answer gets the checks a durations file gets.
  auto durations = common::parse_durations(response->body, url);
  if (!durations) {
    print_error(durations.error());
    return exit_code_for(durations.error());
  }
  if (auto saved = common::save_durations(flags.file, *durations); !saved) {
    print_error(saved.error());
    return exit_code_for(saved.error());
  }
  return k_exit_ok;
}

int push(const DurationsFlags& flags) {
  // A file that is missing or is not a durations file is bad input, like a bad flag.
  std::error_code ec;
  if (!std::filesystem::exists(flags.file, ec)) {
    print_error({ErrorCode::usage, "durations file not found: " + flags.file});
    return k_exit_usage;
  }
  auto durations = common::load_durations(flags.file);
  if (!durations) {
    print_error(durations.error());
    return k_exit_usage;
  }
  const std::string body = nlohmann::json(*durations).dump();
  auto http = common::make_http_client(common::HttpOptions{token_of(flags)});
  const std::string url = common::join_url(flags.server, "/api/v1/durations");
  auto response = common::expect_ok("PUT", url, http->put(url, body, "application/json"));
  if (!response) {
    print_error(response.error());
    return exit_code_for(response.error());
  }
  return k_exit_ok;
}

}  // namespace

void add_durations_command(CLI::App& app, int& exit_code) {
  auto* durations = app.add_subcommand("durations", "Share the durations history with a coordinator");
  durations->require_subcommand(1);
  auto pull_flags = std::make_shared<DurationsFlags>();
  auto* pull_cmd = durations->add_subcommand("pull", "Write the coordinator's history to a .test_durations file");
  pull_cmd->add_option("--server", pull_flags->server, "Coordinator HTTP API, http://HOST:PORT (default: $DROVER_HTTP)")
      ->envname("DROVER_HTTP")
      ->required();
  pull_cmd->add_option("-o,--output", pull_flags->file, "The durations file to write")->required();
  pull_cmd->add_option("--token", pull_flags->token, "Bearer token for the HTTP API (default: $DROVER_TOKEN)");
  pull_cmd->callback([pull_cmd, pull_flags, &exit_code] {
    if (check_args_only(*pull_cmd)) return;
    exit_code = pull(*pull_flags);
  });
  auto push_flags = std::make_shared<DurationsFlags>();
  auto* push_cmd = durations->add_subcommand("push", "Send a .test_durations file into the coordinator's history");
  push_cmd->add_option("--server", push_flags->server, "Coordinator HTTP API, http://HOST:PORT (default: $DROVER_HTTP)")
      ->envname("DROVER_HTTP")
      ->required();
  push_flags->file = ".test_durations";
  push_cmd->add_option("-f,--file", push_flags->file, "The durations file to send (default: .test_durations)");
  push_cmd->add_option("--token", push_flags->token, "Bearer token for the HTTP API (default: $DROVER_TOKEN)");
  push_cmd->callback([push_cmd, push_flags, &exit_code] {
    if (check_args_only(*push_cmd)) return;
    exit_code = push(*push_flags);
  });
}

}  // namespace drover::cli
