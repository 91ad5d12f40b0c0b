// `drover keygen`: make a CURVE key pair for a coordinator, agent or client.
#include <cstdio>
#include <filesystem>
#include <string>

#include "cli/commands.h"
#include "cli/farm_commands.h"
#include "cli/session.h"
#include "common/zmq_curve.h"

namespace drover::cli {
namespace {

int run_keygen(const std::string& out) {
  auto keys = common::generate_curve_keypair();
  if (!keys) {
    print_error(keys.error());
    return exit_code_for(keys.error());
  }
  if (out.empty()) {
    std::fputs(common::format_curve_keys(*keys).c_str(), stdout);
    return k_exit_ok;
  }
  if (std::filesystem::exists(out)) {
    print_error({common::ErrorCode::usage, out + " exists; not overwriting a key"});
    return k_exit_usage;
  }
  if (auto saved = common::save_curve_keys(out, *keys); !saved) {
    print_error(saved.error());
    return exit_code_for(saved.error());
  }
  const std::string public_out = out + ".pub";
  if (auto saved = common::save_curve_keys(public_out, {keys->public_key, ""}); !saved) {
    print_error(saved.error());
    return exit_code_for(saved.error());
  }
  std::printf("wrote %s (secret, mode 0600) and %s\npublic key: %s\n", out.c_str(),
              public_out.c_str(), keys->public_key.c_str());
  return k_exit_ok;
}

}  // namespace

void add_keygen_command(CLI::App& app, int& exit_code) {
  auto* command = app.add_subcommand("keygen", "Make a CURVE key pair (Z85) for farm connections");
  auto out = std::make_shared<std::string>();
  command->add_option("-o,--out", *out,
                      "Write the pair to FILE (mode 0600) and the public key to FILE.pub; "
                      "default: print the pair");
  command->callback([command, out, &exit_code] {
    if (check_args_only(*command)) return;
    exit_code = run_keygen(*out);
  });
}

}  // namespace drover::cli
