// Where drover finds the files that travel with it. Thread-safety: pure.
#pragma once

#include <filesystem>

#include "common/error.h"

namespace drover::cli {

// The folder holding the drover_worker package: $DROVER_WORKER_PATH, else
// <binary dir>/worker_py (build tree), else <binary dir>/../share/drover/worker_py
// (installed).
[[nodiscard]] common::Result<std::filesystem::path> find_worker_path();

// A writable folder for temporary files, as Python's tempfile.gettempdir() picks one:
// the first usable of $TMPDIR, $TEMP, $TMP, /tmp, /var/tmp, /usr/tmp, the working
// directory. An empty, missing or read-only $TMPDIR is passed over, not fatal.
[[nodiscard]] std::filesystem::path temp_directory();

}  // namespace drover::cli
