# Create .venv with Python 3.11+ and install a requirements file when it changed.
ensure_venv() {
  local requirements=$1 python stamp
  python=$(command -v python3.11 || command -v python3)
  if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
  fi
  stamp=".venv/.installed-$(basename "$requirements")"
  if [ ! -f "$stamp" ] || [ -n "$(find requirements -newer "$stamp" -name '*.txt')" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r "$requirements"
    touch "$stamp"
  fi
}
