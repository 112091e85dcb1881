#!/usr/bin/env bash
# Make a fresh Debian 12 machine ready to run Corral (and, with --test, its test suite).
# Idempotent: every step checks first and does only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
want_tests=0
[ "${1:-}" = "--test" ] && want_tests=1

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }

missing=()
restart_libvirtd=0
lists=(scripts/apt-packages.txt)
[ $want_tests = 1 ] && lists+=(scripts/apt-packages-test.txt)
while read -r pkg; do
    case "$pkg" in ''|'#'*) continue ;; esac
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done < <(cat "${lists[@]}")
if [ ${#missing[@]} -gt 0 ]; then
    log "apt: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Install services without starting them (openssh-server would start the machine's own
    # sshd): a policy-rc.d for the duration, unless the machine already has one.
    policy_made=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
        policy_made=1
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ $policy_made = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
    # libvirtd loads its storage backends when it starts: a running one never sees a new one.
    case " ${missing[*]} " in *" libvirt-daemon-driver-storage-"*) restart_libvirtd=1 ;; esac
fi

# Debian's udev rule gives /dev/kvm root:kvm 0660; without it (0600 here) libvirt decides KVM
# vanished and re-probes QEMU on every call (~50 s per createXML).
if [ -c /dev/kvm ]; then
    getent group kvm >/dev/null || groupadd -r kvm
    chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
fi

# Reinstalled when the lock or pyproject.toml changed (new entry points, e.g. migration
# transports, are registered by the editable install).
if [ ! -x .venv/bin/python ] || ! cmp -s requirements.lock .venv/.corral-lock \
    || ! cmp -s pyproject.toml .venv/.corral-pyproject; then
    log "python: .venv from requirements.lock"
    command -v uv >/dev/null || python3 -m pip install -q uv
    [ -x .venv/bin/python ] || uv venv -q .venv -p "$(command -v python3)"
    uv pip install -q -p .venv -r requirements.lock
    uv pip install -q -p .venv --no-deps -e .
    cp requirements.lock .venv/.corral-lock
    cp pyproject.toml .venv/.corral-pyproject
fi

# Bytecode of every module, written here once (uv installs without it): where Python may not
# write it itself (PYTHONDONTWRITEBYTECODE, a read-only checkout) it would compile everything a
# command imports on every run, and `corral vm list` took three times as long. Corral's own
# modules are refreshed on every run (quick when nothing changed). Third-party test files that
# are not Python 3 make compileall fail: its status says nothing about what Corral imports.
if [ ! -e .venv/.corral-bytecode ] || [ .venv/.corral-lock -nt .venv/.corral-bytecode ]; then
    log "python: bytecode of .venv"
    .venv/bin/python -m compileall -q -j 0 .venv/lib >/dev/null 2>&1 || true
    touch .venv/.corral-bytecode
fi
.venv/bin/python -m compileall -q -j 0 src

# cloud-init's schema check of user-data (corral.cloudinit.schema): Debian's cloud-init package
# unpacked into build/cloud-init, run by Debian's python3. Not installed: it would run at this
# machine's every boot. Unpacked again when apt offers another version.
cloud_init_dir=build/cloud-init
cloud_init_version=$(apt-cache policy cloud-init 2>/dev/null | awk '/Candidate:/ {print $2}')
if [ -z "$cloud_init_version" ] || [ "$cloud_init_version" = "(none)" ]; then
    apt-get update -qq
    cloud_init_version=$(apt-cache policy cloud-init | awk '/Candidate:/ {print $2}')
fi
if [ "$(cat "$cloud_init_dir/.corral-version" 2>/dev/null)" != "$cloud_init_version" ]; then
    log "cloud-init $cloud_init_version: unpacking Debian's package into $cloud_init_dir (schema check only)"
    cloud_init_tmp=$(mktemp -d)
    # As root apt drops to the _apt user, which cannot write into a private directory: keep root.
    (cd "$cloud_init_tmp" && apt-get download -qq -o APT::Sandbox::User=root "cloud-init=$cloud_init_version")
    rm -rf "$cloud_init_dir" && mkdir -p "$cloud_init_dir"
    dpkg-deb -x "$cloud_init_tmp"/cloud-init_*.deb "$cloud_init_dir"
    rm -rf "$cloud_init_tmp"
    echo "$cloud_init_version" >"$cloud_init_dir/.corral-version"
fi

# `corral` on the default PATH of every login shell: a link to this checkout's entry point.
# Never replace a `corral` that is not such a link (another installation's, say).
link=/usr/local/bin/corral
target="$PWD/.venv/bin/corral"
if [ -L "$link" ] || [ ! -e "$link" ]; then
    [ "$(readlink "$link" 2>/dev/null)" = "$target" ] || { log "linking $link -> $target"; ln -sfn "$target" "$link"; }
else
    log "warning: $link exists and is not a link; not replacing it (use $target)"
fi

if [ -f package-lock.json ] && { [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; }; then
    command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
    log "npm ci (front-end packages from package-lock.json)"
    npm ci --silent --no-audit --no-fund
    touch node_modules
fi

# The test bed's NFS and iSCSI servers run only inside its namespaces
# (corral.testbed.storage_server): none may start at boot or keep listening (ports 111, 2049,
# 3260) in this machine's own network namespace, whatever their packages' scripts did.
testbed_servers_off() {
    local unit name pid own_net
    if [ -d /run/systemd/system ]; then
        for unit in rpcbind.socket rpcbind.service nfs-common.service tgt.service \
            nfs-ganesha.service nfs-ganesha-lock.service; do
            if systemctl is-enabled -q "$unit" 2>/dev/null || systemctl is-active -q "$unit"; then
                log "disabling $unit (test-bed storage servers run in namespaces only)"
                systemctl disable -q --now "$unit" || true
            fi
        done
    fi
    for name in rpcbind nfs-common tgt; do   # sysv-rc start links (S → K)
        if compgen -G "/etc/rc[S2-5].d/S[0-9][0-9]$name" >/dev/null; then
            log "disabling the boot start of $name (test-bed storage servers run in namespaces only)"
            update-rc.d "$name" disable >/dev/null 2>&1 || true
        fi
    done
    own_net=$(readlink /proc/$$/ns/net)
    for name in rpcbind rpc.statd tgtd ganesha.nfsd; do
        for pid in $(pgrep -x "$name"); do
            [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "$own_net" ] || continue
            log "stopping $name (pid $pid): it listens in this machine's own network namespace"
            kill "$pid" 2>/dev/null || true
        done
    done
}
[ $want_tests = 1 ] && testbed_servers_off

# The machine's own daemons, told apart by their pid files from the test bed's and the test
# suite's (also named libvirtd and virtlogd, in namespaces, with pid files elsewhere).
own_pid() {
    local pid
    pid=$(cat "/run/$1.pid" 2>/dev/null) || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && echo "$pid"
}
if [ $restart_libvirtd = 1 ] && pid=$(own_pid libvirtd); then
    log "restarting libvirtd (a storage driver was installed)"
    if [ -d /run/systemd/system ]; then
        systemctl try-restart libvirtd.service
    else
        kill "$pid"
        for _ in $(seq 1 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    fi
fi

# No systemd here: start the daemons by hand when they are not running.
if ! own_pid virtlogd >/dev/null; then virtlogd -d; fi
if ! own_pid libvirtd >/dev/null; then
    log "starting libvirtd"
    libvirtd -d
fi
for _ in $(seq 1 50); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 0.1; done

if [ $want_tests = 1 ]; then
    # The store tests also run against a real PostgreSQL server.
    if ! pg_lsclusters -h 2>/dev/null | grep -q online; then
        log "starting PostgreSQL"
        pg_ctlcluster "$(pg_lsclusters -h | awk 'NR==1{print $1}')" main start
    fi
    su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='corral'\"" | grep -q 1 ||
        su postgres -c "psql -q -c \"CREATE ROLE corral LOGIN SUPERUSER PASSWORD 'corral-test'\""
    # The guests are built from .deb files that `apt-get download` fetches: it needs apt's lists,
    # for the s390x and arm64 guests those of these foreign architectures too.
    foreign_missing=0
    for arch in s390x arm64; do
        dpkg --print-foreign-architectures | grep -qx "$arch" || { dpkg --add-architecture "$arch"; foreign_missing=1; }
        compgen -G "/var/lib/apt/lists/*binary-${arch}_Packages*" >/dev/null || foreign_missing=1
    done
    if [ $foreign_missing = 1 ] || ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
        apt-get update -qq
    fi
    log "building test guests (cached under build/)"
    .venv/bin/python -m corral.testbed.guest_images build build/guests
    .venv/bin/python -m corral.testbed.arch_guests build --build-dir build/guests
    .venv/bin/python -m corral.testbed.cloud_guest build build/guests
fi
