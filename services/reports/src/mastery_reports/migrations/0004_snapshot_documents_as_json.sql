-- A snapshot's document is kept as the JSON text the consumer wrote, not
-- parsed into jsonb. Every grade writes its student's whole document
-- again, and every report read hands it out as text: jsonb parsed it on
-- the way in and printed it again on the way out, about twice the cost of
-- either for a document of 20 to 30 kB (see docs/benchmarks.md, "Reports:
-- from a grade to its snapshot"). ``json`` still refuses text that is
-- not JSON. Nothing queries inside the document: the report route reads
-- its sections' places from the text in the process.
--
-- The report function of 0003 took the sections' places out of the jsonb
-- document; on json that would parse the whole document again for every
-- read, so it goes first and comes back returning the text alone. It
-- keeps 0003's contract: one statement that binds its own tenant for its
-- own transaction, with its caller's rights, refusing a transaction
-- already bound to another tenant.
DROP FUNCTION student_report(text, text);

ALTER TABLE snapshots ALTER COLUMN document TYPE json USING document::json;

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
