// The coordinator's spdlog logger ("coordinator"): created on first use with a
// stderr sink unless the program registered one under that name first.
// Thread-safety: spdlog loggers are thread-safe; creation is guarded by spdlog's registry.
#pragma once

#include <memory>

#include <spdlog/spdlog.h>

namespace drover::coordinator {

[[nodiscard]] std::shared_ptr<spdlog::logger> log();

}  // namespace drover::coordinator
