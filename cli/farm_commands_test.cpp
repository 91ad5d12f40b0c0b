// `drover keygen` and `drover coordinator` argument handling, through CLI11 as main() drives them.
#include "cli/farm_commands.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cli/commands.h"
#include "cli/farm_client_commands.h"
#include "common/zmq_curve.h"

namespace drover::cli {
namespace {

// Parses `args` (without the program name) like main() does, and returns the exit code.
int run(std::vector<std::string> args) {
  CLI::App app{"drover", "drover"};
  app.require_subcommand(1);
  bool check_args = false;
  app.add_flag("--check-args", check_args, "");
  int exit_code = -1;
  add_coordinator_command(app, exit_code);
  add_keygen_command(app, exit_code);
  std::reverse(args.begin(), args.end());
  try {
    app.parse(args);
  } catch (const CLI::ParseError&) {
    return k_exit_usage;
  }
  return exit_code;
}

std::filesystem::path temp_dir(const std::string& name) {
  const auto dir = std::filesystem::path(::testing::TempDir()) /
                   ("drover_" + std::to_string(::getpid())) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(DefaultHttpUrlTest, CoordinatorAddressesAreCheckedUpFront) {
  EXPECT_EQ(default_http_url("tcp://build-7:5555").value(), "http://build-7:8080");
  EXPECT_EQ(default_http_url("tcp://[::1]:5555").value(), "http://[::1]:8080");
  for (const char* bad : {"localhost:5555", "tcp://:5555", "tcp://host", "tcp://host:0", "tcp://host:99999",
                          "tcp://host:55x", "tcp://host:"}) {
    auto url = default_http_url(bad, "--coordinator");
    ASSERT_FALSE(url.has_value()) << bad;
    EXPECT_EQ(url.error().code, common::ErrorCode::usage) << bad;
    EXPECT_TRUE(url.error().message.starts_with("--coordinator: ")) << url.error().message;
  }
}

TEST(KeygenCommandTest, WritesASecretPairAndAPublicFile) {
  if (!common::curve_available()) GTEST_SKIP() << "libzmq without CURVE";
  const auto dir = temp_dir("keygen");
  const auto key = (dir / "agent.key").string();
  ASSERT_EQ(run({"keygen", "--out", key}), k_exit_ok);
  auto pair = common::load_curve_keys(key);
  ASSERT_TRUE(pair.has_value()) << pair.error().message;
  EXPECT_FALSE(pair->secret_key.empty());
  auto public_only = common::load_curve_keys(key + ".pub");
  ASSERT_TRUE(public_only.has_value());
  EXPECT_EQ(public_only->public_key, pair->public_key);
  EXPECT_TRUE(public_only->secret_key.empty());
  EXPECT_EQ(std::filesystem::status(key).permissions() & std::filesystem::perms::others_read,
            std::filesystem::perms::none);
  // An existing key is never overwritten.
  EXPECT_EQ(run({"keygen", "--out", key}), k_exit_usage);
  EXPECT_EQ(common::load_curve_keys(key)->secret_key, pair->secret_key);
}

TEST(CoordinatorCommandTest, CheckArgsValidatesWithoutStarting) {
  const auto dir = temp_dir("coordinator_args");
  EXPECT_EQ(run({"--check-args", "coordinator", "--data", (dir / "d").string()}), k_exit_ok);
  EXPECT_FALSE(std::filesystem::exists(dir / "d"));  // nothing was started or created
  EXPECT_EQ(run({"--check-args", "coordinator", "--bind", "tcp://0.0.0.0:5555"}), k_exit_usage);
  EXPECT_EQ(run({"--check-args", "coordinator", "--bind", "tcp://0.0.0.0:5555", "--no-http", "--insecure"}),
            k_exit_ok);
  EXPECT_EQ(run({"--check-args", "coordinator", "--http", "no-port"}), k_exit_usage);
  EXPECT_EQ(run({"--check-args", "coordinator", "--log-level", "chatty"}), k_exit_usage);
  std::ofstream(dir / "bad.yaml") << "colour: blue\n";
  EXPECT_EQ(run({"--check-args", "coordinator", "--config", (dir / "bad.yaml").string()}), k_exit_usage);
}

}  // namespace
}  // namespace drover::cli
