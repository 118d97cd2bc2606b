-- Timelines keep their explanations and evidence events as the JSON text
-- the projector wrote, not parsed into jsonb. Nothing queries inside
-- them: every reader decodes the whole value in Python. Parsing ~2 kB of
-- explanation per change point into jsonb was most of what PostgreSQL
-- spent taking in a rebuild's rows (see docs/benchmarks.md, "Timeline
-- rebuild"); ``json`` still refuses text that is not JSON.
ALTER TABLE timeline_points ALTER COLUMN result TYPE json USING result::json;
ALTER TABLE timeline_evidence ALTER COLUMN event TYPE json USING event::json;
