#!/bin/sh
# livegraft.fleet.livepatch -- bring a host's live patches to a state, with the livegraft binary on it.
#
# A POSIX shell module (busybox sh is enough): target hosts need no Python. Ansible hands it an
# old-style arguments file of shell-quoted key=value words (ansible/plugins/action: shlex.quote), which
# is sourced. Options (see ansible/README.md and docs/fleet.md):
#   state      updated (default): the repository's newest patch for the running kernel, loaded and installed
#              installed: that (or name/version) loaded and installed; no upgrade when a repository patch is in force
#              loaded: like installed, but not kept for boot
#              absent: unload and uninstall NAME (or every patch without name)
#              rolled_back: put back what was in force and installed before the last update
#   repo       repository path or http(s) URL, as the host sees it (updated, installed, loaded)
#   name       patch (module) name; version: repository version (pin, or go back)
#   timeout    transition timeout per patch (default 60s); livegraft: path of the binary (default livegraft)
# Returns changed, rc, msg, diagnostic (the first error's LGxxxx id), result (livegraft's --json document)
# and status (livegraft status --json after the change).
[ -n "$1" ] && [ -r "$1" ] && . "$1"
state=${state:-updated}
timeout=${timeout:-60s}
lg=${livegraft:-livegraft}
errfile=$(mktemp 2>/dev/null || echo /tmp/livegraft-module.$$)
trap 'rm -f "$errfile"' EXIT

# A JSON string from arbitrary text (backslash, quote, tab, newline escaped; other control bytes dropped).
json_str() {
    printf '%s' "$1" | tr -d '\000-\010\013-\037' | awk 'BEGIN { ORS = ""; printf "\"" }
        { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); if (NR > 1) printf "\\n"; printf "%s", $0 }
        END { printf "\"" }'
}

# The first error diagnostic of a livegraft --json document: "LGxxxx<TAB>message" (message still JSON-escaped).
first_error() {
    printf '%s\n' "$1" | awk '
        /^ *"id": "LG[0-9]+"/ { id = $0; sub(/^ *"id": "/, "", id); sub(/".*$/, "", id) }
        /^ *"severity": "error"/ { want = 1 }
        want && /^ *"message": "/ { m = $0; sub(/^ *"message": "/, "", m); sub(/",?$/, "", m); print id "\t" m; exit }'
}

# Runs livegraft VERB... --json: $out (the document, or empty), $rc.
lgrun() {
    out=$("$lg" "$@" --json 2>"$errfile")
    rc=$?
}

changed=false
finish() { # finish FAILED MSG_JSON RESULT_JSON
    status=$("$lg" status --json 2>/dev/null) || status=
    [ -n "$status" ] || status=null
    diag=null
    msg=$2
    if [ "$1" = true ] && [ -n "$3" ] && [ "$3" != null ]; then
        e=$(first_error "$3")
        if [ -n "$e" ]; then
            diag="\"${e%%	*}\""
            msg="\"${e%%	*}: ${e#*	}\""
        fi
    fi
    [ -n "$msg" ] || msg=$(json_str "livegraft $state: exit $rc: $(tail -n 3 "$errfile" 2>/dev/null)")
    printf '{"changed": %s, "failed": %s, "rc": %s, "state": "%s", "msg": %s, "diagnostic": %s,\n"result": %s,\n"status": %s}\n' \
        "$changed" "$1" "${rc:-0}" "$state" "$msg" "$diag" "${3:-null}" "$status"
    exit 0
}

if ! command -v "$lg" >/dev/null 2>&1; then
    rc=127
    finish true "$(json_str "livegraft is not installed on this host (looked for '$lg'); copy the NativeAOT binary to /usr/bin/livegraft")" null
fi
case "$state" in
    updated|installed|loaded|absent|rolled_back) ;;
    *) rc=1; finish true "$(json_str "state must be updated, installed, loaded, absent or rolled_back, not '$state'")" null ;;
esac
if [ "${_ansible_check_mode:-False}" = True ]; then
    printf '{"changed": false, "skipped": true, "msg": "check mode: livegraft.fleet.livepatch does not predict changes"}\n'
    exit 0
fi

case "$state" in
updated|installed|loaded)
    if [ -z "$repo" ]; then rc=1; finish true "$(json_str "state=$state needs repo (a path or URL the host can read)")" null; fi
    if [ "$state" != updated ] && [ -z "$name" ] && [ -z "$version" ]; then
        # installed/loaded keep whatever repository version is in force (no upgrade): like a package's 'present'.
        if "$lg" status --json 2>/dev/null | grep -q '^  "repositoryVersion": [0-9]'; then
            rc=0
            finish false "$(json_str "a repository patch is already in force; state=updated upgrades it")" null
        fi
    fi
    set -- update --repo "$repo" --timeout "$timeout"
    [ -n "$name" ] && set -- "$@" --name "$name"
    [ -n "$version" ] && set -- "$@" --version "$version"
    [ "$state" = loaded ] && set -- "$@" --no-install
    lgrun "$@"
    printf '%s\n' "$out" | grep -q '^  "changed": true' && changed=true
    [ -n "$out" ] || out=null
    [ "$rc" -eq 0 ] && finish false "$(json_str "$(printf '%s\n' "$out" | sed -n 's/^  "action": "\(.*\)",$/\1/p')")" "$out"
    finish true "" "$out"
    ;;
rolled_back)
    lgrun rollback --timeout "$timeout"
    printf '%s\n' "$out" | grep -q '^  "changed": true' && changed=true
    [ -n "$out" ] || out=null
    [ "$rc" -eq 0 ] && finish false "$(json_str "$(printf '%s\n' "$out" | sed -n 's/^  "action": "\(.*\)",$/\1/p')")" "$out"
    finish true "" "$out"
    ;;
absent)
    if [ -n "$name" ]; then
        lgrun unload "$name" --timeout "$timeout"; unload_rc=$rc; unload=${out:-null}
        # LG0512: not loaded, LG0532: not installed -- already absent, not an error.
        if [ "$unload_rc" -eq 0 ]; then changed=true
        elif ! printf '%s\n' "$unload" | grep -q '"id": "LG0512"'; then finish true "" "$unload"; fi
        lgrun uninstall "$name"; uninstall=${out:-null}
        if [ "$rc" -eq 0 ]; then changed=true
        elif ! printf '%s\n' "$uninstall" | grep -q '"id": "LG0532"'; then finish true "" "$uninstall"; fi
    else
        lgrun unload --all --timeout "$timeout"; unload=${out:-null}
        [ "$rc" -eq 0 ] || finish true "" "$unload"
        printf '%s\n' "$unload" | grep -q '"unloaded": true' && changed=true
        uninstall="[]"
        release=$(cat /proc/sys/kernel/osrelease)
        for n in $("$lg" list --json 2>/dev/null | awk '/^  "installed": \[/ { on = 1 } on && /^      "name": "/ { s = $0; sub(/^ *"name": "/, "", s); sub(/".*/, "", s); print s }'); do
            lgrun uninstall "$n" --release "$release"
            [ "$rc" -eq 0 ] || finish true "" "${out:-null}"
            changed=true
        done
    fi
    rc=0
    finish false "$(json_str "absent")" "{\"unload\": ${unload:-null}, \"uninstall\": ${uninstall:-null}}"
    ;;
esac
