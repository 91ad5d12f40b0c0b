#include "cli/remote_run.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "agent/farm_agent.h"
#include "agent/pool.h"
#include "cli/commands.h"
#include "cli/farm_client_commands.h"
#include "cli/paths.h"
#include "cli/reporter.h"
#include "cli/session.h"
#include "cli/warnings_summary.h"
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
  if (!put) {
    common::Error error = put.error();
    if (std::getenv("DROVER_HTTP") == nullptr) error.message += " (set DROVER_HTTP to the coordinator's --http address)";
    return std::unexpected(error);
  }
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
        m_heard = true;
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

  // Whether the coordinator ever answered: silence from the start is "no answer", not a loss.
  [[nodiscard]] bool heard() const { return m_heard; }

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
  bool m_heard = false;
};

std::string host_name() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return host;
}

common::Result<farm::Welcome> say_hello(Client& client, const std::string& endpoint, double timeout_s) {
  farm::Hello hello;
  hello.role = "client";
  hello.name = env_or("USER", "user") + "@" + host_name();
  hello.drover_version = k_version;
  if (auto sent = client.send(hello); !sent) return std::unexpected(sent.error());
  auto reply = client.receive(static_cast<int>(timeout_s * 1000));
  if ((!reply && !client.heard() && reply.error().code == ErrorCode::io) || (reply && !*reply)) {
    return common::fail(ErrorCode::io, fmt::format("no answer from the coordinator at {} in {:g} s", endpoint, timeout_s));
  }
  if (!reply) return std::unexpected(reply.error());
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

common::Result<std::unique_ptr<Client>> connect_client(const RunOptions& options,
                                                        const std::optional<common::CurveClientOptions>& curve) {
  auto dealer = common::ZmqDealer::connect(options.coordinator, curve);
  if (!dealer) return std::unexpected(dealer.error());
  auto client = std::make_unique<Client>(std::move(*dealer));
  auto welcome = say_hello(*client, options.coordinator, options.connect_timeout);
  if (!welcome) return std::unexpected(welcome.error());
  client->welcomed(*welcome);
  return client;
}

// A CI queue job's own warm pool, serving its run as a pinned agent on a thread.
class JobAgent {
 public:
  JobAgent(const RunOptions& options, agent::Pool& warm, const agent::PoolOptions& pool,
           const common::Collection& collection, const std::optional<common::CurveClientOptions>& curve,
           const std::string& run_id)
      : m_workdir(temp_directory() / ("drover-job-" + std::to_string(::getpid()))) {
    m_options.endpoint = options.coordinator;
    m_options.name = fmt::format("job{}-{}-{}", options.shard->index, host_name(), ::getpid());
    m_options.slots = options.workers;
    m_options.python = options.python;
    m_options.worker_path = pool.worker_path;
    m_options.workdir = m_workdir;
    m_options.timeout = options.timeout;
    m_options.max_worker_restart = options.max_worker_restart;
    m_options.worker_start = options.worker_start;
    m_options.capture_limit = options.capture_limit;
    m_options.curve = curve;
    m_options.labels = {{"job", fmt::format("{} of {}", options.shard->index, options.shard->total)},
                        {"python", warm.python_version()},
                        {"pytest", warm.pytest_version()}};
    m_options.drover_version = k_version;
    m_options.run_id = run_id;
    m_options.checkout = fs::current_path();
    m_options.quiet = true;
    m_options.warm_pool = &warm;
    m_options.warm_pytest_args = options.pytest_args;
    m_options.warm_collection_hash = collection.hash;
    m_thread = std::thread([this] {
      agent::FarmAgent farm_agent(m_options);
      if (auto ran = farm_agent.run(m_stop); !ran) {
        std::lock_guard lock(m_mutex);
        m_failure = ran.error();
      }
    });
  }
  ~JobAgent() { stop(); }
  JobAgent(const JobAgent&) = delete;
  JobAgent& operator=(const JobAgent&) = delete;

  // Results its workers produced carry "NAME/gwN".
  [[nodiscard]] bool ran(const TestResult& result) const { return result.worker.starts_with(m_options.name + "/"); }
  // Why the job's agent gave up (the coordinator refused it), if it did.
  [[nodiscard]] std::optional<common::Error> failure() const {
    std::lock_guard lock(m_mutex);
    return m_failure;
  }
  void stop() {
    m_stop.store(true);
    if (m_thread.joinable()) m_thread.join();
    std::error_code ignored;
    fs::remove_all(m_workdir, ignored);
  }

 private:
  fs::path m_workdir;
  agent::FarmAgentOptions m_options;
  std::atomic<bool> m_stop{false};
  mutable std::mutex m_mutex;
  std::optional<common::Error> m_failure;
  std::thread m_thread;
};

// pytest's exit code for a whole farm run from its RunFinished.
int run_exit_code(const farm::RunFinished& finished) {
  if (finished.state == "failed") return k_exit_internal;
  if (finished.state == "cancelled") return k_exit_interrupted;
  for (const char* status : {"failed", "error"}) {
    auto found = finished.counts.find(status);
    if (found != finished.counts.end() && found->second > 0) return k_exit_tests_failed;
  }
  return k_exit_ok;
}

}  // namespace

static std::optional<int> run_remote_session(const RunOptions& given, bool& report_lost) {
  RunOptions options = given;  // pytest's own --junitxml joins it once collected
  const auto started = Clock::now();
  const bool queue = options.shard.has_value();
  auto fail_with = [](const common::Error& error) {
    print_error(error);
    return exit_code_for(error);
  };
  auto durations = load_plan_durations(options.durations);
  if (!durations) return fail_with(durations.error());
  auto curve = client_curve();
  if (!curve) return fail_with(curve.error());
  auto http_url = default_http_url(options.coordinator, "--coordinator");
  if (!http_url) return fail_with(http_url.error());
  const std::string http = env_or("DROVER_HTTP", *http_url);
  const std::string token = env_or("DROVER_TOKEN", "");

  {
    // The coordinator first, so that one that is down (or a wrong address) says so, not
    // as a failed upload to its HTTP API. A queue job then runs its static shard: only
    // silence counts as down; a coordinator that refuses us is an error.
    auto probe = connect_client(options, *curve);
    if (queue && !probe && probe.error().code == ErrorCode::io) {
      std::fprintf(stderr, "drover: warning: %s; running static shard %d of %d instead\n",
                   probe.error().message.c_str(), options.shard->index, options.shard->total);
      std::fflush(stderr);
      return std::nullopt;
    }
    if (!probe) return fail_with(probe.error());
    (void)(*probe)->send(farm::Shutdown{"collecting"});
  }

  Reporter reporter(stdout, options.verbosity, ::isatty(STDOUT_FILENO) != 0, terminal_width());
  // Collect here: the client's collection is the one every agent must reproduce.
  // A queue job collects with its whole warm pool, which then serves the job's leases.
  common::Collection collection;
  WarningsSummary warnings;
  std::string pytest_version;
  auto pool_opts = pool_options(options, queue ? options.workers : 1);
  if (!pool_opts) return fail_with(pool_opts.error());
  struct RemoveTemp {
    std::filesystem::path path;
    ~RemoveTemp() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  } remove_temp{pool_opts->basetemp_root};  // declared before the pool: removed after it is gone
  std::unique_ptr<agent::Pool> job_pool;
  {
    auto pool = std::make_unique<agent::Pool>(*pool_opts);
    InterruptGuard guard(*pool);
    auto collected = pool->start();
    if (!collected && pool->ended_without_session()) return run_pytest_in_foreground(*pool_opts);
    if (!collected) return fail_with(collected.error());
    collection = std::move(*collected);
    warnings.add_session(pool->session_warnings());
    adopt_pytest_options(options, collection);
    if (auto usable = check_junitxml(options, collection); !usable) return fail_with(usable.error());
    pytest_version = pool->pytest_version();
    if (queue) job_pool = std::move(pool);
  }
  const int verbosity = collection.verbose;  // pytest's count, drover's -v/-q included
  reporter.set_verbosity(verbosity);
  if (verbosity >= 0) reporter.header("test session starts");  // after collection, as run_local
  if (verbosity >= 0) reporter.line("rootdir: " + collection.rootdir);
  if (verbosity >= 0) for (const auto& line : collection.header) reporter.line(line);
  reporter.set_invocation_dir(collection.rootdir, fs::current_path().string());
  std::vector<common::TestIndex> selection(collection.items.size());
  for (common::TestIndex i = 0; i < selection.size(); ++i) selection[i] = i;
  if (collection.collect_only) return report_collect_only(reporter, options, collection, selection,
                                                                 std::chrono::duration<double>(Clock::now() - started).count(),
                                                                 warnings);
  const int maxfail = stricter_maxfail(options.maxfail, collection.maxfail);  // pytest's -x counts too
  reporter.collected(collection, selection.size(), 0);

  // What this client reports: every result, or in queue mode those its own pool ran.
  std::vector<std::optional<TestResult>> results(collection.items.size());
  std::string run_id = options.run_id;
  if (!options.junitxml.empty()) {
    reporter.set_junit_path(std::filesystem::absolute(options.junitxml).lexically_normal().string());
  }
  auto finish = [&](const std::string& stop_message) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
    std::vector<TestResult> ran;
    for (const auto& result : results) {
      if (result) ran.push_back(*result);
    }
    // Written first: "generated xml file" is printed only for a report that exists.
    std::optional<common::Error> unwritten;
    if (!options.junitxml.empty()) {
      common::JunitReport report;
      report.collection = &collection;
      report.results = ran;
      report.elapsed = elapsed;
      report.drover_version = k_version;
      if (!run_id.empty()) report.extra_properties.emplace_back("drover.run_id", run_id);
      if (queue) {
        // A queue job answers for the tests it ran: with the other jobs' reports they
        // merge (drover merge) into the whole suite, unless a job died mid-run.
        report.extra_properties.emplace_back("drover.queue_job", std::to_string(options.shard->index));
        for (const auto& result : ran) report.assigned.push_back(result.index);
        std::ranges::sort(report.assigned);
        report.assigned_set = true;
      }
      if (auto written = common::write_junit(options.junitxml, report); !written) {
        unwritten = written.error();
        reporter.set_junit_path("");
      }
    }
    const Counts counts = reporter.finish(collection, results, elapsed, stop_message, warnings);
    if (unwritten) {
      print_error(*unwritten);
      report_lost = true;
    }
    if (!ran.empty() && !queue) {  // as run_local: a queue job's static fallback plans from this file
      common::update_durations(*durations, collection, ran);
      if (auto saved = common::save_durations(options.durations, *durations); !saved) print_error(saved.error());
    }
    return counts;
  };
  // As a local run (and pytest): collection errors count towards -x/--maxfail; at the
  // limit nothing runs (exit 1), before the run would stop for the errors themselves.
  const auto collect_failures = static_cast<int>(collection.errors.size());
  if (maxfail > 0 && collect_failures >= maxfail) {
    collection.errors.resize(static_cast<std::size_t>(maxfail));
    finish("stopping after " + std::to_string(maxfail) + " failures");
    return k_exit_tests_failed;
  }
  if (stops_on_collection_errors(options, collection)) {
    finish(collection_errors_stop(collection));
    return k_exit_interrupted;
  }
  if (selection.empty()) {
    finish("");
    return collection.errors.empty() ? k_exit_no_tests : k_exit_tests_failed;
  }

  std::string workspace;  // a queue run has none: every job brings its own checkout
  if (!queue) {
    auto published = publish_workspace(options, http, token);
    if (!published) return fail_with(published.error());
    workspace = *published;
  }
  auto connected = connect_client(options, *curve);
  if (!connected) return fail_with(connected.error());
  Client& client = **connected;

  farm::RunSubmit submit;
  submit.run_id = options.run_id;
  submit.workspace = workspace;
  submit.workdir = options.workspace.empty() ? "" : fs::absolute(options.workspace).string();
  submit.pytest_args = options.pytest_args;
  submit.collection = collection;
  submit.selection = selection;
  submit.group_by = std::string(common::to_string(options.group_by));
  submit.durations = *durations;
  submit.queue = queue;
  submit.pytest_version = pytest_version;  // agents with another pytest cannot serve the run
  submit.timeout = options.timeout;  // agents apply the run's timeout, as a local run would
  if (queue) submit.slots = options.shard->total * options.workers;
  if (auto sent = client.send(submit); !sent) return fail_with(sent.error());

  int failures = collect_failures;
  bool cancel_sent = false;
  g_remote_interrupted.store(false);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  struct RestoreSignals {
    ~RestoreSignals() {
      std::signal(SIGINT, SIG_DFL);
      std::signal(SIGTERM, SIG_DFL);
    }
  } restore;

  // A farm client that loses the coordinator (silence, its Shutdown, "send Hello
  // first" from a restarted one), or whose run it refuses, still reports every test it
  // submitted: those without a result are errors. A queue job's report holds only what its pool ran; the run's
  // merged report accounts for the rest. After our own Cancel, as pytest, tests never
  // started are not reported.
  auto not_run = [&](const std::string& message) {
    if (queue || cancel_sent) return;
    for (common::TestIndex index : selection) {
      if (results[index]) continue;
      results[index] = common::synthetic_result(index, common::Status::error, message, message);
      reporter.test_finished(collection.items[index], *results[index]);
    }
  };
  auto lost_coordinator = [&] { not_run("not run: lost the coordinator"); };
  std::unique_ptr<JobAgent> job;
  bool accepted_run = false;
  bool start_agent = false;
  std::string stop_message;
  std::optional<farm::RunFinished> finished;
  while (!finished) {
    if (g_remote_interrupted.load()) {
      stop_message = "KeyboardInterrupt";
      // A queue job leaves the run to the other jobs; a farm client's run is its own to
      // cancel. Either way the client leaves at once, as a local Ctrl-C does; the agents
      // stop the run's tests still running, which the coordinator reports as not run.
      if (!queue) (void)client.send(farm::Cancel{run_id, {}, "interrupted", true});
      break;
    }
    if (auto refused = job ? job->failure() : std::nullopt) {
      print_error({refused->code, "this job cannot serve run " + run_id + ": " + refused->message});
      job.reset();
      (void)client.send(farm::Shutdown{"job refused"});
      finish(stop_message);
      return exit_code_for(*refused);
    }
    auto message = client.receive(start_agent ? 100 : 1000);
    if (!message) {
      print_error(message.error());
      job.reset();
      lost_coordinator();
      finish(stop_message);
      return k_exit_internal;
    }
    if (!*message) {
      if (start_agent) job = std::make_unique<JobAgent>(options, *job_pool, *pool_opts, collection, *curve, run_id);
      start_agent = false;
      continue;
    }
    if (auto* accepted = std::get_if<farm::RunAccepted>(&**message)) {
      run_id = accepted->run_id;
      accepted_run = true;
      if (verbosity >= 0) {
        std::string what = "drover run " + run_id + (accepted->joined ? " (joined)" : "") + " on " + options.coordinator;
        if (queue) {
          what += fmt::format(": queue job {} of {}, {} worker{}", options.shard->index, options.shard->total,
                              options.workers, options.workers == 1 ? "" : "s");
        }
        reporter.line(what);
      }
      // The pool starts once the replay of a joined run is over: a finished run needs none.
      start_agent = queue && !job;
    } else if (auto* stream = std::get_if<farm::ResultStream>(&**message)) {
      const auto index = stream->result.index;
      if (index >= results.size() || results[index]) continue;
      // After our own Cancel (-x, --maxfail, Ctrl-C) the coordinator closes the queued tests
      // with "not run" errors; pytest does not report tests it never started, so neither do we.
      if (cancel_sent && is_not_run(stream->result)) continue;
      const bool counted = counts_as_failure(stream->result);
      if (!queue || (job && job->ran(stream->result))) {
        warnings.take(results[index].emplace(std::move(stream->result)));
        reporter.test_finished(collection.items[index], *results[index]);
      }
      // -x/--maxfail count the whole run's failures: in queue mode every job sees them all.
      if (counted && maxfail > 0 && ++failures >= maxfail && !cancel_sent) {
        stop_message = "stopping after " + std::to_string(failures) + " failures";
        cancel_sent = client.send(farm::Cancel{run_id, {}, stop_message}).has_value();
      }
    } else if (auto* done = std::get_if<farm::RunFinished>(&**message)) {
      finished = *done;
    } else if (auto* error = std::get_if<farm::ErrorMsg>(&**message)) {
      print_error({farm::parse_error_code(error->code), error->message});
      if (run_id.empty() || error->run_id == run_id || error->run_id.empty()) {
        job.reset();
        // A refused submission ran nothing: its report still lists every test, so a CI
        // that reads only the JUnit file does not see an empty, green run.
        if (accepted_run) {
          lost_coordinator();
        } else {
          not_run("not run: the coordinator refused the run: " + error->message);
        }
        finish(stop_message);
        return exit_code_for({farm::parse_error_code(error->code), error->message});
      }
    } else if (auto* shutdown = std::get_if<farm::Shutdown>(&**message)) {
      print_error({ErrorCode::io, "the coordinator shut down: " + shutdown->reason});
      job.reset();
      lost_coordinator();
      finish(stop_message);
      return k_exit_internal;
    }
  }
  // The job's pool first: once it has said goodbye its leases (if any) are back in the queue.
  job.reset();
  (void)client.send(farm::Shutdown{finished ? "client done" : "interrupted"});
  if (stop_message == "KeyboardInterrupt") {
    if (queue) {
      std::size_t ran = 0;
      for (const auto& result : results) ran += result ? 1 : 0;
      stop_message = "Interrupted: KeyboardInterrupt, left run " + run_id + " after " + std::to_string(ran) + " tests";
    }
    finish(stop_message);
    return k_exit_interrupted;
  }
  const bool failed_run = finished->state == "failed";
  if (failed_run) print_error({ErrorCode::internal, "run " + run_id + " failed: " + finished->reason});
  const Counts counts = finish(stop_message);
  if (queue) {  // the whole run's verdict: shown with -q too, like the closing line
    Counts whole;
    auto count = [&](const char* status) {
      auto found = finished->counts.find(status);
      return found == finished->counts.end() ? 0 : found->second;
    };
    whole.failed = count("failed");
    whole.passed = count("passed");
    whole.skipped = count("skipped");
    whole.xfailed = count("xfailed");
    whole.xpassed = count("xpassed");
    whole.errors = count("error");
    reporter.line(fmt::format("run {} {}: {} (all jobs)", run_id, finished->state, summary_text(whole, finished->elapsed)));
  }
  // A job that ran nothing (it came late, or is a retry of a finished run) has no verdict
  // of its own: it reports the run's, so a retried job cannot turn a red run green.
  const bool ran_none = std::ranges::none_of(results, [](const auto& result) { return result.has_value(); });
  if (queue && (options.wait_all || ran_none)) return run_exit_code(*finished);
  if (failed_run) return k_exit_internal;
  return counts.ok() ? k_exit_ok : k_exit_tests_failed;
}

std::optional<int> run_remote(const RunOptions& options) {
  bool report_lost = false;
  const std::optional<int> code = run_remote_session(options, report_lost);
  return code ? std::optional<int>(exit_code_with_report(*code, report_lost)) : code;
}

}  // namespace drover::cli
