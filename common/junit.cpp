// The JUnit writer: replays each test's phase reports through the same rules as
// pytest's LogXML.pytest_runtest_logreport, so the XML (and its quirky totals,
// e.g. a passed test with a teardown error counts twice in `tests`) is pytest's.
#include "common/junit.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <pugixml.hpp>
#include <system_error>

#include "common/junit_read.h"
#include "common/junit_text.h"

namespace drover::common {
namespace {

struct Stats {
  int passed = 0;
  int failure = 0;
  int skipped = 0;
  int error = 0;
  int double_fail = 0;  // call failed and teardown errored: two testcases, one test
};

std::string strip_prefix(std::string_view text, std::string_view prefix) {
  if (text.starts_with(prefix)) text.remove_prefix(prefix.size());
  return std::string(text);
}

// Sections of all phases up to and including `upto`, each title once: a worker
// may send pytest's cumulative report.sections or only the phase's own.
std::vector<std::pair<std::string, std::string>> sections_upto(const TestResult& result, std::size_t upto) {
  std::vector<std::pair<std::string, std::string>> out;
  for (std::size_t i = 0; i <= upto && i < result.phases.size(); ++i) {
    for (const auto& section : result.phases[i].sections) {
      bool seen = false;
      for (const auto& kept : out) seen = seen || kept.first == section.first;
      if (!seen) out.push_back(section);
    }
  }
  return out;
}

// pytest's report.capstdout / capstderr / caplog.
std::string captured(const std::vector<std::pair<std::string, std::string>>& sections, std::string_view prefix) {
  std::string out;
  for (const auto& [title, text] : sections) {
    if (title.starts_with(prefix)) out += text;
  }
  return out;
}

// pytest's junitxml writes str(report.longrepr): the terminal rendering the
// worker sends, stripped at both ends.
std::string pytest_str(const std::string& longrepr) {
  const auto first = longrepr.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = longrepr.find_last_not_of(" \t\r\n");
  return longrepr.substr(first, last - first + 1);
}

// pytest's message source: reprcrash.message (the worker's `crash`), or
// str(longrepr) when the report has no crash location (fixture lookup errors,
// strict xpass, plugins' text). Without `crash` (an older worker, drover's own
// results) `message` is one line; when that line is just the start of the
// longrepr, the longrepr is what pytest used.
std::string pytest_reason(const PhaseReport& phase) {
  if (!phase.crash.empty()) return phase.crash;
  const std::string longrepr = pytest_str(phase.longrepr);
  if (phase.message.empty()) return longrepr;
  if (longrepr.size() > phase.message.size() && longrepr.starts_with(phase.message) &&
      longrepr[phase.message.size()] == '\n') {
    return longrepr;
  }
  return phase.message;
}

std::string prepare_content(const std::string& content, std::string_view header) {
  return python_center(header, 80, '-') + "\n" + content + "\n";
}

void add_property(pugi::xml_node properties, std::string_view name, const std::string& value, bool escape = true) {
  pugi::xml_node property = properties.append_child("property");
  property.append_attribute("name") = std::string(name).c_str();
  property.append_attribute("value") = (escape ? bin_xml_escape(value) : value).c_str();
}

// Builds one test's <testcase> element(s), as pytest's _NodeReporter does.
class CaseWriter {
 public:
  CaseWriter(pugi::xml_node suite, const JunitReport& report, JunitFamily family, Stats& stats)
      : m_suite(suite),
        m_report(report),
        m_ini(report.collection->junit),
        m_family(family),
        m_logging(parse_junit_logging(m_ini.logging)),
        m_stats(stats) {}

  void write(const TestItem& item, const TestResult& result) {
    m_item = &item;
    bool call_failed = false;
    for (std::size_t i = 0; i < result.phases.size(); ++i) {
      const PhaseReport& phase = result.phases[i];
      if (phase.outcome == "passed") {
        if (phase.when == Phase::call) {
          open();
          ++m_stats.passed;
        }
      } else if (phase.outcome == "failed") {
        if (phase.when == Phase::teardown && call_failed) {
          close();  // JUnit allows one result per testcase: pytest opens a second one
          ++m_stats.double_fail;
        }
        open();
        if (phase.when == Phase::call && phase.status != Status::error) {
          add_simple("failure", pytest_reason(phase), pytest_str(phase.longrepr));
          ++m_stats.failure;
          call_failed = true;
          if (!m_ini.log_passing_tests) write_captured_output(result, i);
        } else {
          append_error(phase);
        }
      } else if (phase.outcome == "skipped") {
        open();
        append_skipped(result, i);
      }
      open();
      if (m_ini.duration_report == "total" || m_ini.duration_report == to_string(phase.when)) {
        m_duration += phase.duration;
      }
      if (phase.when == Phase::teardown) {
        write_captured_output(result, i);
        write_user_properties(phase);
        close();
      }
    }
    close();
  }

 private:
  void open() {
    if (m_case) return;
    m_case = m_suite.append_child("testcase");
    const TestAddress address = mangle_test_address(m_item->nodeid);
    m_case.append_attribute("classname") = xml_safe(address.classname).c_str();  // pytest: unescaped
    m_case.append_attribute("name") = bin_xml_escape(address.name).c_str();
    if (m_family == JunitFamily::xunit1) {
      m_case.append_attribute("file") = m_item->file.c_str();
      if (m_item->line > 0) m_case.append_attribute("line") = m_item->line - 1;  // pytest's 0-based lineno
    }
    m_case.append_attribute("time") = "";
    m_duration = 0.0;
  }

  void close() {
    if (!m_case) return;
    m_case.attribute("time") = format_seconds(m_duration).c_str();
    m_case = pugi::xml_node();
  }

  void add_simple(const char* tag, const std::string& message, const std::string& text) {
    pugi::xml_node node = m_case.append_child(tag);
    node.append_attribute("message") = bin_xml_escape(message).c_str();
    node.text() = bin_xml_escape(text).c_str();
  }

  void append_error(const PhaseReport& phase) {
    const std::string reason = pytest_reason(phase);
    std::string message;
    if (phase.when == Phase::teardown) {
      message = "failed on teardown with \"" + reason + "\"";
    } else if (phase.when == Phase::setup) {
      message = "failed on setup with \"" + reason + "\"";
    } else {
      message = reason;  // drover's synthetic error in call: a worker crash
    }
    add_simple("error", message, pytest_str(phase.longrepr));
    ++m_stats.error;
  }

  void append_skipped(const TestResult& result, std::size_t index) {
    const PhaseReport& phase = result.phases[index];
    ++m_stats.skipped;
    pugi::xml_node node = m_case.append_child("skipped");
    if (phase.status == Status::xfailed || phase.status == Status::xpassed) {
      node.append_attribute("type") = "pytest.xfail";
      node.append_attribute("message") = bin_xml_escape(strip_prefix(phase.message, "reason: ")).c_str();
      return;  // pytest writes no captured output for an xfail
    }
    const std::string reason = strip_prefix(phase.message, "Skipped: ");
    // pytest's text is "path:line: reason" without the "Skipped: " pytest.skip() adds.
    std::string details = phase.longrepr.empty() ? reason : phase.longrepr;
    if (const std::size_t at = details.find(": Skipped: "); at != std::string::npos) {
      details.erase(at + 2, 9);
    }
    // The worker sends the path relative to the rootdir; pytest writes it absolute.
    const std::string& rootdir = m_report.collection->rootdir;
    if (!phase.longrepr.empty() && !details.starts_with('/') && !rootdir.empty()) details = rootdir + "/" + details;
    node.append_attribute("type") = "pytest.skip";
    node.append_attribute("message") = xml_safe(reason).c_str();  // pytest: unescaped
    node.text() = bin_xml_escape(details).c_str();
    write_captured_output(result, index);
  }

  // pytest's record_property(): the teardown report's user_properties, first in the testcase.
  void write_user_properties(const PhaseReport& teardown) {
    if (teardown.properties.empty()) return;
    pugi::xml_node properties = m_case.prepend_child("properties");
    for (const auto& [name, value] : teardown.properties) add_property(properties, name, value);
  }

  void write_captured_output(const TestResult& result, std::size_t index) {
    const JunitLogging logging = m_logging;
    if (!m_ini.log_passing_tests && result.phases[index].outcome == "passed") return;
    if (logging == JunitLogging::no) return;
    const auto sections = sections_upto(result, index);
    std::string content;
    if (logging == JunitLogging::log || logging == JunitLogging::all) {
      content = prepare_content(captured(sections, "Captured log"), " Captured Log ");
    }
    if (logging == JunitLogging::system_out || logging == JunitLogging::out_err || logging == JunitLogging::all) {
      content += prepare_content(captured(sections, "Captured stdout"), " Captured Out ");
      write_content("system-out", content);
      content.clear();
    }
    if (logging == JunitLogging::system_err || logging == JunitLogging::out_err || logging == JunitLogging::all) {
      content += prepare_content(captured(sections, "Captured stderr"), " Captured Err ");
      write_content("system-err", content);
      content.clear();
    }
    if (!content.empty()) write_content("system-out", content);
  }

  void write_content(const char* tag, const std::string& content) {
    m_case.append_child(tag).text() = bin_xml_escape(content).c_str();
  }

  pugi::xml_node m_suite;
  const JunitReport& m_report;
  const JunitIni& m_ini;
  JunitFamily m_family;
  JunitLogging m_logging;
  Stats& m_stats;
  const TestItem* m_item = nullptr;
  pugi::xml_node m_case;
  double m_duration = 0.0;
};

void write_properties(pugi::xml_node suite, const JunitReport& report) {
  const Collection& collection = *report.collection;
  pugi::xml_node properties = suite.append_child("properties");
  if (!report.drover_version.empty()) add_property(properties, k_junit_prop_version, report.drover_version);
  add_property(properties, k_junit_prop_collection_hash, collection.hash);
  if (report.shard_index) add_property(properties, k_junit_prop_shard_index, std::to_string(*report.shard_index));
  if (report.total_shards) add_property(properties, k_junit_prop_total_shards, std::to_string(*report.total_shards));
  for (const auto& [name, value] : report.extra_properties) add_property(properties, name, value);
  const bool all = !report.assigned_set && report.assigned.empty();
  const std::size_t count = all ? collection.items.size() : report.assigned.size();
  std::vector<int> indices;
  for (std::size_t i = 0; i < count; ++i) {
    const TestIndex index = all ? static_cast<TestIndex>(i) : report.assigned[i];
    if (index < collection.items.size()) indices.push_back(static_cast<int>(index));
  }
  add_property(properties, k_junit_prop_collected_count, std::to_string(collection.items.size()));
  add_property(properties, k_junit_prop_assigned_count, std::to_string(indices.size()));
  add_property(properties, k_junit_prop_assigned_indices, format_index_ranges(indices));
  for (const int index : indices) {
    // Unescaped (pugixml writes character references): the merge hashes these node ids.
    add_property(properties, k_junit_prop_assigned, collection.items[index].nodeid, false);
  }
}

// pytest writes datetime.fromtimestamp(start).isoformat(): local time, microseconds.
std::string start_timestamp(double elapsed) {
  using namespace std::chrono;
  const auto start = system_clock::now() - duration_cast<microseconds>(duration<double>(elapsed));
  const auto micros = duration_cast<microseconds>(start.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(micros / 1'000'000);
  std::tm local{};
  localtime_r(&seconds, &local);
  char buffer[64];
  const std::size_t len = std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &local);
  std::snprintf(buffer + len, sizeof buffer - len, ".%06lld", static_cast<long long>(micros % 1'000'000));
  return buffer;
}

std::string this_hostname() {
  char buffer[256] = {};
  if (gethostname(buffer, sizeof buffer - 1) != 0) return "";
  return buffer;
}

void write_collect_reports(pugi::xml_node suite, const Collection& collection, JunitFamily family, Stats& stats) {
  const auto open = [&](const std::string& nodeid) {
    pugi::xml_node testcase = suite.append_child("testcase");
    const TestAddress address = mangle_test_address(nodeid);
    testcase.append_attribute("classname") = xml_safe(address.classname).c_str();
    testcase.append_attribute("name") = bin_xml_escape(address.name).c_str();
    // A collector's location is its path, without a line.
    if (family == JunitFamily::xunit1) testcase.append_attribute("file") = nodeid.substr(0, nodeid.find("::")).c_str();
    testcase.append_attribute("time") = "0.000";
    return testcase;
  };
  for (const CollectError& error : collection.errors) {
    pugi::xml_node node = open(error.nodeid).append_child("error");
    node.append_attribute("message") = "collection failure";
    node.text() = bin_xml_escape(error.longrepr).c_str();
    ++stats.error;
  }
  for (const CollectSkip& skip : collection.skips) {
    // pytest writes str() of the (path, lineno, reason) longrepr tuple.
    std::filesystem::path file = skip.file;
    if (file.is_relative() && !collection.rootdir.empty()) file = std::filesystem::path(collection.rootdir) / file;
    // Appended piecewise: g++ 12 warns falsely (-Wrestrict) on a chain of operator+.
    std::string text = "(";
    text += python_repr(file.string());
    text += ", ";
    text += std::to_string(skip.line);
    text += ", ";
    text += python_repr(skip.reason);
    text += ")";
    pugi::xml_node node = open(skip.nodeid).append_child("skipped");
    node.append_attribute("message") = "collection skipped";
    node.text() = bin_xml_escape(text).c_str();
    ++stats.skipped;
  }
}

}  // namespace

Result<JunitFamily> parse_junit_family(std::string_view word) {
  if (word == "xunit2") return JunitFamily::xunit2;
  if (word == "xunit1" || word == "legacy") return JunitFamily::xunit1;
  // pytest: an INTERNALERROR, KeyError from its table of families.
  return fail(ErrorCode::usage, "junit_family: KeyError: '" + std::string(word) + "' (expected legacy, xunit1 or xunit2)");
}

JunitLogging parse_junit_logging(std::string_view word) {
  static constexpr std::pair<std::string_view, JunitLogging> k_words[] = {
      {"no", JunitLogging::no},         {"log", JunitLogging::log},
      {"system-out", JunitLogging::system_out}, {"system-err", JunitLogging::system_err},
      {"out-err", JunitLogging::out_err}, {"all", JunitLogging::all}};
  for (const auto& [name, value] : k_words) {
    if (name == word) return value;
  }
  return JunitLogging::no;  // pytest matches none of its cases and writes nothing
}

Result<void> check_junit_ini(const JunitIni& ini) {
  if (!ini.error.empty()) return fail(ErrorCode::internal, ini.error);
  if (auto family = parse_junit_family(ini.family); !family) return fail(ErrorCode::internal, family.error().message);
  return {};
}

Result<void> write_junit(const std::filesystem::path& path, const JunitReport& report) {
  if (report.collection == nullptr) return fail(ErrorCode::internal, path.string() + ": no collection to report");
  const Collection& collection = *report.collection;
  if (auto usable = check_junit_ini(collection.junit); !usable) {
    return fail(ErrorCode::internal, path.string() + ": " + usable.error().message);
  }
  const JunitFamily family = *parse_junit_family(collection.junit.family);

  pugi::xml_document doc;
  pugi::xml_node suite = start_junit_document(doc);
  write_properties(suite, report);

  Stats stats;
  write_collect_reports(suite, collection, family, stats);
  std::vector<const TestResult*> ordered;
  for (const TestResult& result : report.results) {
    if (result.index >= collection.items.size()) {
      return fail(ErrorCode::internal, path.string() + ": result for unknown test index " + std::to_string(result.index));
    }
    ordered.push_back(&result);
  }
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const TestResult* a, const TestResult* b) { return a->index < b->index; });
  CaseWriter writer(suite, report, family, stats);
  for (const TestResult* result : ordered) writer.write(collection.items[result->index], *result);

  const int tests = stats.passed + stats.failure + stats.skipped + stats.error - stats.double_fail;
  suite.attribute("name") = collection.junit.suite_name.c_str();
  suite.attribute("errors") = stats.error;
  suite.attribute("failures") = stats.failure;
  suite.attribute("skipped") = stats.skipped;
  suite.attribute("tests") = tests;
  suite.attribute("time") = format_seconds(report.elapsed).c_str();
  suite.attribute("timestamp") = (report.timestamp.empty() ? start_timestamp(report.elapsed) : report.timestamp).c_str();
  suite.attribute("hostname") = bin_xml_escape(report.hostname.empty() ? this_hostname() : report.hostname).c_str();
  return save_xml_atomically(path, doc);
}

}  // namespace drover::common
