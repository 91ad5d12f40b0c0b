#include "common/workspace.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>

namespace drover::common {
namespace {
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    m_path = fs::temp_directory_path() / ("drover-ws-test-" + std::to_string(getpid()) + "-" + std::to_string(rd()));
    fs::create_directories(m_path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(m_path, ec);
  }
  const fs::path& path() const { return m_path; }

 private:
  fs::path m_path;
};

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

int sh(const std::string& command) { return std::system(command.c_str()); }

bool have_git() { return sh("git --version >/dev/null 2>&1") == 0; }

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_TRUE(is_sha256_hex(sha256_hex("x")));
  EXPECT_FALSE(is_sha256_hex("../etc"));
  EXPECT_FALSE(is_sha256_hex(std::string(64, 'A')));
}

TEST(Workspace, WalkWithoutGitSkipsCachesAndVcs) {
  TempDir dir;
  write(dir.path() / "test_a.py", "def test_a(): pass\n");
  write(dir.path() / "pkg/test_b.py", "x");
  write(dir.path() / "pkg/__pycache__/test_b.cpython-311.pyc", "junk");
  write(dir.path() / ".pytest_cache/v/cache/lastfailed", "{}");
  write(dir.path() / ".drover/durations", "{}");
  write(dir.path() / ".test_durations", "{}");      // rewritten by every run: not the tests' code
  write(dir.path() / "pkg/.test_durations", "{}");
  write(dir.path() / ".git/HEAD", "not a repo");  // a broken .git: git fails, the walk runs
  auto files = list_workspace_files(dir.path());
  ASSERT_TRUE(files) << files.error().message;
  EXPECT_EQ(*files, (std::vector<std::string>{"pkg/test_b.py", "test_a.py"}));
}

TEST(Workspace, GitListsTrackedAndUntrackedButNotIgnored) {
  if (!have_git()) GTEST_SKIP() << "git not installed";
  TempDir dir;
  write(dir.path() / "tracked.py", "a");
  write(dir.path() / ".gitignore", "ignored.txt\nbuild/\n");
  write(dir.path() / "ignored.txt", "b");
  write(dir.path() / "build/out.o", "c");
  write(dir.path() / "sub/untracked.py", "d");
  write(dir.path() / ".drover/state", "e");
  write(dir.path() / "gone.py", "f");
  // Built by appending: g++ 12 -O3 warns falsely (-Wrestrict) on "literal" + string.
  std::string command = "cd '";
  command += dir.path().string();
  command += "' && git init -q && git add tracked.py .gitignore gone.py";
  ASSERT_EQ(sh(command), 0);
  fs::remove(dir.path() / "gone.py");  // tracked but deleted: not shipped
  auto files = list_workspace_files(dir.path());
  ASSERT_TRUE(files) << files.error().message;
  EXPECT_EQ(*files, (std::vector<std::string>{".gitignore", "sub/untracked.py", "tracked.py"}));
}

TEST(Workspace, PackIsDeterministicAndRoundTrips) {
  TempDir a;
  TempDir b;
  const std::string long_name = "deep/" + std::string(120, 'n') + "/test_long.py";
  for (const auto* dir : {&a, &b}) {
    write(dir->path() / "test_a.py", "def test_a():\n    assert 1\n");
    write(dir->path() / long_name, "long");
    write(dir->path() / "bin/run.sh", "#!/bin/sh\n");
    fs::permissions(dir->path() / "bin/run.sh", fs::perms::owner_exec, fs::perm_options::add);
    fs::create_symlink("test_a.py", dir->path() / "alias.py");
  }
  // Different mtimes and creation order must not change the bytes.
  fs::last_write_time(b.path() / "test_a.py", fs::file_time_type::clock::now() - std::chrono::hours(5));
  auto first = pack_workspace(a.path());
  auto second = pack_workspace(b.path());
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(first->file_count, 4u);
  EXPECT_EQ(first->hash, second->hash);
  EXPECT_EQ(first->bytes, second->bytes);
  EXPECT_EQ(first->hash, sha256_hex(first->bytes));

  TempDir out;
  const fs::path dest = out.path() / "ws";
  auto unpacked = unpack_bundle(first->bytes, dest);
  ASSERT_TRUE(unpacked) << unpacked.error().message;
  EXPECT_EQ(slurp(dest / "test_a.py"), "def test_a():\n    assert 1\n");
  EXPECT_EQ(slurp(dest / long_name), "long");
  EXPECT_TRUE(fs::is_symlink(dest / "alias.py"));
  EXPECT_EQ(fs::read_symlink(dest / "alias.py"), "test_a.py");
  EXPECT_NE(fs::status(dest / "bin/run.sh").permissions() & fs::perms::owner_exec, fs::perms::none);
  // Re-packing the unpacked tree gives the same hash.
  auto again = pack_workspace(dest);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->hash, first->hash);
  // The system tar reads it too.
  if (sh("tar --version >/dev/null 2>&1") == 0) {
    const fs::path tarball = out.path() / "b.tar";
    std::ofstream(tarball, std::ios::binary) << first->bytes;
    EXPECT_EQ(sh("tar -tf '" + tarball.string() + "' | grep -q test_long.py"), 0);
  }
}

TEST(Workspace, ContentChangeChangesHash) {
  TempDir dir;
  write(dir.path() / "test_a.py", "1");
  auto before = pack_workspace(dir.path());
  write(dir.path() / "test_a.py", "2");
  auto after = pack_workspace(dir.path());
  ASSERT_TRUE(before && after);
  EXPECT_NE(before->hash, after->hash);
}

TEST(Workspace, UnpackRejectsCorruptAndUnsafeBundles) {
  TempDir src;
  TempDir out;
  write(src.path() / "a.py", "x");
  auto bundle = pack_workspace(src.path());
  ASSERT_TRUE(bundle);
  std::string corrupt = bundle->bytes;
  corrupt[10] = 'Z';  // inside the name: checksum no longer matches
  auto bad = unpack_bundle(corrupt, out.path() / "c");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("corrupt"), std::string::npos);
  EXPECT_FALSE(fs::exists(out.path() / "c"));

  auto truncated = unpack_bundle(std::string_view(bundle->bytes).substr(0, 512), out.path() / "t");
  ASSERT_FALSE(truncated);
  EXPECT_FALSE(fs::exists(out.path() / "t"));
  EXPECT_FALSE(unpack_bundle("", out.path() / "e"));

  // A link escaping the tree, packed from a real (if odd) directory.
  TempDir evil;
  fs::create_symlink("../../etc", evil.path() / "escape");
  auto evil_bundle = pack_workspace(evil.path());
  ASSERT_TRUE(evil_bundle);
  auto refused = unpack_bundle(evil_bundle->bytes, out.path() / "evil");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("outside the tree"), std::string::npos);

  ASSERT_TRUE(unpack_bundle(bundle->bytes, out.path() / "ok"));
  auto twice = unpack_bundle(bundle->bytes, out.path() / "ok");
  EXPECT_FALSE(twice);
}

}  // namespace
}  // namespace drover::common
