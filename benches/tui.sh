#!/usr/bin/env bash
# The live views must not slow a deploy down: the 10,000-stack zero-second deploy (a random DAG
# about 50 layers deep, 10 zero-second resources per stack) run in a real pseudo-terminal (tmux,
# 120x40) with the simple view and with the interactive view must take at most 1.2 x the time
# of the same deploy with `--output json > /dev/null`. Every run deploys every stack (`--force`:
# without it, every run after the first would skip the unchanged stacks).
#
#   benches/tui.sh              # release build, 3 rounds of the three, medians
#   RUNS=5 STACKS=2000 RESOURCES=2 benches/tui.sh
#   CLOUD_BIN=/path/to/other/cloud benches/tui.sh
#
# Prints one line per view and exits non-zero when a ratio is over the limit.
set -euo pipefail

cd "$(dirname "$0")/.."
STACKS=${STACKS:-10000}
RESOURCES=${RESOURCES:-10}
RUNS=${RUNS:-3}
LIMIT=${LIMIT:-1.2}
command -v tmux >/dev/null || { echo "tui.sh needs tmux (apt-get install -y tmux)" >&2; exit 2; }

# CLOUD_BIN=/path/to/cloud measures another build (e.g. an older version) instead of this one.
if [ -n "${CLOUD_BIN:-}" ]; then
    BIN=$CLOUD_BIN
else
    cargo build --release --quiet
    BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/cloud"
fi

WORK=$(mktemp -d)
SOCKET="cloud-bench-$$"
SOCKET_PATH="${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$SOCKET"
cleanup() {
    tmux -L "$SOCKET" kill-server 2>/dev/null || true
    rm -f "$SOCKET_PATH"
    rm -rf "$WORK"
}
trap cleanup EXIT

# The manifest: stacks in ~50 layers; each depends on one to three stacks of the layer before
# it (a fixed seed, so every run deploys the same DAG).
mkdir -p "$WORK/cloud/deploy/BENCH"
awk -v n="$STACKS" -v resources="$RESOURCES" 'BEGIN {
    srand(42);
    layers = 50; per = int(n / layers); if (per < 1) per = 1;
    print "deploymentId: BENCH";
    print "environments: [dev]";
    print "defaults: { executor: simulate }";
    print "stacks:";
    for (i = 0; i < n; i++) {
        layer = int(i / per);
        printf "  s%05d:\n", i;
        if (layer > 0) {
            k = 1 + int(rand() * 3);
            deps = "";
            for (j = 0; j < k; j++) {
                d = (layer - 1) * per + int(rand() * per);
                name = sprintf("s%05d", d);
                if (index(deps, name) == 0) deps = deps (deps == "" ? "" : ", ") name;
            }
            printf "    dependencies: [%s]\n", deps;
        }
        printf "    resources:\n";
        for (r = 0; r < resources; r++)
            printf "      - { type: \"aws:s3/bucket:Bucket\", name: r%d, seconds: 0 }\n", r;
    }
}' > "$WORK/cloud/deploy/BENCH/deployment.yaml"

# One timed deploy in the tmux pane; prints its wall seconds.
timed() {
    local args="$1" out="$WORK/time.$RANDOM"
    tmux -u -L "$SOCKET" -f /dev/null new-session -d -x 120 -y 40 -s bench \
        "cd '$WORK' && env -u CI -u NO_COLOR -u CLOUD_ROOT sh -c 'start=\$(date +%s.%N); \"$BIN\" deploy BENCH -e dev --force $args; code=\$?; end=\$(date +%s.%N); echo \"\$code \$start \$end\" > $out'"
    while [ ! -s "$out" ]; do sleep 0.05; done
    tmux -L "$SOCKET" kill-server 2>/dev/null || true
    read -r code start end < "$out"
    [ "$code" = 0 ] || { echo "deploy $args exited $code (try it by hand in $WORK)" >&2; exit 1; }
    echo "$end - $start" | bc -l
}

median() { sort -n | awk '{ a[NR] = $1 } END { printf "%.3f", a[int((NR + 1) / 2)] }'; }

# The three in turn, round after round, so that a change in the machine's load falls on all of
# them alike.
declare -A times
for ((i = 0; i < RUNS; i++)); do
    times[json]+="$(timed "--output json > /dev/null") "
    times[simple]+="$(timed "") "
    times[interactive]+="$(timed "-i --exit-on-done") "
done
for view in json simple interactive; do
    printf -v "$view" '%s' "$(tr ' ' '\n' <<< "${times[$view]}" | grep . | median)"
done

fail=0
rounds() { tr ' ' '\n' <<< "${times[$1]}" | grep . | xargs printf '%.2f ' | sed 's/ $//'; }
printf "%-12s %8ss         (rounds: %s)\n" "json" "$json" "$(rounds json)"
for view in simple interactive; do
    t=${!view}
    ratio=$(echo "$t / $json" | bc -l)
    verdict=ok
    if (( $(echo "$ratio > $LIMIT" | bc -l) )); then verdict="OVER $LIMIT"; fail=1; fi
    printf "%-12s %8ss  %.2fx  %-9s (rounds: %s)\n" "$view" "$t" "$ratio" "$verdict" "$(rounds "$view")"
done
echo "($STACKS stacks x $RESOURCES resources, medians of $RUNS interleaved rounds, tmux 120x40)"
exit $fail
