#!/usr/bin/env python3
"""Write forewarm's seccomp profile for workload containers.

    scripts/gen-seccomp.py [/usr/include/x86_64-linux-gnu/asm/unistd_64.h] \
        > crates/forewarm-runtime/src/seccomp-workload.json

An allow-list, as Docker's default profile is: every x86_64 system call the kernel headers
name is allowed except those below, and anything else (a system call newer than the headers,
another architecture's) fails with EPERM. Denied are the calls that reach state the kernel
does not put in a container's namespaces (time, keyrings, modules, swap, accounting, the
kernel log), make namespaces or mounts (a workload has no business with either, and
unprivileged user namespaces are the usual first step of a kernel exploit), look into other
processes, or widen the kernel's attack surface for no use a workload has (BPF, perf,
userfaultfd, io_uring). `clone` is allowed without namespace flags only; `clone3`, whose
flags sit in memory a filter cannot read, answers ENOSYS so that libc falls back to `clone`;
`personality` is allowed for the plain Linux personalities and the query only (not, say,
turning off address-space randomisation).

The profile is committed; run this again only to change the lists (docs/security.md).
"""

import json
import re
import sys

HEADER = sys.argv[1] if len(sys.argv) > 1 else "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"

DENIED = {
    # Time and accounting: not namespaced.
    "acct", "adjtimex", "clock_adjtime", "clock_settime", "settimeofday",
    # Kernel keyrings: not namespaced.
    "add_key", "request_key", "keyctl",
    # Kernel modules, kexec, reboot, swap, the kernel log, obsolete interfaces.
    "create_module", "delete_module", "init_module", "finit_module", "query_module",
    "get_kernel_syms", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff",
    "syslog", "sysfs", "_sysctl", "uselib", "ustat", "vhangup", "nfsservctl", "lookup_dcookie",
    "afs_syscall", "tuxcall", "security", "getpmsg", "putpmsg",
    # Namespaces, mounts and the root.
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree",
    "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "open_by_handle_at",
    "name_to_handle_at", "quotactl", "quotactl_fd", "fanotify_init",
    # Other processes' memory and the I/O ports.
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "iopl", "ioperm",
    # Attack surface without a workload's use.
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register",
    # NUMA policy (CAP_SYS_NICE in Docker's default).
    "get_mempolicy", "set_mempolicy", "mbind", "migrate_pages", "move_pages",
    "set_mempolicy_home_node",
    # Given argument rules below.
    "clone", "clone3", "personality",
}

# CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID
# | CLONE_NEWNET | CLONE_NEWTIME(0x80)
NAMESPACE_FLAGS = 0x7E020000 | 0x80
ENOSYS = 38


def main():
    names = []
    with open(HEADER) as f:
        for line in f:
            m = re.match(r"#define __NR_(\w+)\s+\d+", line)
            if m:
                names.append(m.group(1))
    missing = sorted(n for n in DENIED if n not in names)
    allowed = sorted(n for n in names if n not in DENIED)
    syscalls = [
        {"names": allowed, "action": "SCMP_ACT_ALLOW"},
        {
            "names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
        },
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS},
    ]
    for persona in (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF):
        syscalls.append({
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": persona, "valueTwo": 0, "op": "SCMP_CMP_EQ"}],
        })
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": syscalls,
    }
    if missing:
        print(f"gen-seccomp: not in {HEADER} (skipped): {' '.join(missing)}", file=sys.stderr)
    print(json.dumps(profile, separators=(",", ":")))


main()
