#include "common/protocol.h"

#include <gtest/gtest.h>
#include <msgpack.hpp>

namespace drover::common::farm {
namespace {

template <class T>
T round_trip(const T& message) {
  auto envelope = decode(encode(Message(message)));
  EXPECT_TRUE(envelope.has_value()) << envelope.error().message;
  EXPECT_EQ(envelope->type, type_of(Message(message)));
  EXPECT_EQ(envelope->version, k_protocol_version);
  return std::get<T>(envelope->message);
}

TEST(ProtocolTest, HelloRoundTrips) {
  Hello hello;
  hello.role = "agent";
  hello.name = "build-7";
  hello.slots = 8;
  hello.labels = {{"python", "3.11.2"}, {"pytest", "7.2.1"}, {"platform", "linux-x86_64"}};
  hello.capabilities = {"speculate"};
  const Hello back = round_trip(hello);
  EXPECT_EQ(back.role, "agent");
  EXPECT_EQ(back.name, "build-7");
  EXPECT_EQ(back.slots, 8);
  EXPECT_EQ(back.labels, hello.labels);
  EXPECT_EQ(back.capabilities, hello.capabilities);
  EXPECT_EQ(back.protocol_max, k_protocol_version);
}

TEST(ProtocolTest, LeaseAndResultRoundTrip) {
  Lease lease;
  lease.run_id = "r1";
  lease.lease_id = 42;
  lease.tests = {3, 1, 4};
  lease.speculative = true;
  lease.workspace = std::string(64, 'a');
  lease.pytest_args = {"-q", "tests"};
  lease.collection_hash = "abc";
  lease.collection_size = 9;
  const Lease back = round_trip(lease);
  EXPECT_EQ(back.run_id, "r1");
  EXPECT_EQ(back.lease_id, 42u);
  EXPECT_EQ(back.tests, lease.tests);
  EXPECT_TRUE(back.speculative);
  EXPECT_EQ(back.workspace, lease.workspace);
  EXPECT_EQ(back.pytest_args, lease.pytest_args);
  EXPECT_EQ(back.collection_size, 9);

  TestResultMsg result;
  result.run_id = "r1";
  result.lease_id = 42;
  result.result.index = 4;
  result.result.worker = "build-7/gw1";
  PhaseReport call;
  call.when = Phase::call;
  call.outcome = "failed";
  call.status = Status::failed;
  call.duration = 0.25;
  call.longrepr = "assert 1 == 2";
  call.message = "AssertionError";
  call.sections = {{"Captured stdout call", "hi\n"}};
  call.crash = "AssertionError: m\nassert 1 == 2";
  call.properties = {{"example_key", "1"}};
  result.result.phases = {call};
  result.result.warnings = {{"t.py::test_x", "t.py:3: UserWarning: w\n  warn('w')\n", 2}};
  const TestResultMsg got = round_trip(result);
  ASSERT_EQ(got.result.phases.size(), 1u);
  EXPECT_EQ(got.result.index, 4u);
  EXPECT_EQ(got.result.worker, "build-7/gw1");
  EXPECT_EQ(got.result.phases[0].status, Status::failed);
  EXPECT_EQ(got.result.phases[0].when, Phase::call);
  EXPECT_DOUBLE_EQ(got.result.phases[0].duration, 0.25);
  EXPECT_EQ(got.result.phases[0].sections, call.sections);
  EXPECT_EQ(got.result.phases[0].crash, call.crash);
  EXPECT_EQ(got.result.phases[0].properties, call.properties);
  ASSERT_EQ(got.result.warnings.size(), 1u);
  EXPECT_EQ(got.result.warnings[0].location, "t.py::test_x");
  EXPECT_EQ(got.result.warnings[0].message, result.result.warnings[0].message);
  EXPECT_EQ(got.result.warnings[0].count, 2);

  // An older agent sends no warnings: none, not an error.
  result.result.warnings.clear();
  EXPECT_TRUE(round_trip(result).result.warnings.empty());
}

TEST(ProtocolTest, RunSubmitCarriesCollection) {
  RunSubmit submit;
  submit.run_id = "ci-1";
  submit.collection.items = {{"t/test_a.py::test_x", "t/test_a.py", "", 3, {"slow"}},
                             {"t/test_a.py::T::test_y", "t/test_a.py", "T", 9, {}}};
  submit.collection.hash = "h";
  submit.collection.errors = {{"t/test_bad.py", "SyntaxError", "SyntaxError: bad"}};
  submit.collection.junit.suite_name = "mysuite";
  submit.collection.junit.family = "xunit1";
  submit.collection.junit.logging = "all";
  submit.collection.junit.duration_report = "call";
  submit.collection.junit.log_passing_tests = false;
  submit.collection.junit.error = "bad";
  submit.selection = {1};
  submit.durations = {{"t/test_a.py::test_x", 1.5}};
  const RunSubmit back = round_trip(submit);
  ASSERT_EQ(back.collection.items.size(), 2u);
  EXPECT_EQ(back.collection.items[1].cls, "T");
  EXPECT_EQ(back.collection.items[0].markers, std::vector<std::string>{"slow"});
  EXPECT_EQ(back.collection.errors[0].longrepr, "SyntaxError");
  EXPECT_EQ(back.collection.junit.suite_name, "mysuite");
  EXPECT_EQ(back.collection.junit.family, "xunit1");
  EXPECT_EQ(back.collection.junit.logging, "all");
  EXPECT_EQ(back.collection.junit.duration_report, "call");
  EXPECT_FALSE(back.collection.junit.log_passing_tests);
  EXPECT_EQ(back.collection.junit.error, "bad");
  EXPECT_EQ(back.selection, submit.selection);
  EXPECT_EQ(back.durations, submit.durations);
  EXPECT_EQ(back.group_by, "file");
}

// A result with no phase would make its test vanish from every report: a bad body.
TEST(ProtocolTest, ResultWithoutPhasesIsRejected) {
  TestResultMsg result;
  result.run_id = "r1";
  result.lease_id = 7;
  result.result.index = 3;
  result.result.worker = "a1/gw0";
  auto decoded = decode(encode(Message(result)));
  ASSERT_FALSE(decoded.has_value());
  EXPECT_EQ(decoded.error().code, ErrorCode::parse);
  EXPECT_NE(decoded.error().message.find("bad TestResult body: result of test 3 has no phases"),
            std::string::npos)
      << decoded.error().message;
  ResultStream stream{"r1", result.result};
  EXPECT_FALSE(decode(encode(Message(stream))).has_value());
}

TEST(ProtocolTest, EveryTypeHasAName) {
  EXPECT_EQ(type_of(Message(ErrorMsg{})), MessageType::error);
  EXPECT_EQ(to_string(MessageType::run_finished), "RunFinished");
  EXPECT_EQ(to_string(static_cast<MessageType>(99)), "Unknown");
  EXPECT_EQ(parse_error_code(to_string(ErrorCode::collection)), ErrorCode::collection);
}

// A newer peer's extra keys are ignored; an older peer's missing keys default.
TEST(ProtocolTest, UnknownKeysIgnoredMissingKeysDefault) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> packer(buffer);
  packer.pack_map(4);
  packer.pack(std::string("p")), packer.pack(std::string("drover"));
  packer.pack(std::string("v")), packer.pack(1);
  packer.pack(std::string("t")), packer.pack(4);
  packer.pack(std::string("b"));
  packer.pack_map(2);
  packer.pack(std::string("credits")), packer.pack(3);
  packer.pack(std::string("future_field")), packer.pack(std::vector<int>{1, 2});
  auto envelope = decode(std::string_view(buffer.data(), buffer.size()));
  ASSERT_TRUE(envelope.has_value()) << envelope.error().message;
  EXPECT_EQ(std::get<WorkRequest>(envelope->message).credits, 3);
}

TEST(ProtocolTest, VersionOutsideRangeIsRejected) {
  auto envelope = decode(encode(Heartbeat{}, k_protocol_version + 1));
  ASSERT_FALSE(envelope.has_value());
  EXPECT_EQ(envelope.error().code, ErrorCode::protocol);
  EXPECT_FALSE(decode(encode(Heartbeat{}, 0)).has_value());
  // Hello passes at any version so the coordinator can answer with the ranges.
  EXPECT_TRUE(decode(encode(Hello{}, k_protocol_version + 5)).has_value());
}

TEST(ProtocolTest, NegotiatePicksHighestCommonVersion) {
  Hello hello;
  hello.protocol_min = 1;
  hello.protocol_max = k_protocol_version + 3;
  EXPECT_EQ(negotiate(hello).value(), k_protocol_version);
  hello.protocol_min = k_protocol_version + 1;
  auto refused = negotiate(hello);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::protocol);
  EXPECT_NE(refused.error().message.find("this drover speaks"), std::string::npos);
}

TEST(ProtocolTest, TruncatedFramesAreParseErrors) {
  RunSubmit submit;
  submit.collection.items.resize(5, TestItem{"a::b", "a", "", 1, {}});
  const std::string frame = encode(submit);
  for (std::size_t cut = 0; cut < frame.size(); ++cut) {
    auto envelope = decode(std::string_view(frame).substr(0, cut));
    ASSERT_FALSE(envelope.has_value()) << "cut at " << cut;
    EXPECT_EQ(envelope.error().code, ErrorCode::parse);
  }
}

TEST(ProtocolTest, GarbageIsRejectedWithoutThrowing) {
  const std::vector<std::string> garbage = {
      "",
      "GET / HTTP/1.1\r\n\r\n",
      std::string("\xdd\xff\xff\xff\xff", 5),  // array claiming 4 billion elements
      std::string("\xdf\xff\xff\xff\xff", 5),  // map claiming 4 billion pairs
      std::string("\xc1", 1),                  // never-used byte
      encode(Heartbeat{}) + "x",               // trailing bytes
  };
  for (const std::string& frame : garbage) {
    auto envelope = decode(frame);
    EXPECT_FALSE(envelope.has_value());
  }
  // A valid envelope with an unknown type number or a mistyped field.
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> packer(buffer);
  packer.pack_map(4);
  packer.pack(std::string("p")), packer.pack(std::string("drover"));
  packer.pack(std::string("v")), packer.pack(1);
  packer.pack(std::string("t")), packer.pack(999);
  packer.pack(std::string("b")), packer.pack_map(0);
  auto unknown = decode(std::string_view(buffer.data(), buffer.size()));
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code, ErrorCode::protocol);

  msgpack::sbuffer typed;
  msgpack::packer<msgpack::sbuffer> typed_packer(typed);
  typed_packer.pack_map(4);
  typed_packer.pack(std::string("p")), typed_packer.pack(std::string("drover"));
  typed_packer.pack(std::string("v")), typed_packer.pack(1);
  typed_packer.pack(std::string("t")), typed_packer.pack(4);
  typed_packer.pack(std::string("b")), typed_packer.pack_map(1);
  typed_packer.pack(std::string("credits")), typed_packer.pack(std::string("many"));
  auto mistyped = decode(std::string_view(typed.data(), typed.size()));
  ASSERT_FALSE(mistyped.has_value());
  EXPECT_NE(mistyped.error().message.find("credits"), std::string::npos);
}

// Random byte flips of a real frame never crash the decoder.
TEST(ProtocolTest, FlippedBytesNeverCrash) {
  Lease lease;
  lease.run_id = "r";
  lease.tests = {1, 2, 3};
  lease.pytest_args = {"-x"};
  const std::string frame = encode(lease);
  std::uint32_t seed = 12345;
  for (int round = 0; round < 2000; ++round) {
    std::string copy = frame;
    seed = seed * 1664525u + 1013904223u;
    copy[seed % copy.size()] = static_cast<char>(seed >> 24);
    (void)decode(copy);
  }
  SUCCEED();
}

}  // namespace
}  // namespace drover::common::farm
