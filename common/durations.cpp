#include "common/durations.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <system_error>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace drover::common {
namespace {

constexpr std::uintmax_t k_max_durations_bytes = std::uintmax_t{512} << 20;

std::string shape_error(const std::string& source) {
  return source + ": not a JSON object of node id -> seconds";
}

// The temporary sits beside the target so rename() stays on one file system
// and is atomic; the pid keeps two concurrent writers from sharing it.
std::filesystem::path temp_path_for(const std::filesystem::path& path) {
  std::filesystem::path temp = path;
  temp += ".tmp." + std::to_string(::getpid());
  return temp;
}

}  // namespace

Result<Durations> load_durations(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (ec) return fail(ErrorCode::io, path.string() + ": " + ec.message());
    return Durations{};
  }
  if (std::filesystem::is_directory(path, ec)) {
    return fail(ErrorCode::io, path.string() + ": is a directory");
  }
  // A FIFO would block the run, /dev/zero never end: only regular files, of a size a
  // durations file can have (pytest-split's for 10^6 tests is ~100 MiB).
  if (!std::filesystem::is_regular_file(path, ec)) return fail(ErrorCode::io, path.string() + ": not a regular file");
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return fail(ErrorCode::io, path.string() + ": " + ec.message());
  if (size > k_max_durations_bytes) {
    return fail(ErrorCode::parse, path.string() + ": too large for a durations file (" +
                                      std::to_string(size >> 20) + " MiB; at most " +
                                      std::to_string(k_max_durations_bytes >> 20) + " MiB)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(ErrorCode::io, path.string() + ": cannot open: " + std::strerror(errno));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return fail(ErrorCode::io, path.string() + ": read failed");

  return parse_durations(text, path.string());
}

Result<Durations> parse_durations(std::string_view text, const std::string& source) {
  // parse() without exceptions yields a `discarded` value on malformed input.
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return fail(ErrorCode::parse, source + ": invalid JSON");
  if (!doc.is_object()) return fail(ErrorCode::parse, shape_error(source));

  Durations durations;
  for (const auto& [nodeid, value] : doc.items()) {
    if (!value.is_number()) return fail(ErrorCode::parse, shape_error(source));
    if (nodeid.empty()) return fail(ErrorCode::parse, source + ": empty node id");
    const double seconds = value.get<double>();
    if (!std::isfinite(seconds)) return fail(ErrorCode::parse, source + ": duration for '" + nodeid + "' is not finite");
    if (seconds < 0.0) return fail(ErrorCode::parse, source + ": negative duration for '" + nodeid + "'");
    durations[nodeid] = seconds;
  }
  return durations;
}

Result<void> save_durations(const std::filesystem::path& path, const Durations& durations) {
  // pytest-split writes json.dump(durations, f, sort_keys=True, indent=4): 4-space
  // indent, ", " / ": " separators, ASCII-only escapes and no trailing newline.
  // std::map is already sorted by key (byte order, as Python sorts str keys).
  // nlohmann::json keeps its keys in a std::map too (same order); ordered_json would
  // search every key on each insert, quadratic on large suites.
  nlohmann::json doc = nlohmann::json::object();
  for (const auto& [nodeid, seconds] : durations) doc.emplace(nodeid, seconds);
  std::string text;
  try {
    text = doc.dump(4, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace);
  } catch (const nlohmann::json::exception& e) {
    return fail(ErrorCode::internal, path.string() + ": " + e.what());
  }

  // A symlinked file (a shared or cached copy) is updated where it points, as
  // pytest-split's open(path, "w") does, not replaced by a regular file.
  std::filesystem::path target = path;
  std::error_code ec;
  // A link to a file not written yet (a fresh cache) gets its target created.
  for (int hops = 0; hops < 40 && std::filesystem::is_symlink(target, ec); ++hops) {
    const std::filesystem::path link = std::filesystem::read_symlink(target, ec);
    if (ec) break;
    target = link.is_absolute() ? link : target.parent_path() / link;
  }
  const std::filesystem::path temp = temp_path_for(target);
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) {
      return fail(ErrorCode::io, path.string() + ": cannot write: " + std::strerror(errno));
    }
    errno = 0;
    out << text;
    out.flush();
    if (!out) {
      const int error = errno;
      std::error_code ignored;
      std::filesystem::remove(temp, ignored);
      return fail(ErrorCode::io, path.string() + ": write failed" + (error != 0 ? std::string(": ") + std::strerror(error) : ""));
    }
  }
  std::filesystem::rename(temp, target, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    return fail(ErrorCode::io, path.string() + ": cannot replace: " + ec.message());
  }
  return {};
}

void update_durations(Durations& durations, const Collection& collection,
                      const std::vector<TestResult>& results) {
  // Duplicate node ids (same id twice in one collection) share one entry; the
  // slowest copy is kept so the result does not depend on arrival order.
  std::map<std::string, double> fresh;
  for (const TestResult& result : results) {
    if (result.index >= collection.items.size()) continue;
    double seconds = 0.0;
    for (const PhaseReport& phase : result.phases) {
      // A negative or non-finite phase time (clock jumps, frozen clocks) is
      // noise; writing it would make the file unreadable for us and pytest-split.
      if (std::isfinite(phase.duration) && phase.duration > 0.0) seconds += phase.duration;
    }
    const std::string& nodeid = collection.items[result.index].nodeid;
    auto [it, inserted] = fresh.emplace(nodeid, seconds);
    if (!inserted && seconds > it->second) it->second = seconds;
  }
  for (const auto& [nodeid, seconds] : fresh) durations[nodeid] = seconds;
}

}  // namespace drover::common
