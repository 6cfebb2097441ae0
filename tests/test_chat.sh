#!/usr/bin/env bash
# test_chat.sh - `frugal chat` driven through a pipe with the fortune model: a 3-turn
# conversation where each turn reuses the whole cache of the turns before (the
# /stats token counts), /save + /clear + /load restoring it (same messages, saved
# again byte for byte), -sys, usage and file errors, and Ctrl-C at the prompt not
# leaving. Needs ../shared (skips without it).
set -u
. "$(dirname "$0")/lib.sh"
test_setup test_chat
MODEL=$SHARED/models/fortune-3m-q8_0.gguf

expect_exit 0 "" chat --help
grep -q "usage: frugal chat" "$TMP/out" && ok || bad "chat --help"
expect_exit 2 "chat: -m MODEL is required" chat
expect_exit 2 "chat-template" chat -m x.gguf --chat-template nope
expect_exit 1 "none.gguf" chat -m "$TMP/none.gguf"
[ -f "$MODEL" ] || { echo "SKIP: $MODEL not found"; test_finish test_chat; exit 77; }

# ------------------------------------------------------------ three turns + save/load
C="$FRUGAL chat -m $MODEL -s 1 --temp 0 -n 16"
printf '%s\n' "Tell me a fortune" /stats "Another one" /stats "And a third" /stats \
    "/save $TMP/conv.json" /clear /stats "/load $TMP/conv.json" /stats "/save $TMP/conv2.json" |
    $C >"$TMP/out" 2>"$TMP/err"
[ $? -eq 0 ] && ok || bad "3-turn chat exited non-zero: $(head -c 300 "$TMP/err")"
grep -q "using chatml" "$TMP/err" && ok || bad "no note about the chatml fallback"
grep -qE "^chat: 3 turns, prompt [0-9]+ tokens .* generated [0-9]+ tokens" "$TMP/err" && ok ||
    bad "chat does not end with its statistics line"
field() { # field N PATTERN: the number after PATTERN in the N-th stats block
    grep "$2" "$TMP/out" | sed -n "$1p" | sed -E "s/.*$2 ([0-9]+).*/\1/"
}
kv1=$(field 1 "kv tokens"); kv2=$(field 2 "kv tokens"); kv3=$(field 3 "kv tokens")
re2=$(field 2 "reused"); re3=$(field 3 "reused")
new2=$(field 2 "evaluated"); new3=$(field 3 "evaluated")
echo "kv after turns: $kv1 $kv2 $kv3; turn 2 reused $re2 evaluated $new2; turn 3 reused $re3 evaluated $new3"
# turn 2 starts from everything turn 1 left in the cache and evaluates only less
# than that (its own message); the same for turn 3
[ -n "$kv1" ] && [ "$re2" = "$kv1" ] && [ "$new2" -lt "$kv1" ] && ok || bad "turn 2 re-evaluated turn 1"
[ -n "$kv2" ] && [ "$re3" = "$kv2" ] && [ "$new3" -lt "$kv2" ] && ok || bad "turn 3 re-evaluated the history"
[ "$kv1" -lt "$kv2" ] && [ "$kv2" -lt "$kv3" ] && ok || bad "the cache did not grow turn by turn"
grep -q "full re-evaluations 0" "$TMP/out" && ! grep -q "full re-evaluations [1-9]" "$TMP/out" && ok ||
    bad "a turn re-evaluated the whole conversation"
grep -q "turns 3, messages 6" "$TMP/out" && ok || bad "3 turns, 6 messages"
grep -q "turns 3, messages 0, kv tokens 0" "$TMP/out" && ok || bad "/clear empties conversation and cache"
if grep -q "needs cJSON" "$TMP/err"; then
    # a -DFRUGAL_SERVER=OFF build without libcjson-dev has no /save and /load
    echo "SKIP (part): frugal was built without cJSON: /save, /load, -sys checks not run"
    test_finish test_chat
    exit $?
fi
grep -q "loaded 6 messages" "$TMP/out" && ok || bad "/load"
[ "$(grep -c "turns 3, messages 6, kv tokens [1-9]" "$TMP/out")" = 2 ] && ok || bad "/load restores 6 messages in the cache"
cmp -s "$TMP/conv.json" "$TMP/conv2.json" && ok || bad "saving the loaded conversation gives another file"
if command -v python3 >/dev/null; then
    python3 - "$TMP/conv.json" "$TMP/out" <<'PY' && ok || bad "saved JSON does not hold the conversation"
import json, sys
m = json.load(open(sys.argv[1]))["messages"]
assert [x["role"] for x in m] == ["user", "assistant"] * 3, m
assert [x["content"] for x in m[0::2]] == ["Tell me a fortune", "Another one", "And a third"]
out = open(sys.argv[2]).read()
assert all(x["content"] in out for x in m[1::2]), "answers differ from what was printed"
PY
fi
# a continued conversation after /load evaluates only the new turn
printf '%s\n' "/load $TMP/conv.json" "One more" /stats | $C >"$TMP/out" 2>"$TMP/err"
loaded=$(sed -nE 's/^loaded 6 messages \(([0-9]+) tokens\).*/\1/p' "$TMP/out")
[ -n "$loaded" ] && [ "$(field 1 reused)" = "$loaded" ] && ok || bad "turn after /load re-evaluated: $(cat "$TMP/out")"

# ------------------------------------------------------------ -sys, errors in pipe mode
printf '%s\n' "hello" "/save $TMP/sys.json" | $C -sys "You are terse." >"$TMP/out" 2>"$TMP/err"
grep -q '"role":[[:space:]]*"system"' "$TMP/sys.json" && grep -q "You are terse." "$TMP/sys.json" && ok ||
    bad "-sys is not the first message"
echo '{"messages": 3}' >"$TMP/bad.json"
printf '%s\n' "/load $TMP/bad.json" | $C >"$TMP/out" 2>"$TMP/err"
[ $? -eq 1 ] && grep -q "bad.json: not a conversation" "$TMP/err" && ok || bad "/load of a bad file"
printf '%s\n' "/load $TMP/missing.json" /frobnicate "/save" | $C >"$TMP/out" 2>"$TMP/err"
[ $? -eq 1 ] && grep -q "missing.json" "$TMP/err" && grep -q "unknown command '/frobnicate'" "$TMP/err" &&
    grep -q "/save needs a FILE" "$TMP/err" && ok || bad "command errors: $(cat "$TMP/err")"
printf '%s\n' "hi" "/save $TMP/nodir/x.json" | $C >"$TMP/out" 2>"$TMP/err"
[ $? -eq 1 ] && grep -q "nodir/x.json: cannot create" "$TMP/err" && ok || bad "/save into a missing dir"

# ------------------------------------------------------------ Ctrl-C at the prompt
mkfifo "$TMP/in"
$C <"$TMP/in" >"$TMP/out" 2>"$TMP/err" &
pid=$!
exec 3>"$TMP/in"
printf 'hi\n/stats\n' >&3
for _ in $(seq 600); do grep -q "^stats: turns 1" "$TMP/out" && break; sleep 0.1; done
kill -INT $pid
printf '/stats\n' >&3
exec 3>&-
# never hang the suite: a chat that does not leave at the end of input is killed
for _ in $(seq 1200); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -9 $pid 2>/dev/null
wait $pid
rc=$?
[ $rc -eq 0 ] && [ "$(grep -c '^stats: turns 1' "$TMP/out")" = 2 ] && ok || bad "SIGINT at the prompt: rc $rc, $(cat "$TMP/out")"

# ------------------------------------------------------------ a terminal (line editing)
if command -v python3 >/dev/null && ldd "$FRUGAL" | grep -qE "libedit|libreadline"; then
    if python3 "$(dirname "$0")/chat/pty_chat.py" "$FRUGAL" "$MODEL" >"$TMP/pty.out" 2>&1; then ok
    else bad "chat on a terminal: $(grep -v '^PASS' "$TMP/pty.out" | head -5)"; fi
else
    echo "SKIP (part): frugal has no line editing (libedit-dev) or no python3: terminal test not run"
fi
test_finish test_chat
