#include "cli/shard_env.h"

#include <array>
#include <charconv>
#include <cstdlib>
#include <string>

#include "common/planner.h"

namespace drover::cli {
namespace {

using common::ErrorCode;
using common::fail;

struct CiVariables {
  const char* index;
  const char* total;
  int base;  // what the CI numbers its first job
};

constexpr std::array<CiVariables, 3> k_ci_variables = {{
    {"CI_NODE_INDEX", "CI_NODE_TOTAL", 1},
    {"CIRCLE_NODE_INDEX", "CIRCLE_NODE_TOTAL", 0},
    {"BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT", 0},
}};

std::optional<int> parse_int(const std::string& text) {
  int value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
  return value;
}

common::Result<ShardSpec> make_spec(const std::string& index_text, const std::string& total_text,
                                    int base, const std::string& index_name, const std::string& total_name) {
  auto index = parse_int(index_text);
  if (!index) return fail(ErrorCode::usage, index_name + " must be a whole number, got '" + index_text + "'");
  auto total = parse_int(total_text);
  if (!total) return fail(ErrorCode::usage, total_name + " must be a whole number, got '" + total_text + "'");
  if (*total < 1) return fail(ErrorCode::usage, total_name + " must be at least 1, got " + total_text);
  if (*total > common::k_max_shards) {
    return fail(ErrorCode::usage, total_name + " must be at most " + std::to_string(common::k_max_shards) + ", got " + total_text);
  }
  const int zero_based = *index - base;
  if (zero_based < 0 || zero_based >= *total) {
    return fail(ErrorCode::usage, index_name + " " + index_text + " is out of range for " + total_name + " " +
                                      total_text + (base == 0 ? " (0-based)" : " (1-based)"));
  }
  return ShardSpec{zero_based, *total, index_name};
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

common::Result<std::optional<ShardSpec>> resolve_shard(const std::string& shard, const std::string& total,
                                                       const EnvLookup& env) {
  if (!shard.empty() || !total.empty()) {
    if (shard.empty()) return fail(ErrorCode::usage, "--total-shards needs --shard");
    if (total.empty()) return fail(ErrorCode::usage, "--shard needs --total-shards");
    auto spec = make_spec(shard, total, 0, "--shard", "--total-shards");
    if (!spec) return std::unexpected(spec.error());
    return std::optional<ShardSpec>(*spec);
  }
  for (const CiVariables& ci : k_ci_variables) {
    auto index = env(ci.index);
    auto count = env(ci.total);
    // GitLab sets CI_NODE_TOTAL=1 on every job that does not use `parallel:`.
    if (!index && (!count || *count == "1")) continue;
    if (!index || !count) {
      return fail(ErrorCode::usage, std::string(index ? ci.total : ci.index) + " is not set but " +
                                        (index ? ci.index : ci.total) + " is");
    }
    auto spec = make_spec(*index, *count, ci.base, ci.index, ci.total);
    if (!spec) return std::unexpected(spec.error());
    return std::optional<ShardSpec>(*spec);
  }
  return std::optional<ShardSpec>();
}

}  // namespace drover::cli
