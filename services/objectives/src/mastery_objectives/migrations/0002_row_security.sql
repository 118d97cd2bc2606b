-- Bind every read model to the transaction's tenant, as the event store
-- is, so a query that forgets its tenant filter still sees one district.
SELECT isolate_by_tenant('objective_sets');
SELECT isolate_by_tenant('objectives');
SELECT isolate_by_tenant('objective_set_versions');
SELECT isolate_by_tenant('scales');
SELECT isolate_by_tenant('scale_versions');
