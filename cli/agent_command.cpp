// `drover agent`: serve a coordinator with this machine's warm pool.
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "agent/farm_agent.h"
#include "cli/commands.h"
#include "cli/farm_client_commands.h"
#include "cli/run_options.h"
#include "cli/paths.h"
#include "cli/session.h"
#include "common/config.h"
#include "common/zmq_curve.h"

namespace drover::cli {
namespace {

using common::ErrorCode;

// Signal handlers can only reach a global; it is written nowhere else.
std::atomic<bool> g_agent_stop{false};

void on_stop_signal(int) { g_agent_stop.store(true); }

struct AgentFlags {
  std::string connect;
  std::string name;
  std::string workers = "auto";
  std::string python;
  std::string workdir = ".drover-agent";
  std::string http;
  std::string token;
  std::string server_key;
  std::string key_file;
  std::string timeout;  // validated as drover run's --timeout is
  std::string worker_start = "auto";
};

common::Result<agent::FarmAgentOptions> resolve(const AgentFlags& flags) {
  agent::FarmAgentOptions options;
  options.endpoint = flags.connect;
  auto http = default_http_url(flags.connect);  // also checks --connect
  if (!http) return std::unexpected(http.error());
  options.http_server = flags.http.empty() ? *http : flags.http;
  options.http_token = flags.token;
  if (flags.workers == "auto") {
    options.slots = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  } else {
    try {
      std::size_t used = 0;
      options.slots = std::stoi(flags.workers, &used);
      if (used != flags.workers.size() || options.slots < 1) throw std::invalid_argument("workers");
    } catch (const std::exception&) {
      return common::fail(ErrorCode::usage, "--workers: expected a positive number or 'auto', got '" + flags.workers + "'");
    }
  }
  options.python = flags.python;
  if (options.python.empty()) {
    const char* env = std::getenv("DROVER_PYTHON");
    options.python = env != nullptr && *env != '\0' ? env : "python3";
  }
  if (flags.name.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    options.name = host;
  } else {
    options.name = flags.name;
  }
  std::error_code ec;
  options.workdir = std::filesystem::absolute(flags.workdir, ec);
  if (ec || flags.workdir.empty()) return common::fail(ErrorCode::usage, "--workdir: bad path '" + flags.workdir + "'");
  if (flags.server_key.empty() != flags.key_file.empty()) {
    return common::fail(ErrorCode::usage, "--server-key and --key-file go together");
  }
  if (!flags.server_key.empty()) {
    auto server = read_public_key(flags.server_key);
    if (!server) return std::unexpected(server.error());
    auto keys = common::load_curve_keys(flags.key_file);
    if (!keys) return std::unexpected(keys.error());
    if (keys->secret_key.empty()) {
      return common::fail(ErrorCode::usage, "--key-file: " + flags.key_file + " has no secret key");
    }
    options.curve = common::CurveClientOptions{*server, *keys};
  }
  auto worker = find_worker_path();
  if (!worker) return std::unexpected(worker.error());
  options.worker_path = *worker;
  if (!flags.timeout.empty()) {
    auto timeout = parse_number<double>(flags.timeout, "--timeout", 0.0, common::k_max_timeout);
    if (!timeout) return std::unexpected(timeout.error());
    options.timeout = *timeout;
  }
  const auto worker_start = agent::parse_worker_start(flags.worker_start);
  if (!worker_start) {
    return common::fail(ErrorCode::usage, "--worker-start must be auto, fork or exec, not '" + flags.worker_start + "'");
  }
  options.worker_start = *worker_start;
  options.drover_version = k_version;
  return options;
}

}  // namespace

common::Result<std::string> default_http_url(const std::string& endpoint, std::string_view flag) {
  const auto bad = [&] {
    return common::fail(ErrorCode::usage, fmt::format("{}: expected tcp://HOST:PORT, got '{}'", flag, endpoint));
  };
  const std::string prefix = "tcp://";
  if (!endpoint.starts_with(prefix)) return bad();
  const std::string rest = endpoint.substr(prefix.size());
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0) return bad();
  const std::string port = rest.substr(colon + 1);
  int number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || number < 1 || number > 65535) {
    return common::fail(ErrorCode::usage, fmt::format("{}: port must be 1-65535, got '{}'", flag, endpoint));
  }
  return "http://" + rest.substr(0, colon) + ":8080";
}

common::Result<std::string> read_public_key(const std::string& text) {
  if (common::is_z85_key(text)) return text;
  auto keys = common::load_curve_keys(text);
  if (!keys) return std::unexpected(keys.error());
  return keys->public_key;
}

void add_agent_command(CLI::App& app, int& exit_code) {
  auto* command = app.add_subcommand("agent", "Serve a coordinator with this machine's warm pytest workers");
  auto flags = std::make_shared<AgentFlags>();
  command->add_option("--connect", flags->connect, "Coordinator address, tcp://HOST:PORT")->required();
  command->add_option("--name", flags->name, "Agent name in results and logs (default: host name)");
  command->add_option("--workers", flags->workers, "Worker slots: a number or 'auto' (CPUs)");
  command->add_option("--python", flags->python, "Python interpreter with pytest (default: $DROVER_PYTHON or python3)");
  command->add_option("--workdir", flags->workdir, "Where workspaces are cached (default: .drover-agent)");
  command->add_option("--http", flags->http, "Coordinator HTTP API (default: http://HOST:8080)");
  command->add_option("--token", flags->token, "Bearer token for the HTTP API");
  command->add_option("--server-key", flags->server_key, "Coordinator CURVE public key (Z85 or key file)");
  command->add_option("--key-file", flags->key_file, "This agent's CURVE key pair (drover keygen)");
  command->add_option("--timeout", flags->timeout, "Per-test timeout in seconds (0: none)");
  command->add_option("--worker-start", flags->worker_start,
                      "fork: collect once, fork the other workers; exec: start each anew; auto (default): fork when there are more workers than CPUs");
  command->callback([command, flags, &exit_code] {
    auto options = resolve(*flags);
    if (!options) {
      print_error(options.error());
      exit_code = exit_code_for(options.error());
      return;
    }
    if (check_args_only(*command)) return;
    std::error_code ec;
    std::filesystem::create_directories(options->workdir, ec);
    if (ec) {
      print_error({ErrorCode::usage, "--workdir: cannot create " + options->workdir.string() + ": " + ec.message()});
      exit_code = k_exit_usage;
      return;
    }
    options->labels = agent::detect_labels(options->python);
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
    agent::FarmAgent farm_agent(*options);
    auto ran = farm_agent.run(g_agent_stop);
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    if (!ran) {
      print_error(ran.error());
      exit_code = exit_code_for(ran.error());
      return;
    }
    exit_code = k_exit_ok;
  });
}

}  // namespace drover::cli
