-- A student's report in one statement that binds its own tenant. The
-- report is the read guardians and teachers make most, and a read that
-- first opens a transaction to set the tenant pays three round trips for
-- one query. The setting is local to the statement's own transaction and
-- ends with it; row-level security still applies, since the function runs
-- with its caller's rights. A transaction already bound to another tenant
-- is refused rather than rebound.
CREATE FUNCTION student_report(report_tenant text, report_student text)
RETURNS TABLE (document text, positions text, places text)
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
    SELECT s.document::text, s.positions::text,
        (SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'section_id', section -> 'section_id',
                    'school_id', section -> 'school_id')), '[]')::text
         FROM jsonb_array_elements(s.document -> 'sections') AS section)
    FROM snapshots AS s
    WHERE s.tenant_id = report_tenant AND s.student_id = report_student;
END
$$;
