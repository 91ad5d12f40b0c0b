// `drover coordinator` as an object: the ZeroMQ loop (ROUTER + Dispatcher),
// the SQLite store and the HTTP API, wired from a CoordinatorConfig.
//
// run() is the loop: it receives frames (decoding them with the farm codec,
// dropping bad ones with a log line), feeds the Dispatcher, sends what it
// returns, and ticks heartbeats on time. stop() ends it: peers get Shutdown,
// active runs are stored as failed. Failure: open() reports a bad data
// directory, database, bind address or key setup as one-line Errors.
// Thread-safety: run() on one thread; stop() from any thread; endpoint() and
// http_port() are fixed after open().
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "common/error.h"
#include "coordinator/coordinator_config.h"

namespace drover::coordinator {

class Coordinator {
 public:
  [[nodiscard]] static common::Result<std::unique_ptr<Coordinator>> open(const CoordinatorConfig& config);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // The bound ZeroMQ endpoint ("tcp://127.0.0.1:40123") and HTTP port (0 without HTTP).
  [[nodiscard]] const std::string& endpoint() const;
  [[nodiscard]] int http_port() const;

  // Serves until stop(); errors only when the socket itself fails.
  [[nodiscard]] common::Result<void> run();
  // Thread-safe and lock-free: run() returns within one poll interval.
  void stop();

 private:
  struct Impl;
  explicit Coordinator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

}  // namespace drover::coordinator
