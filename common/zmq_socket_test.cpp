#include "common/zmq_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "common/zmq_curve.h"

namespace drover::common {
namespace {

// Waits (bounded) for the next frame on a router.
std::optional<RouterFrame> next_frame(ZmqRouter& router, int timeout_ms = 5000) {
  auto frame = router.receive(timeout_ms);
  EXPECT_TRUE(frame.has_value()) << frame.error().message;
  return frame.has_value() ? *frame : std::nullopt;
}

int port_of(const std::string& endpoint) {
  return std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
}

TEST(ZmqSocketTest, DealerAndRouterExchangeFrames) {
  auto router = ZmqRouter::bind("tcp://127.0.0.1:*", std::nullopt);
  ASSERT_TRUE(router.has_value()) << router.error().message;
  auto dealer = ZmqDealer::connect((*router)->endpoint(), std::nullopt);
  ASSERT_TRUE(dealer.has_value()) << dealer.error().message;
  ASSERT_TRUE((*dealer)->send("hello").has_value());
  auto frame = next_frame(**router);
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->frame, "hello");
  EXPECT_EQ(frame->role, "");
  ASSERT_TRUE((*router)->send(frame->peer, "welcome").has_value());
  auto reply = (*dealer)->receive(5000);
  ASSERT_TRUE(reply.has_value());
  ASSERT_TRUE(reply->has_value());
  EXPECT_EQ(**reply, "welcome");
  // Unknown peers are an error, not a silent drop or a block.
  EXPECT_FALSE((*router)->send("no-such-peer", "x").has_value());
}

TEST(ZmqSocketTest, BindFailureIsAnError) {
  auto router = ZmqRouter::bind("tcp://256.1.1.1:1", std::nullopt);
  ASSERT_FALSE(router.has_value());
  EXPECT_NE(router.error().message.find("cannot bind"), std::string::npos);
}

TEST(ZmqSocketTest, CurveAdmitsAllowedKeysWithTheirRole) {
  if (!curve_available()) GTEST_SKIP() << "libzmq without CURVE";
  auto server = generate_curve_keypair().value();
  auto agent = generate_curve_keypair().value();
  auto stranger = generate_curve_keypair().value();
  CurveServerOptions options{server, {{agent.public_key, "agent"}}};
  auto router = ZmqRouter::bind("tcp://127.0.0.1:*", options);
  ASSERT_TRUE(router.has_value()) << router.error().message;

  auto good = ZmqDealer::connect((*router)->endpoint(), CurveClientOptions{server.public_key, agent});
  ASSERT_TRUE(good.has_value());
  ASSERT_TRUE((*good)->send("hi").has_value());
  auto frame = next_frame(**router);
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->frame, "hi");
  EXPECT_EQ(frame->role, "agent");

  auto bad = ZmqDealer::connect((*router)->endpoint(), CurveClientOptions{server.public_key, stranger});
  ASSERT_TRUE(bad.has_value());
  ASSERT_TRUE((*bad)->send("let me in").has_value());
  // The refusal arrives as a monitor event: receive() reports it as an error.
  Result<std::optional<std::string>> outcome = std::optional<std::string>();
  for (int i = 0; i < 50 && outcome.has_value(); ++i) outcome = (*bad)->receive(100);
  ASSERT_FALSE(outcome.has_value());
  EXPECT_EQ(outcome.error().code, ErrorCode::protocol);
  EXPECT_GE((*router)->auth_refused(), 1u);
  // Nothing from the stranger reached the router; the good peer still works.
  ASSERT_TRUE((*good)->send("still here").has_value());
  frame = next_frame(**router);
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->frame, "still here");
}

TEST(ZmqSocketTest, GarbageOnThePortLeavesTheRouterServing) {
  auto router = ZmqRouter::bind("tcp://127.0.0.1:*", std::nullopt);
  ASSERT_TRUE(router.has_value());
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port_of((*router)->endpoint())));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  const std::string garbage = "GET / HTTP/1.1\r\nHost: x\r\n\r\n\xff\x00\x01garbage";
  ASSERT_GT(::write(fd, garbage.data(), garbage.size()), 0);
  auto nothing = (*router)->receive(0);
  ASSERT_TRUE(nothing.has_value());
  EXPECT_FALSE(nothing->has_value());

  auto dealer = ZmqDealer::connect((*router)->endpoint(), std::nullopt);
  ASSERT_TRUE(dealer.has_value());
  ASSERT_TRUE((*dealer)->send("after garbage").has_value());
  auto frame = next_frame(**router);
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->frame, "after garbage");
  ::close(fd);
}

TEST(ZmqCurveTest, KeyFilesRoundTripAndDerivePublic) {
  if (!curve_available()) GTEST_SKIP() << "libzmq without CURVE";
  auto keys = generate_curve_keypair().value();
  EXPECT_TRUE(is_z85_key(keys.public_key));
  EXPECT_FALSE(is_z85_key("short"));
  EXPECT_EQ(curve_public_key(keys.secret_key).value(), keys.public_key);
  const auto dir = (std::filesystem::path(::testing::TempDir()) / ("drover_" + std::to_string(::getpid()))) / "drover_keys";
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(save_curve_keys(dir / "a.key", keys).has_value());
  EXPECT_EQ(std::filesystem::status(dir / "a.key").permissions() & std::filesystem::perms::group_read,
            std::filesystem::perms::none);
  auto loaded = load_curve_keys(dir / "a.key");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(loaded->public_key, keys.public_key);
  EXPECT_EQ(loaded->secret_key, keys.secret_key);
  {
    std::ofstream(dir / "bad.key") << "public: nope\n";
  }
  auto bad = load_curve_keys(dir / "bad.key");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("bad.key:1"), std::string::npos);
  EXPECT_FALSE(load_curve_keys(dir / "missing.key").has_value());
}

}  // namespace
}  // namespace drover::common
