# The programs the tests drive besides Python, checked before pytest starts so that a missing one
# is named at once instead of failing a test halfway through the run:
# - docker compose (Docker's plugin) or Debian's docker-compose, which needs no Docker engine:
#   tests/unit/test_deploy_files.py checks docker-compose.yml against the Compose Specification;
# - wrk, the benchmark's load driver: tests/unit/test_bench_drivers.py runs it;
# - chromium and chromedriver (Debian's chromium-driver): tests/e2e/test_docs_offline.py renders
#   /docs in a headless browser with no network.
# Missing ones are installed with apt-get where that can be done without asking (as root, or with
# sudo that needs no password); otherwise bin/test stops and says how to install them.

have_compose() { docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; }
have_wrk() { command -v wrk >/dev/null 2>&1; }
have_chromium() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }

missing_test_programs() {
  have_compose || echo docker-compose
  have_wrk || echo wrk
  have_chromium || echo chromium chromium-driver
}

ensure_test_programs() {
  local missing as_root=()
  missing=$(missing_test_programs)
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  fi
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ ${#as_root[@]} -gt 0 ]; }; then
    echo "bin/test: installing $(echo $missing) with apt-get (the tests drive them)" >&2
    # shellcheck disable=SC2086  # one package name per word
    "${as_root[@]}" apt-get update -qq >/dev/null \
      && "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null \
      || echo "bin/test: apt-get could not install them" >&2
    missing=$(missing_test_programs)
    [ -z "$missing" ] && return 0
  fi
  echo "bin/test: the tests need these programs, which are not installed: $(echo $missing)" >&2
  echo "  on Debian or Ubuntu: sudo apt-get install $(echo $missing)" >&2
  echo "  (docker-compose: Docker's 'docker compose' plugin does as well)" >&2
  exit 1
}
