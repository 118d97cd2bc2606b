-- A snapshot's document is kept as the JSON text the consumer wrote, not
-- parsed into jsonb. Every grade writes its student's whole document
-- again, and every report read hands it out as text: jsonb parsed it on
-- the way in and printed it again on the way out, about twice the cost of
-- either for a document of 20 to 30 kB (see docs/benchmarks.md, "Reports:
-- from a grade to its snapshot"). ``json`` still refuses text that is
-- not JSON. Nothing queries inside the document: the report route reads
-- its sections' places from the text in the process.
ALTER TABLE snapshots ALTER COLUMN document TYPE json USING document::json;

-- A student's report in one statement that binds its own tenant. The
-- report is the read guardians and teachers make most, and a read that
-- first opens a transaction to set the tenant pays three round trips for
-- one query. The setting is local to the statement's own transaction and
-- ends with it; row-level security still applies, since the function runs
-- with its caller's rights. A transaction already bound to another tenant
-- is refused rather than rebound.
CREATE FUNCTION student_report(report_tenant text, report_student text)
RETURNS TABLE (document text, positions text)
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    bound text := coalesce(current_setting('mastery.tenant_id', true), '');
BEGIN
    IF bound <> '' AND bound <> report_tenant THEN
        RAISE EXCEPTION 'this transaction is bound to another tenant'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM set_config('mastery.tenant_id', report_tenant, true);

    RETURN QUERY
    SELECT s.document::text, s.positions::text
    FROM snapshots AS s
    WHERE s.tenant_id = report_tenant AND s.student_id = report_student;
END
$$;
