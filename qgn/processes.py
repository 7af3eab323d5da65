"""Processes on this machine, asked about by pid (no Qt, no third-party module).

``process_gone`` is the one place that asks whether a process still runs: a crashed writer's leftover
(``project_kept.bring_back_taken``) and an export lock whose holder has ended (``export_lock``) both
ask it. Never ``os.kill(pid, 0)`` on Windows: there any signal but the console ones terminates the
process (``TerminateProcess``), so asking would kill another writer.
"""
from __future__ import annotations

import os


def process_gone(pid: int) -> bool:
    """Whether no process of id ``pid`` runs on this machine (False when it cannot be told). Never
    ``os.kill(pid, 0)`` on Windows: there any signal but the console ones terminates the process."""
    if pid <= 0 or pid == os.getpid():
        return pid <= 0
    if os.name == "nt":  # pragma: no cover - Windows only
        import ctypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.get_last_error() == 87  # ERROR_INVALID_PARAMETER: no such process (else: denied)
        try:
            code = ctypes.c_ulong()
            if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return False
            return code.value != 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # another user's (EPERM): alive
        return False
    return False
