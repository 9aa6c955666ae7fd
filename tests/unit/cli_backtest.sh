#!/bin/sh
# cli_backtest.sh — `partnerpulse generate` then `partnerpulse backtest`, and
# the same backtest on a shuffled copy of the file with every line repeated:
# the output must be byte-identical (docs/backtest.md), in both formats, for
# deterministic and noisy scenario files, with the default and a tighter model.
# Also: an invalid line stops the backtest with FILE:LINE on stderr (exit 2),
# and --skip-invalid replays the rest with the same result.
#
# usage: cli_backtest.sh PATH/TO/partnerpulse
set -eu
BIN=$1
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT

fail() { echo "cli_backtest: FAIL: $*" >&2; exit 1; }

# A lower CUSTOMER_PRESSURE entry threshold for the model (rules.engine
# defaults to model).
cat >"$DIR/tight.yaml" <<'YAML'
tenant: acme
model:
  cp_enter: 30
  cp_resolve: 20
YAML

for mode in "--deterministic" "--noise --seed 5"; do
    # shellcheck disable=SC2086
    "$BIN" generate --scenario all $mode --out "$DIR/ev.jsonl" 2>/dev/null
    [ "$(wc -l <"$DIR/ev.jsonl")" -gt 10000 ] || fail "generate wrote too few events ($mode)"
    # Shuffled (the file itself is the random source: reproducible) and
    # every line twice.
    cat "$DIR/ev.jsonl" "$DIR/ev.jsonl" | shuf --random-source="$DIR/ev.jsonl" >"$DIR/shuf.jsonl"
    cmp -s "$DIR/ev.jsonl" "$DIR/shuf.jsonl" && fail "shuffle did nothing"
    for cfg in "" "--config $DIR/tight.yaml"; do
        for fmt in text jsonl; do
            # shellcheck disable=SC2086
            "$BIN" backtest --events "$DIR/ev.jsonl" $cfg --format $fmt --summary \
                >"$DIR/a.out" 2>"$DIR/a.err" || fail "backtest failed: $(cat "$DIR/a.err")"
            # shellcheck disable=SC2086
            "$BIN" backtest --events "$DIR/shuf.jsonl" $cfg --format $fmt --summary \
                >"$DIR/b.out" 2>"$DIR/b.err" || fail "backtest (shuffled) failed"
            grep -q FIRING "$DIR/a.out" || fail "no FIRING transition ($mode $cfg $fmt)"
            grep -q RESOLVED "$DIR/a.out" || fail "no RESOLVED transition ($mode $cfg $fmt)"
            cmp "$DIR/a.out" "$DIR/b.out" || fail "output differs after shuffle+duplication ($mode $cfg $fmt)"
            grep -q "(0 duplicate event_ids dropped" "$DIR/a.err" || fail "duplicates in the original"
            n=$(wc -l <"$DIR/ev.jsonl")
            grep -q "($n duplicate event_ids dropped" "$DIR/b.err" || fail "duplicates not counted: $(cat "$DIR/b.err")"
        done
    done
    # The configuration is applied: a lower entry threshold changes the result.
    "$BIN" backtest --events "$DIR/ev.jsonl" >"$DIR/d.out" 2>/dev/null
    "$BIN" backtest --events "$DIR/ev.jsonl" --config "$DIR/tight.yaml" >"$DIR/t.out" 2>/dev/null
    cmp -s "$DIR/t.out" "$DIR/d.out" && fail "config not applied"
done

# An invalid line: FILE:LINE on stderr, exit 2, nothing replayed.
head -n 100 "$DIR/ev.jsonl" >"$DIR/bad.jsonl"
echo '{"type":"support","event_id":"X"}' >>"$DIR/bad.jsonl"
tail -n +101 "$DIR/ev.jsonl" >>"$DIR/bad.jsonl"
set +e
"$BIN" backtest --events "$DIR/bad.jsonl" >"$DIR/c.out" 2>"$DIR/c.err"
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "invalid line: exit $rc, expected 2"
grep -q "bad.jsonl:101: " "$DIR/c.err" || fail "no FILE:LINE message: $(cat "$DIR/c.err")"
[ ! -s "$DIR/c.out" ] || fail "replayed despite an invalid line"
"$BIN" backtest --events "$DIR/bad.jsonl" --skip-invalid >"$DIR/c.out" 2>/dev/null
"$BIN" backtest --events "$DIR/ev.jsonl" >"$DIR/e.out" 2>/dev/null
cmp "$DIR/c.out" "$DIR/e.out" || fail "--skip-invalid changed the result"

# Usage errors.
set +e
"$BIN" backtest >/dev/null 2>&1; [ $? -eq 2 ] || fail "backtest without --events"
"$BIN" generate --scenario Z --out "$DIR/z" >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad scenario"
"$BIN" generate --out "$DIR/z" --kafka x >/dev/null 2>&1; [ $? -eq 2 ] || fail "--out and --kafka"
set -e
"$BIN" generate --help | grep -q -- "--scenario" || fail "generate --help"
"$BIN" backtest --help | grep -q -- "--events" || fail "backtest --help"
echo "cli_backtest: OK"
