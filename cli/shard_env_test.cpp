#include "cli/shard_env.h"

#include <gtest/gtest.h>

#include <map>

namespace drover::cli {
namespace {

EnvLookup env_of(std::map<std::string, std::string> values) {
  return [values](const std::string& name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

TEST(ShardEnv, FlagsAreZeroBased) {
  auto spec = resolve_shard("2", "3", env_of({}));
  ASSERT_TRUE(spec.has_value());
  ASSERT_TRUE(spec->has_value());
  EXPECT_EQ((*spec)->index, 2);
  EXPECT_EQ((*spec)->total, 3);
}

TEST(ShardEnv, NoFlagsNoEnvMeansNoShard) {
  auto spec = resolve_shard("", "", env_of({}));
  ASSERT_TRUE(spec.has_value());
  EXPECT_FALSE(spec->has_value());
}

TEST(ShardEnv, BadFlagValuesAreUsageErrors) {
  for (auto [shard, total] : std::vector<std::pair<std::string, std::string>>{
           {"3", "3"}, {"-1", "3"}, {"0", "0"}, {"x", "2"}, {"1", "2x"}, {"1", ""}, {"", "2"}, {"0", "10001"}, {"0", "2147483647"}}) {
    auto spec = resolve_shard(shard, total, env_of({}));
    ASSERT_FALSE(spec.has_value()) << shard << "/" << total;
    EXPECT_EQ(spec.error().code, common::ErrorCode::usage);
    EXPECT_EQ(spec.error().message.find('\n'), std::string::npos);
  }
}

TEST(ShardEnv, GitLabIsOneBased) {
  auto spec = resolve_shard("", "", env_of({{"CI_NODE_INDEX", "1"}, {"CI_NODE_TOTAL", "4"}}));
  ASSERT_TRUE(spec.has_value() && spec->has_value());
  EXPECT_EQ((*spec)->index, 0);
  EXPECT_EQ((*spec)->total, 4);
  EXPECT_FALSE(resolve_shard("", "", env_of({{"CI_NODE_INDEX", "0"}, {"CI_NODE_TOTAL", "4"}})).has_value());
}

TEST(ShardEnv, GitLabWithoutParallelIsNotSharded) {
  auto spec = resolve_shard("", "", env_of({{"CI_NODE_TOTAL", "1"}}));
  ASSERT_TRUE(spec.has_value());
  EXPECT_FALSE(spec->has_value());
}

TEST(ShardEnv, CircleAndBuildkiteAreZeroBased) {
  auto circle = resolve_shard("", "", env_of({{"CIRCLE_NODE_INDEX", "0"}, {"CIRCLE_NODE_TOTAL", "2"}}));
  ASSERT_TRUE(circle.has_value() && circle->has_value());
  EXPECT_EQ((*circle)->index, 0);
  auto buildkite =
      resolve_shard("", "", env_of({{"BUILDKITE_PARALLEL_JOB", "4"}, {"BUILDKITE_PARALLEL_JOB_COUNT", "5"}}));
  ASSERT_TRUE(buildkite.has_value() && buildkite->has_value());
  EXPECT_EQ((*buildkite)->index, 4);
  EXPECT_FALSE(resolve_shard("", "", env_of({{"BUILDKITE_PARALLEL_JOB", "5"}, {"BUILDKITE_PARALLEL_JOB_COUNT", "5"}}))
                   .has_value());
}

TEST(ShardEnv, FlagsWinOverEnvironment) {
  auto spec = resolve_shard("0", "2", env_of({{"CI_NODE_INDEX", "3"}, {"CI_NODE_TOTAL", "4"}}));
  ASSERT_TRUE(spec.has_value() && spec->has_value());
  EXPECT_EQ((*spec)->total, 2);
}

}  // namespace
}  // namespace drover::cli
