"""The stack's status file, and when `mastery status` believes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mastery_deploy.status import (
    NoStackError,
    ServiceEndpoint,
    StackStatus,
    read_status,
    status_path,
    write_status,
)


def exited_pid() -> int:
    """Return the id of a process that has run and exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def stack_status(*, grading_pid: int) -> StackStatus:
    """A stack whose processes are this test's own, but for grading."""
    return StackStatus(
        pid=os.getpid(),
        data_dir="/srv/mastery",
        database_url="postgresql://postgres@127.0.0.1:6001/postgres",
        nats_url="nats://127.0.0.1:6002",
        services=[
            ServiceEndpoint(
                name="grading",
                url="http://127.0.0.1:6003",
                openapi_url="http://127.0.0.1:6003/schema/openapi.json",
                pid=grading_pid,
            )
        ],
    )


def test_the_status_of_a_live_stack_reads_back_whole(tmp_path: Path) -> None:
    """While every recorded process runs, the file is believed as written."""
    written = stack_status(grading_pid=os.getpid())
    write_status(status_path(tmp_path), written)

    assert read_status(status_path(tmp_path)) == written


def test_a_status_file_naming_an_exited_process_means_no_stack(
    tmp_path: Path,
) -> None:
    """A file left by a stack that was killed outright is not believed, and
    the message names the process that is gone."""
    gone = exited_pid()
    write_status(status_path(tmp_path), stack_status(grading_pid=gone))

    with pytest.raises(NoStackError) as raised:
        read_status(status_path(tmp_path))

    assert str(raised.value) == (
        f"no stack is running: {status_path(tmp_path)} names processes that "
        f"have exited: grading (pid {gone})"
    )


def test_no_status_file_means_no_stack(tmp_path: Path) -> None:
    """Without a file there is no stack, and the message says where it looked."""
    with pytest.raises(NoStackError) as raised:
        read_status(status_path(tmp_path))

    assert str(raised.value) == (
        f"no stack is running: there is no {tmp_path / 'stack.json'}"
    )
