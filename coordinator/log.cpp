#include "coordinator/log.h"


#include <spdlog/sinks/stdout_color_sinks.h>

namespace drover::coordinator {

std::shared_ptr<spdlog::logger> log() {
  if (auto existing = spdlog::get("coordinator")) return existing;
  // Two threads may race to create it: the registry refuses the second, which then reads it back.
  try {
    return spdlog::stderr_color_mt("coordinator");
  } catch (const spdlog::spdlog_ex&) {
    return spdlog::get("coordinator");
  }
}

}  // namespace drover::coordinator
