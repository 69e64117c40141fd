# Create .venv with Python 3.11 and install a lock file (requirements/*.txt) into it when the lock
# changed since its last install there. Hashes are required: a package missing from the lock, or a
# file that is not the one locked, fails the install instead of bringing in whatever the index
# serves today.
ensure_venv() {
  local lock=$1 python stamp digest
  python=$(command -v python3.11 || command -v python3)
  if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
  fi
  # By content, not modification time: a checkout or a rebase touches files without changing them.
  stamp=".venv/.installed-$(basename "$lock")"
  digest=$(sha256sum "$lock" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
    .venv/bin/python -m pip install --quiet --require-hashes -r "$lock"
    echo "$digest" > "$stamp"
  fi
}
