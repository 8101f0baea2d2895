# shellcheck shell=bash
# Debian packages for the bench scripts (sourced).

# Installs the packages named (none: nothing to do): as root with apt-get; otherwise says
# what to run, and exits.
install_packages() {
  [ "$#" -gt 0 ] || return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "$* required: install as root (apt-get install -y $*) and run again" >&2
    exit 1
  fi
  echo "installing $* (apt-get)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# The nginx binary, on PATH or in /usr/sbin (Debian's place, off a user's PATH); nothing
# if neither.
find_nginx() {
  command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true
}
