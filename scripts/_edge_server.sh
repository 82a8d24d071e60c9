# Sourced by the reproduce scripts: start one edge server for the whole run.
#   serve_edge OUT_DIR WAIT_SECONDS [hera serve options...]
# Starts `hera serve` in the background (stopped when the script exits), waits until it prints
# its URL, and sets URL (the OpenAI-compatible base URL) and MODEL (the served model's name).
serve_edge() {
  local out="$1" wait="$2"
  shift 2
  local log="$out/serve.log"
  .venv/bin/hera serve "$@" > "$out/serve.url" 2> "$log" &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null || true' EXIT
  for _ in $(seq "$wait"); do
    [ -s "$out/serve.url" ] && break
    kill -0 $SERVER 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 1
  done
  URL="$(head -1 "$out/serve.url")"
  MODEL="$(sed -n 's/^model: *//p' "$log" | head -1)"
}
