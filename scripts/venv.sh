# Sourced by run.sh and test.sh: make .venv exist and hold the packages of the given requirements file.
# Re-installs only when a requirements file changed (a stamp holds their sha256).
ensure_venv() {
  local requirements="$1"
  local as_root=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then as_root="sudo"; fi
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    $as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq python3-venv >/dev/null
  fi
  [ -x .venv/bin/python ] || python3 -m venv .venv
  local stamp=.venv/.requirements.sha256
  local want
  want=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)-$(basename "$requirements")
  if [ ! -f "$stamp" ] || ! grep -qx -- "$want" "$stamp"; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" >> "$stamp"
  fi
}
