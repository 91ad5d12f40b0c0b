// Where drover finds the files that travel with it. Thread-safety: pure.
#pragma once

#include <filesystem>

#include "common/error.h"

namespace drover::cli {

// The folder holding the drover_worker package: $DROVER_WORKER_PATH, else
// <binary dir>/worker_py (build tree), else <binary dir>/../share/drover/worker_py
// (installed).
[[nodiscard]] common::Result<std::filesystem::path> find_worker_path();

}  // namespace drover::cli
