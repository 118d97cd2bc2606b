"""The store benchmark still runs: a small run against the test database."""

from __future__ import annotations

from click.testing import CliRunner

from mastery_deploy.benchmarks import bench


def test_the_store_benchmark_compares_every_workload_with_raw_asyncpg(
    database_url: str,
) -> None:
    """One small run prints a row per workload, each with both rates and
    their ratio, and says whether the store met its targets."""
    result = CliRunner().invoke(
        bench,
        ["store", "--repeats", "1", "--clients", "4", "--read-events", "1500"],
        env={"MASTERY_DATABASE_URL": database_url},
    )

    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    workloads = [row.split(" | ")[0].removeprefix("| ") for row in rows[1:]]
    assert workloads == [
        "append, 30 events per transaction",
        "append to existing streams, 30 events per transaction",
        "append, 500 events per transaction",
        "append, 1 event per transaction, 4 clients",
        "read the whole log of 1,500 events",
    ]
    for row in rows[1:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        store_rate, raw_rate, ratio = (float(c.replace(",", "")) for c in cells[1:4])
        assert store_rate > 0
        assert raw_rate > 0
        assert abs(ratio - store_rate / raw_rate) < 0.01 + 0.01 * ratio
    assert rows[-1].endswith("(met) |") or rows[-1].endswith("(missed) |")


def test_the_chain_benchmark_compares_each_append_with_and_without_it(
    database_url: str,
) -> None:
    """One small run prints a row per append workload with both rates."""
    result = CliRunner().invoke(
        bench,
        ["chain", "--repeats", "1", "--clients", "2"],
        env={"MASTERY_DATABASE_URL": database_url},
    )

    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| workload | chained events/s | unchained events/s")
    workloads = [row.split(" | ")[0].removeprefix("| ") for row in rows[1:]]
    assert workloads == [
        "append, 30 events per transaction",
        "append to existing streams, 30 events per transaction",
        "append, 500 events per transaction",
        "append, 1 event per transaction, 2 clients",
    ]
    for row in rows[1:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert all(float(c.replace(",", "")) > 0 for c in cells[1:4])
