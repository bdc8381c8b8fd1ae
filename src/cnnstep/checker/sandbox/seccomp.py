"""The seccomp filter bubblewrap installs in the child: no new process or thread.

A classic-BPF program (what ``bwrap --seccomp FD`` reads), written out here because libseccomp's
Python binding is only packaged for the system Python (Debian's ``python3-seccomp``), not for a
virtual environment. Its syscall numbers are x86-64's, which the kernel keeps stable; the test
suite checks each against the running system's ``asm/unistd_64.h``.
"""

from __future__ import annotations

import platform
import struct

#: The syscalls refused with EPERM, by name, with their x86-64 numbers.
BLOCKED = {"clone": 56, "fork": 57, "vfork": 58, "clone3": 435}
AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000

_LD_ABS_W, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_ALLOW, _KILL = 0x7FFF0000, 0x80000000
_EPERM = 0x00050000 | 1  # SECCOMP_RET_ERRNO | EPERM
_NR, _ARCH = 0, 4  # offsets in struct seccomp_data


def _op(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def seccomp_program() -> bytes | None:
    """The filter as bytes, or None off x86-64 (where the process limit alone applies).

    Another architecture is killed (a 32-bit syscall table would bypass the numbers); the x32
    ABI is refused; the blocked syscalls get EPERM; everything else is allowed.
    """
    if platform.machine() != "x86_64":
        return None
    numbers = list(BLOCKED.values())
    prog = [_op(_LD_ABS_W, 0, 0, _ARCH), _op(_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
            _op(_RET_K, 0, 0, _KILL), _op(_LD_ABS_W, 0, 0, _NR),
            _op(_JGE_K, 0, 1, X32_SYSCALL_BIT), _op(_RET_K, 0, 0, _EPERM)]
    for i, nr in enumerate(numbers):
        prog.append(_op(_JEQ_K, len(numbers) - i, 0, nr))
    prog += [_op(_RET_K, 0, 0, _ALLOW), _op(_RET_K, 0, 0, _EPERM)]
    return b"".join(prog)
