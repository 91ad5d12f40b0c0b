#include "common/zmq_socket.h"

#include <array>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <thread>

#include <fmt/format.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

namespace drover::common {
namespace {

// Collections of large suites travel in one frame; anything past this is not ours.
constexpr std::int64_t k_max_frame_bytes = std::int64_t{512} << 20;
constexpr int k_router_hwm = 100000;
constexpr int k_linger_ms = 500;
constexpr const char* k_zap_endpoint = "inproc://zeromq.zap.01";
constexpr const char* k_monitor_endpoint = "inproc://drover-monitor";

Error zmq_error(std::string_view what, const zmq::error_t& error) {
  return Error{ErrorCode::io, fmt::format("{}: {}", what, error.what())};
}

std::string message_string(const zmq::message_t& message) {
  return std::string(static_cast<const char*>(message.data()), message.size());
}

// The ZAP handler (RFC 27): one REP socket in the router's context. It answers
// every CURVE handshake with 200 and the key's role as user id, or 400.
void run_zap(std::map<std::string, std::string> allow, std::atomic<std::size_t>& refused,
             zmq::socket_t socket) {
  for (;;) {
    std::vector<zmq::message_t> request;
    try {
      if (!zmq::recv_multipart(socket, std::back_inserter(request))) continue;
    } catch (const zmq::error_t&) {
      return;  // context shut down: the router is closing
    }
    // version, request id, domain, address, identity, mechanism, credentials...
    std::string status = "400";
    std::string text = "key not allowed";
    std::string user;
    if (request.size() >= 7 && message_string(request[5]) == "CURVE" && request[6].size() == 32) {
      std::array<char, k_z85_key_length + 1> z85{};
      zmq_z85_encode(z85.data(), static_cast<const std::uint8_t*>(request[6].data()), 32);
      if (auto found = allow.find(z85.data()); found != allow.end()) {
        status = "200";
        text = "OK";
        user = found->second;
      }
    }
    if (status != "200") ++refused;
    std::vector<zmq::message_t> reply;
    reply.emplace_back(std::string_view("1.0"));
    reply.emplace_back(request.size() > 1 ? message_string(request[1]) : std::string());
    reply.emplace_back(status);
    reply.emplace_back(text);
    reply.emplace_back(user);
    reply.emplace_back();
    try {
      zmq::send_multipart(socket, reply);
    } catch (const zmq::error_t&) {
      return;
    }
  }
}

}  // namespace

struct ZmqRouter::Impl {
  zmq::context_t context;
  zmq::socket_t socket{context, zmq::socket_type::router};
  std::string endpoint;
  std::size_t malformed = 0;
  std::atomic<std::size_t> refused{0};
  std::thread zap;

  ~Impl() {
    socket.close();
    context.shutdown();  // wakes the ZAP thread with ETERM
    if (zap.joinable()) zap.join();
  }
};

ZmqRouter::ZmqRouter(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
ZmqRouter::~ZmqRouter() = default;

Result<std::unique_ptr<ZmqRouter>> ZmqRouter::bind(const std::string& endpoint,
                                                   const std::optional<CurveServerOptions>& curve) {
  auto impl = std::make_unique<Impl>();
  try {
    impl->socket.set(zmq::sockopt::linger, k_linger_ms);
    impl->socket.set(zmq::sockopt::router_mandatory, 1);
    impl->socket.set(zmq::sockopt::sndhwm, k_router_hwm);
    impl->socket.set(zmq::sockopt::rcvhwm, k_router_hwm);
    impl->socket.set(zmq::sockopt::maxmsgsize, k_max_frame_bytes);
    if (curve) {
      if (!curve_available()) return fail(ErrorCode::usage, "libzmq was built without CURVE");
      if (!is_z85_key(curve->keys.secret_key)) {
        return fail(ErrorCode::usage, "the coordinator's CURVE secret key is missing or invalid");
      }
      // The handler must be bound before the first handshake can happen.
      zmq::socket_t zap(impl->context, zmq::socket_type::rep);
      zap.set(zmq::sockopt::linger, 0);
      zap.bind(k_zap_endpoint);
      impl->zap = std::thread(run_zap, curve->allow,
                              std::ref(impl->refused), std::move(zap));
      impl->socket.set(zmq::sockopt::curve_server, 1);
      impl->socket.set(zmq::sockopt::curve_secretkey, curve->keys.secret_key);
      impl->socket.set(zmq::sockopt::zap_domain, "drover");
    }
    impl->socket.bind(endpoint);
    impl->endpoint = impl->socket.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& error) {
    return std::unexpected(zmq_error(fmt::format("cannot bind {}", endpoint), error));
  }
  return std::unique_ptr<ZmqRouter>(new ZmqRouter(std::move(impl)));
}

const std::string& ZmqRouter::endpoint() const { return m_impl->endpoint; }
std::size_t ZmqRouter::malformed_dropped() const { return m_impl->malformed; }
std::size_t ZmqRouter::auth_refused() const { return m_impl->refused.load(); }

Result<std::optional<RouterFrame>> ZmqRouter::receive(int timeout_ms) {
  try {
    std::vector<zmq::pollitem_t> items = {{m_impl->socket.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, std::chrono::milliseconds(timeout_ms));
    if ((items[0].revents & ZMQ_POLLIN) == 0) return std::nullopt;
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(m_impl->socket, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
      return std::nullopt;
    }
    if (parts.size() != 2) {
      ++m_impl->malformed;
      return std::nullopt;
    }
    RouterFrame frame;
    frame.peer = message_string(parts[0]);
    frame.frame = message_string(parts[1]);
    // The ZAP user id travels as a per-message property; absent without CURVE.
    try {
      frame.role = parts[1].gets("User-Id");
    } catch (const zmq::error_t&) {
      frame.role.clear();
    }
    return frame;
  } catch (const zmq::error_t& error) {
    // A signal (Ctrl-C) cut the wait short: no frame; the caller checks why and goes on.
    if (error.num() == EINTR) return std::nullopt;
    return std::unexpected(zmq_error("receive", error));
  }
}

Result<void> ZmqRouter::send(const std::string& peer, const std::string& frame) {
  try {
    zmq::message_t id(peer);
    if (!m_impl->socket.send(id, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      return fail(ErrorCode::io, "peer's send queue is full");
    }
    zmq::message_t body(frame);
    if (!m_impl->socket.send(body, zmq::send_flags::dontwait)) {
      return fail(ErrorCode::io, "peer's send queue is full");
    }
  } catch (const zmq::error_t& error) {
    return std::unexpected(zmq_error("send", error));
  }
  return {};
}

struct ZmqDealer::Impl {
  zmq::context_t context;
  zmq::socket_t socket{context, zmq::socket_type::dealer};
  zmq::socket_t monitor{context, zmq::socket_type::pair};
  std::string endpoint;

  ~Impl() {
    if (socket) zmq_socket_monitor(socket.handle(), nullptr, 0);
    monitor.close();
    socket.close();
  }
};

ZmqDealer::ZmqDealer(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
ZmqDealer::~ZmqDealer() = default;

Result<std::unique_ptr<ZmqDealer>> ZmqDealer::connect(const std::string& endpoint,
                                                      const std::optional<CurveClientOptions>& curve) {
  auto impl = std::make_unique<Impl>();
  impl->endpoint = endpoint;
  try {
    impl->socket.set(zmq::sockopt::linger, k_linger_ms);
    impl->socket.set(zmq::sockopt::maxmsgsize, k_max_frame_bytes);
    if (curve) {
      if (!curve_available()) return fail(ErrorCode::usage, "libzmq was built without CURVE");
      if (!is_z85_key(curve->server_public_key) || !is_z85_key(curve->keys.public_key) ||
          !is_z85_key(curve->keys.secret_key)) {
        return fail(ErrorCode::usage, "CURVE keys for the coordinator connection are invalid");
      }
      impl->socket.set(zmq::sockopt::curve_serverkey, curve->server_public_key);
      impl->socket.set(zmq::sockopt::curve_publickey, curve->keys.public_key);
      impl->socket.set(zmq::sockopt::curve_secretkey, curve->keys.secret_key);
    }
    // Authentication failures surface only as monitor events; watch for them so
    // a refused key is a clear error instead of a silent retry loop.
    if (zmq_socket_monitor(impl->socket.handle(), k_monitor_endpoint,
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) != 0) {
      return fail(ErrorCode::internal, "cannot monitor the coordinator connection");
    }
    impl->monitor.connect(k_monitor_endpoint);
    impl->socket.connect(endpoint);
  } catch (const zmq::error_t& error) {
    return std::unexpected(zmq_error(fmt::format("cannot connect to {}", endpoint), error));
  }
  return std::unique_ptr<ZmqDealer>(new ZmqDealer(std::move(impl)));
}

int ZmqDealer::fd() const { return m_impl->socket.get(zmq::sockopt::fd); }

Result<std::optional<std::string>> ZmqDealer::receive(int timeout_ms) {
  try {
    std::vector<zmq::pollitem_t> items = {{m_impl->socket.handle(), 0, ZMQ_POLLIN, 0},
                                          {m_impl->monitor.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, std::chrono::milliseconds(timeout_ms));
    if ((items[1].revents & ZMQ_POLLIN) != 0) {
      std::vector<zmq::message_t> event;
      if (zmq::recv_multipart(m_impl->monitor, std::back_inserter(event), zmq::recv_flags::dontwait) &&
          !event.empty() && event[0].size() >= 6) {
        std::uint16_t id = 0;
        std::memcpy(&id, event[0].data(), sizeof id);
        if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
          return fail(ErrorCode::protocol,
                      fmt::format("{} refused this CURVE key (not in its allow-list)", m_impl->endpoint));
        }
        return fail(ErrorCode::protocol,
                    fmt::format("{}: security handshake failed (CURVE keys or --insecure mismatch)",
                                m_impl->endpoint));
      }
    }
    if ((items[0].revents & ZMQ_POLLIN) == 0) return std::nullopt;
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(m_impl->socket, std::back_inserter(parts), zmq::recv_flags::dontwait) ||
        parts.size() != 1) {
      return std::nullopt;
    }
    return message_string(parts[0]);
  } catch (const zmq::error_t& error) {
    // A signal (Ctrl-C) cut the wait short: no frame; the caller checks why and goes on.
    if (error.num() == EINTR) return std::nullopt;
    return std::unexpected(zmq_error("receive", error));
  }
}

Result<void> ZmqDealer::send(const std::string& frame, int timeout_ms) {
  try {
    m_impl->socket.set(zmq::sockopt::sndtimeo, timeout_ms);
    zmq::message_t body(frame);
    if (!m_impl->socket.send(body, zmq::send_flags::none)) {
      return fail(ErrorCode::io, fmt::format("{}: send timed out", m_impl->endpoint));
    }
  } catch (const zmq::error_t& error) {
    return std::unexpected(zmq_error("send", error));
  }
  return {};
}

}  // namespace drover::common
