#!/bin/sh
# livegraft.fleet.livepatch_info -- read-only: a host's live patch status and kernel health.
#
# A POSIX shell module like livepatch.sh (no Python on the host). Options:
#   since      a mark from an earlier call (its 'mark'): compare the kernel log and taint against it
#   expect     patches (comma-separated) that must be in force
#   settle     how long a transition may still run before it counts as unhealthy (default 10s)
#   livegraft  path of the binary (default livegraft)
# Returns healthy, mark (for a later 'since'), problems, health (livegraft health --json) and
# status (livegraft status --json). Never changes anything and never fails on an unhealthy host:
# the caller decides (the rollout role rolls the wave back).
[ -n "$1" ] && [ -r "$1" ] && . "$1"
lg=${livegraft:-livegraft}
if ! command -v "$lg" >/dev/null 2>&1; then
    printf '{"changed": false, "failed": true, "msg": "livegraft is not installed on this host"}\n'
    exit 0
fi
set -- health --settle "${settle:-10s}" --json
[ -n "$since" ] && set -- "$@" --since "$since"
[ -n "$expect" ] && set -- "$@" --expect "$expect"
health=$("$lg" "$@" 2>/dev/null)
rc=$?
status=$("$lg" status --json 2>/dev/null) || status=
if [ -z "$health" ] || [ -z "$status" ]; then
    printf '{"changed": false, "failed": true, "rc": %s, "msg": "livegraft health or status printed no document"}\n' "$rc"
    exit 0
fi
healthy=false
printf '%s\n' "$health" | grep -q '^  "healthy": true' && healthy=true
mark=$(printf '%s\n' "$health" | sed -n 's/^  "mark": "\([0-9.:]*\)",$/\1/p')
# Each failed check's message, still JSON-escaped as livegraft wrote it.
problems=$(printf '%s\n' "$health" | awk '/^  "diagnostics": \[/ { on = 1 } on && /^      "message": "/ {
    m = $0; sub(/^ *"message": /, "", m); sub(/,$/, "", m); printf "%s%s", sep, m; sep = ", " }')
printf '{"changed": false, "healthy": %s, "mark": "%s", "problems": [%s],\n"health": %s,\n"status": %s}\n' \
    "$healthy" "$mark" "$problems" "$health" "$status"
