#!/bin/sh
# Corral's host installer: puts certificates and libvirt configuration in place, restarts
# libvirtd, and undoes everything if anything fails. Run as root from a staging directory that
# holds manifest, files/ and conf/ (made by `corral host enroll`, or by a bundle's install.sh).
#
#   activate.sh STAGING confirm SECONDS   apply, report "applied", then wait for STAGING/commit
#                                         (keep) or STAGING/abort or the time-out (roll back):
#                                         a manager that vanished half-way never leaves a
#                                         half-enrolled host behind
#   activate.sh STAGING direct            apply and keep if libvirtd comes back (bundles)
#   activate.sh STAGING merge FILE BLOCK KEYS...   print FILE merged with BLOCK (tests)
#
# STAGING/status holds one word, then a message: applying, applied, committed, rolled-back,
# failed. Backups of replaced files live in STAGING/backup until the end.
set -u
S=$1
MODE=$2
WAIT=${3:-60}
TLS_PORT_HEX=4082 # 16514

say() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
status() {
    printf '%s\n%s\n' "$1" "${2:-}" >"$S/status.tmp" && mv -f "$S/status.tmp" "$S/status"
}

# merge FILE BLOCK KEYS...: FILE without Corral's previous block, with every live setting of a
# managed key commented out, then BLOCK. A key written ?KEY is "soft": when FILE already sets
# it, FILE's value stays and BLOCK's line for it is dropped (host_uuid: an identity is kept).
merge() {
    file=$1 block=$2
    shift 2
    hard="" soft=""
    for k in "$@"; do
        case $k in \?*) soft="$soft ${k#\?}" ;; *) hard="$hard $k" ;; esac
    done
    keep=""
    if [ -f "$file" ]; then
        for k in $soft; do
            if grep -Eq "^[[:space:]]*$k[[:space:]]*=" "$file" &&
                ! sed -n '/^# BEGIN Corral/,/^# END Corral/p' "$file" |
                    grep -Eq "^[[:space:]]*$k[[:space:]]*="; then
                keep="$keep $k"
            fi
        done
        awk -v keys="$hard" '
            BEGIN { n = split(keys, k, " "); for (i = 1; i <= n; i++) managed[k[i]] = 1 }
            /^# BEGIN Corral/ { skip = 1; next }
            /^# END Corral/ { skip = 0; next }
            skip { next }
            {
                line = $0; sub(/^[ \t]+/, "", line); key = line; sub(/[ \t]*=.*/, "", key)
                if (line !~ /^#/ && (key in managed)) { print "#corral# " $0; next }
                print
            }' "$file"
    fi
    awk -v keys="$keep" '
        BEGIN { n = split(keys, k, " "); for (i = 1; i <= n; i++) kept[k[i]] = 1 }
        { key = $0; sub(/[ \t]*=.*/, "", key); if (key in kept) next; print }' "$block"
}

if [ "$MODE" = merge ]; then
    shift 2
    merge "$@"
    exit $?
fi

qemu_group() {
    for g in libvirt-qemu qemu kvm; do
        if getent group "$g" >/dev/null 2>&1; then echo "$g"; return; fi
    done
    echo root
}
QGROUP=$(qemu_group)

# Every path the manifest touches: "file MODE GROUP PATH" or "conf PATH KEYS...".
targets() { awk '$1 == "file" { print $4 } $1 == "conf" { print $2 }' "$S/manifest"; }

backup() {
    mkdir -p "$S/backup"
    : >"$S/existed"
    : >"$S/created"
    : >"$S/madedirs"
    for t in $(targets); do
        if [ -e "$t" ]; then
            mkdir -p "$S/backup$(dirname "$t")"
            cp -p "$t" "$S/backup$t" || return 1
            echo "$t" >>"$S/existed"
        else
            echo "$t" >>"$S/created"
        fi
        d=$(dirname "$t")
        missing=""
        while [ ! -d "$d" ]; do
            missing="$d $missing"
            d=$(dirname "$d")
        done
        for m in $missing; do
            grep -qx "$m" "$S/madedirs" || echo "$m" >>"$S/madedirs"
        done
    done
}

install_all() {
    while read -r kind a b c rest; do
        case $kind in
        file)
            mode=$a group=$b path=$c
            [ "$group" = qemu ] && group=$QGROUP
            dir=$(dirname "$path")
            mkdir -p "$dir" || return 1
            new="$path.corral-new"
            cp "$S/files$path" "$new" && chmod "$mode" "$new" && chgrp "$group" "$new" &&
                mv -f "$new" "$path" || return 1
            ;;
        conf)
            path=$a
            # shellcheck disable=SC2086
            merge "$path" "$S/conf$path" $b $c $rest >"$path.corral-new" &&
                chmod 0644 "$path.corral-new" && mv -f "$path.corral-new" "$path" || return 1
            ;;
        esac
    done <"$S/manifest"
}

restore_all() {
    while read -r t; do
        [ -n "$t" ] && cp -p "$S/backup$t" "$t.corral-old" && mv -f "$t.corral-old" "$t"
    done <"$S/existed"
    while read -r t; do
        [ -n "$t" ] && rm -f "$t"
    done <"$S/created"
    for t in $(targets); do rm -f "$t.corral-new"; done
    # Directories this run made, deepest first, if nothing else was put in them.
    sort -r "$S/madedirs" | while read -r d; do [ -n "$d" ] && rmdir "$d" 2>/dev/null; done
    return 0
}

# -- libvirtd: systemd units, or (no init system) the daemon's pid file ---------------------
systemd() { [ -d /run/systemd/system ]; }
PIDFILE=/run/libvirtd.pid

daemon_pid() {
    [ -f "$PIDFILE" ] || return 1
    pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
    alive "$pid" && echo "$pid"
}
alive() { # a zombie counts as gone
    [ -r "/proc/$1/stat" ] || return 1
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$state" ] && [ "$state" != Z ]
}
stop_daemon() {
    pid=$(daemon_pid) || return 0
    kill -TERM "$pid" 2>/dev/null
    i=0
    while alive "$pid" && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null; sleep 0.2; fi
    return 0
}
tls_listening() { grep -qi ":$TLS_PORT_HEX [0-9A-F:]* 0A" /proc/net/tcp /proc/net/tcp6 2>/dev/null; }
wait_up() { # $1: also wait for the TLS port
    i=0
    while [ $i -lt 150 ]; do
        if [ -S /run/libvirt/libvirt-sock ] && daemon_pid >/dev/null; then
            [ "$1" = tls ] || return 0
            tls_listening && return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

restart_new() {
    if systemd; then
        systemctl is-enabled --quiet libvirtd-tls.socket 2>/dev/null && echo yes >"$S/tls-socket-was-enabled"
        systemctl enable --now libvirtd-tls.socket && systemctl restart libvirtd.service
        return
    fi
    if pid=$(daemon_pid); then
        tr '\0' '\n' <"/proc/$pid/cmdline" >"$S/libvirtd.cmdline"
    fi
    stop_daemon
    rm -f /run/libvirt/libvirt-sock
    libvirtd -d --listen || return 1
    wait_up tls
}

restart_old() {
    if systemd; then
        [ -f "$S/tls-socket-was-enabled" ] || systemctl disable --now libvirtd-tls.socket
        systemctl restart libvirtd.service
        return
    fi
    stop_daemon
    [ -s "$S/libvirtd.cmdline" ] || return 0 # it was not running
    # shellcheck disable=SC2046
    set -- $(cat "$S/libvirtd.cmdline")
    "$@"
    wait_up unix
}

finish() { # $1 status word, $2 message; the keys in STAGING go in every case
    rm -rf "$S/files" "$S/conf" "$S/backup"
    status "$1" "${2:-}"
}

rollback() { # $1 why
    say "rolling back: $1"
    restore_all
    restart_old || say "libvirtd did not start again with the old configuration"
    finish rolled-back "$1"
}

status applying "installing"
if ! backup; then
    finish failed "could not back up the current configuration"
    exit 1
fi
if ! install_all; then
    rollback "installing the files failed"
    exit 1
fi
if ! restart_new; then
    rollback "libvirtd did not come back with TLS on port 16514 (see its log)"
    exit 1
fi
if [ "$MODE" = direct ]; then
    finish committed "installed; libvirtd listens for TLS"
    exit 0
fi
status applied "libvirtd restarted; waiting for the manager's confirmation"
i=0
while [ $i -lt $((WAIT * 10)) ]; do
    if [ -e "$S/commit" ]; then
        finish committed "installed"
        exit 0
    fi
    if [ -e "$S/abort" ]; then
        rollback "$(cat "$S/abort")"
        exit 1
    fi
    sleep 0.1
    i=$((i + 1))
done
rollback "no confirmation from the manager within $WAIT s"
# Nobody is waiting for the outcome: leave nothing behind.
rm -rf "$S"
rmdir "$(dirname "$S")" 2>/dev/null
exit 1
