# shellcheck shell=bash
# Process helpers for the bench scripts (sourced). Servers run under setsid, each in a
# process group of its own (nginx's and uvicorn's workers are its children).

# Whether process $1 runs (not gone, not a zombie).
alive() { case $(ps -o stat= -p "$1" 2>/dev/null) in '' | Z*) return 1 ;; esac; }

# Ends process $1's whole group: SIGTERM, up to 10 s to go, then SIGKILL.
stop() {
  local p=$1
  [ -n "$p" ] || return 0
  kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 100); do alive "$p" || break; sleep 0.1; done
  kill -KILL -- "-$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
