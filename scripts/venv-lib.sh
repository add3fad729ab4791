# Sourced by the set-up scripts: one way to make a virtualenv with uv in it.
#   venv_is_current VENV STAMP_NAME FILES...   true when VENV was set up from these FILES as they are
#   venv_create VENV                           python -m venv (if missing) + uv from PyPI
#   venv_mark VENV STAMP_NAME FILES...         record that VENV is set up from these FILES

_venv_digest() { cat "$@" | sha256sum | cut -c1-16; }

venv_is_current() {
  local venv=$1 stamp=$1/.$2.stamp
  shift 2
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(_venv_digest "$@")" ]
}

venv_create() {
  local venv=$1
  if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
  fi
  if [ ! -x "$venv/bin/uv" ]; then
    "$venv/bin/python" -m pip install --quiet uv
  fi
}

venv_mark() {
  local venv=$1 stamp=$1/.$2.stamp
  shift 2
  _venv_digest "$@" > "$stamp"
}
