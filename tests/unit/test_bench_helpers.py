"""What the benchmarks share (bench/benchdb.py): one percentile for every figure they print, and ports from the
machine's share when BENCH_PORTS names one."""

import socket

from bench.benchdb import free_port, percentile


def test_percentile_is_the_nearest_rank():
    assert [percentile([4, 1, 3, 2], p) for p in (0, 25, 50, 75, 100)] == [1, 1, 2, 3, 4]
    assert percentile(list(range(1, 101)), 95) == 95 and percentile([7.5], 99) == 7.5


def test_ports_come_from_bench_ports_and_skip_one_in_use(monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        taken = busy.getsockname()[1]
        busy.listen()
        monkeypatch.setenv("BENCH_PORTS", f"{taken}-{taken + 3}")
        first, second = free_port(), free_port()
    assert taken < first < second <= taken + 3
