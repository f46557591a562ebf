-- The claim reads jobs through jobs_kind_claimable (kind, state, run_after), and every other
-- query that filters on a job's state has jobs_state (state, updated_at). jobs_claimable
-- (state, run_after) served none of them, yet cost an index write each time a job was
-- enqueued, claimed and finished.
DROP INDEX IF EXISTS jobs_claimable;
