// ZeroMQ sockets for the farm: the coordinator's ROUTER and the DEALER that
// clients and agents connect with. The one adapter over cppzmq: every zmq
// exception becomes an Error here.
//
// Frames are opaque strings at this layer: callers encode and decode them with
// common/protocol.h, which is the only place that understands their contents.
// With CURVE, the ROUTER runs a ZAP handler thread (inproc://zeromq.zap.01 in
// its own context) that admits only allow-listed public keys and tags each
// connection with the key's role ("agent" or "client"), readable per frame.
// Failure: socket errors are Results; a receive timeout, or a signal interrupting
// the wait, is an empty optional.
// Thread-safety: each socket is used by one thread; the ZAP thread is private.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/zmq_curve.h"

namespace drover::common {

// Coordinator side of CURVE.
struct CurveServerOptions {
  CurveKeyPair keys;                         // the coordinator's pair (secret required)
  std::map<std::string, std::string> allow;  // peer public key (Z85) -> role: "agent" | "client"
};

// Peer side of CURVE.
struct CurveClientOptions {
  std::string server_public_key;  // the coordinator's public key
  CurveKeyPair keys;              // this peer's pair (secret required)
};

// One frame from a peer.
struct RouterFrame {
  std::string peer;   // ZeroMQ routing id: opaque bytes, stable for the connection
  std::string role;   // the ZAP role of the peer's key, "" without CURVE
  std::string frame;  // the payload (exactly one part)
};

class ZmqRouter {
 public:
  // Binds `endpoint` ("tcp://0.0.0.0:5555", "tcp://127.0.0.1:*"). With `curve`,
  // every connection must pass CURVE with an allow-listed key.
  [[nodiscard]] static Result<std::unique_ptr<ZmqRouter>> bind(
      const std::string& endpoint, const std::optional<CurveServerOptions>& curve);
  ~ZmqRouter();
  ZmqRouter(const ZmqRouter&) = delete;
  ZmqRouter& operator=(const ZmqRouter&) = delete;

  // The bound endpoint with the actual port ("tcp://127.0.0.1:40123").
  [[nodiscard]] const std::string& endpoint() const;
  // Waits up to timeout_ms (0 = poll, -1 = forever) for one frame. Messages that
  // do not have exactly one payload part are dropped and counted.
  [[nodiscard]] Result<std::optional<RouterFrame>> receive(int timeout_ms);
  // Never blocks: a peer that is gone or cannot take more is an Error (the frame is dropped).
  [[nodiscard]] Result<void> send(const std::string& peer, const std::string& frame);
  // Frames dropped for having the wrong number of parts since bind.
  [[nodiscard]] std::size_t malformed_dropped() const;
  // Connections refused by the ZAP handler since bind.
  [[nodiscard]] std::size_t auth_refused() const;

 private:
  struct Impl;
  explicit ZmqRouter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

class ZmqDealer {
 public:
  // Connects (asynchronously: ZeroMQ retries in the background) to `endpoint`.
  [[nodiscard]] static Result<std::unique_ptr<ZmqDealer>> connect(
      const std::string& endpoint, const std::optional<CurveClientOptions>& curve);
  ~ZmqDealer();
  ZmqDealer(const ZmqDealer&) = delete;
  ZmqDealer& operator=(const ZmqDealer&) = delete;

  // Waits up to timeout_ms for one frame. Error when the coordinator refused our
  // CURVE key (ErrorCode::protocol) or the socket failed.
  [[nodiscard]] Result<std::optional<std::string>> receive(int timeout_ms);
  // Queues one frame; blocks at most timeout_ms while the send queue is full.
  [[nodiscard]] Result<void> send(const std::string& frame, int timeout_ms = 1000);
  // The raw file descriptor to poll for readability together with other fds
  // (ZMQ_FD semantics: edge-triggered, always call receive(0) until empty).
  [[nodiscard]] int fd() const;

 private:
  struct Impl;
  explicit ZmqDealer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

}  // namespace drover::common
