// pytest's "warnings summary" section, built from the warnings of a run.
//
// pytest groups the warnings by message text, in the order it recorded them, and
// under each text lists where they were recorded (a test's node id, or file:line
// outside tests); from 10 places on it counts them per file instead. drover
// receives warnings in completion order from several workers; each is added with
// a rank (0 for warnings outside tests, a test's collection index + 1 for the
// test's), so the section reads in pytest's recording order however tests were
// scheduled.
//
// Memory is bounded whatever the suite does: at most k_max_messages different
// texts are kept (warnings with other texts are counted and named in one line),
// and per text at most 9 places plus per-file counts for at most k_max_files
// files. Thread-safety: one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/test_result.h"

namespace drover::cli {

class WarningsSummary {
 public:
  static constexpr std::size_t k_max_messages = 1000;
  static constexpr std::size_t k_max_files = 1000;

  // Warnings recorded outside any test (Pool::session_warnings()).
  void add_session(const std::vector<common::Warning>& warnings);
  // Moves the test's warnings out of `result` (the stored result need not hold them).
  void take(common::TestResult& result);
  void add(std::size_t rank, const common::Warning& warning);

  // Every warning added, kept or not: the closing line's "N warnings".
  [[nodiscard]] std::int64_t total() const { return m_total; }
  // The section's lines after its "warnings summary" rule, the Docs line last; none
  // when no warning was added.
  [[nodiscard]] std::vector<std::string> lines() const;

 private:
  struct Key {  // recording order: rank, then arrival
    std::size_t rank = 0;
    std::uint64_t seq = 0;
    [[nodiscard]] bool operator<(const Key& other) const {
      return rank != other.rank ? rank < other.rank : seq < other.seq;
    }
  };
  struct Place {
    Key key;
    std::string location;
  };
  struct FileCount {
    std::string file;
    Key first;
    std::int64_t count = 0;
  };
  struct Group {
    std::string message;
    Key first;
    std::int64_t located = 0;         // warnings with a location
    std::vector<Place> places;        // all of them while fewer than 10
    std::vector<FileCount> files;     // per file, for 10 and more
    std::unordered_map<std::string, std::size_t> file_index;
    std::int64_t unlisted = 0;        // in files past k_max_files
    std::int64_t unlocated = 0;       // recorded without any location
  };

  std::vector<Group> m_groups;
  std::unordered_map<std::string, std::size_t> m_group_index;
  std::int64_t m_total = 0;
  std::int64_t m_dropped = 0;  // warnings whose text was past k_max_messages
  std::uint64_t m_seq = 0;
};

}  // namespace drover::cli
