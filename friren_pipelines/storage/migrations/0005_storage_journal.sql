-- Files a committed write still has to put in place (storage.write): written in the write's
-- transaction, emptied once its staged files are renamed over their targets.
CREATE TABLE IF NOT EXISTS storage_journal (
    write_id  TEXT NOT NULL,
    target    TEXT NOT NULL,
    staged    TEXT,
    PRIMARY KEY (write_id, target)
);
