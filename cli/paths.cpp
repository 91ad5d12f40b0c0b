#include "cli/paths.h"

#include <cstdlib>

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

}  // namespace drover::cli
