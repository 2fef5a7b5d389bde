-- v4: agent IDs compare and sort byte by byte, whatever the database's collation.
--
-- `list_agents` returns agents by agent_id (SPEC §14), and pages of it by limit and
-- offset. The columns had the database's default collation, so on a database created
-- with a language's collation (en_US.UTF-8, the default of many installations)
-- PostgreSQL sorted them as that language does: case ignored and `-` skipped at first,
-- `alpha, opsa, ops-b, Zeta` where a file gives `Zeta, alpha, ops-b, opsa`. With
-- COLLATE "C" every agent_id column sorts as SQLite's BINARY does, and the primary
-- key's index, rebuilt in that order, still serves the listing's pages. Equality is
-- unchanged (every collation here is deterministic); comparisons get cheaper.

ALTER TABLE agents ALTER COLUMN agent_id TYPE text COLLATE "C";
ALTER TABLE tasks ALTER COLUMN agent_id TYPE text COLLATE "C";
ALTER TABLE counts ALTER COLUMN agent_id TYPE text COLLATE "C";
ALTER TABLE idempotency_keys ALTER COLUMN agent_id TYPE text COLLATE "C";
ALTER TABLE events ALTER COLUMN agent_id TYPE text COLLATE "C";
ALTER TABLE tokens ALTER COLUMN agent_id TYPE text COLLATE "C";
