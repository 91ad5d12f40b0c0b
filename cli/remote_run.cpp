#include "cli/remote_run.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <optional>
#include <thread>

#include "agent/pool.h"
#include "cli/commands.h"
#include "cli/farm_client_commands.h"
#include "cli/reporter.h"
#include "cli/session.h"
#include "common/durations.h"
#include "common/http_client.h"
#include "common/junit.h"
#include "common/protocol.h"
#include "common/workspace.h"
#include "common/zmq_curve.h"
#include "common/zmq_socket.h"

namespace drover::cli {
namespace {

namespace farm = common::farm;
namespace fs = std::filesystem;
using common::ErrorCode;
using common::TestResult;
using Clock = std::chrono::steady_clock;

// Signal handlers can only reach a global; it is written nowhere else.
std::atomic<bool> g_remote_interrupted{false};
void on_signal(int) { g_remote_interrupted.store(true); }

std::string env_or(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : std::move(fallback);
}

common::Result<std::optional<common::CurveClientOptions>> client_curve() {
  const std::string server = env_or("DROVER_SERVER_KEY", "");
  const std::string key_file = env_or("DROVER_KEY_FILE", "");
  if (server.empty() && key_file.empty()) return std::nullopt;
  if (server.empty() || key_file.empty()) {
    return common::fail(ErrorCode::usage, "DROVER_SERVER_KEY and DROVER_KEY_FILE go together");
  }
  auto server_key = read_public_key(server);
  if (!server_key) return std::unexpected(server_key.error());
  auto keys = common::load_curve_keys(key_file);
  if (!keys) return std::unexpected(keys.error());
  return common::CurveClientOptions{*server_key, *keys};
}

// The hash of the workspace, uploaded unless the coordinator has it (or agents bring their own).
common::Result<std::string> publish_workspace(const RunOptions& options, const std::string& http_url,
                                              const std::string& token) {
  auto bundle = common::pack_workspace(fs::current_path());
  if (!bundle) return std::unexpected(bundle.error());
  if (!options.workspace.empty()) return bundle->hash;
  auto http = common::make_http_client(common::HttpOptions{token});
  const std::string url = common::join_url(http_url, "/api/v1/workspaces/" + bundle->hash);
  auto head = http->head(url);
  if (head && head->status == 200) return bundle->hash;
  auto put = common::expect_ok("PUT", url, http->put(url, bundle->bytes, "application/x-tar"));
  if (!put) return std::unexpected(put.error());
  return bundle->hash;
}

class Client {
 public:
  explicit Client(std::unique_ptr<common::ZmqDealer> dealer) : m_dealer(std::move(dealer)) {}

  common::Result<void> send(const farm::Message& message) {
    auto sent = m_dealer->send(farm::encode(message, m_version));
    if (sent) m_last_sent = Clock::now();
    return sent;
  }

  // The next message, heartbeating while waiting; nullopt after `timeout_ms` of nothing.
  common::Result<std::optional<farm::Message>> receive(int timeout_ms) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (Clock::now() < deadline) {
      auto frame = m_dealer->receive(50);
      if (!frame) return std::unexpected(frame.error());
      const auto now = Clock::now();
      if (*frame) {
        m_last_seen = now;
        auto envelope = farm::decode(**frame);
        if (!envelope) continue;
        if (std::holds_alternative<farm::Heartbeat>(envelope->message)) continue;
        return std::optional<farm::Message>(std::move(envelope->message));
      }
      if (now - m_last_sent >= m_interval) {
        if (auto sent = send(farm::Heartbeat{++m_seq}); !sent) return std::unexpected(sent.error());
      }
      if (now - m_last_seen > m_interval * m_lost_after) {
        return common::fail(ErrorCode::io, "lost the coordinator: nothing heard for " +
                                               std::to_string(m_interval.count() * m_lost_after / 1000) + "s");
      }
      if (g_remote_interrupted.load()) return std::optional<farm::Message>();
    }
    return std::optional<farm::Message>();
  }

  void welcomed(const farm::Welcome& welcome) {
    m_version = welcome.protocol;
    m_interval = std::chrono::milliseconds(std::max(50, welcome.heartbeat_interval_ms));
    m_lost_after = std::max(2, welcome.heartbeat_lost_after);
  }

 private:
  std::unique_ptr<common::ZmqDealer> m_dealer;
  int m_version = farm::k_protocol_version;
  std::chrono::milliseconds m_interval{farm::k_heartbeat_interval_ms};
  int m_lost_after = farm::k_heartbeat_lost_after;
  Clock::time_point m_last_sent = Clock::now();
  Clock::time_point m_last_seen = Clock::now();
  std::uint64_t m_seq = 0;
};

common::Result<farm::Welcome> say_hello(Client& client, const std::string& endpoint) {
  farm::Hello hello;
  hello.role = "client";
  hello.name = env_or("USER", "user") + "@" + [] {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    return std::string(host);
  }();
  hello.drover_version = k_version;
  if (auto sent = client.send(hello); !sent) return std::unexpected(sent.error());
  auto reply = client.receive(10000);
  if (!reply) return std::unexpected(reply.error());
  if (!*reply) return common::fail(ErrorCode::io, "no answer from the coordinator at " + endpoint);
  if (auto* welcome = std::get_if<farm::Welcome>(&**reply)) return *welcome;
  if (auto* error = std::get_if<farm::ErrorMsg>(&**reply)) {
    return common::fail(farm::parse_error_code(error->code), endpoint + " refused the client: " + error->message);
  }
  return common::fail(ErrorCode::protocol, "unexpected answer to Hello from " + endpoint);
}

bool is_not_run(const TestResult& result) {
  return result.phases.size() == 1 && result.phases[0].message.starts_with("not run: ");
}

bool counts_as_failure(const TestResult& result) {
  const auto status = result.final_status();
  return status == common::Status::failed || status == common::Status::error;
}

}  // namespace

int run_remote(const RunOptions& options) {
  const auto started = Clock::now();
  auto fail_with = [](const common::Error& error) {
    print_error(error);
    return exit_code_for(error);
  };
  if (options.shard) return fail_with({ErrorCode::usage, "--coordinator cannot be combined with --shard"});
  auto durations = common::load_durations(options.durations);
  if (!durations) return fail_with(durations.error());
  auto curve = client_curve();
  if (!curve) return fail_with(curve.error());
  auto http_url = default_http_url(options.coordinator);
  if (!http_url) return fail_with(http_url.error());
  const std::string http = env_or("DROVER_HTTP", *http_url);
  const std::string token = env_or("DROVER_TOKEN", "");

  Reporter reporter(stdout, options.verbosity, ::isatty(STDOUT_FILENO) != 0);
  if (options.verbosity >= 0) reporter.header("test session starts");
  // Collect here: the client's collection is the one every agent must reproduce.
  common::Collection collection;
  auto pool_opts = pool_options(options, 1);
  if (!pool_opts) return fail_with(pool_opts.error());
  {
    agent::Pool pool(*pool_opts);
    InterruptGuard guard(pool);
    auto collected = pool.start();
    if (!collected) return fail_with(collected.error());
    collection = std::move(*collected);
  }  // the pool's worker is gone now; so can its temporary directory be
  std::error_code ignored;
  std::filesystem::remove_all(pool_opts->basetemp_root, ignored);
  if (options.verbosity >= 0) reporter.line("rootdir: " + collection.rootdir);
  std::vector<common::TestIndex> selection(collection.items.size());
  for (common::TestIndex i = 0; i < selection.size(); ++i) selection[i] = i;
  if (options.verbosity >= 0) reporter.collected(collection, selection.size(), 0);

  std::vector<std::optional<TestResult>> results(collection.items.size());
  std::string run_id = options.run_id;
  auto finish = [&](const std::string& stop_message) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
    const Counts counts = reporter.finish(collection, results, elapsed, stop_message);
    std::vector<TestResult> ran;
    for (const auto& result : results) {
      if (result) ran.push_back(*result);
    }
    if (!options.junitxml.empty()) {
      common::JunitReport report;
      report.collection = &collection;
      report.results = ran;
      report.elapsed = elapsed;
      report.drover_version = k_version;
      if (!run_id.empty()) report.extra_properties.emplace_back("drover.run_id", run_id);
      if (auto written = common::write_junit(options.junitxml, report); !written) print_error(written.error());
    }
    if (!ran.empty()) {
      common::update_durations(*durations, collection, ran);
      if (auto saved = common::save_durations(options.durations, *durations); !saved) print_error(saved.error());
    }
    return counts;
  };
  if (!collection.errors.empty() && !options.continue_on_collection_errors) {
    const auto errors = collection.errors.size();
    finish("Interrupted: " + std::to_string(errors) + (errors == 1 ? " error" : " errors") + " during collection");
    return k_exit_interrupted;
  }
  if (selection.empty()) {
    finish("");
    return collection.errors.empty() ? k_exit_no_tests : k_exit_tests_failed;
  }

  auto workspace = publish_workspace(options, http, token);
  if (!workspace) return fail_with(workspace.error());
  auto dealer = common::ZmqDealer::connect(options.coordinator, *curve);
  if (!dealer) return fail_with(dealer.error());
  Client client(std::move(*dealer));
  auto welcome = say_hello(client, options.coordinator);
  if (!welcome) return fail_with(welcome.error());
  client.welcomed(*welcome);

  farm::RunSubmit submit;
  submit.run_id = options.run_id;
  submit.workspace = *workspace;
  submit.workdir = options.workspace.empty() ? "" : fs::absolute(options.workspace).string();
  submit.pytest_args = options.pytest_args;
  submit.collection = collection;
  submit.selection = selection;
  submit.group_by = std::string(common::to_string(options.group_by));
  submit.durations = *durations;
  if (auto sent = client.send(submit); !sent) return fail_with(sent.error());

  g_remote_interrupted.store(false);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  struct RestoreSignals {
    ~RestoreSignals() {
      std::signal(SIGINT, SIG_DFL);
      std::signal(SIGTERM, SIG_DFL);
    }
  } restore;

  int failures = 0;
  bool cancel_sent = false;
  std::string stop_message;
  std::optional<farm::RunFinished> finished;
  while (!finished) {
    if (g_remote_interrupted.load() && !cancel_sent) {
      stop_message = "KeyboardInterrupt";
      cancel_sent = client.send(farm::Cancel{run_id, {}, "interrupted"}).has_value();
    }
    auto message = client.receive(1000);
    if (!message) {
      print_error(message.error());
      finish(stop_message);
      return k_exit_internal;
    }
    if (!*message) continue;
    if (auto* accepted = std::get_if<farm::RunAccepted>(&**message)) {
      run_id = accepted->run_id;
      if (options.verbosity >= 0) {
        reporter.line("drover run " + run_id + (accepted->joined ? " (joined)" : "") + " on " + options.coordinator);
      }
    } else if (auto* stream = std::get_if<farm::ResultStream>(&**message)) {
      const auto index = stream->result.index;
      if (index >= results.size() || results[index]) continue;
      // After our own Cancel (-x, --maxfail, Ctrl-C) the coordinator closes the queued tests
      // with "not run" errors; pytest does not report tests it never started, so neither do we.
      if (cancel_sent && is_not_run(stream->result)) continue;
      results[index] = stream->result;
      reporter.test_finished(collection.items[index], stream->result);
      if (counts_as_failure(stream->result) && options.maxfail > 0 && ++failures >= options.maxfail && !cancel_sent) {
        stop_message = "stopping after " + std::to_string(failures) + " failures";
        cancel_sent = client.send(farm::Cancel{run_id, {}, stop_message}).has_value();
      }
    } else if (auto* done = std::get_if<farm::RunFinished>(&**message)) {
      finished = *done;
    } else if (auto* error = std::get_if<farm::ErrorMsg>(&**message)) {
      print_error({farm::parse_error_code(error->code), error->message});
      if (run_id.empty() || error->run_id == run_id || error->run_id.empty()) {
        finish(stop_message);
        return exit_code_for({farm::parse_error_code(error->code), error->message});
      }
    } else if (auto* shutdown = std::get_if<farm::Shutdown>(&**message)) {
      print_error({ErrorCode::io, "the coordinator shut down: " + shutdown->reason});
      finish(stop_message);
      return k_exit_internal;
    }
  }
  (void)client.send(farm::Shutdown{"client done"});
  const bool failed_run = finished->state == "failed";
  if (failed_run) print_error({ErrorCode::internal, "run " + run_id + " failed: " + finished->reason});
  const Counts counts = finish(stop_message);
  if (stop_message == "KeyboardInterrupt") return k_exit_interrupted;
  if (failed_run) return k_exit_internal;
  return counts.ok() ? k_exit_ok : k_exit_tests_failed;
}

}  // namespace drover::cli
