#include "coordinator/coordinator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>

#include <fmt/format.h>

#include "common/protocol.h"
#include "common/zmq_socket.h"
#include "coordinator/dispatcher.h"
#include "coordinator/http_api.h"
#include "coordinator/log.h"
#include "coordinator/store.h"

namespace drover::coordinator {
namespace {

namespace farm = common::farm;

// Upper bound on one wait, so stop() is noticed promptly.
constexpr int k_max_wait_ms = 100;

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

struct Coordinator::Impl {
  std::unique_ptr<Store> store;
  std::unique_ptr<common::ZmqRouter> router;
  std::unique_ptr<Dispatcher> dispatcher;
  std::unique_ptr<HttpApi> http;
  int http_port = 0;
  std::atomic<bool> stopping{false};
  std::size_t malformed_logged = 0;
  std::size_t refused_logged = 0;
  // The HTTP threads read live numbers the loop publishes here.
  mutable std::mutex status_mutex;
  LiveStatus status;

  void send_all(const std::vector<Outgoing>& out) {
    for (const Outgoing& o : out) {
      if (auto sent = router->send(o.peer, farm::encode(o.message, o.version)); !sent) {
        // The peer is gone or stuck; heartbeats will notice and requeue its work.
        log()->debug("could not send {}: {}", farm::to_string(farm::type_of(o.message)),
                     sent.error().message);
      }
    }
  }

  void publish() {
    std::lock_guard lock(status_mutex);
    status = LiveStatus{static_cast<int>(dispatcher->agent_count()),
                        static_cast<int>(dispatcher->client_count()),
                        static_cast<int>(dispatcher->active_runs())};
  }
};

Coordinator::Coordinator(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}

Coordinator::~Coordinator() {
  if (m_impl->http) m_impl->http->stop();
}

common::Result<std::unique_ptr<Coordinator>> Coordinator::open(const CoordinatorConfig& config) {
  auto impl = std::make_unique<Impl>();
  std::error_code error;
  std::filesystem::create_directories(config.data, error);
  if (error) {
    return common::fail(common::ErrorCode::io, fmt::format("cannot create data directory {}: {}",
                                                           config.data.string(), error.message()));
  }
  auto store = Store::open(config.data / "drover.db");
  if (!store) return std::unexpected(store.error());
  impl->store = std::move(*store);

  std::optional<common::CurveServerOptions> curve;
  if (config.keys) curve = common::CurveServerOptions{*config.keys, config.allow};
  auto router = common::ZmqRouter::bind(config.bind, curve);
  if (!router) return std::unexpected(router.error());
  impl->router = std::move(*router);

  DispatcherOptions options;
  options.heartbeat_interval_ms = config.heartbeat_interval_ms;
  options.heartbeat_lost_after = config.heartbeat_lost_after;
  options.enforce_key_roles = curve.has_value();
  options.no_agent_timeout_s = config.no_agent_timeout;
  impl->dispatcher = std::make_unique<Dispatcher>(*impl->store, options);

  if (!config.http.empty()) {
    auto host_port = parse_host_port(config.http);
    if (!host_port) return std::unexpected(host_port.error());
    Impl* raw = impl.get();
    HttpApiOptions http_options;
    http_options.data = config.data;
    http_options.token = config.http_token;
    http_options.status = [raw] {
      std::lock_guard lock(raw->status_mutex);
      return raw->status;
    };
    impl->http = std::make_unique<HttpApi>(*impl->store, std::move(http_options));
    auto port = impl->http->start(host_port->first, host_port->second);
    if (!port) return std::unexpected(port.error());
    impl->http_port = *port;
  }
  log()->info("coordinator listening on {} (CURVE {}), HTTP on {}, data in {}", impl->router->endpoint(),
              curve ? "on" : "off",
              config.http.empty() ? std::string("nothing")
                                  : fmt::format("{}:{}", parse_host_port(config.http)->first, impl->http_port),
              config.data.string());
  return std::unique_ptr<Coordinator>(new Coordinator(std::move(impl)));
}

const std::string& Coordinator::endpoint() const { return m_impl->router->endpoint(); }
int Coordinator::http_port() const { return m_impl->http_port; }
void Coordinator::stop() { m_impl->stopping.store(true); }

common::Result<void> Coordinator::run() {
  Impl& impl = *m_impl;
  while (!impl.stopping.load()) {
    const double now = unix_now();
    const double due = impl.dispatcher->next_tick();
    const double wait_s = std::isfinite(due) ? std::max(0.0, due - now) : 1.0;
    const int wait_ms = std::min(k_max_wait_ms, static_cast<int>(std::ceil(wait_s * 1000.0)));
    auto received = impl.router->receive(wait_ms);
    if (!received) {
      log()->error("coordinator socket failed: {}", received.error().message);
      return std::unexpected(received.error());
    }
    const double after = unix_now();
    if (impl.router->malformed_dropped() != impl.malformed_logged) {
      impl.malformed_logged = impl.router->malformed_dropped();
      log()->warn("dropped a message that was not exactly one frame ({} so far)", impl.malformed_logged);
    }
    if (impl.router->auth_refused() != impl.refused_logged) {
      impl.refused_logged = impl.router->auth_refused();
      log()->warn("refused a connection: its CURVE key is not in the allow-list ({} so far)",
                  impl.refused_logged);
    }
    if (received->has_value()) {
      const common::RouterFrame& frame = **received;
      auto envelope = farm::decode(frame.frame);
      if (envelope) {
        impl.send_all(impl.dispatcher->on_message(frame.peer, frame.role, std::move(*envelope), after));
      } else {
        impl.send_all(impl.dispatcher->on_bad_frame(frame.peer, envelope.error(), after));
      }
    }
    if (after >= impl.dispatcher->next_tick()) impl.send_all(impl.dispatcher->tick(after));
    impl.publish();
  }
  impl.send_all(impl.dispatcher->shutdown("coordinator stopping", unix_now()));
  impl.publish();
  log()->info("coordinator stopped");
  return {};
}

}  // namespace drover::coordinator
