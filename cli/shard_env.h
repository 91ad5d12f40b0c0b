// Which static shard this job runs: from --shard/--total-shards, else from the
// CI's own variables (GitLab CI_NODE_INDEX/CI_NODE_TOTAL, 1-based; CircleCI
// CIRCLE_NODE_INDEX/CIRCLE_NODE_TOTAL and Buildkite BUILDKITE_PARALLEL_JOB/
// BUILDKITE_PARALLEL_JOB_COUNT, 0-based). Bad values are a usage Error.
// Thread-safety: pure given the lookup function.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "common/error.h"

namespace drover::cli {

struct ShardSpec {
  int index = 0;  // 0-based
  int total = 1;
  std::string source;  // "--shard", "CI_NODE_INDEX", ... for messages
};

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

[[nodiscard]] EnvLookup process_env();

// `shard`/`total` are the raw flag values ("" when absent).
[[nodiscard]] common::Result<std::optional<ShardSpec>> resolve_shard(const std::string& shard,
                                                                     const std::string& total,
                                                                     const EnvLookup& env);

}  // namespace drover::cli
