#include "coordinator/store.h"

#include <unistd.h>

#include <gtest/gtest.h>

namespace drover::coordinator {
namespace {

namespace farm = common::farm;

std::filesystem::path fresh_dir(const std::string& name) {
  const auto dir = (std::filesystem::path(::testing::TempDir()) / ("drover_" + std::to_string(::getpid()))) / ("drover_store_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

farm::RunSubmit submission() {
  farm::RunSubmit submit;
  submit.run_id = "r1";
  submit.collection.items = {{"t.py::a", "t.py", "", 1, {}}, {"t.py::b", "t.py", "", 2, {}}};
  submit.collection.hash = "h";
  submit.pytest_args = {"-q"};
  return submit;
}

common::TestResult result(common::TestIndex index, common::Status status, double seconds) {
  common::TestResult r;
  r.index = index;
  r.worker = "a/gw0";
  common::PhaseReport call;
  call.when = common::Phase::call;
  call.status = status;
  call.outcome = status == common::Status::passed ? "passed" : "failed";
  call.duration = seconds;
  r.phases = {call};
  return r;
}

TEST(StoreTest, RunsResultsAndDurationsSurviveReopen) {
  const auto path = fresh_dir("reopen") / "drover.db";
  {
    auto store = Store::open(path);
    ASSERT_TRUE(store.has_value()) << store.error().message;
    RunRecord run;
    run.id = "r1";
    run.created = 100.0;
    run.tests = 2;
    run.collection_hash = "h";
    ASSERT_TRUE((*store)->create_run(run, submission()).has_value());
    ASSERT_TRUE((*store)->add_results("r1", {result(1, common::Status::failed, 0.5),
                                             result(0, common::Status::passed, 0.25)})
                    .has_value());
    // A duplicate result is ignored, not an error.
    ASSERT_TRUE((*store)->add_results("r1", {result(0, common::Status::failed, 9)}).has_value());
    ASSERT_TRUE((*store)->finish_run("r1", "finished", "", 101.0).has_value());
    ASSERT_TRUE((*store)->record_durations({{"t.py::a", 0.25}, {"t.py::b", 0.5}}).has_value());
    ASSERT_TRUE((*store)->record_durations({{"t.py::a", 0.75}}).has_value());

    RunRecord open_run;
    open_run.id = "r2";
    open_run.created = 102.0;
    ASSERT_TRUE((*store)->create_run(open_run, submission()).has_value());
  }
  auto store = Store::open(path);
  ASSERT_TRUE(store.has_value());
  auto run = (*store)->run("r1");
  ASSERT_TRUE(run.has_value() && run->has_value());
  EXPECT_EQ((*run)->state, "finished");
  EXPECT_EQ((*run)->tests, 2);
  EXPECT_EQ((*run)->counts.at("passed"), 1);
  EXPECT_EQ((*run)->counts.at("failed"), 1);
  EXPECT_EQ((*run)->reported(), 2);
  auto results = (*store)->results("r1");
  ASSERT_TRUE(results.has_value());
  ASSERT_EQ(results->size(), 2u);
  EXPECT_EQ((*results)[0].index, 0u);
  EXPECT_EQ((*results)[0].final_status(), common::Status::passed);
  EXPECT_EQ((*results)[1].worker, "a/gw0");
  auto submit = (*store)->submission("r1");
  ASSERT_TRUE(submit.has_value() && submit->has_value());
  EXPECT_EQ((*submit)->collection.items.size(), 2u);
  EXPECT_EQ((*submit)->pytest_args, std::vector<std::string>{"-q"});
  auto durations = (*store)->durations();
  ASSERT_TRUE(durations.has_value());
  EXPECT_DOUBLE_EQ(durations->at("t.py::a"), 0.75);
  EXPECT_DOUBLE_EQ(durations->at("t.py::b"), 0.5);
  // The run cut off by the "restart" is failed, not left running forever.
  auto cut = (*store)->run("r2");
  ASSERT_TRUE(cut.has_value() && cut->has_value());
  EXPECT_EQ((*cut)->state, "failed");
  EXPECT_EQ((*cut)->reason, "coordinator restarted");
  auto runs = (*store)->list_runs(10);
  ASSERT_TRUE(runs.has_value());
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].id, "r2");  // newest first
  EXPECT_FALSE((*store)->run("nope").value().has_value());
}

// A restart closes a cut-off run with an error for each test that has no result,
// so its merged report holds every test once; a selection limits it to the run's tests.
TEST(StoreTest, RestartGivesEveryUnreportedTestAnError) {
  const auto path = fresh_dir("restart_fill") / "drover.db";
  {
    auto store = Store::open(path);
    ASSERT_TRUE(store.has_value()) << store.error().message;
    auto submit = submission();
    submit.collection.items.push_back({"t.py::c", "t.py", "", 3, {}});
    submit.collection.items.push_back({"t.py::d", "t.py", "", 4, {}});
    submit.selection = {0, 1, 3};
    RunRecord run;
    run.id = "r1";
    run.created = 100.0;
    run.tests = 3;
    ASSERT_TRUE((*store)->create_run(run, submit).has_value());
    ASSERT_TRUE((*store)->add_results("r1", {result(1, common::Status::passed, 0.5)}).has_value());
  }
  for (int reopen = 0; reopen < 2; ++reopen) {  // a second restart adds nothing
    auto store = Store::open(path);
    ASSERT_TRUE(store.has_value()) << store.error().message;
    auto results = (*store)->results("r1");
    ASSERT_TRUE(results.has_value());
    ASSERT_EQ(results->size(), 3u);
    EXPECT_EQ((*results)[0].index, 0u);
    EXPECT_EQ((*results)[0].final_status(), common::Status::error);
    EXPECT_EQ((*results)[0].phases.at(0).message, "not run: coordinator restarted");
    EXPECT_EQ((*results)[1].index, 1u);
    EXPECT_EQ((*results)[1].final_status(), common::Status::passed);
    EXPECT_EQ((*results)[2].index, 3u);
    EXPECT_EQ((*results)[2].final_status(), common::Status::error);
    auto run = (*store)->run("r1");
    ASSERT_TRUE(run.has_value() && run->has_value());
    EXPECT_EQ((*run)->state, "failed");
    EXPECT_EQ((*run)->reported(), 3);
  }
}

TEST(StoreTest, DuplicateRunIdIsAnError) {
  auto store = Store::open(":memory:");
  ASSERT_TRUE(store.has_value());
  RunRecord run;
  run.id = "same";
  ASSERT_TRUE((*store)->create_run(run, submission()).has_value());
  auto again = (*store)->create_run(run, submission());
  ASSERT_FALSE(again.has_value());
  EXPECT_NE(again.error().message.find("run same"), std::string::npos);
}

TEST(StoreTest, UnwritablePathIsAnError) {
  auto store = Store::open("/proc/definitely/not/here.db");
  ASSERT_FALSE(store.has_value());
  EXPECT_NE(store.error().message.find("cannot open database"), std::string::npos);
}

}  // namespace
}  // namespace drover::coordinator
