#include "agent/worker_messages.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace drover::agent {
namespace {

using common::ErrorCode;

std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

const std::filesystem::path k_golden = std::filesystem::path(DROVER_SOURCE_DIR) / "tests/golden/worker";

template <class T>
T decode_as(const std::string& line) {
  auto decoded = decode_worker_message(line);
  EXPECT_TRUE(decoded.has_value()) << (decoded ? "" : decoded.error().message);
  if (!decoded) return T{};
  EXPECT_TRUE(std::holds_alternative<T>(*decoded)) << line;
  if (!std::holds_alternative<T>(*decoded)) return T{};
  return std::get<T>(*decoded);
}

TEST(WorkerMessages, DecodesHelloWithFeatures) {
  auto hello = decode_as<HelloMessage>(
      R"({"type":"hello","protocol":1,"pid":42,"python":"3.11.2","pytest":"7.2.1","features":["cancel"],"new":1})");
  EXPECT_EQ(hello.protocol, 1);
  EXPECT_EQ(hello.pid, 42);
  EXPECT_EQ(hello.python, "3.11.2");
  EXPECT_EQ(hello.pytest, "7.2.1");
  EXPECT_EQ(hello.features, std::vector<std::string>{"cancel"});
  auto old = decode_as<HelloMessage>(R"({"type":"hello","protocol":1,"pid":1})");
  EXPECT_TRUE(old.features.empty());
}

TEST(WorkerMessages, DecodesCollected) {
  auto collected = decode_as<CollectedMessage>(R"({"type":"collected","rootdir":"/r","hash":"ab",
      "items":[{"nodeid":"t.py::TestX::test_a[1]","file":"t.py","cls":"TestX","line":7,"markers":["slow","parametrize"]}],
      "errors":[{"nodeid":"bad.py","longrepr":"ImportError"}],
      "skips":[{"nodeid":"s.py","file":"s.py","line":3,"reason":"Skipped: no db"}],"deselected":4})");
  const common::Collection& c = collected.collection;
  EXPECT_EQ(c.rootdir, "/r");
  EXPECT_EQ(c.hash, "ab");
  ASSERT_EQ(c.items.size(), 1u);
  EXPECT_EQ(c.items[0].nodeid, "t.py::TestX::test_a[1]");
  EXPECT_EQ(c.items[0].cls, "TestX");
  EXPECT_EQ(c.items[0].line, 7);
  EXPECT_EQ(c.items[0].markers, (std::vector<std::string>{"slow", "parametrize"}));
  ASSERT_EQ(c.errors.size(), 1u);
  EXPECT_EQ(c.errors[0].longrepr, "ImportError");
  ASSERT_EQ(c.skips.size(), 1u);
  EXPECT_EQ(c.skips[0].line, 3);
  EXPECT_EQ(c.skips[0].reason, "Skipped: no db");
  EXPECT_EQ(c.deselected, 4u);
  // Older workers do not send `deselected`, nor `junit`: pytest's defaults.
  const auto old = decode_as<CollectedMessage>(R"({"type":"collected","hash":"h","items":[]})").collection;
  EXPECT_EQ(old.deselected, 0u);
  EXPECT_EQ(old.junit.suite_name, "pytest");
  EXPECT_EQ(old.junit.family, "xunit2");
  EXPECT_TRUE(old.junit.log_passing_tests);
}

TEST(WorkerMessages, DecodesJunitIniOptions) {
  const auto junit = decode_as<CollectedMessage>(R"({"type":"collected","hash":"h","items":[],
      "junit":{"suite_name":"mysuite","family":"xunit1","logging":"system-out","duration_report":"call",
               "log_passing_tests":false}})").collection.junit;
  EXPECT_EQ(junit.suite_name, "mysuite");
  EXPECT_EQ(junit.family, "xunit1");
  EXPECT_EQ(junit.logging, "system-out");
  EXPECT_EQ(junit.duration_report, "call");
  EXPECT_FALSE(junit.log_passing_tests);
  EXPECT_TRUE(junit.error.empty());
  const auto partial = decode_as<CollectedMessage>(R"({"type":"collected","hash":"h","items":[],
      "junit":{"error":"junit_log_passing_tests: invalid truth value 'foo'"}})").collection.junit;
  EXPECT_EQ(partial.error, "junit_log_passing_tests: invalid truth value 'foo'");
  EXPECT_EQ(partial.logging, "no");
}

TEST(WorkerMessages, DecodesReport) {
  auto report = decode_as<ReportMessage>(R"({"type":"report","index":3,"when":"call","outcome":"failed",
      "status":"failed","duration":0.25,"longrepr":"E  assert 0","message":"assert 0",
      "sections":[["Captured stdout call","hi\n"]]})");
  EXPECT_EQ(report.index, 3u);
  EXPECT_EQ(report.report.when, common::Phase::call);
  EXPECT_EQ(report.report.outcome, "failed");
  EXPECT_EQ(report.report.status, common::Status::failed);
  EXPECT_DOUBLE_EQ(report.report.duration, 0.25);
  EXPECT_EQ(report.report.message, "assert 0");
  ASSERT_EQ(report.report.sections.size(), 1u);
  EXPECT_EQ(report.report.sections[0].first, "Captured stdout call");
  EXPECT_EQ(report.report.sections[0].second, "hi\n");
  EXPECT_TRUE(report.report.crash.empty());
  EXPECT_TRUE(report.report.properties.empty());
  auto setup = decode_as<ReportMessage>(R"({"type":"report","index":0,"when":"setup","outcome":"passed","status":""})");
  EXPECT_EQ(setup.report.status, common::Status::none);
  auto full = decode_as<ReportMessage>(R"({"type":"report","index":0,"when":"teardown","outcome":"failed",
      "status":"error","crash":"AssertionError: m\nassert 0","properties":[["k","1"],["n","2"]]})");
  EXPECT_EQ(full.report.crash, "AssertionError: m\nassert 0");
  EXPECT_EQ(full.report.properties,
            (std::vector<std::pair<std::string, std::string>>{{"k", "1"}, {"n", "2"}}));
}

TEST(WorkerMessages, DecodesSmallMessages) {
  EXPECT_EQ(decode_as<StartMessage>(R"({"type":"start","index":7})").index, 7u);
  EXPECT_EQ(decode_as<FinishedMessage>(R"({"type":"finished","index":8})").index, 8u);
  EXPECT_EQ(decode_as<ByeMessage>(R"({"type":"bye","exitstatus":1})").exitstatus, 1);
  EXPECT_EQ(decode_as<FatalMessage>(R"({"type":"fatal","message":"no"})").message, "no");
  EXPECT_EQ(decode_as<CancelledMessage>(R"({"type":"cancelled","indices":[1,2]})").indices,
            (std::vector<common::TestIndex>{1, 2}));
  EXPECT_EQ(decode_as<UnknownMessage>(R"({"type":"progress","x":1})").type, "progress");
  const auto warning = decode_as<WarningMessage>(
      R"({"type":"warning","when":"collect","nodeid":"","location":"t.py:3","message":"t.py:3: UserWarning: w\n"})");
  EXPECT_EQ(warning.when, "collect");
  EXPECT_EQ(warning.warning.location, "t.py:3");
  EXPECT_EQ(warning.warning.message, "t.py:3: UserWarning: w\n");
  EXPECT_EQ(warning.warning.count, 1);
  // A trailing newline (and CR) is tolerated.
  EXPECT_EQ(decode_as<StartMessage>("{\"type\":\"start\",\"index\":1}\r\n").index, 1u);
}

TEST(WorkerMessages, RejectsGarbageWithProtocolErrors) {
  const std::vector<std::string> bad = {
      "",
      "not json",
      "[1,2]",
      "\"hello\"",
      R"({"protocol":1})",
      R"({"type":5})",
      R"({"type":"start"})",
      R"({"type":"start","index":-1})",
      R"({"type":"start","index":1.5})",
      R"({"type":"start","index":99999999999})",
      R"({"type":"start","index":"3"})",
      R"({"type":"report","index":1,"when":"lunch","outcome":"passed","status":""})",
      R"({"type":"report","index":1,"when":"call","outcome":"passed","status":"great"})",
      R"({"type":"report","index":1,"when":"call","outcome":"passed","status":"passed","sections":[["a"]]})",
      R"({"type":"report","index":1,"when":"call","outcome":"passed","status":"passed","duration":"1"})",
      R"({"type":"report","index":1,"when":"call","outcome":"passed","status":"passed","properties":[["k",1]]})",
      R"({"type":"report","index":1,"when":"call","outcome":"failed","status":"failed","crash":["x"]})",
      R"({"type":"collected","hash":"x","items":[],"junit":"xunit1"})",
      R"({"type":"collected","hash":"x","items":[],"junit":{"log_passing_tests":"yes"}})",
      R"({"type":"collected","hash":"x"})",
      R"({"type":"collected","hash":"x","items":[{"file":"a.py"}]})",
      R"({"type":"collected","hash":"x","items":[1]})",
      R"({"type":"collected","hash":"x","items":[],"deselected":-1})",
      R"({"type":"cancelled","indices":"1"})",
      R"({"type":"hello"})",
      "{\"type\":\"fatal\",\"message\":\"\xff\xfe\"}",
      std::string(100000, '{'),
  };
  for (const std::string& line : bad) {
    auto decoded = decode_worker_message(line);
    ASSERT_FALSE(decoded.has_value()) << line.substr(0, 100);
    EXPECT_EQ(decoded.error().code, ErrorCode::protocol);
    EXPECT_EQ(decoded.error().message.find('\n'), std::string::npos);
    EXPECT_LT(decoded.error().message.size(), 300u);
  }
}

TEST(WorkerMessages, EncodesCommands) {
  const std::vector<common::TestIndex> indices = {0, 5, 4294967295u};
  EXPECT_EQ(encode_run(indices), "{\"indices\":[0,5,4294967295],\"type\":\"run\"}\n");
  EXPECT_EQ(encode_cancel(std::vector<common::TestIndex>{8}), "{\"indices\":[8],\"type\":\"cancel\"}\n");
  EXPECT_EQ(encode_run({}), "{\"indices\":[],\"type\":\"run\"}\n");
  EXPECT_EQ(encode_shutdown(), "{\"type\":\"shutdown\"}\n");
}

TEST(WorkerMessages, ExitAndNoSessionDecode) {
  auto exit = decode_as<ExitMessage>(
      R"({"type":"exit","index":3,"returncode":7,"message":"_pytest.outcomes.Exit: bye","detail":""})");
  EXPECT_EQ(exit.index, std::optional<common::TestIndex>(3));
  EXPECT_EQ(exit.returncode, 7);
  EXPECT_EQ(exit.message, "_pytest.outcomes.Exit: bye");
  auto outside = decode_as<ExitMessage>(R"({"type":"exit","index":-1,"returncode":2,"message":"KeyboardInterrupt"})");
  EXPECT_FALSE(outside.index.has_value());
  EXPECT_FALSE(decode_worker_message(R"({"type":"exit","index":0})").has_value());  // returncode required
  EXPECT_EQ(decode_as<NoSessionMessage>(R"({"type":"nosession","exitstatus":0})").exitstatus, 0);
  EXPECT_EQ(encode_stop(), "{\"type\":\"stop\"}\n");
}

TEST(WorkerMessages, CollectedCarriesPytestsOwnSettings) {
  auto plain = decode_as<CollectedMessage>(R"({"type":"collected","hash":"h","items":[]})");
  EXPECT_FALSE(plain.collection.collect_only);
  EXPECT_EQ(plain.collection.maxfail, 0);
  auto listed = decode_as<CollectedMessage>(R"({"type":"collected","hash":"h","items":[],"collectonly":true,"maxfail":1})");
  EXPECT_TRUE(listed.collection.collect_only);
  EXPECT_EQ(listed.collection.maxfail, 1);
  EXPECT_FALSE(decode_worker_message(R"({"type":"collected","hash":"h","items":[],"collectonly":1})").has_value());
  EXPECT_FALSE(decode_worker_message(R"({"type":"collected","hash":"h","items":[],"maxfail":-1})").has_value());
  EXPECT_FALSE(plain.collection.coverage);
  EXPECT_TRUE(decode_as<CollectedMessage>(R"({"type":"collected","hash":"h","items":[],"coverage":true})").collection.coverage);
  EXPECT_FALSE(decode_worker_message(R"({"type":"collected","hash":"h","items":[],"coverage":"yes"})").has_value());
}

// The golden session the Python worker's tests also check: every line decodes
// to the message type it names, and the session reads as the protocol says.
TEST(WorkerMessagesGolden, WorkerLinesDecode) {
  for (const char* name : {"worker_session.jsonl", "worker_fatal.jsonl"}) {
    const auto lines = read_lines(k_golden / name);
    ASSERT_FALSE(lines.empty()) << "missing golden file " << (k_golden / name);
    for (const std::string& line : lines) {
      auto decoded = decode_worker_message(line);
      ASSERT_TRUE(decoded.has_value()) << name << ": " << decoded.error().message;
      EXPECT_FALSE(std::holds_alternative<UnknownMessage>(*decoded)) << line;
    }
  }
}

TEST(WorkerMessagesGolden, SessionIsConsistent) {
  const auto lines = read_lines(k_golden / "worker_session.jsonl");
  ASSERT_GE(lines.size(), 3u);
  auto hello = decode_as<HelloMessage>(lines[0]);
  EXPECT_EQ(hello.protocol, k_worker_protocol);
  std::size_t first = 1;  // warnings recorded while collecting come before `collected`
  while (first < lines.size() && lines[first].find(R"("type":"warning")") != std::string::npos) ++first;
  ASSERT_LT(first, lines.size());
  auto collected = decode_as<CollectedMessage>(lines[first]);
  EXPECT_TRUE(collected.collection.show_warnings);
  const std::size_t count = collected.collection.items.size();
  ASSERT_GT(count, 0u);
  EXPECT_EQ(collected.collection.hash.size(), 64u);
  std::optional<common::TestIndex> running;
  std::size_t finished = 0;
  bool bye = false;
  std::size_t warnings = 0;
  for (std::size_t i = first + 1; i < lines.size(); ++i) {
    auto decoded = decode_worker_message(lines[i]);
    ASSERT_TRUE(decoded.has_value());
    if (auto* start = std::get_if<StartMessage>(&*decoded)) {
      EXPECT_FALSE(running.has_value());
      EXPECT_LT(start->index, count);
      running = start->index;
    } else if (auto* report = std::get_if<ReportMessage>(&*decoded)) {
      EXPECT_EQ(running, report->index);
    } else if (auto* warned = std::get_if<WarningMessage>(&*decoded)) {
      EXPECT_TRUE(running.has_value());  // after collection, only tests record warnings
      EXPECT_EQ(warned->when, "runtest");
      ++warnings;
    } else if (auto* done = std::get_if<FinishedMessage>(&*decoded)) {
      EXPECT_EQ(running, done->index);
      running.reset();
      ++finished;
    } else if (std::holds_alternative<ByeMessage>(*decoded)) {
      bye = true;
    }
  }
  EXPECT_GT(finished, 0u);
  EXPECT_GT(warnings, 0u);
  EXPECT_TRUE(bye);
}

// Our encoder's lines mean what the golden agent commands mean (key order aside).
TEST(WorkerMessagesGolden, CommandsMatchGolden) {
  const auto lines = read_lines(k_golden / "agent_commands.jsonl");
  ASSERT_FALSE(lines.empty());
  for (const std::string& line : lines) {
    const auto golden = nlohmann::json::parse(line);
    std::string ours;
    if (golden["type"] == "run" || golden["type"] == "cancel") {
      const auto indices = golden["indices"].get<std::vector<common::TestIndex>>();
      ours = golden["type"] == "run" ? encode_run(indices) : encode_cancel(indices);
    } else if (golden["type"] == "stop") {
      ours = encode_stop();
    } else {
      ASSERT_EQ(golden["type"], "shutdown");
      ours = encode_shutdown();
    }
    ASSERT_EQ(ours.back(), '\n');
    EXPECT_EQ(nlohmann::json::parse(ours), golden) << ours;
  }
}

}  // namespace
}  // namespace drover::agent
