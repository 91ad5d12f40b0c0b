#include "common/workspace.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <system_error>
#include <utility>

extern char** environ;

namespace drover::common {
namespace fs = std::filesystem;

namespace {

// ---- SHA-256 (FIPS 180-4); small enough to keep rather than pull in a crypto library.
constexpr std::array<std::uint32_t, 64> k_sha_k = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

std::uint32_t rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

void sha_block(std::array<std::uint32_t, 8>& h, const unsigned char* p) {
  std::array<std::uint32_t, 64> w{};
  for (int i = 0; i < 16; ++i) {
    w[i] = (std::uint32_t{p[4 * i]} << 24) | (std::uint32_t{p[4 * i + 1]} << 16) |
           (std::uint32_t{p[4 * i + 2]} << 8) | std::uint32_t{p[4 * i + 3]};
  }
  for (int i = 16; i < 64; ++i) {
    const std::uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    const std::uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  auto v = h;
  for (int i = 0; i < 64; ++i) {
    const std::uint32_t s1 = rotr(v[4], 6) ^ rotr(v[4], 11) ^ rotr(v[4], 25);
    const std::uint32_t ch = (v[4] & v[5]) ^ (~v[4] & v[6]);
    const std::uint32_t t1 = v[7] + s1 + ch + k_sha_k[i] + w[i];
    const std::uint32_t s0 = rotr(v[0], 2) ^ rotr(v[0], 13) ^ rotr(v[0], 22);
    const std::uint32_t maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
    v = {t1 + s0 + maj, v[0], v[1], v[2], v[3] + t1, v[4], v[5], v[6]};
  }
  for (int i = 0; i < 8; ++i) h[i] += v[i];
}

// ---- Running git to list files.
struct Captured {
  int status = -1;  // exit code, -1 when it could not start or was signalled
  std::string out;
};

Captured capture(const std::vector<std::string>& argv) {
  Captured result;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return result;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc == 0) {
    std::array<char, 65536> buf{};
    for (;;) {
      const ssize_t n = read(fds[0], buf.data(), buf.size());
      if (n > 0) {
        result.out.append(buf.data(), static_cast<std::size_t>(n));
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        break;
      }
    }
  }
  close(fds[0]);
  if (rc != 0) return result;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) result.status = WEXITSTATUS(status);
  return result;
}

bool excluded_dir_name(const std::string& name) {
  return name == ".git" || name == ".drover" || name == "__pycache__" || name == ".pytest_cache";
}

Result<std::vector<std::string>> walk_files(const fs::path& root) {
  std::vector<std::string> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
  if (ec) return fail(ErrorCode::io, "cannot list " + root.string() + ": " + ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return fail(ErrorCode::io, "cannot list " + root.string() + ": " + ec.message());
    const auto status = it->symlink_status(ec);
    if (ec) continue;
    if (fs::is_directory(status)) {
      if (excluded_dir_name(it->path().filename().string())) it.disable_recursion_pending();
      continue;
    }
    if (fs::is_regular_file(status) || fs::is_symlink(status)) {
      files.push_back(it->path().lexically_relative(root).generic_string());
    }
  }
  return files;
}

// ---- ustar writing.
constexpr std::size_t k_block = 512;

void put_octal(char* field, std::size_t width, std::uint64_t value) {
  // width-1 octal digits, zero padded, then NUL.
  for (std::size_t i = width - 1; i-- > 0;) {
    field[i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
  field[width - 1] = '\0';
}

void put_header(std::string& out, const std::string& name, char type, unsigned mode,
                std::uint64_t size, const std::string& link) {
  std::array<char, k_block> h{};
  std::memcpy(h.data(), name.data(), std::min<std::size_t>(name.size(), 100));
  put_octal(&h[100], 8, mode);
  put_octal(&h[108], 8, 0);
  put_octal(&h[116], 8, 0);
  put_octal(&h[124], 12, size);
  put_octal(&h[136], 12, 0);
  h[156] = type;
  std::memcpy(&h[157], link.data(), std::min<std::size_t>(link.size(), 100));
  std::memcpy(&h[257], "ustar", 6);
  h[263] = '0';
  h[264] = '0';
  std::memset(&h[148], ' ', 8);
  unsigned sum = 0;
  for (char c : h) sum += static_cast<unsigned char>(c);
  put_octal(&h[148], 7, sum);
  h[155] = ' ';
  out.append(h.data(), h.size());
}

void pad(std::string& out) {
  if (out.size() % k_block != 0) out.append(k_block - out.size() % k_block, '\0');
}

// One pax record: "LEN key=value\n" where LEN counts the whole record.
std::string pax_record(const std::string& key, const std::string& value) {
  const std::size_t body = key.size() + value.size() + 3;  // ' ', '=', '\n'
  std::size_t len = body + 1;
  while (std::to_string(len).size() + body != len) len = std::to_string(len).size() + body;
  return std::to_string(len) + " " + key + "=" + value + "\n";
}

void put_entry(std::string& out, const std::string& path, char type, unsigned mode,
               const std::string& data, const std::string& link) {
  std::string pax;
  if (path.size() > 100) pax += pax_record("path", path);
  if (link.size() > 100) pax += pax_record("linkpath", link);
  if (!pax.empty()) {
    put_header(out, "PaxHeaders/entry", 'x', 0644, pax.size(), {});
    out += pax;
    pad(out);
  }
  put_header(out, path, type, mode, data.size(), link);
  out += data;
  pad(out);
}

Result<std::string> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(ErrorCode::io, "cannot read " + path.string() + ": " + std::strerror(errno));
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return fail(ErrorCode::io, "cannot read " + path.string());
  return std::move(buf).str();
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  std::array<std::uint32_t, 8> h = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t n = data.size();
  while (n >= 64) {
    sha_block(h, p);
    p += 64;
    n -= 64;
  }
  std::array<unsigned char, 128> tail{};
  std::memcpy(tail.data(), p, n);
  tail[n] = 0x80;
  const std::size_t tail_len = n + 9 <= 64 ? 64 : 128;
  const std::uint64_t bits = static_cast<std::uint64_t>(data.size()) * 8;
  for (int i = 0; i < 8; ++i) tail[tail_len - 1 - i] = static_cast<unsigned char>(bits >> (8 * i));
  sha_block(h, tail.data());
  if (tail_len == 128) sha_block(h, tail.data() + 64);
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string out;
  for (std::uint32_t word : h) {
    for (int shift = 28; shift >= 0; shift -= 4) out += k_hex[(word >> shift) & 0xf];
  }
  return out;
}

bool is_sha256_hex(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Result<std::vector<std::string>> list_workspace_files(const fs::path& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return fail(ErrorCode::io, "not a directory: " + root.string());
  std::vector<std::string> files;
  const Captured git =
      capture({"git", "-C", root.string(), "ls-files", "-co", "--exclude-standard", "-z"});
  if (git.status == 0) {
    std::size_t start = 0;
    while (start < git.out.size()) {
      const std::size_t end = git.out.find('\0', start);
      const std::size_t stop = end == std::string::npos ? git.out.size() : end;
      std::string path = git.out.substr(start, stop - start);
      start = stop + 1;
      // Deleted tracked files, submodules and nested repositories are not files to ship.
      const auto status = fs::symlink_status(root / path, ec);
      if (ec || !(fs::is_regular_file(status) || fs::is_symlink(status))) continue;
      files.push_back(std::move(path));
    }
  } else {
    auto walked = walk_files(root);
    if (!walked) return std::unexpected(walked.error());
    files = std::move(*walked);
  }
  // drover's own state: the durations file changes with every run, and would make
  // every run a new workspace (and agents start cold) although no test changed.
  std::erase_if(files, [](const std::string& f) {
    return f.starts_with(".drover/") || f == ".test_durations" || f.ends_with("/.test_durations");
  });
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  return files;
}

Result<WorkspaceBundle> pack_files(const fs::path& root, std::vector<std::string> files) {
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  WorkspaceBundle bundle;
  for (const auto& rel : files) {
    const fs::path full = root / rel;
    std::error_code ec;
    const auto status = fs::symlink_status(full, ec);
    if (ec || !fs::exists(status)) continue;  // listed but gone: nothing to ship
    if (fs::is_symlink(status)) {
      const fs::path target = fs::read_symlink(full, ec);
      if (ec) return fail(ErrorCode::io, "cannot read link " + full.string() + ": " + ec.message());
      put_entry(bundle.bytes, rel, '2', 0777, {}, target.generic_string());
    } else if (fs::is_regular_file(status)) {
      auto data = read_file(full);
      if (!data) return std::unexpected(data.error());
      const bool exec = (status.permissions() & fs::perms::owner_exec) != fs::perms::none;
      put_entry(bundle.bytes, rel, '0', exec ? 0755 : 0644, *data, {});
    } else {
      continue;
    }
    ++bundle.file_count;
  }
  bundle.bytes.append(2 * k_block, '\0');
  bundle.hash = sha256_hex(bundle.bytes);
  return bundle;
}

Result<WorkspaceBundle> pack_workspace(const fs::path& root) {
  auto files = list_workspace_files(root);
  if (!files) return std::unexpected(files.error());
  return pack_files(root, std::move(*files));
}

namespace {

std::uint64_t parse_octal(const char* field, std::size_t width, bool& ok) {
  std::uint64_t value = 0;
  std::size_t i = 0;
  while (i < width && field[i] == ' ') ++i;
  for (; i < width && field[i] >= '0' && field[i] <= '7'; ++i) value = value * 8 + (field[i] - '0');
  ok = i == width || field[i] == '\0' || field[i] == ' ';
  return value;
}

std::string field_string(const char* field, std::size_t width) {
  return std::string(field, strnlen(field, width));
}

// The relative path of an entry, or an error when it would land outside the tree.
Result<fs::path> safe_relative(const std::string& name) {
  fs::path rel = fs::path(name).lexically_normal();
  const std::string text = rel.generic_string();
  if (text.empty() || text == "." || rel.is_absolute() || text == ".." || text.starts_with("../")) {
    return fail(ErrorCode::parse, "unsafe path in workspace bundle: " + name);
  }
  return rel;
}

// Refuses to write through a symlink an earlier entry created.
Result<void> check_parents(const fs::path& dest, const fs::path& rel) {
  fs::path at = dest;
  for (const auto& part : rel.parent_path()) {
    at /= part;
    std::error_code ec;
    if (fs::is_symlink(fs::symlink_status(at, ec))) {
      return fail(ErrorCode::parse, "workspace bundle writes through a symlink: " + rel.string());
    }
  }
  return {};
}

// Applies the pax records this code writes (path, linkpath); others are ignored.
void parse_pax(std::string_view data, std::string& path, std::string& link) {
  while (!data.empty()) {
    const std::size_t space = data.find(' ');
    if (space == std::string_view::npos) return;
    std::size_t len = 0;
    for (char c : data.substr(0, space)) len = len * 10 + static_cast<std::size_t>(c - '0');
    if (len <= space + 1 || len > data.size()) return;
    const std::string_view record = data.substr(space + 1, len - space - 2);
    const std::size_t eq = record.find('=');
    if (eq != std::string_view::npos) {
      if (record.substr(0, eq) == "path") path = std::string(record.substr(eq + 1));
      if (record.substr(0, eq) == "linkpath") link = std::string(record.substr(eq + 1));
    }
    data.remove_prefix(len);
  }
}

Result<void> extract(std::string_view bytes, const fs::path& dest) {
  std::string pax_path;
  std::string pax_link;
  std::size_t at = 0;
  while (at + k_block <= bytes.size()) {
    const char* h = bytes.data() + at;
    if (std::all_of(h, h + k_block, [](char c) { return c == '\0'; })) return {};
    bool ok = true;
    const std::uint64_t sum = parse_octal(h + 148, 8, ok);
    unsigned computed = 0;
    for (std::size_t i = 0; i < k_block; ++i) {
      computed += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
    }
    bool size_ok = true;
    const std::uint64_t size = parse_octal(h + 124, 12, size_ok);
    bool mode_ok = true;
    const std::uint64_t mode = parse_octal(h + 100, 8, mode_ok);
    if (!ok || !size_ok || sum != computed || size > bytes.size() - at - k_block) {
      return fail(ErrorCode::parse, "corrupt workspace bundle at byte " + std::to_string(at));
    }
    const std::string_view data = bytes.substr(at + k_block, size);
    at += k_block + (size + k_block - 1) / k_block * k_block;
    const char type = h[156];
    if (type == 'x') {
      parse_pax(data, pax_path, pax_link);
      continue;
    }
    if (type == 'g') continue;
    std::string name = field_string(h, 100);
    const std::string prefix = field_string(h + 345, 155);
    if (!prefix.empty()) name = prefix + "/" + name;
    std::string link = field_string(h + 157, 100);
    if (!pax_path.empty()) name = std::exchange(pax_path, {});
    if (!pax_link.empty()) link = std::exchange(pax_link, {});
    auto rel = safe_relative(name);
    if (!rel) return std::unexpected(rel.error());
    if (auto checked = check_parents(dest, *rel); !checked) return checked;
    const fs::path out = dest / *rel;
    std::error_code ec;
    if (type == '5') {
      fs::create_directories(out, ec);
      if (ec) return fail(ErrorCode::io, "cannot create " + out.string() + ": " + ec.message());
      continue;
    }
    fs::create_directories(out.parent_path(), ec);
    if (ec) return fail(ErrorCode::io, "cannot create " + out.parent_path().string() + ": " + ec.message());
    if (type == '2') {
      const fs::path target(link);
      const std::string resolved = (rel->parent_path() / target).lexically_normal().generic_string();
      if (target.is_absolute() || resolved == ".." || resolved.starts_with("../")) {
        return fail(ErrorCode::parse, "workspace bundle link points outside the tree: " + name);
      }
      fs::create_symlink(target, out, ec);
      if (ec) return fail(ErrorCode::io, "cannot create link " + out.string() + ": " + ec.message());
    } else if (type == '0' || type == '\0') {
      std::ofstream file(out, std::ios::binary | std::ios::trunc);
      file.write(data.data(), static_cast<std::streamsize>(data.size()));
      file.close();
      if (!file) return fail(ErrorCode::io, "cannot write " + out.string());
      if (mode & 0111) {
        fs::permissions(out, fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec,
                        fs::perm_options::add, ec);
      }
    } else {
      return fail(ErrorCode::parse, std::string("unsupported entry type '") + type +
                                        "' in workspace bundle: " + name);
    }
  }
  return fail(ErrorCode::parse, "truncated workspace bundle");
}

}  // namespace

Result<void> unpack_bundle(std::string_view bytes, const fs::path& dest) {
  std::error_code ec;
  if (fs::exists(fs::symlink_status(dest, ec))) {
    return fail(ErrorCode::io, "cannot unpack into " + dest.string() + ": it already exists");
  }
  std::random_device rd;
  const fs::path tmp = dest.string() + ".tmp-" + std::to_string(getpid()) + "-" + std::to_string(rd());
  fs::create_directory(tmp, ec);
  if (ec) return fail(ErrorCode::io, "cannot create " + tmp.string() + ": " + ec.message());
  auto extracted = extract(bytes, tmp);
  if (extracted) {
    fs::rename(tmp, dest, ec);
    // Another process unpacking the same bundle may have won the race: theirs is as good.
    if (ec && fs::is_directory(dest)) ec.clear();
    if (ec) extracted = fail(ErrorCode::io, "cannot rename into " + dest.string() + ": " + ec.message());
  }
  std::error_code ignored;
  fs::remove_all(tmp, ignored);
  return extracted;
}

}  // namespace drover::common
