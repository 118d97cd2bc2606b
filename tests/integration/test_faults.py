"""``mastery faults`` on a tiny district: one grading kill comes out
clean, and the same comparisons count a timeline row or a snapshot that
no longer matches what the log says."""

from __future__ import annotations

from pathlib import Path

import pytest

from mastery_deploy.faults import TENANT, Suite

GRADES = 12
STUDENTS = 4


@pytest.mark.slow
async def test_fault_suite_counts_what_a_replay_disagrees_with(
    tmp_path: Path,
) -> None:
    """Killing grading mid-load loses nothing and doubles nothing; the
    timelines and every snapshot equal a full replay. Then one changed
    timeline row shows as two rows unlike the replay (the live one and
    the replayed one), and a dropped snapshot as its student's grades
    lost."""
    suite = Suite(tmp_path, students=STUDENTS, duplicate_window=5, nats_outage=1)
    try:
        await suite.start()
        await suite.settle()

        outcome = await suite.scenario(
            "kill -9 grading", GRADES, suite.killer("grading")
        )
        replayed = await suite.replay()

        assert (outcome.lost, outcome.applied_twice) == (0, 0)
        assert outcome.timeline_rows > GRADES
        assert outcome.timeline_rows_differing == 0
        assert replayed.snapshots == STUDENTS
        assert replayed.unmatched == 0
        assert replayed.documents_differing == 0

        student = str(suite.district.students[0])
        async with suite.pool.acquire() as connection:
            await connection.execute(
                "UPDATE grading.timeline_states SET level = level + 1 "
                "WHERE tenant_id = $1 AND student_id = $2 "
                "AND objective_id = $3",
                TENANT,
                student,
                suite.district.objectives[0],
            )
            await connection.execute(
                "DELETE FROM reports.snapshots WHERE tenant_id = $1 "
                "AND student_id = $2",
                TENANT,
                student,
            )

        assert (await suite.timelines())[1] == 2
        assert await suite.damage() == (len(suite.appended[student]), 0)
    finally:
        await suite.stop()
