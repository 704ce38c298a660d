"""keynode PSI-cardinality vs openmined-psi 2.0.6 on the same N x N sets, in one run.

    pip install -e '.[bench]' && python bench/psi_vs_openmined.py --size 100000

keynode runs end to end over loopback gRPC with the key node in its own process:
*cold* is a fresh key-node process (nothing hashed or blinded yet), *warm* is a second
session of the same partner once the key node's blinded set is cached. openmined-psi
runs in its own process with its client and server in one address space (no transport:
that favours it). Both sets have N identifiers; half of them are shared. Prints one
JSON line; peak RSS is per process (the worker processes are reported separately).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


def _tree_rss_kib(pid: int, exclude: frozenset[int]) -> int:
    """Resident memory of a process and all its descendants (worker processes), in KiB."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        if p in exclude:
            continue
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(status.split("VmRSS:")[1].split()[0])
            for task in Path(f"/proc/{p}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total


class PeakTreeRss:
    """Samples a process tree's total RSS every 100 ms in a background thread."""

    def __init__(self, pid: int, exclude: frozenset[int] = frozenset()) -> None:
        self.pid, self.exclude, self.peak_kib = pid, exclude, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak_kib = max(self.peak_kib, _tree_rss_kib(self.pid, self.exclude))

    def __enter__(self) -> PeakTreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def key_node_keys(n: int) -> list[bytes]:
    return [f"email:customer{i}@example.com".encode() for i in range(n)]


def partner_keys(n: int) -> list[bytes]:
    return [f"email:customer{i}@example.com".encode() for i in range(n // 2, n + n // 2)]


# -- keynode key node, in its own process ---------------------------------------------


def serve(size: int, workers: int) -> None:
    """Child process: serve the key node's set until stdin closes."""
    from keynode.crypto.batch import GroupPool
    from keynode.matching.engine import MatchingEngine, MatchingLimits
    from keynode.matching.server import start_matching_server

    with GroupPool(workers) as pool:
        engine = MatchingEngine(
            key_node_keys(size), "bench", pool, limits=MatchingLimits(max_set_size=10 * size)
        )
        running = start_matching_server(engine, "127.0.0.1:0")
        print(f"127.0.0.1:{running.port}", flush=True)
        sys.stdin.read()
        running.stop()


def run_keynode(size: int, workers: int) -> dict[str, object]:
    import grpc

    from keynode.client.matching import MatchingClient
    from keynode.crypto.batch import GroupPool
    from keynode.protocols.psi import Variant

    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--size", str(size), "--workers", str(workers)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin and server.stdout
    address = server.stdout.readline().strip()
    records = [[k] for k in partner_keys(size)]
    timings = {}
    with (
        PeakTreeRss(os.getpid(), exclude=frozenset({server.pid})) as partner_rss,
        PeakTreeRss(server.pid) as key_node_rss,
        GroupPool(workers) as pool,
        grpc.insecure_channel(address) as channel,
    ):
        client = MatchingClient(channel, target=address)
        for run in ("cold", "warm"):
            started = time.perf_counter()
            result = client.match("partner", records, "bench", Variant.CARDINALITY, pool)
            timings[run] = time.perf_counter() - started
            assert result.overlap == size - size // 2, result.overlap
    server.stdin.close()
    server.wait(timeout=60)
    return {
        "keynode_cold_s": round(timings["cold"], 2),
        "keynode_warm_s": round(timings["warm"], 2),
        # Whole process trees (main process + worker processes), sampled every 100 ms.
        "peak_rss_mib": {
            "partner": _mib(partner_rss.peak_kib),
            "key_node": _mib(key_node_rss.peak_kib),
        },
    }


# -- openmined-psi, in its own process --------------------------------------------------


def _openmined(size: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    import private_set_intersection.python as psi

    server_items = [k.decode() for k in key_node_keys(size)]
    client_items = [k.decode() for k in partner_keys(size)]
    started = time.perf_counter()
    client = psi.client.CreateWithNewKey(True)  # True: cardinality only
    server = psi.server.CreateWithNewKey(True)
    setup = server.CreateSetupMessage(1e-9, len(client_items), server_items, psi.DataStructure.GCS)
    request = client.CreateRequest(client_items)
    response = server.ProcessRequest(request)
    overlap = client.GetIntersectionSize(setup, response)
    elapsed = time.perf_counter() - started
    out.put((elapsed, overlap, _mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))


def run_openmined(size: int) -> dict[str, object]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_openmined, args=(size, queue))
    proc.start()
    elapsed, overlap, rss = queue.get()
    proc.join()
    # GCS with fpr 1e-9 may overcount by a false positive in rare cases; never undercounts.
    assert overlap >= size - size // 2, overlap
    return {"openmined_s": round(elapsed, 2), "openmined_rss_mib": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.size, args.workers)
        return
    keynode = run_keynode(args.size, args.workers)
    openmined = run_openmined(args.size)
    cold, warm, om = keynode["keynode_cold_s"], keynode["keynode_warm_s"], openmined["openmined_s"]
    assert isinstance(cold, float) and isinstance(warm, float) and isinstance(om, float)
    print(
        json.dumps(
            {
                "size": args.size,
                **keynode,
                **openmined,
                "ratio_cold": round(om / cold, 2),
                "ratio_warm": round(om / warm, 2),
                "workers": args.workers,
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "machine": platform.machine(),
            }
        )
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    main()
