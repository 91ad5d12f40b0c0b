// `drover coordinator`: the farm's queue, history and HTTP API in one process.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "cli/farm_client_commands.h"
#include "cli/farm_commands.h"
#include "cli/run_options.h"
#include "cli/session.h"
#include "coordinator/coordinator.h"
#include "coordinator/coordinator_config.h"
#include "coordinator/log.h"

namespace drover::cli {
namespace {

struct CoordinatorFlags {
  std::string bind;
  std::string http;
  std::string data;
  std::string config;
  std::string log_level = "info";
  std::string no_agent_timeout;
  bool insecure = false;
  bool no_http = false;
};

common::Result<coordinator::CoordinatorConfig> resolve(const CLI::App& command,
                                                       const CoordinatorFlags& flags) {
  coordinator::CoordinatorConfig config;
  if (!flags.config.empty()) {
    auto loaded = coordinator::load_coordinator_config(flags.config, config);
    if (!loaded) return loaded;
    config = std::move(*loaded);
  }
  // Flags given on the command line win over the file.
  if (command.count("--bind") > 0) config.bind = flags.bind;
  if (command.count("--http") > 0) config.http = flags.http;
  if (command.count("--data") > 0) config.data = flags.data;
  if (flags.no_http) config.http.clear();
  if (command.count("--no-agent-timeout") > 0) {
    auto seconds = parse_number<double>(flags.no_agent_timeout, "--no-agent-timeout", 0.1);
    if (!seconds) return std::unexpected(seconds.error());
    config.no_agent_timeout = *seconds;
  }
  config.insecure = flags.insecure;
  if (!config.bind.starts_with("ipc://")) {
    // Checked before the security check, which would otherwise ask for --insecure.
    const std::string flag = command.count("--bind") > 0 || flags.config.empty() ? "--bind" : "bind (" + flags.config + ")";
    if (auto valid = default_http_url(config.bind, flag); !valid) return std::unexpected(valid.error());
  }
  if (!config.http.empty()) {
    if (auto parsed = coordinator::parse_host_port(config.http); !parsed) {
      return std::unexpected(parsed.error());
    }
  }
  return config;
}

// SIGINT/SIGTERM are blocked in every thread and taken by one waiter thread
// with sigwait, so stopping needs no signal handler and no global state.
class SignalStop {
 public:
  SignalStop() {
    sigemptyset(&m_set);
    sigaddset(&m_set, SIGINT);
    sigaddset(&m_set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &m_set, &m_old);
  }
  ~SignalStop() {
    if (m_waiter.joinable()) {
      if (!m_fired.load()) pthread_kill(m_waiter.native_handle(), SIGTERM);
      m_waiter.join();
    }
    // A signal that arrived while blocked must not kill us after the restore.
    timespec zero{};
    while (sigtimedwait(&m_set, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &m_old, nullptr);
  }
  SignalStop(const SignalStop&) = delete;
  SignalStop& operator=(const SignalStop&) = delete;

  void watch(coordinator::Coordinator& target) {
    m_waiter = std::thread([this, &target] {
      int signal = 0;
      sigwait(&m_set, &signal);
      m_fired.store(true);
      target.stop();
    });
  }

 private:
  sigset_t m_set{};
  sigset_t m_old{};
  std::thread m_waiter;
  std::atomic<bool> m_fired{false};
};

int run_coordinator(const CLI::App& command, const CoordinatorFlags& flags) {
  auto level = spdlog::level::from_str(flags.log_level);
  if (level == spdlog::level::off && flags.log_level != "off") {
    print_error({common::ErrorCode::usage, "--log-level must be debug, info, warn or error"});
    return k_exit_usage;
  }
  auto config = resolve(command, flags);
  if (!config) {
    print_error(config.error());
    return exit_code_for(config.error());
  }
  coordinator::log()->set_level(level);
  auto warning = coordinator::check_security(*config);
  if (!warning) {
    print_error(warning.error());
    return exit_code_for(warning.error());
  }
  if (check_args_only(command)) return k_exit_ok;
  if (!warning->empty()) coordinator::log()->warn("{}", *warning);

  SignalStop signals;  // before any thread starts, so all inherit the mask
  auto coordinator = coordinator::Coordinator::open(*config);
  if (!coordinator) {
    print_error(coordinator.error());
    return exit_code_for(coordinator.error());
  }
  signals.watch(**coordinator);
  if (auto ran = (*coordinator)->run(); !ran) {
    print_error(ran.error());
    return exit_code_for(ran.error());
  }
  return k_exit_ok;
}

}  // namespace

void add_coordinator_command(CLI::App& app, int& exit_code) {
  auto* command = app.add_subcommand(
      "coordinator", "Run the farm coordinator: work queue for agents, results for clients, HTTP API");
  auto flags = std::make_shared<CoordinatorFlags>();
  command->add_option("--bind", flags->bind, "ZeroMQ endpoint for agents and clients (default tcp://127.0.0.1:5555)");
  command->add_option("--http", flags->http, "HTTP API address HOST:PORT (default 127.0.0.1:8080)");
  command->add_flag("--no-http", flags->no_http, "Do not serve the HTTP API");
  command->add_option("--data", flags->data, "Directory for the database and workspace bundles (default drover-data)");
  command->add_option("--config", flags->config, "YAML file with keys, allow-lists, token and the settings above")
      ->check(CLI::ExistingFile);
  command->add_flag("--insecure", flags->insecure,
                    "Allow a non-loopback address without CURVE keys (anyone reaching it can run code on agents)");
  command->add_option("--no-agent-timeout", flags->no_agent_timeout,
                      "Close a run after this many seconds without an agent that can serve it (default 300)");
  command->add_option("--log-level", flags->log_level, "debug, info, warn or error (default info)");
  command->callback([command, flags, &exit_code] { exit_code = run_coordinator(*command, *flags); });
}

}  // namespace drover::cli
