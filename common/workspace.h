// Workspace bundles: the files of a checkout packed into one content-addressed
// archive, so a farm client can ship its tree to agents and an agent can tell,
// by hash alone, whether it already has it.
//
// File selection: inside a git work tree, what `git ls-files -co
// --exclude-standard` lists (tracked plus untracked-but-not-ignored files);
// elsewhere, every regular file and symlink under the root except .git,
// .drover, __pycache__ and .pytest_cache. `.drover/` and `.test_durations` files
// (drover's durations, rewritten by every run) are never packed.
//
// The bundle is a POSIX ustar archive written by this code: entries sorted by
// path (bytewise), mode 0644 or 0755 (only the executable bit is kept), owner
// 0, mtime 0, no directory entries. The same tree therefore gives the same
// bytes, and the same hash (lowercase hex SHA-256 of the bytes), on any
// machine. `tar -tf` can read it; paths over 100 bytes use pax
// extended headers.
//
// Unpacking refuses absolute paths, `..` components and symlinks that point
// outside the tree, and writes into a temporary directory renamed into place,
// so an interrupted unpack never leaves a half-filled cache entry.
// Failure: one-line Errors naming the file. Thread-safety: free functions.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace drover::common {

// Lowercase hex SHA-256 of `data`.
[[nodiscard]] std::string sha256_hex(std::string_view data);

// Files to pack under `root`, relative with '/' separators, sorted bytewise.
[[nodiscard]] Result<std::vector<std::string>> list_workspace_files(const std::filesystem::path& root);

struct WorkspaceBundle {
  std::string bytes;  // the ustar archive
  std::string hash;   // sha256_hex(bytes)
  std::size_t file_count = 0;
};

// Packs `files` (relative to `root`) in sorted order.
[[nodiscard]] Result<WorkspaceBundle> pack_files(const std::filesystem::path& root,
                                                 std::vector<std::string> files);
// list_workspace_files + pack_files.
[[nodiscard]] Result<WorkspaceBundle> pack_workspace(const std::filesystem::path& root);

// Extracts `bytes` into `dest`, which must not exist yet (its parent must).
[[nodiscard]] Result<void> unpack_bundle(std::string_view bytes, const std::filesystem::path& dest);

// True for a 64-character lowercase hex string (what sha256_hex returns). Used
// to reject hashes that would be unsafe as a cache directory or URL segment.
[[nodiscard]] bool is_sha256_hex(std::string_view text);

}  // namespace drover::common
