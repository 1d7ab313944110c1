"""CPU time and memory of a running process, from Linux's /proc (the live benchmarks' measurements)."""
from __future__ import annotations

import os
from pathlib import Path

TICK_S = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK_S


def threads_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds per thread ("name/tid"), from /proc/<pid>/task/*/stat."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat.split("(", 1)[1].rsplit(")", 1)[0]
        fields = stat.rsplit(")", 1)[1].split()
        out[f"{name}/{task.name}"] = (int(fields[11]) + int(fields[12])) / TICK_S
    return out


def memory_mb(pid: int, field: str = "VmHWM") -> float:
    """A memory line of /proc/<pid>/status in MB: VmRSS (now) or VmHWM (the peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")
