#include "common/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

namespace drover::common {
namespace {

TEST(Config, ParsesEveryKey) {
  auto config = parse_config(
      "python: /usr/bin/python3\nworkers: auto\ntimeout: 30\nmax_worker_restart: 2\nmaxfail: 3\n"
      "junitxml: out.xml\ndurations: d.json\ngroup_by: class\ncapture_limit: 4096\n"
      "continue_on_collection_errors: true\nworker_start: exec\npytest_args: [-p, no:randomly]\n",
      "drover.yaml");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(*config->python, "/usr/bin/python3");
  EXPECT_EQ(*config->workers, "auto");
  EXPECT_DOUBLE_EQ(*config->timeout, 30.0);
  EXPECT_EQ(*config->max_worker_restart, 2);
  EXPECT_EQ(*config->maxfail, 3);
  EXPECT_EQ(*config->group_by, "class");
  EXPECT_EQ(*config->capture_limit, 4096);
  EXPECT_TRUE(*config->continue_on_collection_errors);
  EXPECT_EQ(*config->worker_start, "exec");
  EXPECT_EQ(config->pytest_args, (std::vector<std::string>{"-p", "no:randomly"}));
}

TEST(Config, EmptyFileIsAllDefaults) {
  auto config = parse_config("", "drover.yaml");
  ASSERT_TRUE(config.has_value());
  EXPECT_FALSE(config->python.has_value());
}

TEST(Config, RejectsUnknownKeysAndWrongTypesInOneLine) {
  const std::pair<const char*, const char*> cases[] = {
      {"pyton: x\n", "drover.yaml: unknown key 'pyton'"},
      {"timeout: soon\n", "drover.yaml: 'timeout' must be a number of seconds"},
      {"timeout: -1\n", "drover.yaml: 'timeout' must be from 0 to 1e9 seconds"},
      {"timeout: .inf\n", "drover.yaml: 'timeout' must be from 0 to 1e9 seconds"},
      {"timeout: .nan\n", "drover.yaml: 'timeout' must be from 0 to 1e9 seconds"},
      {"maxfail: -1\n", "drover.yaml: 'maxfail' must be >= 0 (0: no limit)"},
      {"continue_on_collection_errors: maybe\n", "drover.yaml: 'continue_on_collection_errors' must be true or false"},
      {"pytest_args: -x\n", "drover.yaml: 'pytest_args' must be a list of strings"},
      {"- a\n- b\n", "drover.yaml: expected a mapping of settings"},
      {"python: [a]\n", "drover.yaml: 'python' must be a single value"},
      {"worker_start: spawn\n", "drover.yaml: 'worker_start' must be auto, fork or exec"},
      {"workers: lots\n", "drover.yaml: 'workers' must be 'auto' or a number >= 1"},
      {"workers: 0\n", "drover.yaml: 'workers' must be 'auto' or a number >= 1"},
      {"group_by: module\n", "drover.yaml: 'group_by' must be none, file or class"},
  };
  for (const auto& [text, message] : cases) {
    auto config = parse_config(text, "drover.yaml");
    ASSERT_FALSE(config.has_value()) << text;
    EXPECT_EQ(config.error().code, ErrorCode::usage);
    EXPECT_EQ(config.error().message, message);
  }
}

TEST(Config, InvalidYamlNamesTheLine) {
  auto config = parse_config("python: x\n  bad: [\n", "drover.yaml");
  ASSERT_FALSE(config.has_value());
  EXPECT_NE(config.error().message.find("drover.yaml: invalid YAML"), std::string::npos);
}

TEST(Config, FoundUpwardsUntilTheProjectRoot) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("drover-config-test-" + std::to_string(::getpid()));
  fs::create_directories(root / "project" / "sub");
  std::ofstream(root / "drover.yaml") << "python: outer\n";
  EXPECT_EQ(find_config(root / "project" / "sub"), root / "drover.yaml");
  std::ofstream(root / "project" / "pytest.ini") << "[pytest]\n";
  EXPECT_FALSE(find_config(root / "project" / "sub").has_value());
  std::ofstream(root / "project" / "drover.yaml") << "python: inner\n";
  auto found = find_config(root / "project" / "sub");
  ASSERT_TRUE(found.has_value());
  auto config = load_config(*found);
  ASSERT_TRUE(config.has_value());
  EXPECT_EQ(*config->python, "inner");
  fs::remove_all(root);
}

}  // namespace
}  // namespace drover::common
