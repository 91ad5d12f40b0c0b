// `drover report download`: fetch a farm run's merged JUnit XML from the coordinator.
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/farm_client_commands.h"
#include "cli/session.h"
#include "common/http_client.h"

namespace drover::cli {
namespace {

using common::ErrorCode;

// RFC 3986 percent-encoding for one path segment.
std::string escape_segment(const std::string& text) {
  static constexpr char k_hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += k_hex[c >> 4];
      out += k_hex[c & 15];
    }
  }
  return out;
}

// Writes through a temporary file renamed into place: a failed download never
// leaves a half-written report where CI looks for one.
common::Result<void> write_file(const std::filesystem::path& path, const std::string& data) {
  const std::filesystem::path tmp = path.string() + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out) return common::fail(ErrorCode::io, "cannot write " + path.string());
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return common::fail(ErrorCode::io, "cannot write " + path.string());
  }
  return {};
}

struct ReportFlags {
  std::string server;
  std::string run_id;
  std::string output;
  std::string token;
};

}  // namespace

void add_report_command(CLI::App& app, int& exit_code) {
  auto* report = app.add_subcommand("report", "Reports of farm runs kept by the coordinator");
  report->require_subcommand(1);
  auto* download = report->add_subcommand("download", "Download a run's merged JUnit XML");
  auto flags = std::make_shared<ReportFlags>();
  download->add_option("--server", flags->server, "Coordinator HTTP API, http://HOST:PORT (default: $DROVER_HTTP)")
      ->envname("DROVER_HTTP")
      ->required();
  download->add_option("--run-id", flags->run_id, "The run's id")->required();
  download->add_option("-o,--output", flags->output, "Where to write the JUnit XML")->required();
  download->add_option("--token", flags->token, "Bearer token for the HTTP API (default: $DROVER_TOKEN)");
  download->callback([download, flags, &exit_code] {
    if (flags->run_id.empty()) {
      print_error({ErrorCode::usage, "--run-id: must not be empty"});
      exit_code = k_exit_usage;
      return;
    }
    if (check_args_only(*download)) return;
    std::string token = flags->token;
    if (const char* env = std::getenv("DROVER_TOKEN"); token.empty() && env != nullptr) token = env;
    auto http = common::make_http_client(common::HttpOptions{token});
    const std::string url =
        common::join_url(flags->server, "/api/v1/runs/" + escape_segment(flags->run_id) + "/junit.xml");
    auto response = common::expect_ok("GET", url, http->get(url));
    if (!response) {
      print_error(response.error());
      exit_code = exit_code_for(response.error());
      return;
    }
    if (auto written = write_file(flags->output, response->body); !written) {
      print_error(written.error());
      exit_code = exit_code_for(written.error());
      return;
    }
    exit_code = k_exit_ok;
  });
}

}  // namespace drover::cli
