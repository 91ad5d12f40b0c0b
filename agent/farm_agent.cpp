#include "agent/farm_agent.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/utsname.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <utility>

#include "agent/farm_source.h"
#include "agent/farm_workspace.h"
#include "agent/pool.h"
#include "common/http_client.h"
#include "common/protocol.h"

namespace drover::agent {
namespace {

namespace farm = common::farm;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using common::ErrorCode;

constexpr int k_hello_timeout_ms = 5000;
constexpr double k_backoff_min_s = 0.5;
constexpr double k_backoff_max_s = 10.0;

std::shared_ptr<spdlog::logger> farm_log() {
  if (auto logger = spdlog::get("farm-agent")) return logger;
  try {
    auto logger = spdlog::stderr_color_mt("farm-agent");
    logger->set_pattern("[%H:%M:%S] %v");
    return logger;
  } catch (const spdlog::spdlog_ex&) {
    return spdlog::get("farm-agent");
  }
}

// A connection that said Hello and got Welcome.
struct Session {
  std::unique_ptr<common::ZmqDealer> dealer;
  farm::Welcome welcome;
};

// Why serve() returned.
struct Lost {
  std::string reason;
};

bool sleep_unless_stopped(double seconds, const std::atomic<bool>& stop) {
  const auto until = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < until) {
    if (stop.load()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return !stop.load();
}

// A run id made safe as a directory name.
std::string dir_name(const std::string& run_id) {
  std::string out;
  for (char c : run_id) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  return out.empty() ? "run" : out;
}

class Runner {
 public:
  Runner(const FarmAgentOptions& options, const std::atomic<bool>& stop)
      : m_options(options), m_stop(stop), m_mailbox(options.slots), m_log(farm_log()) {
    if (options.quiet) m_log->set_level(spdlog::level::warn);
  }

  common::Result<void> run() {
    std::thread session([this] { session_loop(); });
    common::Result<void> outcome;
    double backoff = k_backoff_min_s;
    while (!m_stop.load()) {
      auto connected = connect();
      if (!connected) {
        if (m_stop.load()) break;
        if (connected.error().code == ErrorCode::protocol) {
          outcome = std::unexpected(connected.error());
          break;
        }
        m_log->warn("{}; retrying in {:.1f}s", connected.error().message, backoff);
        if (!sleep_unless_stopped(backoff, m_stop)) break;
        backoff = std::min(backoff * 2, k_backoff_max_s);
        continue;
      }
      backoff = k_backoff_min_s;
      m_log->info("agent {} connected to {} as {} ({} slot{})", m_options.name, m_options.endpoint,
                  connected->welcome.peer_id, m_options.slots, m_options.slots == 1 ? "" : "s");
      const Lost lost = serve(*connected);
      m_mailbox.abort();
      if (m_stop.load()) {
        (void)connected->dealer->send(farm::encode(farm::Shutdown{"agent stopping"}, m_version), 200);
        break;
      }
      m_log->warn("lost the coordinator: {}; reconnecting", lost.reason);
      if (!sleep_unless_stopped(backoff, m_stop)) break;
    }
    m_mailbox.close();
    session.join();
    return outcome;
  }

 private:
  common::Result<Session> connect() {
    auto dealer = common::ZmqDealer::connect(m_options.endpoint, m_options.curve);
    if (!dealer) return std::unexpected(dealer.error());
    farm::Hello hello;
    hello.role = "agent";
    hello.name = m_options.name;
    hello.drover_version = m_options.drover_version;
    hello.slots = m_options.slots;
    hello.labels = m_options.labels;
    hello.run_id = m_options.run_id;
    if (auto sent = (*dealer)->send(farm::encode(hello)); !sent) return std::unexpected(sent.error());
    const auto deadline = Clock::now() + std::chrono::milliseconds(k_hello_timeout_ms);
    while (Clock::now() < deadline && !m_stop.load()) {
      auto frame = (*dealer)->receive(100);
      if (!frame) return std::unexpected(frame.error());
      if (!*frame) continue;
      auto envelope = farm::decode(**frame);
      if (!envelope) continue;
      if (auto* welcome = std::get_if<farm::Welcome>(&envelope->message)) {
        m_version = welcome->protocol;
        return Session{std::move(*dealer), *welcome};
      }
      if (auto* error = std::get_if<farm::ErrorMsg>(&envelope->message)) {
        return common::fail(farm::parse_error_code(error->code) == ErrorCode::protocol ? ErrorCode::protocol
                                                                                          : ErrorCode::io,
                            m_options.endpoint + " refused the agent: " + error->message);
      }
    }
    return common::fail(ErrorCode::io, "no answer from " + m_options.endpoint);
  }

  Lost serve(Session& session) {
    const auto interval = std::chrono::milliseconds(std::max(50, session.welcome.heartbeat_interval_ms));
    const auto lost_after = interval * std::max(2, session.welcome.heartbeat_lost_after);
    auto last_seen = Clock::now();
    auto last_sent = Clock::now();
    int coordinator_credits = -1;  // what the coordinator thinks we can take
    std::uint64_t seq = 0;
    auto send = [&](const farm::Message& message) -> bool {
      if (!session.dealer->send(farm::encode(message, m_version))) return false;
      last_sent = Clock::now();
      return true;
    };
    while (!m_stop.load()) {
      auto frame = session.dealer->receive(20);
      if (!frame) return {frame.error().message};
      if (*frame) {
        last_seen = Clock::now();
        auto envelope = farm::decode(**frame);
        if (!envelope) {
          m_log->warn("dropped a frame from the coordinator: {}", envelope.error().message);
        } else if (auto* lease = std::get_if<farm::Lease>(&envelope->message)) {
          coordinator_credits = std::max(0, coordinator_credits - 1);
          m_log->debug("lease {} of run {}: {} tests", lease->lease_id, lease->run_id, lease->tests.size());
          m_mailbox.add_lease(std::move(*lease));
        } else if (auto* cancel = std::get_if<farm::Cancel>(&envelope->message)) {
          m_mailbox.cancel(*cancel);
        } else if (auto* shutdown = std::get_if<farm::Shutdown>(&envelope->message)) {
          return {"coordinator shut down (" + shutdown->reason + ")"};
        } else if (auto* error = std::get_if<farm::ErrorMsg>(&envelope->message)) {
          // Without a run, the coordinator no longer knows this peer (it restarted): say Hello again.
          if (error->run_id.empty()) return {"coordinator error: " + error->message};
          m_log->warn("run {}: {}", error->run_id, error->message);
        }
        continue;  // drain every waiting frame before sending
      }
      for (const auto& message : m_mailbox.take_outgoing()) {
        if (!send(message)) return {"cannot send to the coordinator"};
      }
      if (const int credits = m_mailbox.wanted_credits(); credits != coordinator_credits) {
        if (!send(farm::WorkRequest{credits})) return {"cannot send to the coordinator"};
        coordinator_credits = credits;
      }
      const auto now = Clock::now();
      if (now - last_sent >= interval && !send(farm::Heartbeat{++seq})) return {"cannot send to the coordinator"};
      if (now - last_seen > lost_after) {
        return {"nothing heard for " + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(lost_after).count()) + "s"};
      }
    }
    return {"stopping"};
  }

  void session_loop() {
    auto http = common::make_http_client(common::HttpOptions{m_options.http_token});
    WorkspaceCache cache(m_options.workdir, *http, m_options.http_server);
    while (!m_mailbox.closed()) {
      auto key = m_mailbox.next_key(500);
      if (!key) continue;
      const std::string who = "agent " + m_options.name;
      auto tree = !m_options.checkout.empty()            ? common::Result<fs::path>(m_options.checkout)
                  : fs::path(key->workdir).is_absolute() ? cache.verify_checkout(key->workdir, key->workspace)
                                                         : cache.ensure(key->workspace);
      if (!tree) {
        m_log->error("run {}: {}", key->run_id, tree.error().message);
        m_mailbox.refuse_run(key->run_id, tree.error().code, who + ": " + tree.error().message);
        continue;
      }
      PoolOptions pool_options;
      pool_options.python = m_options.python;
      pool_options.pytest_args = key->pytest_args;
      pool_options.worker_path = m_options.worker_path;
      pool_options.rootdir = fs::path(key->workdir).is_absolute() || !m_options.checkout.empty() ? *tree
                                                                                                : *tree / key->workdir;
      pool_options.basetemp_root = m_options.workdir / "tmp" / dir_name(key->run_id);
      pool_options.workers = m_options.slots;
      pool_options.timeout = key->timeout > 0 ? key->timeout : m_options.timeout;  // the run's, else ours
      pool_options.max_worker_restart = m_options.max_worker_restart;
      pool_options.worker_start = m_options.worker_start;
      pool_options.capture_limit = m_options.capture_limit;
      pool_options.keep_warm = true;
      // The job's own warm pool serves its run; anything else gets a pool of its own.
      std::unique_ptr<Pool> owned;
      Pool* pool_ptr = nullptr;
      common::Result<common::Collection> collection;
      if (m_warm != nullptr && key->pytest_args == m_options.warm_pytest_args &&
          key->collection_hash == m_options.warm_collection_hash) {
        pool_ptr = std::exchange(m_warm, nullptr);
        m_mailbox.set_pool(pool_ptr);
        collection = common::Collection{};
        collection->hash = key->collection_hash;
      } else {
        owned = std::make_unique<Pool>(pool_options);
        pool_ptr = owned.get();
        m_mailbox.set_pool(pool_ptr);
        collection = pool_ptr->start();
      }
      Pool& pool = *pool_ptr;
      if (!collection || collection->hash != key->collection_hash) {
        m_mailbox.set_pool(nullptr);
        if (!collection && collection.error().code == ErrorCode::interrupted) continue;
        const auto error = collection ? common::Error{ErrorCode::collection,
                                                      "collection differs on " + who + ": " +
                                                          std::to_string(collection->items.size()) +
                                                          " tests, hash " + collection->hash.substr(0, 12) +
                                                          " (the run's: " + key->collection_hash.substr(0, 12) + ")"}
                                      : common::Error{collection.error().code, who + ": " + collection.error().message};
        m_log->error("run {}: {}", key->run_id, error.message);
        m_mailbox.refuse_run(key->run_id, error.code, error.message);
        continue;
      }
      m_log->info("run {}: {} workers ready in {}", key->run_id, m_options.slots, pool_options.rootdir.string());
      FarmWorkSource source(m_mailbox, *key, m_options.name);
      auto ran = pool.run(source);
      m_mailbox.set_pool(nullptr);
      if (!ran && ran.error().code != ErrorCode::interrupted) {
        m_log->error("run {}: {}", key->run_id, ran.error().message);
      }
      std::error_code ignored;
      fs::remove_all(pool_options.basetemp_root, ignored);
    }
  }

  const FarmAgentOptions& m_options;
  const std::atomic<bool>& m_stop;
  FarmMailbox m_mailbox;
  std::shared_ptr<spdlog::logger> m_log;
  int m_version = farm::k_protocol_version;
  Pool* m_warm = m_options.warm_pool;  // until a lease of its run takes it
};

std::string run_python(const std::string& python, const std::string& code) {
  std::string quoted = "'";
  for (char c : python) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  quoted += "'";
  const std::string command = quoted + " -c \"" + code + "\" 2>/dev/null";
  std::string out;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    std::array<char, 256> buf{};
    while (std::fgets(buf.data(), buf.size(), pipe) != nullptr) out += buf.data();
    ::pclose(pipe);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

}  // namespace

std::map<std::string, std::string> detect_labels(const std::string& python) {
  std::map<std::string, std::string> labels;
  utsname name{};
  if (::uname(&name) == 0) {
    std::string system = name.sysname;
    std::transform(system.begin(), system.end(), system.begin(), [](unsigned char c) { return std::tolower(c); });
    labels["platform"] = system + "-" + name.machine;
  }
  const std::string versions =
      run_python(python, "import platform, pytest; print(platform.python_version(), pytest.__version__)");
  const auto space = versions.find(' ');
  labels["python"] = space == std::string::npos ? "unknown" : versions.substr(0, space);
  labels["pytest"] = space == std::string::npos ? "unknown" : versions.substr(space + 1);
  return labels;
}

FarmAgent::FarmAgent(FarmAgentOptions options) : m_options(std::move(options)) {}

common::Result<void> FarmAgent::run(const std::atomic<bool>& stop) {
  Runner runner(m_options, stop);
  return runner.run();
}

}  // namespace drover::agent
