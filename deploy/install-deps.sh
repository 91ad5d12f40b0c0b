#!/usr/bin/env bash
# Installs every build, run and test dependency of drover on Debian 12.
# Idempotent: packages already present are left alone; apt's lists are
# refreshed only when something is missing.
set -euo pipefail

packages=(
  # build
  cmake g++ make pkg-config git
  cppzmq-dev libzmq3-dev libmsgpack-cxx-dev libyaml-cpp-dev
  libspdlog-dev libcli11-dev libpugixml-dev nlohmann-json3-dev libsqlite3-dev libcpp-httplib-dev
  # unit tests (OpenSSL makes the HTTPS tests' certificate)
  libgtest-dev libgmock-dev libssl-dev
  # run: the worker needs only pytest in the user's interpreter; these are Debian's
  python3 python3-pytest
  # integration tests and benchmarks: pytest-xdist to compare against, PyYAML to
  # lint the CI examples, pytest-cov for the coverage tests, iproute2 for the
  # network-namespace farm test
  python3-pytest-xdist python3-pytest-cov python3-yaml iproute2 procps
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -q
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
