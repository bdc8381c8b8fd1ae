"""The seccomp filter's syscall numbers are the running system's, and the program is the one
bubblewrap runs (the hostile tests show it refuses fork)."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cnnstep.checker.sandbox.seccomp import BLOCKED, seccomp_program

HEADERS = [Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
           Path("/usr/include/asm/unistd_64.h")]


def kernel_numbers() -> dict[str, int]:
    """Syscall numbers from the kernel's headers, else from ``ausyscall``; skip naming what is
    missing when neither is there."""
    for header in HEADERS:
        if header.is_file():
            found = re.findall(r"#define __NR_(\w+)\s+(\d+)", header.read_text())
            return {name: int(nr) for name, nr in found}
    if shutil.which("ausyscall"):
        out = subprocess.run(["ausyscall", "x86_64", "--dump"], capture_output=True,
                             text=True, check=True).stdout
        return {name: int(nr) for nr, name in re.findall(r"^(\d+)\s+(\w+)$", out, re.M)}
    pytest.skip("needs the kernel headers (apt package linux-libc-dev: asm/unistd_64.h) or "
                "ausyscall (auditd)")


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the filter is x86-64's only")
def test_every_blocked_syscall_has_the_kernels_number():
    numbers = kernel_numbers()
    for name, nr in BLOCKED.items():
        assert numbers.get(name) == nr, name


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the filter is x86-64's only")
def test_the_program_checks_the_architecture_then_each_blocked_number():
    program = seccomp_program()
    assert program is not None and len(program) % 8 == 0
    constants = [int.from_bytes(program[i + 4:i + 8], "little")
                 for i in range(0, len(program), 8)]
    assert constants[1] == 0xC000003E  # AUDIT_ARCH_X86_64
    assert set(BLOCKED.values()) <= set(constants)
