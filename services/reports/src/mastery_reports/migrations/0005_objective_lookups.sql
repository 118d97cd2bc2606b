-- A batch of grades loads the points and evidence of the objectives it
-- graded, one (student, objective) pair at a time. With an index on the
-- student alone, and while the tables' statistics still said they were
-- small, PostgreSQL's plan read every row of the tenant's and joined them
-- by hash: a batch's cost grew with the district's whole history, and the
-- consumer fell behind further the longer it ran (docs/benchmarks.md,
-- "Reports: from a grade to its snapshot"). Indexed by student and
-- objective, each pair is a few index entries, and the student's whole
-- history, read when a snapshot is built again, is the same index's
-- prefix, so the indexes on the student alone go.
CREATE INDEX assessments_by_student_objective
    ON assessments (tenant_id, student_id, objective_id);
DROP INDEX assessments_by_student;

CREATE INDEX mastery_points_by_student_objective
    ON mastery_points (tenant_id, student_id, objective_id);
DROP INDEX mastery_points_by_student;
