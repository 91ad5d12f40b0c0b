#include "common/config.h"

#include <yaml-cpp/yaml.h>

#include <array>
#include <charconv>
#include <fstream>
#include <sstream>

#include "common/planner.h"

namespace drover::common {
namespace {

constexpr std::array<std::string_view, 5> k_root_markers = {"pytest.ini", "pyproject.toml", "tox.ini",
                                                             "setup.cfg", ".git"};

template <class T>
Result<std::optional<T>> scalar(const YAML::Node& node, const std::string& name, const std::string& key,
                                std::string_view type_name) {
  try {
    return std::optional<T>(node.as<T>());
  } catch (const YAML::Exception&) {
    return fail(ErrorCode::usage, name + ": '" + key + "' must be " + std::string(type_name));
  }
}

}  // namespace

std::optional<std::filesystem::path> find_config(const std::filesystem::path& start) {
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::absolute(start, ec);
  while (!dir.empty()) {
    if (std::filesystem::is_regular_file(dir / "drover.yaml", ec)) return dir / "drover.yaml";
    for (std::string_view marker : k_root_markers) {
      if (std::filesystem::exists(dir / marker, ec)) return std::nullopt;
    }
    if (dir == dir.parent_path()) break;
    dir = dir.parent_path();
  }
  return std::nullopt;
}

Result<Config> parse_config(const std::string& text, const std::string& name) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::usage, name + ": invalid YAML: " + e.msg + " (line " +
                                      std::to_string(e.mark.line + 1) + ")");
  }
  Config config;
  if (root.IsNull()) return config;
  if (!root.IsMap()) return fail(ErrorCode::usage, name + ": expected a mapping of settings");
  for (const auto& entry : root) {
    std::string key;
    try {
      key = entry.first.as<std::string>();
    } catch (const YAML::Exception&) {
      return fail(ErrorCode::usage, name + ": keys must be strings");
    }
    const YAML::Node& value = entry.second;
    if (!value.IsScalar() && key != "pytest_args") {
      return fail(ErrorCode::usage, name + ": '" + key + "' must be a single value");
    }
    auto set = [&]<class T>(std::optional<T>& field, std::string_view type_name) -> Result<void> {
      auto parsed = scalar<T>(value, name, key, type_name);
      if (!parsed) return std::unexpected(parsed.error());
      field = *parsed;
      return {};
    };
    Result<void> ok;
    if (key == "python") {
      ok = set(config.python, "a path");
    } else if (key == "workers") {
      ok = set(config.workers, "'auto' or a number");
      if (ok && *config.workers != "auto") {
        int count = 0;
        const std::string& given = *config.workers;
        const auto [end, ec] = std::from_chars(given.data(), given.data() + given.size(), count);
        if (ec != std::errc() || end != given.data() + given.size() || count < 1) {
          return fail(ErrorCode::usage, name + ": 'workers' must be 'auto' or a number >= 1");
        }
      }
    } else if (key == "timeout") {
      ok = set(config.timeout, "a number of seconds");
      if (ok && !(*config.timeout >= 0 && *config.timeout <= k_max_timeout)) {  // also NaN
        return fail(ErrorCode::usage, name + ": 'timeout' must be from 0 to 1e9 seconds");
      }
    } else if (key == "max_worker_restart") {
      ok = set(config.max_worker_restart, "a whole number");
      if (ok && *config.max_worker_restart < 0) {
        return fail(ErrorCode::usage, name + ": 'max_worker_restart' must be >= 0");
      }
    } else if (key == "maxfail") {
      ok = set(config.maxfail, "a whole number");
      if (ok && *config.maxfail < 0) return fail(ErrorCode::usage, name + ": 'maxfail' must be >= 0 (0: no limit)");
    } else if (key == "junitxml") {
      ok = set(config.junitxml, "a path");
    } else if (key == "durations") {
      ok = set(config.durations, "a path");
    } else if (key == "group_by") {
      ok = set(config.group_by, "none, file or class");
      if (ok && !parse_group_by(*config.group_by)) {
        return fail(ErrorCode::usage, name + ": 'group_by' must be none, file or class");
      }
    } else if (key == "capture_limit") {
      ok = set(config.capture_limit, "a number of bytes");
      if (ok && *config.capture_limit <= 0) return fail(ErrorCode::usage, name + ": 'capture_limit' must be > 0");
    } else if (key == "worker_start") {
      ok = set(config.worker_start, "auto, fork or exec");
      if (ok && *config.worker_start != "auto" && *config.worker_start != "fork" && *config.worker_start != "exec") {
        return fail(ErrorCode::usage, name + ": 'worker_start' must be auto, fork or exec");
      }
    } else if (key == "continue_on_collection_errors") {
      ok = set(config.continue_on_collection_errors, "true or false");
    } else if (key == "pytest_args") {
      if (!value.IsSequence()) return fail(ErrorCode::usage, name + ": 'pytest_args' must be a list of strings");
      for (const auto& item : value) {
        if (!item.IsScalar()) return fail(ErrorCode::usage, name + ": 'pytest_args' must be a list of strings");
        config.pytest_args.push_back(item.as<std::string>());
      }
    } else {
      return fail(ErrorCode::usage, name + ": unknown key '" + key + "'");
    }
    if (!ok) return std::unexpected(ok.error());
  }
  return config;
}

Result<Config> load_config(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return fail(ErrorCode::usage, path.string() + ": cannot read");
  std::stringstream text;
  text << in.rdbuf();
  auto config = parse_config(text.str(), path.string());
  if (config) config->source = path;
  return config;
}

}  // namespace drover::common
