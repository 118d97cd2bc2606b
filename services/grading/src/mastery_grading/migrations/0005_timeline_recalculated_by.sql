-- The last recalculation job that went through each timeline, so a job
-- applied over several projector steps takes each timeline once.
ALTER TABLE timeline_states ADD COLUMN recalculated_by uuid;
