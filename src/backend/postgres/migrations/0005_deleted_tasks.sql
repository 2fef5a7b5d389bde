-- v5: a deleted task is remembered, so that its history outlives its events.
--
-- SPEC §14: task_history is `not_found` only when the task never had events. A task
-- that was deleted and whose events were all pruned had events: its history is empty.
-- Until v5 nothing recorded such a task once its events were gone. Now a row here is
-- written as a task is deleted (task IDs are never reused, so a row never goes stale),
-- and the tasks already deleted are found by their events.

CREATE TABLE deleted_tasks (
    task_id  text COLLATE "C" NOT NULL PRIMARY KEY,
    agent_id text COLLATE "C" NOT NULL
);

INSERT INTO deleted_tasks (task_id, agent_id)
SELECT DISTINCT e.task_id, e.agent_id FROM events e
WHERE e.task_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = e.task_id)
ON CONFLICT (task_id) DO NOTHING;

CREATE FUNCTION agent_backlog_task_remembered() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO deleted_tasks (task_id, agent_id) VALUES (OLD.id, OLD.agent_id)
    ON CONFLICT (task_id) DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER tasks_remembered_on_delete AFTER DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION agent_backlog_task_remembered();
