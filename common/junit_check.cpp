#include "common/junit_check.h"

#include <map>
#include <set>

#include "common/workspace.h"

namespace drover::common {
namespace {

constexpr std::size_t k_max_lines_per_kind = 20;

// Collects problem lines, cutting each kind of problem after a few lines so a
// crashed shard with 5,000 missing tests stays readable.
class Problems {
 public:
  void add(const std::string& kind, std::string line) {
    std::size_t& count = m_counts[kind];
    if (++count <= k_max_lines_per_kind) m_lines.push_back(std::move(line));
  }
  std::vector<std::string> finish() {
    for (const auto& [kind, count] : m_counts) {
      if (count > k_max_lines_per_kind) {
        m_lines.push_back(kind + ": ... and " + std::to_string(count - k_max_lines_per_kind) + " more");
      }
    }
    return std::move(m_lines);
  }

 private:
  std::vector<std::string> m_lines;
  std::map<std::string, std::size_t> m_counts;
};

std::string short_hash(const std::string& hash) { return hash.substr(0, 12); }

std::string times(std::size_t n) { return n == 1 ? "once" : std::to_string(n) + " times"; }

// Shard indices 0..N-1, each exactly once, all with the same N.
void check_shards(const std::vector<JunitFile>& files, Problems& problems) {
  const JunitFile* first = nullptr;
  for (const JunitFile& file : files) {
    if (file.drover.total_shards) {
      first = &file;
      break;
    }
  }
  if (first == nullptr) return;
  const int total = *first->drover.total_shards;
  std::map<int, std::vector<std::string>> by_index;
  for (const JunitFile& file : files) {
    const auto& drover = file.drover;
    if (drover.merged_reports) {
      problems.add("not a shard", file.path + ": already a merged report, not a shard (is the output among the inputs?)");
    } else if (!drover.total_shards || !drover.shard_index) {
      problems.add("not a shard", file.path + ": not a drover shard report (no drover.shard_index/drover.total_shards)");
    } else if (*drover.total_shards != total) {
      problems.add("shard count", file.path + ": drover.total_shards is " + std::to_string(*drover.total_shards) +
                                      ", " + first->path + " says " + std::to_string(total));
    } else if (*drover.shard_index >= total) {
      problems.add("shard index", file.path + ": shard index " + std::to_string(*drover.shard_index) +
                                      " out of range for " + std::to_string(total) + " shards");
    } else {
      by_index[*drover.shard_index].push_back(file.path);
    }
  }
  const std::string range = total == 1 ? "shard 0" : "shards 0-" + std::to_string(total - 1);
  for (int index = 0; index < total; ++index) {
    const auto found = by_index.find(index);
    if (found == by_index.end()) {
      problems.add("missing shard", "missing shard " + std::to_string(index) + " (" + range + ")");
    } else if (found->second.size() > 1) {
      std::string paths;
      for (const std::string& path : found->second) paths += (paths.empty() ? "" : ", ") + path;
      problems.add("duplicate shard", "shard " + std::to_string(index) + " reported " + times(found->second.size()) +
                                          ": " + paths);
    }
  }
}

void check_hashes(const std::vector<JunitFile>& files, Problems& problems) {
  const JunitFile* first = nullptr;
  for (const JunitFile& file : files) {
    if (!file.drover.collection_hash) continue;
    if (first == nullptr) {
      first = &file;
    } else if (*file.drover.collection_hash != *first->drover.collection_hash) {
      problems.add("hash", file.path + ": collection hash " + short_hash(*file.drover.collection_hash) +
                               " differs from " + short_hash(*first->drover.collection_hash) + " in " + first->path);
    }
  }
}

// Each report holds exactly the tests it was assigned, with multiplicity.
void check_assignment(const JunitFile& file, Problems& problems) {
  const DroverProperties& drover = file.drover;
  if (drover.assigned.size() != static_cast<std::size_t>(*drover.assigned_count)) {
    problems.add("assigned list", file.path + ": lists " + std::to_string(drover.assigned.size()) +
                                      " assigned tests, drover.assigned_count says " +
                                      std::to_string(*drover.assigned_count));
  }
  std::map<TestAddress, std::vector<std::string>> expected;
  for (const std::string& nodeid : drover.assigned) expected[escaped_address(nodeid)].push_back(nodeid);
  std::map<TestAddress, std::size_t> reported;
  for (const JunitSuite& suite : file.suites) {
    for (const JunitCase& testcase : suite.cases) {
      if (!testcase.collection_report && !testcase.continuation) ++reported[testcase.address];
    }
  }
  for (const auto& [address, nodeids] : expected) {
    const auto found = reported.find(address);
    const std::size_t count = found == reported.end() ? 0 : found->second;
    if (count == 0) {
      for (const std::string& nodeid : nodeids) problems.add("not reported", file.path + ": not reported: " + nodeid);
    } else if (count != nodeids.size()) {
      problems.add(count < nodeids.size() ? "not reported" : "reported twice",
                   file.path + ": reported " + times(count) + ", assigned " + times(nodeids.size()) + ": " +
                       nodeids.front());
    }
  }
  for (const auto& [address, count] : reported) {
    if (!expected.contains(address)) {
      const std::string name = address.classname.empty() ? address.name : address.classname + "::" + address.name;
      problems.add("not assigned", file.path + ": reported but not assigned to it: " + name);
    }
  }
}

// The assignments together cover the collection exactly once, and their node ids
// in collection order hash to the collection hash: nothing was planned away.
void check_coverage(const std::vector<JunitFile>& files, Problems& problems) {
  std::vector<const JunitFile*> drover_files;
  for (const JunitFile& file : files) {
    if (file.drover.has_assignment()) drover_files.push_back(&file);
  }
  if (drover_files.empty()) return;
  const JunitFile& first = *drover_files.front();
  if (!first.drover.collected_count) return;
  const int collected = *first.drover.collected_count;
  std::vector<std::vector<std::string>> owners(static_cast<std::size_t>(collected));
  for (const JunitFile* file : drover_files) {
    const DroverProperties& drover = file->drover;
    if (drover.collected_count != collected) {
      problems.add("collected count", file->path + ": drover.collected_count differs from " + first.path);
      return;
    }
    if (!drover.assigned_indices || drover.assigned_indices->size() != drover.assigned.size()) {
      problems.add("assigned list", file->path + ": drover.assigned_indices does not match its assigned tests");
      return;
    }
    for (std::size_t i = 0; i < drover.assigned.size(); ++i) {
      const int index = (*drover.assigned_indices)[i];
      if (index >= collected) {
        problems.add("assigned list", file->path + ": assigned index " + std::to_string(index) + " out of range");
        return;
      }
      auto& owner = owners[static_cast<std::size_t>(index)];
      if (!owner.empty() && owner.front() != drover.assigned[i]) {
        problems.add("assigned list", file->path + ": test " + std::to_string(index) + " is " + drover.assigned[i] +
                                          ", " + first.path + " says another node id");
        return;
      }
      owner.push_back(drover.assigned[i]);
    }
  }
  std::size_t unassigned = 0;
  std::string joined;
  for (std::size_t i = 0; i < owners.size(); ++i) {
    if (owners[i].empty()) {
      ++unassigned;
      continue;
    }
    if (owners[i].size() > 1) {
      problems.add("assigned twice", "assigned " + times(owners[i].size()) + " across reports: " + owners[i].front());
    }
    joined += (i ? "\n" : "") + owners[i].front();
  }
  if (unassigned > 0) {
    problems.add("unassigned", std::to_string(unassigned) + " of " + std::to_string(collected) +
                                   " collected tests are in no report's assignment");
  } else if (first.drover.collection_hash && sha256_hex(joined) != *first.drover.collection_hash) {
    problems.add("hash", "the assigned node ids do not hash to the collection hash " +
                             short_hash(*first.drover.collection_hash));
  }
}

}  // namespace

TestAddress escaped_address(std::string_view nodeid) {
  TestAddress address = mangle_test_address(nodeid);
  address.classname = bin_xml_escape(address.classname);
  address.name = bin_xml_escape(address.name);
  return address;
}

std::vector<std::string> check_completeness(const std::vector<JunitFile>& files) {
  Problems problems;
  check_shards(files, problems);
  check_hashes(files, problems);
  for (const JunitFile& file : files) {
    if (file.drover.has_assignment()) check_assignment(file, problems);
  }
  check_coverage(files, problems);
  return problems.finish();
}

}  // namespace drover::common
