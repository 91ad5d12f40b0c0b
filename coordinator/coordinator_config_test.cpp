#include "coordinator/coordinator_config.h"

#include <fstream>

#include <unistd.h>

#include <gtest/gtest.h>

namespace drover::coordinator {
namespace {

std::filesystem::path write(const std::string& name, const std::string& text) {
  const auto dir = (std::filesystem::path(::testing::TempDir()) / ("drover_" + std::to_string(::getpid()))) / "drover_coord_config";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / name) << text;
  return dir / name;
}

TEST(CoordinatorConfigTest, ReadsEverySettingAndKeyFiles) {
  if (!common::curve_available()) GTEST_SKIP() << "libzmq without CURVE";
  auto server = common::generate_curve_keypair().value();
  auto agent = common::generate_curve_keypair().value();
  auto client = common::generate_curve_keypair().value();
  const auto dir = write("placeholder", "").parent_path();
  ASSERT_TRUE(common::save_curve_keys(dir / "server.key", server).has_value());
  ASSERT_TRUE(common::save_curve_keys(dir / "client.pub", {client.public_key, ""}).has_value());
  auto path = write("full.yaml", "bind: tcp://0.0.0.0:7000\nhttp: 0.0.0.0:7001\ndata: state\n"
                                 "key_file: server.key\nagent_keys: [\"" + agent.public_key + "\"]\n"
                                 "client_keys: [client.pub]\nhttp_token: t0k\n"
                                 "heartbeat_interval_ms: 250\nheartbeat_lost_after: 3\n");
  auto config = load_coordinator_config(path, {});
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->bind, "tcp://0.0.0.0:7000");
  EXPECT_EQ(config->data, dir / "state");
  ASSERT_TRUE(config->keys.has_value());
  EXPECT_EQ(config->keys->public_key, server.public_key);
  EXPECT_EQ(config->allow.at(agent.public_key), "agent");
  EXPECT_EQ(config->allow.at(client.public_key), "client");
  EXPECT_EQ(config->http_token, "t0k");
  EXPECT_EQ(config->heartbeat_interval_ms, 250);
  EXPECT_EQ(config->heartbeat_lost_after, 3);
  auto warning = check_security(*config);
  ASSERT_TRUE(warning.has_value());
  EXPECT_EQ(*warning, "");
}

TEST(CoordinatorConfigTest, BadSettingsAreOneLineErrors) {
  auto unknown = load_coordinator_config(write("unknown.yaml", "colour: blue\n"), {});
  ASSERT_FALSE(unknown.has_value());
  EXPECT_NE(unknown.error().message.find("unknown setting 'colour'"), std::string::npos);
  auto typed = load_coordinator_config(write("typed.yaml", "heartbeat_lost_after: often\n"), {});
  ASSERT_FALSE(typed.has_value());
  EXPECT_NE(typed.error().message.find("'heartbeat_lost_after' must be a whole number"), std::string::npos);
  auto yaml = load_coordinator_config(write("broken.yaml", "bind: [\n"), {});
  ASSERT_FALSE(yaml.has_value());
  EXPECT_NE(yaml.error().message.find("invalid YAML"), std::string::npos);
  EXPECT_FALSE(load_coordinator_config(write("nokey.yaml", "agent_keys: [missing.key]\n"), {}).has_value());
}

TEST(CoordinatorConfigTest, PublicBindNeedsKeysOrInsecure) {
  CoordinatorConfig config;
  EXPECT_EQ(check_security(config).value(), "");  // loopback defaults
  config.bind = "tcp://0.0.0.0:5555";
  auto refused = check_security(config);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().message.find("--insecure"), std::string::npos);
  config.insecure = true;
  EXPECT_NE(check_security(config).value().find("INSECURE"), std::string::npos);
  config = CoordinatorConfig{};
  config.http = "0.0.0.0:8080";
  EXPECT_FALSE(check_security(config).has_value());
}

TEST(CoordinatorConfigTest, EndpointsAndHostPorts) {
  EXPECT_TRUE(is_local_endpoint("tcp://127.0.0.1:5555"));
  EXPECT_TRUE(is_local_endpoint("ipc:///tmp/x"));
  EXPECT_FALSE(is_local_endpoint("tcp://*:5555"));
  EXPECT_FALSE(is_local_endpoint("tcp://10.0.0.1:5555"));
  auto parsed = parse_host_port("127.0.0.1:8080");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->first, "127.0.0.1");
  EXPECT_EQ(parsed->second, 8080);
  EXPECT_FALSE(parse_host_port("8080").has_value());
  EXPECT_FALSE(parse_host_port("host:99999").has_value());
  EXPECT_FALSE(parse_host_port("host:http").has_value());
}

}  // namespace
}  // namespace drover::coordinator
