#include "common/junit_merge.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <set>

#include "common/junit.h"
#include "common/junit_check.h"
#include "common/junit_text.h"

namespace drover::common {
namespace {

// Suite totals: as the file states them, else counted from its testcases.
struct Totals {
  int tests = 0, failures = 0, errors = 0, skipped = 0;
  double time = 0.0;
};

Totals suite_totals(const JunitSuite& suite) {
  Totals counted;
  for (const JunitCase& testcase : suite.cases) {
    if (!testcase.continuation) ++counted.tests;
    counted.failures += testcase.failures;
    counted.errors += testcase.errors;
    counted.skipped += testcase.skipped;
    counted.time += testcase.time;
  }
  Totals totals;
  totals.tests = suite.tests.value_or(counted.tests);
  totals.failures = suite.failures.value_or(counted.failures);
  totals.errors = suite.errors.value_or(counted.errors);
  totals.skipped = suite.skipped.value_or(counted.skipped);
  totals.time = suite.time.value_or(counted.time);
  return totals;
}

void count_case(const JunitCase& testcase, MergeCounts& counts) {
  if (testcase.continuation) {
    ++counts.errors;  // the test itself was counted with its failed call
    return;
  }
  switch (testcase.kind) {
    case CaseKind::passed: ++counts.passed; break;
    case CaseKind::failed: ++counts.failed; break;
    case CaseKind::error:
      ++counts.errors;
      // A teardown error alone: the call passed, and pytest counts both.
      if (testcase.message.starts_with("failed on teardown with ")) ++counts.passed;
      break;
    case CaseKind::skipped: ++counts.skipped; break;
    case CaseKind::xfailed: ++counts.xfailed; break;
  }
  // A teardown error after a skipped or xfailed call is a second element of the same
  // testcase: pytest counts the skip and the error.
  if (testcase.kind != CaseKind::error && testcase.kind != CaseKind::failed) counts.errors += testcase.errors;
}

// Node ids of a drover report's testcases, from its assigned list: each address
// takes the assigned node ids mangling to it, in order.
std::map<TestAddress, std::vector<std::string>> nodeids_by_address(const JunitFile& file) {
  std::map<TestAddress, std::vector<std::string>> out;
  for (const std::string& nodeid : file.drover.assigned) out[escaped_address(nodeid)].push_back(nodeid);
  return out;
}

// Shards in shard order, then the rest as given: the merged report does not depend
// on the order a shell glob listed the files in.
std::vector<const JunitFile*> merge_order(const std::vector<JunitFile>& files) {
  std::vector<const JunitFile*> order;
  for (const JunitFile& file : files) order.push_back(&file);
  std::stable_sort(order.begin(), order.end(), [](const JunitFile* a, const JunitFile* b) {
    const int ia = a->drover.shard_index.value_or(1 << 30);
    const int ib = b->drover.shard_index.value_or(1 << 30);
    return ia < ib;
  });
  return order;
}

void set_property(pugi::xml_node properties, std::string_view name, const std::string& value) {
  pugi::xml_node property = properties.append_child("property");
  property.append_attribute("name") = std::string(name).c_str();
  property.append_attribute("value") = value.c_str();
}

// A value all files agree on, else empty.
template <class Get>
std::string common_value(const std::vector<JunitFile>& files, Get get) {
  std::set<std::string> values;
  for (const JunitFile& file : files) {
    if (auto value = get(file)) values.insert(*value);
  }
  return values.size() == 1 ? *values.begin() : std::string();
}

}  // namespace

MergedReport merge_junit(const std::vector<JunitFile>& files, const std::string& drover_version) {
  MergedReport merged;
  merged.reports = static_cast<int>(files.size());
  merged.document = std::make_shared<pugi::xml_document>();
  pugi::xml_document& doc = *merged.document;
  pugi::xml_node suite = start_junit_document(doc);

  pugi::xml_node properties = suite.append_child("properties");
  if (!drover_version.empty()) set_property(properties, k_junit_prop_version, drover_version);
  const std::string hash = common_value(files, [](const JunitFile& f) { return f.drover.collection_hash; });
  if (!hash.empty()) set_property(properties, k_junit_prop_collection_hash, hash);
  set_property(properties, k_junit_prop_merged_reports, std::to_string(files.size()));

  std::set<std::string> suite_names, hostnames;
  std::set<std::pair<std::string, std::string>> seen_properties;
  std::set<std::tuple<std::string, std::string, std::string>> seen_collection_reports;
  std::string timestamp;
  for (const JunitFile* file : merge_order(files)) {
    auto nodeids = nodeids_by_address(*file);
    for (const JunitSuite& input : file->suites) {
      const Totals totals = suite_totals(input);
      merged.tests += totals.tests;
      merged.failures += totals.failures;
      merged.errors += totals.errors;
      merged.skipped += totals.skipped;
      merged.time += totals.time;
      if (!input.name.empty()) suite_names.insert(input.name);
      if (!input.hostname.empty()) hostnames.insert(input.hostname);
      if (!input.timestamp.empty() && (timestamp.empty() || input.timestamp < timestamp)) timestamp = input.timestamp;
      for (const auto& property : input.properties) {
        if (seen_properties.insert(property).second) set_property(properties, property.first, property.second);
      }
      for (const JunitCase& testcase : input.cases) {
        if (testcase.collection_report) {
          // Every shard collects, so every shard reports the same collection error.
          if (!seen_collection_reports.emplace(testcase.address.classname, testcase.address.name, testcase.message).second) {
            merged.tests -= 1;
            merged.errors -= testcase.errors;
            merged.skipped -= testcase.skipped;
            continue;
          }
        } else if (testcase.continuation && !merged.case_times.empty()) {
          merged.case_times.back().seconds += testcase.time;
        } else {
          CaseTime time{testcase.address, testcase.time, {}};
          auto found = nodeids.find(testcase.address);
          if (found != nodeids.end() && !found->second.empty()) {
            time.nodeid = found->second.front();
            found->second.erase(found->second.begin());
          }
          merged.case_times.push_back(std::move(time));
        }
        count_case(testcase, merged.counts);
        suite.append_copy(testcase.node);
      }
    }
  }
  if (properties.first_child() == pugi::xml_node()) suite.remove_child(properties);

  std::string hostname;
  for (const std::string& host : hostnames) hostname += (hostname.empty() ? "" : ",") + host;
  suite.attribute("name") = suite_names.size() == 1 ? suite_names.begin()->c_str() : "pytest";
  suite.attribute("errors") = merged.errors;
  suite.attribute("failures") = merged.failures;
  suite.attribute("skipped") = merged.skipped;
  suite.attribute("tests") = merged.tests;
  suite.attribute("time") = format_seconds(merged.time).c_str();
  suite.attribute("timestamp") = timestamp.c_str();
  suite.attribute("hostname") = hostname.c_str();
  merged.problems = check_completeness(files);
  return merged;
}

std::string summary_words(const MergeCounts& counts, double seconds) {
  std::string out;
  const auto add = [&](int n, const char* word) {
    if (n == 0) return;
    if (!out.empty()) out += ", ";
    out += std::to_string(n) + " " + word;
  };
  add(counts.failed, "failed");
  add(counts.passed, "passed");
  add(counts.skipped, "skipped");
  add(counts.xfailed, "xfailed");
  add(counts.errors, counts.errors == 1 ? "error" : "errors");
  if (out.empty()) out = "no tests ran";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, " in %.2fs", seconds);
  out += buffer;
  if (seconds >= 60) {
    // pytest adds a timedelta: "in 123.45s (0:02:03)".
    const long total = static_cast<long>(seconds);
    std::snprintf(buffer, sizeof buffer, " (%ld:%02ld:%02ld)", total / 3600, total / 60 % 60, total % 60);
    out += buffer;
  }
  return out;
}

KnownNodeids index_nodeids(const std::vector<std::string>& nodeids) {
  KnownNodeids out;
  for (const std::string& nodeid : nodeids) out.emplace(escaped_address(nodeid), nodeid);
  return out;
}

std::string guess_nodeid(const TestAddress& address, const KnownNodeids& known, const FileExists& file_exists) {
  if (address.classname.empty()) return {};
  if (auto found = known.find(address); found != known.end()) return found->second;
  std::vector<std::string> parts;
  for (std::size_t start = 0;;) {
    const std::size_t dot = address.classname.find('.', start);
    parts.push_back(address.classname.substr(start, dot == std::string::npos ? dot : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  const auto nodeid_for = [&](std::size_t module_parts) {
    std::string nodeid;
    for (std::size_t i = 0; i < module_parts; ++i) nodeid += (i ? "/" : "") + parts[i];
    nodeid += ".py";
    for (std::size_t i = module_parts; i < parts.size(); ++i) nodeid += "::" + parts[i];
    return nodeid + "::" + address.name;
  };
  for (std::size_t n = parts.size(); n >= 1; --n) {
    std::string file;
    for (std::size_t i = 0; i < n; ++i) file += (i ? "/" : "") + parts[i];
    if (file_exists(file + ".py")) return nodeid_for(n);
  }
  std::size_t module_parts = parts.size();
  while (module_parts > 1 && std::isupper(static_cast<unsigned char>(parts[module_parts - 1].front()))) --module_parts;
  return nodeid_for(module_parts);
}

int update_durations_from_merge(Durations& durations, const std::vector<CaseTime>& times,
                                const FileExists& file_exists) {
  std::vector<std::string> keys;
  for (const auto& entry : durations) keys.push_back(entry.first);
  const KnownNodeids known = index_nodeids(keys);
  std::map<std::string, double> longest;
  for (const CaseTime& time : times) {
    std::string nodeid = time.nodeid.empty() ? guess_nodeid(time.address, known, file_exists) : time.nodeid;
    if (nodeid.empty()) continue;
    double& seconds = longest[nodeid];
    seconds = std::max(seconds, time.seconds);
  }
  for (const auto& [nodeid, seconds] : longest) durations[nodeid] = seconds;
  return static_cast<int>(longest.size());
}

}  // namespace drover::common
