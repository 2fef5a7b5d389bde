-- v3: the next candidate number of each derived prefix base (SPEC §5). A new agent
-- whose derived prefix is held starts its search at its base's counter instead of at
-- PREFIX2, so taking a prefix costs the same for the 100,000th `worker-N` as for the
-- second. Filled as agents are created; an older file's first new agent of a base
-- searches once from the start and records where it stopped.
CREATE TABLE prefix_bases (
    base TEXT    NOT NULL PRIMARY KEY CHECK (length(base) BETWEEN 1 AND 16),
    next INTEGER NOT NULL CHECK (next >= 1)
) STRICT, WITHOUT ROWID;
