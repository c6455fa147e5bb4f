"""SQLite schema of the index, and its version (reported as /system DatabaseVersion)."""

SCHEMA_VERSION = 6  # Orthanc's database schema version, reported for compatibility

NO_LIMIT = 1 << 62  # a LIMIT that every engine takes for "no limit" (SQLite's -1 is not SQL)
#: Put first in a statement whose best plan depends on its values: PostgreSQL plans it for them each
#: time. GENERIC_PLAN: one plan serves every value, made once (planning a QIDO query costs PostgreSQL
#: up to ten times its run). Comments to SQLite.
CUSTOM_PLAN = "/* custom plan */ "
GENERIC_PLAN = "/* generic plan */ "
LEVEL_NUMBER = {"Patient": 0, "Study": 1, "Series": 2, "Instance": 3}
LEVEL_NAME = {v: k for k, v in LEVEL_NUMBER.items()}

SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    internal INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    level INTEGER NOT NULL,
    parent INTEGER REFERENCES resources(internal) ON DELETE CASCADE,
    last_update TEXT NOT NULL,
    last_update_ts REAL NOT NULL,
    stable INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS resources_parent ON resources(parent);
CREATE INDEX IF NOT EXISTS resources_level ON resources(level, internal);
CREATE INDEX IF NOT EXISTS resources_unstable ON resources(last_update_ts) WHERE stable = 0;

-- A resource's main tags in one piece: a JSON object (keyword -> value) of its rows of main_tags,
-- which a search's results read (qido_render.py) instead of a lookup per attribute; no row: made
-- before they were kept so (read from main_tags then). A table of its own: resources stays narrow
-- for the searches that walk it.
CREATE TABLE IF NOT EXISTS resource_tags (
    internal INTEGER PRIMARY KEY REFERENCES resources(internal) ON DELETE CASCADE,
    tags_json TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS main_tags (
    internal INTEGER NOT NULL REFERENCES resources(internal) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    value TEXT NOT NULL,
    norm TEXT NOT NULL,
    PRIMARY KEY (internal, tag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS main_tags_value ON main_tags(tag, value);
CREATE INDEX IF NOT EXISTS main_tags_norm ON main_tags(tag, norm);

-- The patient's main tags as the instances of each study had them (Orthanc's PatientMainDicomTags):
-- a study is described and found by its own copy.
CREATE TABLE IF NOT EXISTS study_patient_tags (
    internal INTEGER NOT NULL REFERENCES resources(internal) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    value TEXT NOT NULL,
    norm TEXT NOT NULL,
    PRIMARY KEY (internal, tag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS study_patient_tags_value ON study_patient_tags(tag, value);
CREATE INDEX IF NOT EXISTS study_patient_tags_norm ON study_patient_tags(tag, norm);

-- compression: how the file is stored (storage/compression.py; 0: as it came), and then the size and
-- MD5 of the stored bytes (NULL when uncompressed: file_size and md5 are the stored bytes' too); the
-- same for the files of attachments.
CREATE TABLE IF NOT EXISTS instances (
    internal INTEGER PRIMARY KEY REFERENCES resources(internal) ON DELETE CASCADE,
    file_uuid TEXT NOT NULL,
    file_size INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    transfer_syntax TEXT NOT NULL,
    sop_class_uid TEXT NOT NULL,
    index_in_series INTEGER,
    number_of_frames INTEGER NOT NULL,
    frames TEXT NOT NULL,
    metadata BLOB NOT NULL,
    reception_date TEXT NOT NULL,
    origin TEXT NOT NULL,
    remote_aet TEXT NOT NULL,
    charset TEXT NOT NULL,
    pixel_data_offset INTEGER,
    remote_ip TEXT NOT NULL DEFAULT '',
    http_username TEXT NOT NULL DEFAULT '',
    pixel_data_vr TEXT,
    compression INTEGER NOT NULL DEFAULT 0,
    compressed_size INTEGER,
    compressed_md5 TEXT,
    called_aet TEXT NOT NULL DEFAULT '',
    qido_extras BLOB  -- stored_json.qido_extras (NULL: stored before they were kept apart)
);
CREATE INDEX IF NOT EXISTS instances_file ON instances(file_uuid);

-- qido_extras: the QIDO_EXTRAS of the instance that made the series (NULL: made before they were
-- kept here), where a series search reads the series' own (its performed procedure step's start,
-- RequestAttributesSequence) without looking for its first instance.
CREATE TABLE IF NOT EXISTS series_info (
    internal INTEGER PRIMARY KEY REFERENCES resources(internal) ON DELETE CASCADE,
    expected_instances INTEGER,
    qido_extras BLOB
);

-- User-defined metadata, by number (1024-65535) as text.
CREATE TABLE IF NOT EXISTS user_metadata (
    internal INTEGER NOT NULL REFERENCES resources(internal) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (internal, name)
) WITHOUT ROWID;

-- User-defined attachments (Orthanc's content types >= 1024) of any resource: files in the storage.
CREATE TABLE IF NOT EXISTS attachments (
    internal INTEGER NOT NULL REFERENCES resources(internal) ON DELETE CASCADE,
    content_type INTEGER NOT NULL,
    uuid TEXT NOT NULL,
    size INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    compression INTEGER NOT NULL DEFAULT 0,
    compressed_size INTEGER,
    compressed_md5 TEXT,
    PRIMARY KEY (internal, content_type)
);
CREATE INDEX IF NOT EXISTS attachments_uuid ON attachments(uuid);

CREATE TABLE IF NOT EXISTS protected_patients (
    internal INTEGER PRIMARY KEY REFERENCES resources(internal) ON DELETE CASCADE
);

-- Labels of resources (Orthanc >= 1.12): names without values, any level.
CREATE TABLE IF NOT EXISTS labels (
    internal INTEGER NOT NULL REFERENCES resources(internal) ON DELETE CASCADE,
    label TEXT NOT NULL,
    PRIMARY KEY (internal, label)
);
CREATE INDEX IF NOT EXISTS labels_label ON labels(label);

-- The changes of a resource go with it (internal), as in Orthanc.
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    change_type TEXT NOT NULL,
    level INTEGER NOT NULL,
    public_id TEXT NOT NULL,
    date TEXT NOT NULL,
    internal INTEGER REFERENCES resources(internal) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS changes_internal ON changes(internal);

CREATE TABLE IF NOT EXISTS exports (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    level INTEGER NOT NULL,
    public_id TEXT NOT NULL,
    remote TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    sop_uid TEXT NOT NULL,
    date TEXT NOT NULL
);

-- The file journal: files placed in the storage before their instance row commits, and files a
-- write stopped referencing, until they are referenced or removed (see IIndex).
CREATE TABLE IF NOT EXISTS pending_files (
    uuid TEXT PRIMARY KEY,
    owner TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_files_owner ON pending_files(owner);

-- Jobs: what they do (request), their state and progress, who runs them (owner, heartbeat), a
-- state a client asked for (wanted: Paused, Canceled), applied between two steps.
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    request TEXT NOT NULL,
    content TEXT NOT NULL DEFAULT '{}',
    progress REAL NOT NULL DEFAULT 0,
    creation_time TEXT NOT NULL,
    completion_time TEXT,
    runtime REAL NOT NULL DEFAULT 0,
    error_code INTEGER NOT NULL DEFAULT 0,
    error_description TEXT NOT NULL DEFAULT 'Success',
    error_details TEXT NOT NULL DEFAULT '',
    owner TEXT,
    heartbeat REAL,
    wanted TEXT,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, priority, seq);

-- Files a job made (an asynchronous archive), in the storage under journaled names.
CREATE TABLE IF NOT EXISTS job_outputs (
    job TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    uuid TEXT NOT NULL,
    size INTEGER NOT NULL,
    mime TEXT NOT NULL,
    filename TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (job, name)
);
CREATE INDEX IF NOT EXISTS job_outputs_uuid ON job_outputs(uuid);

-- Remote servers added over the REST API, when DicomWeb.ServersInDatabase or
-- OrthancPeersInDatabase keeps them in the index (kind: dicomweb, peer; definition: Orthanc's long
-- form, as JSON).
CREATE TABLE IF NOT EXISTS remote_servers (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    PRIMARY KEY (kind, name)
);

-- C-FIND queries to remote modalities (/queries) and their answers, kept here so that every daemon
-- sharing the index reads them; at most QueryRetrieveSize queries, the oldest dropped first.
-- query: the keys asked, as JSON {"gggg,eeee": text}; options: LocalAet, Timeout, Normalize (JSON);
-- answer: one answer in Orthanc's full JSON form.
CREATE TABLE IF NOT EXISTS queries (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    modality TEXT NOT NULL,
    level TEXT NOT NULL,
    query TEXT NOT NULL,
    options TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS queries_seq ON queries(seq);
CREATE TABLE IF NOT EXISTS query_answers (
    query_id TEXT NOT NULL REFERENCES queries(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    answer TEXT NOT NULL,
    PRIMARY KEY (query_id, position)
);

-- Storage commitment requests this daemon sent (/storage-commitment): Pending until the remote's
-- report arrives, on whichever daemon sharing the index it calls; at most
-- StorageCommitmentReportsSize kept, the oldest dropped first. success / failures: JSON lists.
CREATE TABLE IF NOT EXISTS storage_commitments (
    transaction_uid TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    remote_aet TEXT NOT NULL,
    status TEXT NOT NULL,
    success TEXT NOT NULL,
    failures TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS storage_commitments_seq ON storage_commitments(seq);

CREATE TABLE IF NOT EXISTS globals (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# Columns added after a table was first created: (table, column, definition). Applied at start-up
# to an index created by an earlier version (each once, in order).
ADDED_COLUMNS = [
    ("changes", "internal", "INTEGER REFERENCES resources(internal) ON DELETE CASCADE"),
    ("instances", "pixel_data_vr", "TEXT"),
    ("user_metadata", "revision", "INTEGER NOT NULL DEFAULT 0"),
    ("instances", "compression", "INTEGER NOT NULL DEFAULT 0"),
    ("instances", "compressed_size", "INTEGER"),
    ("instances", "compressed_md5", "TEXT"),
    ("attachments", "compression", "INTEGER NOT NULL DEFAULT 0"),
    ("attachments", "compressed_size", "INTEGER"),
    ("attachments", "compressed_md5", "TEXT"),
    ("instances", "called_aet", "TEXT NOT NULL DEFAULT ''"),
    ("instances", "qido_extras", "BLOB"),
    ("series_info", "qido_extras", "BLOB"),
]

# Filled once in an index made before the table existed: each study gets its patient's tags.
BACKFILL_STUDY_PATIENT_TAGS = """
INSERT INTO study_patient_tags (internal, tag, value, norm)
SELECT s.internal, t.tag, t.value, t.norm FROM resources s JOIN main_tags t ON t.internal = s.parent
WHERE s.level = 1 AND NOT EXISTS (SELECT 1 FROM study_patient_tags x WHERE x.internal = s.internal)
"""
