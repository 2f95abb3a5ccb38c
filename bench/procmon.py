"""Sample a server's processes from /proc: CPU seconds (utime + stime), RSS and OS threads.

A server is a root pid plus, for gunicorn, its worker children. Every 100 ms the sampler reads
each process's /proc/<pid>/stat and /status; CPU is the sum over every pid ever seen of (last
seen - first seen), so workers that start during a run count from zero.
"""

import os
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15)


def status(pid: int) -> dict:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:", "Threads:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def machine_busy_seconds() -> float:
    """CPU seconds every core spent busy (not idle or iowait) since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


class Monitor:
    """with Monitor(pid, include_children=True) as m: ...; then m.result()."""

    def __init__(self, pid: int, include_children: bool = False, interval: float = 0.1):
        self.pid = pid
        self.include_children = include_children
        self.interval = interval
        self.first_cpu: dict[int, float] = {}
        self.last_cpu: dict[int, float] = {}
        self.peak_rss_kb = 0
        self.peak_threads = 0
        self.peak_processes = 0
        self.samples = 0
        self.started = time.monotonic()
        self.rss_series: list[tuple[float, float]] = []  # (seconds, MB), about once a second
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def pids(self) -> list[int]:
        return [self.pid, *children(self.pid)] if self.include_children else [self.pid]

    def sample(self) -> None:
        rss = threads = n = 0
        for pid in self.pids():
            cpu = cpu_seconds(pid)
            if cpu is None:
                continue
            self.first_cpu.setdefault(pid, cpu)
            self.last_cpu[pid] = cpu
            st = status(pid)
            rss += st.get("VmRSS", 0)
            threads += st.get("Threads", 0)
            n += 1
        self.peak_rss_kb = max(self.peak_rss_kb, rss)
        elapsed = time.monotonic() - self.started
        if not self.rss_series or elapsed - self.rss_series[-1][0] >= 1.0:
            self.rss_series.append((round(elapsed, 1), round(rss / 1024, 1)))
        self.peak_threads = max(self.peak_threads, threads)
        self.peak_processes = max(self.peak_processes, n)
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self):
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.sample()

    def cpu_s(self) -> float:
        return sum(self.last_cpu[p] - self.first_cpu[p] for p in self.last_cpu)

    def result(self) -> dict:
        return {
            "server_cpu_s": round(self.cpu_s(), 2),
            "peak_rss_mb": round(self.peak_rss_kb / 1024, 1),
            "peak_threads": self.peak_threads,
            "server_processes": self.peak_processes,
            "monitor_samples": self.samples,
        }


def wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{pid}"):
            return True
        time.sleep(0.05)
    return False
