"""The userland of the test guests: a busybox ``/init`` and the few files it needs.

What the guest does (all of it observable from the host, which is the point):

1. mounts proc, sysfs, devtmpfs, devpts and a tmpfs on /tmp; loads the virtio, SCSI disk, ACPI
   button and evdev modules listed in ``/etc/modules`` (in dependency order) so hot-plugged disks
   and NICs appear and the ACPI power button produces an input event;
2. starts busybox ``acpid``: the power button event runs ``/etc/acpi/PWRF/00000080``, which prints
   ``CORRAL-GUEST-POWEROFF`` on the serial console and powers off with ``poweroff -f`` (PID 1 is a
   shell script, not an init that would act on poweroff's signal);
3. writes ``CANARY`` ``CANARY_COPIES`` times into ``CANARY_FILE`` (a tmpfs file, i.e. guest RAM);
4. starts an interactive login shell on ttyS0 (controlling tty set, prompt ``corral# ``); the
   shell's ``/etc/profile`` prints ``CORRAL-GUEST-BOOTED source=<kernel|disk>`` on ttyS0 and tty0
   the first time, so the marker means "the shell is listening" and input typed after it is kept;
5. as PID 1, prints ``corral-heartbeat N`` once per second on ttyS0 and tty0. With
   ``corral.scroll=1`` on the kernel command line tty0 instead gets a line of text every 10 ms (a
   constantly scrolling VGA console for VNC benchmarks) while the heartbeat stays on ttyS0.
"""

from __future__ import annotations

import re

BOOT_MARKER = b"CORRAL-GUEST-BOOTED"
POWEROFF_MARKER = b"CORRAL-GUEST-POWEROFF"
HEARTBEAT_RE: re.Pattern[bytes] = re.compile(rb"corral-heartbeat (\d+)")
CANARY_TOKEN = "9c4e1f7a02b86d35e0a7c3f19b64d28e"
CANARY = b"CORRAL-CANARY-" + CANARY_TOKEN.encode()
CANARY_FILE = "/tmp/canary"
CANARY_COPIES = 2**14
SHELL_PROMPT = b"corral# "
#: busybox ash asks the terminal where its cursor is after each prompt (ESC [6n) and waits a
#: moment for the answer, eating what arrives meanwhile; a client of the serial console
#: answers like a terminal would (row 1, column 9).
CURSOR_QUERY = b"\x1b[6n"
CURSOR_REPLY = b"\x1b[1;9R"

# The modules the guest loads at boot (their dependencies are added by the builder).
GUEST_MODULES = [
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "virtio_scsi",
    "sd_mod",
    "virtio_balloon",
    "virtio_console",
    "virtio_rng",
    "button",
    "evdev",
]

INIT = r"""#!/bin/sh
# Corral test guest, PID 1. See corral/testbed/_guest_init.py for what each step is for.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
while read -r mod; do
    insmod "/lib/modules/$mod.ko" || echo "corral: insmod $mod failed"
done </etc/modules

cmdline=" $(cat /proc/cmdline) "
src=kernel
case "$cmdline" in *" corral.bootsrc=disk "*) src=disk ;; esac
scroll=0
case "$cmdline" in *" corral.scroll=1 "*) scroll=1 ;; esac
echo "CORRAL-GUEST-BOOTED source=$src" >/etc/corral-boot-marker

acpid -c /etc/acpi -l /tmp/acpid.log

echo "@CANARY@" >@CANARY_FILE@
i=0
while [ $i -lt @DOUBLINGS@ ]; do
    cat @CANARY_FILE@ @CANARY_FILE@ >@CANARY_FILE@.tmp && mv @CANARY_FILE@.tmp @CANARY_FILE@
    i=$((i + 1))
done

# The shell prints the boot marker itself (see /etc/profile): the tty is open by then.
(while :; do setsid -c sh -l <>/dev/ttyS0 >&0 2>&1; usleep 200000; done) &

if [ $scroll = 1 ]; then
    (
        n=0
        while :; do
            n=$((n + 1))
            echo "corral-scroll $n ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz 0123456789"
            usleep 10000
        done
    ) >/dev/tty0 2>&1 &
fi
n=0
while :; do
    n=$((n + 1))
    echo "corral-heartbeat $n" >/dev/ttyS0
    [ $scroll = 1 ] || echo "corral-heartbeat $n" >/dev/tty0
    sleep 1
done
"""

PROFILE = r"""# Login shell start-up on ttyS0 (see /init).
export PATH=/bin
PS1='corral# '
if mkdir /tmp/.corral-booted 2>/dev/null; then
    cat /etc/corral-boot-marker
    cat /etc/corral-boot-marker >/dev/tty0
fi
"""

POWER_BUTTON = r"""#!/bin/sh
# Run by busybox acpid on the ACPI power button (libvirt's graceful shutdown).
echo CORRAL-GUEST-POWEROFF >/dev/ttyS0
sync
poweroff -f
"""


def init_script() -> bytes:
    doublings = CANARY_COPIES.bit_length() - 1
    if 2**doublings != CANARY_COPIES:
        raise ValueError("CANARY_COPIES must be a power of two")
    text = (
        INIT.replace("@CANARY@", CANARY.decode())
        .replace("@CANARY_FILE@", CANARY_FILE)
        .replace("@DOUBLINGS@", str(doublings))
    )
    return text.encode()
