#include "agent/pool.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <system_error>
#include <thread>
#include <utility>

#include "agent/pool_impl.h"

namespace drover::agent {
namespace {

using common::ErrorCode;

constexpr int k_exit_poll_ms = 50;  // exit polling when the kernel has no pidfd
constexpr std::size_t k_lookahead_tests = 2;  // ask for work when this few tests wait

}  // namespace

std::optional<WorkerStart> parse_worker_start(std::string_view text) {
  if (text == "auto") return WorkerStart::automatic;
  if (text == "fork") return WorkerStart::fork;
  if (text == "exec") return WorkerStart::exec;
  return std::nullopt;
}

std::vector<std::string> worker_environment(const PoolOptions& options) {
  std::string pythonpath = options.worker_path.string();
  if (const char* old = std::getenv("PYTHONPATH"); old && *old) {
    pythonpath = pythonpath.empty() ? old : pythonpath + ":" + old;
  }
  return environment_with("PYTHONPATH", pythonpath);
}

std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", seconds);
  return text;
}

std::shared_ptr<spdlog::logger> agent_logger() {
  if (auto logger = spdlog::get("agent")) return logger;
  try {
    auto logger = spdlog::stderr_color_mt("agent");
    logger->set_level(spdlog::level::warn);
    return logger;
  } catch (const spdlog::spdlog_ex&) {
    return spdlog::get("agent");  // registered by another thread meanwhile
  }
}

Pool::Impl::Impl(PoolOptions pool_options)
    : options(std::move(pool_options)), launcher(make_process_launcher()), log(agent_logger()) {
  options.workers = std::max(1, options.workers);
  max_restarts = options.max_worker_restart < 0 ? 4 * options.workers : options.max_worker_restart;
  workers.resize(static_cast<std::size_t>(options.workers));
  for (int slot = 0; slot < options.workers; ++slot) {
    workers[static_cast<std::size_t>(slot)].slot = slot;
    workers[static_cast<std::size_t>(slot)].name = options.name_prefix + std::to_string(slot);
  }
  const int cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  forking = options.workers > 1 && (options.worker_start == WorkerStart::fork ||
                                    (options.worker_start == WorkerStart::automatic && options.workers > cpus));
  int wake[2];
  if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) == 0) {
    wake_read = UniqueFd(wake[0]);
    wake_write = UniqueFd(wake[1]);
  }
}

Pool::Impl::~Impl() {
  // A forked worker that has not said hello cannot be signalled. Kill everyone else
  // (the first worker too, which then forks nobody more) and wait until each such
  // seat says hello, and can be killed, or closes; the Worker destructors then kill
  // and reap every process.
  const auto deadline = Clock::now() + k_terminate_grace;
  while (any_unborn() && Clock::now() < deadline) {
    for (Worker& worker : workers) {
      worker.deliberate = true;
      if (worker.process && !worker.process->unborn()) worker.process->signal(SIGKILL);
    }
    pump(100);
  }
  // A first worker killed mid-fork leaves its intermediate process (and maybe the new
  // worker) orphaned below drover, which was a subreaper then: reap those too.
  workers.clear();  // kills and reaps every worker
  for (int attempt = 0; forking && attempt < 50 && reap_strays() > 0; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool Pool::Impl::any_unborn() const {
  return std::any_of(workers.begin(), workers.end(),
                     [](const Worker& w) { return w.process && w.process->unborn(); });
}

LaunchSpec Pool::Impl::launch_spec(const Worker& worker) const {
  LaunchSpec spec;
  spec.argv = {options.python, "-m", "drover_worker", "--in-fd", std::to_string(k_child_command_fd),
               "--out-fd", std::to_string(k_child_message_fd)};
  if (!options.basetemp_root.empty()) {
    spec.argv.push_back("--basetemp");
    spec.argv.push_back(basetemp(worker));
  }
  if (options.timeout > 0) {
    spec.argv.push_back("--timeout");
    spec.argv.push_back(seconds_text(options.timeout));
  }
  spec.argv.push_back("--capture-limit");
  spec.argv.push_back(std::to_string(options.capture_limit));
  if (options.maxfail >= 0) {
    spec.argv.push_back("--maxfail");
    spec.argv.push_back(std::to_string(options.maxfail));
  }
  if (!options.coverage_dir.empty()) {
    spec.argv.push_back("--coverage-dir");
    spec.argv.push_back(options.coverage_dir.string());
  }
  if (options.random_seed) {
    spec.argv.push_back("--random-seed");
    spec.argv.push_back(std::to_string(*options.random_seed));
  }
  spec.argv.push_back("--");
  spec.argv.insert(spec.argv.end(), options.pytest_args.begin(), options.pytest_args.end());
  spec.env = worker_environment(options);
  spec.cwd = options.rootdir;
  return spec;
}

std::string Pool::Impl::basetemp(const Worker& worker) const {
  return options.basetemp_root.empty() ? std::string() : (options.basetemp_root / worker.name).string();
}

common::Result<void> Pool::Impl::spawn(Worker& worker) {
  auto child = launcher->launch(launch_spec(worker));
  if (!child) return std::unexpected(child.error());
  log->debug("{}: started pid {}", worker.name, child->pid);
  install(worker, std::move(*child));
  return {};
}

common::Result<void> Pool::Impl::spawn_forking(Worker& first, std::span<Worker> others) {
  std::vector<Seat> seats;
  for (std::size_t i = 0; i < others.size(); ++i) {
    auto seat = make_seat();
    if (!seat) return std::unexpected(seat.error());
    seats.push_back(std::move(*seat));
  }
  LaunchSpec spec = launch_spec(first);
  // "--seat CMD,MSG,OUT,BASETEMP" for each, before the "--" that ends drover's options.
  auto position = std::find(spec.argv.begin(), spec.argv.end(), "--");
  for (std::size_t i = 0; i < seats.size(); ++i) {
    const int fd = k_child_first_extra_fd + static_cast<int>(spec.extra_fds.size());
    spec.extra_fds.insert(spec.extra_fds.end(), {seats[i].command.get(), seats[i].message.get(), seats[i].output.get()});
    const std::string seat = std::to_string(fd) + "," + std::to_string(fd + 1) + "," + std::to_string(fd + 2) + "," +
                             basetemp(others[i]);
    position = spec.argv.insert(position, {"--seat", seat}) + 2;
  }
  auto child = launcher->launch(spec);
  if (!child) return std::unexpected(child.error());
  log->debug("{}: started pid {}; it forks {} more", first.name, child->pid, seats.size());
  install(first, std::move(*child));
  for (std::size_t i = 0; i < seats.size(); ++i) install(others[i], std::move(seats[i].parent));
  return {};
}

void Pool::Impl::install(Worker& worker, ChildProcess child) {
  worker.process = std::make_unique<WorkerProcess>(*launcher, std::move(child));
  worker.state = WorkerState::starting;
  worker.running.reset();
  worker.phases.clear();
  worker.warnings.clear();
  worker.early_warnings.clear();
  worker.collected = worker.can_cancel = worker.can_stop = worker.bye = worker.shutdown_sent = false;
  worker.stop_sent = worker.session_exited = false;
  worker.deliberate = worker.timed_out = worker.cancel_killed = false;
  worker.cancelled_running.reset();
  worker.wants_respawn = worker.drained = false;
  worker.cancels_in_flight = 0;
  worker.failure.clear();
  worker.fatal.clear();
  worker.kill_at.reset();
  worker.closed_since.reset();
}

bool Pool::Impl::any_alive() const {
  return std::any_of(workers.begin(), workers.end(), [](const Worker& w) { return w.process != nullptr; });
}

void Pool::Impl::pump(int timeout_ms) {
  std::vector<pollfd> fds;
  fds.push_back({wake_read.get(), POLLIN, 0});
  std::vector<std::size_t> offsets(workers.size(), 0);
  for (std::size_t i = 0; i < workers.size(); ++i) {
    if (!workers[i].process) continue;
    offsets[i] = fds.size();
    (void)workers[i].process->add_poll_fds(fds);
    if (!workers[i].process->has_exit_fd()) timeout_ms = std::min(timeout_ms, k_exit_poll_ms);
  }
  const int ready = ::poll(fds.data(), fds.size(), timeout_ms);
  if (ready < 0 && errno != EINTR) {
    log->error("poll: {}", std::system_category().message(errno));
    failure = common::Error{ErrorCode::internal, "poll failed: " + std::system_category().message(errno)};
    return;
  }
  if (ready > 0 && fds[0].revents != 0) {
    char drain[64];
    while (::read(wake_read.get(), drain, sizeof drain) > 0) {
    }
  }
  std::vector<std::string> lines;
  for (std::size_t i = 0; i < workers.size(); ++i) {
    Worker& worker = workers[i];
    if (!worker.process) continue;
    lines.clear();
    if (ready > 0) worker.process->handle_events(std::span(fds).subspan(offsets[i], 4), lines);
    if (!worker.process->has_exit_fd()) worker.process->check_exit(lines);
    for (const std::string& line : lines) {
      if (worker.failure.empty()) on_line(worker, line);
    }
    if (worker.process->unborn()) {  // its seat closed without a hello?
      lines.clear();
      worker.process->check_exit(lines);
    }
    if (worker.process->exited()) on_exit(worker);
  }
  if (subreaper && !any_unborn()) subreaper.reset();
}

void Pool::Impl::check_timers(Clock::time_point now) {
  for (Worker& worker : workers) {
    if (!worker.process || worker.process->exited()) continue;
    if (worker.running && options.timeout > 0 && !worker.timed_out &&
        now >= worker.running_since + std::chrono::duration<double>(options.timeout) + k_timeout_grace) {
      log->warn("{}: test {} still running {} s after its timeout; killing the worker", worker.name,
                nodeid(*worker.running), seconds_text(std::chrono::duration<double>(k_timeout_grace).count()));
      worker.timed_out = true;
      worker.state = WorkerState::stopping;
      worker.process->signal(SIGKILL);
    }
    if (worker.cancelled_running && worker.running != worker.cancelled_running) worker.cancelled_running.reset();
    if (worker.cancelled_running && !worker.cancel_killed && now >= worker.cancel_kill_at) {
      log->info("{}: test {} was cancelled and is still running; killing the worker", worker.name,
                nodeid(*worker.running));
      worker.cancel_killed = true;
      worker.state = WorkerState::stopping;
      worker.process->signal(SIGKILL);
    }
    if (worker.process->messages_closed() && !worker.closed_since) {
      worker.closed_since = now;
      if (!worker.kill_at || *worker.kill_at > now + k_closed_pipe_limit) worker.kill_at = now + k_closed_pipe_limit;
    }
    if (worker.kill_at && now >= *worker.kill_at) {
      log->warn("{}: did not exit in time; killing it", worker.name);
      worker.kill_at.reset();
      worker.process->signal(SIGKILL);
    }
  }
}

int Pool::Impl::wait_ms(Clock::time_point now, Clock::time_point next_source_poll) const {
  Clock::time_point wake = next_source_poll;
  for (const Worker& worker : workers) {
    if (!worker.process) continue;
    if (worker.running && options.timeout > 0 && !worker.timed_out) {
      wake = std::min(wake, worker.running_since +
                                std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(options.timeout) + k_timeout_grace));
    }
    if (worker.kill_at) wake = std::min(wake, *worker.kill_at);
    if (worker.cancelled_running && !worker.cancel_killed) wake = std::min(wake, worker.cancel_kill_at);
  }
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(wake - now).count();
  return static_cast<int>(std::clamp<long long>(ms, 0, 60'000));
}

void Pool::Impl::enqueue(Worker& worker, const std::vector<WorkLease>& leases) {
  for (const WorkLease& lease : leases) {
    for (TestIndex index : lease.tests) worker.queue.push_back({index, lease.id, false, false});
  }
}

void Pool::Impl::send_unsent(Worker& worker) {
  if (worker.state != WorkerState::ready && worker.state != WorkerState::busy) return;
  std::vector<TestIndex> indices;
  for (QueuedTest& test : worker.queue) {
    if (test.sent) continue;
    test.sent = true;
    indices.push_back(test.index);
  }
  if (!indices.empty()) worker.process->send(encode_run(indices));
  worker.state = worker.queue.empty() ? WorkerState::ready : WorkerState::busy;
}

void Pool::Impl::shutdown(Worker& worker) {
  log->debug("{}: shutdown", worker.name);
  worker.process->send(encode_shutdown());
  worker.state = WorkerState::stopping;
  worker.shutdown_sent = true;
  if (worker.queue.empty()) worker.kill_at = Clock::now() + k_teardown_limit;
}

void Pool::Impl::stop_worker(Worker& worker) {
  // Tests never sent can go back at once; sent ones need the worker's word.
  std::vector<QueuedTest> kept;
  std::vector<QueuedTest> unsent;
  for (const QueuedTest& test : worker.queue) (test.sent ? kept : unsent).push_back(test);
  if (!unsent.empty()) {
    worker.queue.assign(kept.begin(), kept.end());
    give_back(unsent);
  }
  // `stop` drops every queued test, the committed nextitem too (the session ends);
  // `cancel`, for workers without it, keeps the committed one, which then runs.
  std::vector<TestIndex> cancel;
  for (QueuedTest& test : worker.queue) {
    if (worker.running == test.index || (test.cancel_asked && !worker.can_stop) || worker.stop_sent) continue;
    test.cancel_asked = true;
    cancel.push_back(test.index);
  }
  if (worker.can_stop && !cancel.empty()) {
    worker.process->send(encode_stop());
    worker.stop_sent = true;
    ++worker.cancels_in_flight;
  } else if (worker.can_cancel && !cancel.empty()) {
    worker.process->send(encode_cancel(cancel));
    ++worker.cancels_in_flight;
  }
  if (worker.cancels_in_flight == 0) shutdown(worker);
}

void Pool::Impl::step(Worker& worker, bool stopping) {
  switch (worker.state) {
    case WorkerState::dead: {
      if (worker.retired || stopping || source->exhausted()) return;
      if (!worker.wants_respawn) {
        auto leases = source->request(1);
        if (leases.empty()) return;
        enqueue(worker, leases);
      }
      if (auto spawned = spawn(worker); !spawned) {
        log->error("{}: cannot restart: {}", worker.name, spawned.error().message);
        worker.retired = true;
        hand_back(worker, false);
      }
      return;
    }
    case WorkerState::starting:
    case WorkerState::collecting:
      if (stopping) {
        hand_back(worker, false);
        worker.deliberate = true;
        worker.state = WorkerState::stopping;
        worker.process->signal(SIGKILL);
      }
      return;
    case WorkerState::ready:
    case WorkerState::busy: {
      if (stopping) return stop_worker(worker);
      // The worker holds its last queued test until it knows the next (nextitem):
      // asking only then would stall it for a round trip at every lease boundary.
      // Asking while two tests still wait behind the running one hides the round
      // trip behind them even when tests take well under a millisecond.
      const std::size_t unstarted = worker.queue.size() - (worker.running ? 1 : 0);
      if (unstarted > k_lookahead_tests) return;
      // Needed: a test to run, or the successor the queued one waits for (nextitem).
      std::vector<WorkLease> leases;
      if (unstarted == 0) {
        leases = source->request(1);
      } else if (unstarted == 1 && !worker.running) {
        leases = source->request_successor(1, worker.queue.front().index);
      } else {
        leases = source->request_lookahead(1);
      }
      if (!leases.empty()) {
        enqueue(worker, leases);
        return send_unsent(worker);
      }
      // An idle worker stays warm until the source is exhausted; a worker whose
      // last test waits for a nextitem that is not coming now is shut down so
      // the test runs (its slot is respawned if work turns up later).
      const bool last_waits = worker.queue.size() == 1 && !worker.running;
      if (worker.queue.empty() ? source->exhausted() : last_waits) {
        worker.drained = last_waits;
        shutdown(worker);
      }
      return;
    }
    case WorkerState::stopping:
      return;
  }
}

void Pool::Impl::apply_cancellations(const std::vector<Cancellation>& cancellations) {
  if (cancellations.empty()) return;
  for (Worker& worker : workers) {
    if (!worker.process) continue;
    std::vector<TestIndex> cancel;
    std::vector<QueuedTest> unsent;
    for (auto it = worker.queue.begin(); it != worker.queue.end();) {
      const auto found = std::find_if(cancellations.begin(), cancellations.end(),
                                      [&](const Cancellation& c) { return c.test == it->index; });
      const bool wanted = found != cancellations.end();
      if (wanted && !it->sent) {
        unsent.push_back(*it);
        it = worker.queue.erase(it);
        continue;
      }
      if (wanted && found->stop_running && worker.running == it->index && !worker.cancelled_running) {
        worker.cancelled_running = it->index;
        worker.cancel_kill_at = std::max(Clock::now(), worker.running_since + k_cancel_grace);
      }
      if (wanted && !it->cancel_asked && worker.running != it->index && worker.can_cancel &&
          worker.state != WorkerState::stopping) {
        it->cancel_asked = true;
        cancel.push_back(it->index);
      }
      ++it;
    }
    give_back(unsent);
    if (!cancel.empty()) {
      worker.process->send(encode_cancel(cancel));
      ++worker.cancels_in_flight;
    }
  }
}

common::Error Pool::Impl::abort_all(common::Error error, bool give_back) {
  const auto now = Clock::now();
  for (Worker& worker : workers) {
    if (give_back && source) hand_back(worker, true);
    worker.queue.clear();
    worker.running.reset();
    if (!worker.process) continue;
    worker.deliberate = true;
    worker.state = WorkerState::stopping;
    worker.process->signal(SIGTERM);
    worker.kill_at = now + k_terminate_grace;
  }
  while (any_alive()) {
    check_timers(Clock::now());
    pump(wait_ms(Clock::now(), Clock::now() + k_terminate_grace));
  }
  log->debug("pool stopped: {}", error.message);
  return error;
}

}  // namespace drover::agent

namespace drover::agent {

Pool::Pool(PoolOptions options) : m_impl(std::make_unique<Impl>(std::move(options))) {}

Pool::~Pool() = default;

int Pool::worker_count() const { return static_cast<int>(m_impl->workers.size()); }
std::string Pool::python_version() const { return m_impl->python_version; }
std::string Pool::pytest_version() const { return m_impl->pytest_version; }
std::vector<common::Warning> Pool::session_warnings() const { return m_impl->session_warnings; }
bool Pool::ended_without_session() const { return m_impl->no_session; }

void WorkSource::session_exit(const SessionExit& exit) {
  if (!exit.test) return;
  common::TestResult result = common::synthetic_result(
      *exit.test, common::Status::error, "the test ended the pytest session: " + exit.message,
      "worker '" + exit.worker + "': the test ended the pytest session:\n" + exit.with_detail(exit.message), exit.worker);
  result.warnings = exit.warnings;  // pytest's summary shows them
  completed(result);
}

void Pool::interrupt() {
  m_impl->interrupted.store(true);
  if (m_impl->wake_write.valid()) {
    const char byte = 1;
    [[maybe_unused]] auto written = ::write(m_impl->wake_write.get(), &byte, 1);
  }
}

common::Result<common::Collection> Pool::start() {
  Impl& d = *m_impl;
  if (d.started) return common::fail(ErrorCode::internal, "Pool::start() called twice");
  d.started = true;
  if (!d.wake_read.valid()) return common::fail(ErrorCode::internal, "cannot create the pool's wake-up pipe");
  if (!d.options.basetemp_root.empty()) {
    std::error_code ignored;  // the worker reports a basetemp it cannot use
    std::filesystem::create_directories(d.options.basetemp_root, ignored);
  }
  if (d.forking) {
    // The forked workers are grandchildren that become drover's children once
    // the intermediate process between them exits (seats.py).
    d.subreaper.emplace();
    if (auto spawned = d.spawn_forking(d.workers.front(), std::span(d.workers).subspan(1)); !spawned) {
      return std::unexpected(d.abort_all(spawned.error(), false));
    }
  } else {
    for (Worker& worker : d.workers) {
      if (auto spawned = d.spawn(worker); !spawned) return std::unexpected(d.abort_all(spawned.error(), false));
    }
  }
  while (true) {
    if (d.interrupted.load()) return std::unexpected(d.abort_all({ErrorCode::interrupted, "interrupted"}, false));
    if (d.failure) return std::unexpected(d.abort_all(*d.failure, false));
    if (d.collection) return *d.collection;
    const auto now = Clock::now();
    d.check_timers(now);
    d.pump(d.wait_ms(now, now + std::chrono::seconds(1)));
  }
}

common::Result<void> Pool::run(WorkSource& source) {
  Impl& d = *m_impl;
  if (!d.collection) return common::fail(ErrorCode::internal, "Pool::run() needs a successful start()");
  d.source = &source;
  struct Detach {
    Impl& impl;
    ~Detach() { impl.source = nullptr; }
  } detach{d};
  const auto interval = std::chrono::milliseconds(std::max(1, source.poll_interval_ms()));
  auto next_source_poll = Clock::now();
  while (true) {
    if (d.interrupted.load()) return std::unexpected(d.abort_all({ErrorCode::interrupted, "interrupted"}, true));
    if (d.failure) return std::unexpected(d.abort_all(*d.failure, true));
    auto now = Clock::now();
    if (now >= next_source_poll) {
      source.poll();
      next_source_poll = now + interval;
    }
    d.check_timers(now);
    d.apply_cancellations(source.take_cancellations());
    const bool stopping = source.stopping();
    for (Worker& worker : d.workers) {
      d.step(worker, stopping);
      if (d.failure) break;
    }
    if (d.failure) continue;
    if (std::all_of(d.workers.begin(), d.workers.end(), [](const Worker& w) { return w.retired; })) {
      return std::unexpected(d.abort_all(
          {ErrorCode::worker, "maximum crashed workers reached: " + std::to_string(d.max_restarts)}, true));
    }
    if (!d.any_alive() && (stopping || source.exhausted())) return {};
    now = Clock::now();
    d.pump(d.wait_ms(now, next_source_poll));
  }
}

}  // namespace drover::agent
