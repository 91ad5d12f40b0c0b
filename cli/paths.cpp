#include "cli/paths.h"

#include <unistd.h>

#include <cstdlib>
#include <vector>

namespace drover::cli {

common::Result<std::filesystem::path> find_worker_path() {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto has_worker = [&](const fs::path& dir) { return fs::is_regular_file(dir / "drover_worker" / "__main__.py", ec); };
  if (const char* env = std::getenv("DROVER_WORKER_PATH"); env != nullptr && *env != '\0') {
    if (has_worker(env)) return fs::path(env);
    return common::fail(common::ErrorCode::usage,
                        std::string("DROVER_WORKER_PATH=") + env + " does not hold drover_worker/__main__.py");
  }
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return common::fail(common::ErrorCode::internal, "cannot locate the drover binary: " + ec.message());
  for (const fs::path& candidate : {exe.parent_path() / "worker_py",
                                    exe.parent_path().parent_path() / "share" / "drover" / "worker_py"}) {
    if (has_worker(candidate)) return candidate;
  }
  return common::fail(common::ErrorCode::internal,
                      "cannot find worker_py beside " + exe.string() + " (set DROVER_WORKER_PATH)");
}

std::filesystem::path temp_directory() {
  namespace fs = std::filesystem;
  std::vector<fs::path> candidates;
  for (const char* name : {"TMPDIR", "TEMP", "TMP"}) {
    if (const char* value = std::getenv(name); value != nullptr && *value != '\0') candidates.emplace_back(value);
  }
  for (const char* dir : {"/tmp", "/var/tmp", "/usr/tmp"}) candidates.emplace_back(dir);
  std::error_code ec;
  for (const fs::path& dir : candidates) {
    if (fs::is_directory(dir, ec) && ::access(dir.c_str(), W_OK | X_OK) == 0) return fs::absolute(dir, ec);
  }
  return fs::current_path(ec);
}

}  // namespace drover::cli
