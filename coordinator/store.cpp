#include "coordinator/store.h"

#include <sqlite3.h>

#include <set>

#include <fmt/format.h>

namespace drover::coordinator {
namespace {

using common::ErrorCode;
using common::Result;
namespace farm = common::farm;

constexpr const char* k_schema = R"sql(
CREATE TABLE IF NOT EXISTS runs(
  id TEXT PRIMARY KEY, state TEXT NOT NULL, reason TEXT NOT NULL, created REAL NOT NULL,
  finished REAL NOT NULL, tests INTEGER NOT NULL, collection_hash TEXT NOT NULL,
  workspace TEXT NOT NULL, submit BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS results(
  run_id TEXT NOT NULL, idx INTEGER NOT NULL, status TEXT NOT NULL, duration REAL NOT NULL,
  frame BLOB NOT NULL, PRIMARY KEY(run_id, idx));
CREATE TABLE IF NOT EXISTS durations(nodeid TEXT PRIMARY KEY, seconds REAL NOT NULL);
)sql";

// One prepared statement; finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { m_rc = sqlite3_prepare_v2(db, sql, -1, &m_stmt, nullptr); }
  ~Statement() { sqlite3_finalize(m_stmt); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  [[nodiscard]] bool ok() const { return m_rc == SQLITE_OK; }
  void bind(int i, std::string_view text) {
    sqlite3_bind_text(m_stmt, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  void bind_blob(int i, std::string_view bytes) {
    sqlite3_bind_blob(m_stmt, i, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
  }
  void bind(int i, double value) { sqlite3_bind_double(m_stmt, i, value); }
  void bind(int i, int value) { sqlite3_bind_int(m_stmt, i, value); }
  void bind(int i, std::int64_t value) { sqlite3_bind_int64(m_stmt, i, value); }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(m_stmt); }
  void reset() {
    sqlite3_reset(m_stmt);
    sqlite3_clear_bindings(m_stmt);
  }
  [[nodiscard]] std::string text(int column) const {
    const auto* data = sqlite3_column_blob(m_stmt, column);
    const int size = sqlite3_column_bytes(m_stmt, column);
    return data == nullptr ? std::string() : std::string(static_cast<const char*>(data), size);
  }
  [[nodiscard]] double real(int column) const { return sqlite3_column_double(m_stmt, column); }
  [[nodiscard]] int integer(int column) const { return sqlite3_column_int(m_stmt, column); }

 private:
  sqlite3_stmt* m_stmt = nullptr;
  int m_rc = SQLITE_ERROR;
};

RunRecord read_run(const Statement& row) {
  RunRecord run;
  run.id = row.text(0);
  run.state = row.text(1);
  run.reason = row.text(2);
  run.created = row.real(3);
  run.finished = row.real(4);
  run.tests = row.integer(5);
  run.collection_hash = row.text(6);
  run.workspace = row.text(7);
  return run;
}

constexpr const char* k_run_columns =
    "id, state, reason, created, finished, tests, collection_hash, workspace";

}  // namespace

int RunRecord::reported() const {
  int total = 0;
  for (const auto& [status, count] : counts) total += count;
  return total;
}

Store::Store(sqlite3* db, std::string name) : m_db(db), m_name(std::move(name)) {}
Store::~Store() { sqlite3_close(m_db); }

common::Error Store::db_error(std::string_view what) const {
  return common::Error{ErrorCode::io, fmt::format("{}: {}: {}", m_name, what, sqlite3_errmsg(m_db))};
}

Result<void> Store::exec(const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(m_db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message != nullptr ? message : "unknown error";
    sqlite3_free(message);
    return common::fail(ErrorCode::io, fmt::format("{}: {}", m_name, text));
  }
  return {};
}

Result<std::unique_ptr<Store>> Store::open(const std::filesystem::path& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                                        SQLITE_OPEN_FULLMUTEX, nullptr);
  std::unique_ptr<Store> store(new Store(db, path.string()));
  if (rc != SQLITE_OK) return std::unexpected(store->db_error("cannot open database"));
  sqlite3_busy_timeout(db, 5000);
  // WAL: HTTP readers never block the loop's writes; NORMAL sync is durable
  // across a process crash, which is what a coordinator restart needs.
  if (auto ok = store->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"); !ok) {
    return std::unexpected(ok.error());
  }
  if (auto ok = store->exec(k_schema); !ok) return std::unexpected(ok.error());
  if (auto ok = store->close_cut_off_runs(); !ok) return std::unexpected(ok.error());
  return store;
}

// A run still "running" lost its coordinator: nothing will ever report its other
// tests, so each gets the error "not run: coordinator restarted" and the merged
// report still holds every test of the run once.
Result<void> Store::close_cut_off_runs() {
  std::vector<std::string> cut;
  {
    Statement select(m_db, "SELECT id FROM runs WHERE state='running'");
    if (!select.ok()) return std::unexpected(db_error("prepare"));
    while (select.step() == SQLITE_ROW) cut.push_back(select.text(0));
  }
  const std::string message = "not run: coordinator restarted";
  for (const std::string& id : cut) {
    auto submit = submission(id);
    auto results = this->results(id);
    if (!submit) return std::unexpected(submit.error());
    if (!results) return std::unexpected(results.error());
    if (!submit->has_value()) continue;
    std::vector<common::TestIndex> selection = (*submit)->selection;
    if (selection.empty()) {
      selection.resize((*submit)->collection.items.size());
      for (std::size_t i = 0; i < selection.size(); ++i) selection[i] = static_cast<common::TestIndex>(i);
    }
    std::set<common::TestIndex> have;
    for (const common::TestResult& result : *results) have.insert(result.index);
    std::vector<common::TestResult> missing;
    for (common::TestIndex test : std::set<common::TestIndex>(selection.begin(), selection.end())) {
      if (!have.contains(test)) {
        missing.push_back(common::synthetic_result(test, common::Status::error, message, message));
      }
    }
    if (auto ok = add_results(id, missing); !ok) return ok;
  }
  return exec("UPDATE runs SET state='failed', reason='coordinator restarted', "
              "finished=created WHERE state='running'");
}

Result<void> Store::create_run(const RunRecord& run, const farm::RunSubmit& submit) {
  std::lock_guard lock(m_mutex);
  Statement insert(m_db, "INSERT INTO runs(id, state, reason, created, finished, tests, "
                         "collection_hash, workspace, submit) VALUES(?,?,?,?,?,?,?,?,?)");
  if (!insert.ok()) return std::unexpected(db_error("prepare"));
  insert.bind(1, run.id);
  insert.bind(2, run.state);
  insert.bind(3, run.reason);
  insert.bind(4, run.created);
  insert.bind(5, run.finished);
  insert.bind(6, run.tests);
  insert.bind(7, run.collection_hash);
  insert.bind(8, run.workspace);
  insert.bind_blob(9, farm::encode(submit));
  if (insert.step() != SQLITE_DONE) return std::unexpected(db_error(fmt::format("run {}", run.id)));
  return {};
}

Result<void> Store::add_results(const std::string& run_id,
                                const std::vector<common::TestResult>& results) {
  std::lock_guard lock(m_mutex);
  if (auto ok = exec("BEGIN"); !ok) return ok;
  Statement insert(m_db, "INSERT OR IGNORE INTO results(run_id, idx, status, duration, frame) "
                         "VALUES(?,?,?,?,?)");
  bool failed = !insert.ok();
  for (const common::TestResult& result : results) {
    if (failed) break;
    insert.bind(1, run_id);
    insert.bind(2, static_cast<std::int64_t>(result.index));
    insert.bind(3, common::to_string(result.final_status()));
    insert.bind(4, result.duration());
    insert.bind_blob(5, farm::encode(farm::ResultStream{run_id, result}));
    failed = insert.step() != SQLITE_DONE;
    insert.reset();
  }
  if (failed) {
    auto error = db_error(fmt::format("results of run {}", run_id));
    (void)exec("ROLLBACK");
    return std::unexpected(error);
  }
  return exec("COMMIT");
}

Result<void> Store::finish_run(const std::string& run_id, const std::string& state,
                               const std::string& reason, double finished) {
  std::lock_guard lock(m_mutex);
  Statement update(m_db, "UPDATE runs SET state=?, reason=?, finished=? WHERE id=?");
  if (!update.ok()) return std::unexpected(db_error("prepare"));
  update.bind(1, state);
  update.bind(2, reason);
  update.bind(3, finished);
  update.bind(4, run_id);
  if (update.step() != SQLITE_DONE) return std::unexpected(db_error(fmt::format("run {}", run_id)));
  return {};
}

Result<std::vector<RunRecord>> Store::list_runs(int limit) const {
  std::lock_guard lock(m_mutex);
  Statement select(m_db, fmt::format("SELECT {} FROM runs ORDER BY created DESC, rowid DESC LIMIT ?",
                                     k_run_columns)
                             .c_str());
  Statement counts(m_db, "SELECT status, COUNT(*) FROM results WHERE run_id=? GROUP BY status");
  if (!select.ok() || !counts.ok()) return std::unexpected(db_error("prepare"));
  select.bind(1, limit);
  std::vector<RunRecord> runs;
  int rc = SQLITE_ROW;
  while ((rc = select.step()) == SQLITE_ROW) {
    RunRecord run = read_run(select);
    counts.bind(1, run.id);
    while (counts.step() == SQLITE_ROW) run.counts[counts.text(0)] = counts.integer(1);
    counts.reset();
    runs.push_back(std::move(run));
  }
  if (rc != SQLITE_DONE) return std::unexpected(db_error("list runs"));
  return runs;
}

Result<std::optional<RunRecord>> Store::run(const std::string& run_id) const {
  std::lock_guard lock(m_mutex);
  Statement select(m_db, fmt::format("SELECT {} FROM runs WHERE id=?", k_run_columns).c_str());
  Statement counts(m_db, "SELECT status, COUNT(*) FROM results WHERE run_id=? GROUP BY status");
  if (!select.ok() || !counts.ok()) return std::unexpected(db_error("prepare"));
  select.bind(1, run_id);
  const int rc = select.step();
  if (rc == SQLITE_DONE) return std::nullopt;
  if (rc != SQLITE_ROW) return std::unexpected(db_error(fmt::format("run {}", run_id)));
  RunRecord run = read_run(select);
  counts.bind(1, run.id);
  while (counts.step() == SQLITE_ROW) run.counts[counts.text(0)] = counts.integer(1);
  return run;
}

Result<std::optional<farm::RunSubmit>> Store::submission(const std::string& run_id) const {
  std::lock_guard lock(m_mutex);
  Statement select(m_db, "SELECT submit FROM runs WHERE id=?");
  if (!select.ok()) return std::unexpected(db_error("prepare"));
  select.bind(1, run_id);
  if (select.step() != SQLITE_ROW) return std::nullopt;
  auto envelope = farm::decode(select.text(0));
  if (!envelope || envelope->type != farm::MessageType::run_submit) {
    return common::fail(ErrorCode::parse, fmt::format("{}: run {}: unreadable submission", m_name, run_id));
  }
  return std::get<farm::RunSubmit>(std::move(envelope->message));
}

Result<std::vector<common::TestResult>> Store::results(const std::string& run_id) const {
  std::lock_guard lock(m_mutex);
  Statement select(m_db, "SELECT frame FROM results WHERE run_id=? ORDER BY idx");
  if (!select.ok()) return std::unexpected(db_error("prepare"));
  select.bind(1, run_id);
  std::vector<common::TestResult> results;
  int rc = SQLITE_ROW;
  while ((rc = select.step()) == SQLITE_ROW) {
    auto envelope = farm::decode(select.text(0));
    if (!envelope || envelope->type != farm::MessageType::result_stream) {
      return common::fail(ErrorCode::parse, fmt::format("{}: run {}: unreadable result", m_name, run_id));
    }
    results.push_back(std::get<farm::ResultStream>(std::move(envelope->message)).result);
  }
  if (rc != SQLITE_DONE) return std::unexpected(db_error(fmt::format("results of run {}", run_id)));
  return results;
}

Result<common::Durations> Store::durations() const {
  std::lock_guard lock(m_mutex);
  Statement select(m_db, "SELECT nodeid, seconds FROM durations");
  if (!select.ok()) return std::unexpected(db_error("prepare"));
  common::Durations durations;
  int rc = SQLITE_ROW;
  while ((rc = select.step()) == SQLITE_ROW) durations[select.text(0)] = select.real(1);
  if (rc != SQLITE_DONE) return std::unexpected(db_error("durations"));
  return durations;
}

Result<void> Store::record_durations(const common::Durations& durations) {
  std::lock_guard lock(m_mutex);
  if (auto ok = exec("BEGIN"); !ok) return ok;
  Statement upsert(m_db, "INSERT INTO durations(nodeid, seconds) VALUES(?,?) "
                         "ON CONFLICT(nodeid) DO UPDATE SET seconds=excluded.seconds");
  bool failed = !upsert.ok();
  for (const auto& [nodeid, seconds] : durations) {
    if (failed) break;
    upsert.bind(1, nodeid);
    upsert.bind(2, seconds);
    failed = upsert.step() != SQLITE_DONE;
    upsert.reset();
  }
  if (failed) {
    auto error = db_error("durations");
    (void)exec("ROLLBACK");
    return std::unexpected(error);
  }
  return exec("COMMIT");
}

}  // namespace drover::coordinator
