#include "common/durations.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace drover::common {
namespace {

// prefix + n. (Not `"literal" + std::to_string(n)`: GCC 12 at -O3 reports a bogus
// -Wrestrict for it, PR105651, which -Werror turns into a build failure.)
std::string numbered(std::string_view prefix, long long n) {
  std::string out(prefix);
  out += std::to_string(n);
  return out;
}

namespace fs = std::filesystem;

class DurationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    m_dir = fs::temp_directory_path() /
            (numbered("drover_durations_test_", ::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(m_dir);
    fs::create_directories(m_dir);
  }
  void TearDown() override { fs::remove_all(m_dir); }

  fs::path write(const std::string& text) {
    const fs::path path = m_dir / ".test_durations";
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  static std::string read(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  fs::path m_dir;
};

TEST_F(DurationsTest, MissingFileIsEmpty) {
  auto loaded = load_durations(m_dir / "nope.json");
  ASSERT_TRUE(loaded.has_value());
  EXPECT_TRUE(loaded->empty());
}

TEST_F(DurationsTest, DirectoryIsIoError) {
  auto loaded = load_durations(m_dir);
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.error().code, ErrorCode::io);
  EXPECT_EQ(loaded.error().message, m_dir.string() + ": is a directory");
}

TEST_F(DurationsTest, LoadsObjectOfNumbers) {
  auto loaded = load_durations(write(R"({"a.py::t": 1.5, "b.py::u": 0, "c.py::v": 2})"));
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(loaded->size(), 3u);
  EXPECT_DOUBLE_EQ(loaded->at("a.py::t"), 1.5);
  EXPECT_DOUBLE_EQ(loaded->at("b.py::u"), 0.0);
  EXPECT_DOUBLE_EQ(loaded->at("c.py::v"), 2.0);
}

TEST_F(DurationsTest, MalformedJsonIsParseErrorNamingFile) {
  const fs::path path = write("{\"a\": 1,");
  auto loaded = load_durations(path);
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.error().code, ErrorCode::parse);
  EXPECT_EQ(loaded.error().message, path.string() + ": invalid JSON");
}

TEST_F(DurationsTest, WrongShapesAreParseErrors) {
  for (const char* text : {R"([["a", 1]])", R"("x")", R"({"a": "1"})", R"({"a": null})",
                           R"({"a": [1]})", R"({"a": true})"}) {
    const fs::path path = write(text);
    auto loaded = load_durations(path);
    ASSERT_FALSE(loaded.has_value()) << text;
    EXPECT_EQ(loaded.error().code, ErrorCode::parse);
    EXPECT_EQ(loaded.error().message, path.string() + ": not a JSON object of node id -> seconds")
        << text;
  }
}

TEST_F(DurationsTest, NegativeDurationIsParseError) {
  auto loaded = load_durations(write(R"({"a.py::t": -0.5})"));
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.error().code, ErrorCode::parse);
  EXPECT_NE(loaded.error().message.find("a.py::t"), std::string::npos);
  EXPECT_EQ(loaded.error().message.find('\n'), std::string::npos);
}

TEST(ParseDurations, TextInMemoryGetsTheSameChecksNamingTheSource) {
  auto parsed = parse_durations(R"({"a.py::t": 1.25, "b.py::u": 3})", "request body");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_DOUBLE_EQ(parsed->at("a.py::t"), 1.25);
  EXPECT_DOUBLE_EQ(parsed->at("b.py::u"), 3.0);
  EXPECT_EQ(parse_durations("{", "request body").error().message, "request body: invalid JSON");
  EXPECT_EQ(parse_durations("[]", "request body").error().message,
            "request body: not a JSON object of node id -> seconds");
  EXPECT_EQ(parse_durations(R"({"x": -1})", "request body").error().message,
            "request body: negative duration for 'x'");
  EXPECT_EQ(parse_durations(R"({"": 1})", "request body").error().message, "request body: empty node id");
}

TEST_F(DurationsTest, SaveMatchesPytestSplitLayout) {
  // What json.dump(d, f, sort_keys=True, indent=4) writes for the same map.
  const fs::path path = m_dir / ".test_durations";
  Durations durations{{"tests/test_b.py::test_x", 0.25}, {"tests/test_a.py::test_y[1]", 1.0},
                      {"tests/test_a.py::test_\xc3\xa9", 1e-05}};
  ASSERT_TRUE(save_durations(path, durations).has_value());
  EXPECT_EQ(read(path),
            "{\n"
            "    \"tests/test_a.py::test_y[1]\": 1.0,\n"
            "    \"tests/test_a.py::test_\\u00e9\": 1e-05,\n"
            "    \"tests/test_b.py::test_x\": 0.25\n"
            "}");
}

TEST_F(DurationsTest, SaveEmptyMap) {
  const fs::path path = m_dir / ".test_durations";
  ASSERT_TRUE(save_durations(path, {}).has_value());
  EXPECT_EQ(read(path), "{}");
}

TEST_F(DurationsTest, RoundTrip) {
  const fs::path path = m_dir / ".test_durations";
  Durations durations{{"a.py::t", 0.1}, {"a.py::u", 123.456789}, {"b.py::v[x-y]", 0.0}};
  ASSERT_TRUE(save_durations(path, durations).has_value());
  auto loaded = load_durations(path);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(*loaded, durations);
}

TEST_F(DurationsTest, SaveReplacesAtomicallyAndLeavesNoTemporary) {
  const fs::path path = write("old content that is not JSON");
  ASSERT_TRUE(save_durations(path, {{"a.py::t", 2.0}}).has_value());
  auto loaded = load_durations(path);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->size(), 1u);
  size_t files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(m_dir)) ++files;
  EXPECT_EQ(files, 1u);
}

TEST_F(DurationsTest, SaveIntoMissingDirectoryFailsAndKeepsNothing) {
  auto saved = save_durations(m_dir / "missing" / ".test_durations", {{"a", 1.0}});
  ASSERT_FALSE(saved.has_value());
  EXPECT_EQ(saved.error().code, ErrorCode::io);
  EXPECT_FALSE(fs::exists(m_dir / "missing"));
}

TEST_F(DurationsTest, OnlyRegularFilesOfADurationsFileSizeAreRead) {
  // A FIFO would block the run and /dev/zero never end: one-line errors instead.
  const fs::path fifo = m_dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto from_fifo = load_durations(fifo);
  ASSERT_FALSE(from_fifo.has_value());
  EXPECT_EQ(from_fifo.error().message, fifo.string() + ": not a regular file");
  const fs::path zero = m_dir / "zero";
  fs::create_symlink("/dev/zero", zero);
  EXPECT_FALSE(load_durations(zero).has_value());
  const fs::path huge = m_dir / "huge";
  std::ofstream(huge, std::ios::binary).close();
  fs::resize_file(huge, std::uintmax_t{600} << 20);  // sparse
  auto from_huge = load_durations(huge);
  ASSERT_FALSE(from_huge.has_value());
  EXPECT_NE(from_huge.error().message.find("too large for a durations file (600 MiB"), std::string::npos)
      << from_huge.error().message;
}

TEST_F(DurationsTest, SaveThroughASymlinkUpdatesItsTarget) {
  const fs::path shared = m_dir / "shared.json";
  std::ofstream(shared) << "{}";
  const fs::path link = m_dir / ".test_durations";
  fs::create_symlink(shared, link);
  ASSERT_TRUE(save_durations(link, {{"a", 1.5}}).has_value());
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(load_durations(shared).value(), (Durations{{"a", 1.5}}));
  // A relative link to a file that does not exist yet: the file is created there.
  const fs::path dangling = m_dir / "dangling";
  fs::create_symlink("cache/new.json", dangling);
  fs::create_directories(m_dir / "cache");
  ASSERT_TRUE(save_durations(dangling, {{"b", 2.0}}).has_value());
  EXPECT_TRUE(fs::is_symlink(dangling));
  EXPECT_EQ(load_durations(m_dir / "cache" / "new.json").value(), (Durations{{"b", 2.0}}));
}

TEST_F(DurationsTest, SaveOverDirectoryFailsAndRemovesTemporary) {
  const fs::path target = m_dir / "dir";
  fs::create_directories(target / "inside");
  auto saved = save_durations(target, {{"a", 1.0}});
  ASSERT_FALSE(saved.has_value());
  EXPECT_EQ(saved.error().code, ErrorCode::io);
  size_t files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(m_dir)) ++files;
  EXPECT_EQ(files, 1u);  // only "dir": the temporary was cleaned up
}

Collection collection_of(std::initializer_list<const char*> nodeids) {
  Collection collection;
  for (const char* nodeid : nodeids) {
    TestItem item;
    item.nodeid = nodeid;
    item.file = std::string(nodeid).substr(0, std::string(nodeid).find("::"));
    collection.items.push_back(item);
  }
  return collection;
}

TestResult timed(TestIndex index, double setup, double call, double teardown) {
  TestResult result;
  result.index = index;
  for (auto [phase, seconds] : {std::pair{Phase::setup, setup}, std::pair{Phase::call, call},
                                std::pair{Phase::teardown, teardown}}) {
    PhaseReport report;
    report.when = phase;
    report.duration = seconds;
    result.phases.push_back(report);
  }
  return result;
}

TEST(UpdateDurations, SumsPhasesAndKeepsOtherEntries) {
  const Collection collection = collection_of({"a.py::t", "a.py::u"});
  Durations durations{{"old.py::gone", 3.0}, {"a.py::t", 9.0}};
  update_durations(durations, collection, {timed(0, 0.5, 1.0, 0.25), timed(1, 0.0, 2.0, 0.0)});
  EXPECT_DOUBLE_EQ(durations.at("a.py::t"), 1.75);
  EXPECT_DOUBLE_EQ(durations.at("a.py::u"), 2.0);
  EXPECT_DOUBLE_EQ(durations.at("old.py::gone"), 3.0);
}

TEST(UpdateDurations, DuplicateNodeIdsKeepTheSlowestWhateverTheOrder) {
  const Collection collection = collection_of({"a.py::t[x]", "a.py::t[x]"});
  Durations forward;
  update_durations(forward, collection, {timed(0, 0, 1.0, 0), timed(1, 0, 3.0, 0)});
  Durations backward;
  update_durations(backward, collection, {timed(1, 0, 3.0, 0), timed(0, 0, 1.0, 0)});
  EXPECT_DOUBLE_EQ(forward.at("a.py::t[x]"), 3.0);
  EXPECT_EQ(forward, backward);
}

TEST(UpdateDurations, SyntheticResultsAreRecordedAndNegativePhasesIgnored) {
  const Collection collection = collection_of({"a.py::t", "a.py::u", "a.py::v"});
  Durations durations;
  TestResult crashed = synthetic_result(0, Status::failed, "worker crashed", "");
  crashed.phases[0].duration = 30.0;
  update_durations(durations, collection,
                   {crashed, timed(1, -5.0, 1.0, 0.0), timed(7, 0, 1.0, 0)});  // 7: unknown index
  EXPECT_DOUBLE_EQ(durations.at("a.py::t"), 30.0);
  EXPECT_DOUBLE_EQ(durations.at("a.py::u"), 1.0);
  EXPECT_EQ(durations.size(), 2u);
}

}  // namespace
}  // namespace drover::common
