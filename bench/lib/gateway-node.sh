# shellcheck shell=bash
# What the gateway bench scripts share (sourced): the upstream nginx of bench/gateway.sh,
# and a node made as bench/gateway.sh makes Warden's. Needs bench/lib/procs.sh.

# Starts bench/gateway/upstream.conf's nginx (one worker) under DIR on PORT, with the nginx
# binary NGINX; sets upstream_pid, and waits (10 s at most) until it answers.
start_upstream() {
  local dir=$1 port=$2 nginx=$3 user=
  mkdir -p "$dir"
  # nginx's workers run as nobody when started as root: they must reach DIR.
  chmod 0755 "$(dirname "$dir")" "$dir"
  [ "$(id -u)" -ne 0 ] || user="user nobody $(id -gn nobody 2>/dev/null || echo nogroup);"
  sed -e "s|@DIR@|$dir|g" -e "s|@USER@|$user|g" -e "s|@NOFILE@|4096|g" \
    -e "s|@WORKER_CONNECTIONS@|2048|g" -e "s|@PORT@|$port|g" \
    bench/gateway/upstream.conf >"$dir/nginx.conf"
  setsid "$nginx" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >/dev/null 2>&1 &
  upstream_pid=$!
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/v1/models" && return 0
    sleep 0.1
  done
  echo "the upstream (nginx) did not answer within 10 s:" >&2
  tail -n 20 "$dir/error.log" >&2
  exit 1
}

# Makes RUN/node with Warden binary BIN (`warden init`, a P-256 certificate,
# bench/gateway/warden.toml's settings with the upstream on UPSTREAM_PORT) and an API key
# for model "bench", written to RUN/key (mode 0600; never printed).
make_node() {
  local bin=$1 run=$2 upstream_port=$3 node=$2/node
  mkdir -p "$run"
  WARDEN_DATA="$node" "$bin" init --json >"$run/init.json"
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["token"])' "$run/init.json" \
    >"$run/admin.token"
  mkdir -p "$node/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$node/tls/key.pem" -out "$node/tls/cert.pem" >/dev/null 2>&1
  chmod 0600 "$node/tls/key.pem"
  sed -e "s|@UPSTREAM_PORT@|$upstream_port|g" bench/gateway/warden.toml >>"$node/warden.toml"
  WARDEN_DATA="$node" WARDEN_TOKEN_FILE="$run/admin.token" "$bin" apikey create \
    --principal bench --models bench --json >"$run/apikey.json"
  (umask 077 && python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["key"])' \
    "$run/apikey.json" >"$run/key")
}
