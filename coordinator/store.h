// The coordinator's durable state: runs, their final results, and the duration
// history runs are planned from. One SQLite file (DATA/drover.db, WAL mode), so
// a coordinator restart loses no finished run and no history.
//
// A run's submission and each result are stored as farm-protocol frames (the
// codec is the one serializer; its maps already tolerate added fields).
// Runs still "running" when the store is opened were cut off by a restart and
// are marked "failed" with reason "coordinator restarted", and each of their tests
// without a result gets the error result "not run: coordinator restarted".
// Failure: every call returns a Result with a one-line Error naming the
// database; nothing throws. Thread-safety: all methods may be called from any
// thread (one internal mutex), e.g. the ZeroMQ loop and HTTP handlers.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/durations.h"
#include "common/error.h"
#include "common/protocol.h"
#include "common/test_result.h"

struct sqlite3;

namespace drover::coordinator {

struct RunRecord {
  std::string id;
  std::string state = "running";  // "running" | "finished" | "cancelled" | "failed"
  std::string reason;
  double created = 0.0;   // unix seconds
  double finished = 0.0;  // unix seconds, 0 while running
  int tests = 0;          // tests the run was asked to run
  std::string collection_hash;
  std::string workspace;
  std::map<std::string, int> counts;  // pytest status word -> tests with a final result
  [[nodiscard]] int reported() const;  // sum of counts
};

class Store {
 public:
  // Opens (creating) `path`; ":memory:" for a private in-memory database.
  [[nodiscard]] static common::Result<std::unique_ptr<Store>> open(const std::filesystem::path& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  [[nodiscard]] common::Result<void> create_run(const RunRecord& run,
                                                const common::farm::RunSubmit& submit);
  // Idempotent per (run, index): a second result for a test is ignored.
  [[nodiscard]] common::Result<void> add_results(const std::string& run_id,
                                                 const std::vector<common::TestResult>& results);
  [[nodiscard]] common::Result<void> finish_run(const std::string& run_id, const std::string& state,
                                                const std::string& reason, double finished);

  // Newest first, at most `limit`.
  [[nodiscard]] common::Result<std::vector<RunRecord>> list_runs(int limit) const;
  [[nodiscard]] common::Result<std::optional<RunRecord>> run(const std::string& run_id) const;
  [[nodiscard]] common::Result<std::optional<common::farm::RunSubmit>> submission(
      const std::string& run_id) const;
  // In index order.
  [[nodiscard]] common::Result<std::vector<common::TestResult>> results(const std::string& run_id) const;

  [[nodiscard]] common::Result<common::Durations> durations() const;
  // Sets each node id's duration to the latest value (pytest-split keeps the latest too).
  [[nodiscard]] common::Result<void> record_durations(const common::Durations& durations);

 private:
  Store(sqlite3* db, std::string name);
  [[nodiscard]] common::Result<void> exec(const char* sql);
  // Runs left "running" by a dead coordinator: their tests without a result get
  // "not run: coordinator restarted" errors, and the runs become failed.
  [[nodiscard]] common::Result<void> close_cut_off_runs();
  [[nodiscard]] common::Error db_error(std::string_view what) const;

  mutable std::mutex m_mutex;
  sqlite3* m_db = nullptr;
  std::string m_name;
};

}  // namespace drover::coordinator
