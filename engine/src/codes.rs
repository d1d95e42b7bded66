//! Every stable error code ferry reports, in one table (the README's code list is checked against it).

use crate::error::Code;

macro_rules! codes {
    ($($name:ident = $id:literal, $summary:literal, $hint:literal;)*) => {
        $(pub const $name: Code = Code { id: $id, summary: $summary, hint: $hint };)*
        /// All codes, in the order they are documented.
        pub const ALL: &[&Code] = &[$(&$name),*];
    };
}

codes! {
    CFG_UNREADABLE = "FERRY-CFG-001", "task file cannot be read",
        "Check the path given with -c and that the file is readable.";
    CFG_SYNTAX = "FERRY-CFG-002", "task file is not valid TOML",
        "Fix the TOML syntax at the position given.";
    CFG_UNKNOWN_KEY = "FERRY-CFG-003", "unknown key in task file",
        "Remove or correct the key; the message lists the keys allowed there.";
    CFG_MISSING_KEY = "FERRY-CFG-004", "required key missing from task file",
        "Add the key named in the message.";
    CFG_BAD_VALUE = "FERRY-CFG-005", "invalid value in task file",
        "Use a value of the type and range the message gives for that key.";
    CFG_PASSWORD_ENV = "FERRY-CFG-006", "password environment variable is not set",
        "Export the variable named by password_env before starting ferry, or give password directly.";
    CFG_UNSUPPORTED = "FERRY-CFG-007", "task asks for something this version of ferry does not do",
        "Remove the setting named in the message or upgrade ferry.";
    CON_UNREACHABLE = "FERRY-CON-001", "server unreachable",
        "Check host, port, firewalls and that the server is running; ferry connects over TCP.";
    CON_AUTH = "FERRY-CON-002", "access denied",
        "Check user and password, and that the account may connect from this host.";
    CON_TLS = "FERRY-CON-003", "TLS negotiation failed",
        "Check the tls mode: 'required' and stricter need a server with TLS enabled and, for verify_*, a trusted certificate.";
    PRIV_MISSING = "FERRY-PRI-001", "missing privilege",
        "Grant the privilege named in the message to ferry's account (README: grants).";
    SCH_NAME_CONFLICT = "FERRY-SCH-001", "object already exists on the destination",
        "Drop or rename the object on the destination, or select other objects; ferry never overwrites what it did not create.";
    SCH_CREATE_FAILED = "FERRY-SCH-002", "destination rejected a schema statement",
        "The message has the statement and the server's error; fix the incompatibility (engine, charset, syntax) and run again.";
    SCH_NOT_FOUND = "FERRY-SCH-003", "selected object not found on the source",
        "Check the database and table names in [objects]; names are case-sensitive on most servers.";
    SCH_INTROSPECT = "FERRY-SCH-004", "could not read the source schema",
        "ferry needs SELECT, SHOW VIEW, TRIGGER, EVENT and SHOW_ROUTINE (or SELECT on mysql.proc) on the source.";
    SCH_VIEW_CYCLE = "FERRY-SCH-005", "views depend on each other in a cycle",
        "Check the view definitions named in the message.";
    DATA_DUPLICATE = "FERRY-DAT-001", "duplicate key on the destination",
        "A row with this key already exists on the destination; ferry does not overwrite rows it did not copy.";
    DATA_REJECTED = "FERRY-DAT-002", "destination rejected a row",
        "The value does not fit the destination column (size, charset, sql_mode); compare the table definitions.";
    DATA_PACKET = "FERRY-DAT-003", "row larger than max_allowed_packet",
        "Raise max_allowed_packet on the destination (and source) above the largest row.";
    DATA_DECODE = "FERRY-DAT-004", "value from the source cannot be represented",
        "Report this with the table and column: it is a ferry defect.";
    SQL_OTHER = "FERRY-SQL-001", "server error",
        "The message has the server's error number and text.";
    META_CORRUPT = "FERRY-MET-001", "task metadata on the destination is not what ferry wrote",
        "Another tool or version changed the metadata schema; release the task or use another [metadata] schema.";
    VERIFY_DIFFERENT = "FERRY-VER-001", "source and destination differ",
        "The report lists the tables and first differing keys; re-run the copy for those tables or repair them.";
    VERIFY_NO_SYNC = "FERRY-VER-002", "online and since verification need the task's incremental sync",
        "Run the task with types including incremental first, or verify in full mode once writes to the source have stopped.";
    VERIFY_LAG = "FERRY-VER-003", "the destination did not apply past the source position in time",
        "Sync lags or has stopped: check `ferry status`, then verify again (or raise --recheck-wait-s).";
    VERIFY_RESUME = "FERRY-VER-004", "the output folder holds another verification's progress",
        "Resume with the same mode and options, drop --resume to start afresh, or give another --out folder.";
    VERIFY_REPAIR = "FERRY-VER-005", "a repair statement failed on the destination; nothing was applied",
        "The destination changed since it was verified (the message has the statement): verify again and apply the new repair file.";
    VERIFY_OUTPUT = "FERRY-VER-006", "the verifier's output folder cannot be written or read",
        "The message names the file; give a writable --out folder.";
    VERIFY_REPAIR_TRIGGERS = "FERRY-VER-007", "a repair would fire triggers on the destination; nothing was applied",
        "Repair statements fire the destination's triggers (row-based replication does not), so the rows written would not be the source's. The message names the tables and triggers: repair those tables another way (drop the triggers, apply, create them again while nothing else writes), or copy them again.";
    VERIFY_REPAIR_LEFT = "FERRY-VER-008", "after the repair the destination still differs from the source",
        "The repaired rows were read back and do not match the source (the message names the tables): something rewrote them (a trigger created meanwhile, a writer on the destination). Verify again and look at diff.jsonl.";
    SIM_SERVER = "FERRY-SIM-001", "throwaway server could not be started",
        "Install MariaDB (apt-get install mariadb-server) or build the image with docker/build-mariadb-image.sh; the message has the server log tail.";
    SIM_SCENARIO = "FERRY-SIM-002", "a scenario folder cannot be used",
        "The message names the file and the key; `ferry sim list` shows what loads.";
    CDC_BINLOG_OFF = "FERRY-CDC-001", "source has no binary log",
        "Start the source with log_bin enabled, binlog_format=ROW and binlog_row_image=FULL.";
    CDC_POSITION = "FERRY-CDC-002", "binlog position cannot be used",
        "The message names the position; positions from a MySQL and a MariaDB server never mix.";
    CDC_DECODE = "FERRY-CDC-003", "binlog row cannot be decoded against the table's shape",
        "The table changed shape outside ferry's view (or the binlog is not ROW/FULL); the message names table and column.";
    CDC_UNSUPPORTED_BINLOG = "FERRY-CDC-004", "source binlog uses a setting ferry cannot read",
        "The message names the setting (log_bin_compress, encrypt_binlog, binlog_alter_two_phase, binlog_row_value_options=PARTIAL_JSON); turn it off on the source.";
    CDC_PURGED = "FERRY-CDC-005", "binlog needed by the task is no longer on the source",
        "The source purged binlog files past the task's checkpoint; nothing was written. Raise binlog retention (binlog_expire_logs_seconds / expire_logs_days) and start the task again on a fresh destination.";
    CDC_UNIQUE_CONFLICT = "FERRY-CDC-006", "unique key conflict while applying the binlog",
        "Two rows claim the same unique value on the destination; the message names both. Something other than ferry writes to the destination, or the destination's unique keys differ from the source's.";
    CDC_DIVERGED = "FERRY-CDC-007", "destination row is not where the binlog says it is",
        "In exact mode a row to update or delete is missing, or a row to insert exists: something else changed the destination. Stop writers on the destination and re-run the full copy of the table named.";
    CDC_NO_START = "FERRY-CDC-008", "task has no start position for incremental",
        "The task copied rows before incremental was part of it, so no binlog position covers the copy; start the task again on a fresh destination with types including incremental.";
    CDC_DDL = "FERRY-CDC-009", "DDL in the binlog cannot be replicated",
        "The message has the statement and why (the destination rejected it, a table entered the task's databases without its rows, a migrated database was dropped). Fix the destination or restart the task on a fresh destination after the change.";
    CDC_DDL_SKIPPED = "FERRY-CDC-010", "DDL in the binlog was not replicated (warning)",
        "The statement is in the task's scope but ferry does not apply it while syncing (triggers and events wait for cutover; sequences, tablespaces and the like are not migrated); the message says which. Apply it to the destination yourself if it is needed.";
    CDC_TABLE_DETACHED = "FERRY-CDC-011", "a migrated table was renamed away and is no longer migrated (warning)",
        "The task selected the table by name (or the rename left the task's databases). Select the whole database, or set incremental.follow_table_renames = true, to follow renames.";
    PRE_FAILED = "FERRY-PRE-001", "precheck failed",
        "Run `ferry precheck -c <task>`: it lists every item with what it found and what it needs.";
    PRE_VERSIONS = "FERRY-PRE-002", "source and destination differ in flavor or major version (warning)",
        "The message lists the known differences; rehearse the migration and verify it before cutover.";
    PRE_SAME_SERVER = "FERRY-PRE-003", "the destination is the source or one of its replicas",
        "Point the destination at another server; writing into the source or its replica would corrupt both.";
    PRE_RETENTION = "FERRY-PRE-004", "the source keeps its binlog too briefly for the task",
        "Raise binlog_expire_logs_seconds (or expire_logs_days): 7 days for a full copy followed by sync, more than 24 hours for sync alone.";
    PRE_SERVER_ID = "FERRY-PRE-005", "ferry's replica server_id is already used",
        "Set incremental.server_id to an id no server or replica of the source uses.";
    PRE_NO_KEY = "FERRY-PRE-006", "a table has no primary or NOT NULL unique key (warning)",
        "Such a table is copied in one chunk and changes are applied by matching whole rows; add a key if you can, or acknowledge with [precheck] ignore.";
    PRE_ENGINE = "FERRY-PRE-007", "a table uses a non-transactional engine (warning)",
        "MyISAM, MEMORY and Aria tables cannot be copied or applied atomically; convert them to InnoDB or acknowledge with [precheck] ignore.";
    PRE_FK_OUTSIDE = "FERRY-PRE-008", "a foreign key points to a table outside the selection (warning)",
        "Select the referenced table too, or acknowledge: the FK is created and points at a table the destination may not have.";
    PRE_REFERENCES_OUTSIDE = "FERRY-PRE-009", "a view or routine uses a database outside the selection (warning)",
        "Select that database too, or make sure the destination has it before the objects are used.";
    PRE_DEFINER = "FERRY-PRE-010", "definer accounts of migrated objects are missing on the destination (warning)",
        "ferry creates the objects with SQL SECURITY INVOKER; create the application's accounts and grants on the destination.";
    PRE_ENGINE_MISSING = "FERRY-PRE-011", "the destination engine the task asks for is not available",
        "Set schema.destination_engine to an engine the destination's SHOW ENGINES lists as YES or DEFAULT, or install it.";
    PRE_COMMON_COLUMNS = "FERRY-PRE-012", "an existing destination table lacks source columns: common columns only (warning)",
        "With ignore_and_proceed only the columns both tables have are written; add the columns to the destination table to migrate them.";
    PRE_UNFILLABLE = "FERRY-PRE-013", "an existing destination table has columns no source row can fill",
        "Give the destination columns named a default, make them NULL, or drop them; ignore_and_proceed cannot write rows without them.";
    PRE_COLLATION = "FERRY-PRE-014", "the selection uses collations the destination does not know",
        "Convert those columns or tables to a collation the destination has (MySQL 8's utf8mb4_0900_* on MariaDB: utf8mb4_unicode_520_ci or utf8mb4_uca1400_ai_ci on 11.x), or upgrade the destination.";
    PRE_TABLE_ABSENT = "FERRY-PRE-015", "a selected table is missing on the destination of a task that creates none",
        "Add `schema` to task.types so ferry creates the tables, or create them on the destination first.";
    PRE_MAPPING = "FERRY-PRE-016", "a name mapping or column selection cannot be applied to the selected tables",
        "Name only tables and columns the selection has, keep every primary key column and the columns generated columns and partitioning use, and give no two tables or columns the same destination name.";
    PRE_ROUTINE_CREATORS = "FERRY-PRE-018", "the destination refuses routines and triggers from this account while it writes a binlog (warning)",
        "Grant SUPER to ferry's destination account, or SET GLOBAL log_bin_trust_function_creators = 1 on the destination for the migration; otherwise schema migration stops at the first function, procedure or trigger with FERRY-SCH-002.";
    PRE_LEFT_OUT = "FERRY-PRE-017", "views, routines, triggers or events use tables the task renames or reshapes: left out (warning)",
        "Their bodies name the source's tables and columns, which the destination does not have under those names; create them on the destination by hand after the migration, or drop the table/column mapping.";
    CDC_DDL_RESHAPED = "FERRY-CDC-012", "DDL in the binlog changes a table whose columns the task renames or leaves out",
        "ferry cannot translate the statement to the destination's columns. Apply the equivalent change to the destination table by hand, then start an incremental-only task from the position after the statement (ferry status shows it), or drop the column mapping/selection for that table.";
    CDC_REPLICA_ID_TAKEN = "FERRY-CDC-013", "another binlog reader connected to the source with ferry's replica server_id",
        "The source ends one of two dumps under the same server_id. Run one `ferry run` per task (a cutover's drain takes the id over on purpose), and give every task and replica its own incremental.server_id.";
    CDC_XA = "FERRY-CDC-014", "an XA (two-phase) transaction is in the binlog",
        "ferry applies whole transactions exactly once and cannot hold a prepared XA branch across its own restarts, so an XA branch that changes a migrated table (or one prepared before ferry started reading) stops the task before any of it is written. Commit the application's XA work as ordinary transactions while the task runs, or migrate the tables it writes offline (schema + full after the writes stop).";
    CDC_START_RACE = "FERRY-CDC-015", "DDL on the selected objects kept running while ferry took its start position",
        "ferry takes the binlog start position, reads the schema, and checks that no DDL on the selection came in between; it tried several times. Run the task again when no schema change is running on the source (no object or row was written).";
    CDC_RECOPY_SNAPSHOT = "FERRY-CDC-016", "catch-up replayed foreign key cascades and the source cannot give the snapshot their tables must be re-copied under",
        "Catch-up cannot tell from the destination which rows a cascade reached, so it re-reads the tables the cascades may have changed under a consistent snapshot whose binlog position the server reports; MariaDB does (binlog_snapshot_position), MySQL does not, and nothing was re-copied. Keep the application from deleting parent rows of ON DELETE CASCADE / SET NULL foreign keys and from changing the columns ON UPDATE rules follow while the copy runs (a quiet window, or those tables copied offline), then release the task and run it again on a fresh destination.";
    BENCH_SETUP = "FERRY-BEN-001", "the benchmark could not run a step",
        "The message names the step and what the server or tool said. `ferry bench` needs a MariaDB/MySQL server binary for its throwaway servers; anchor tools missing from PATH are skipped with a note, not an error.";
    BENCH_WRONG = "FERRY-BEN-002", "a benchmarked tool left the destination different from the source",
        "A timing is only reported for a result that is correct: the named tool's copy, apply or verify did not give what the source has. Rerun with --runs 1 --only <section> and compare the tables by hand.";
    RUN_STOPPED = "FERRY-RUN-001", "the run was stopped (Ctrl-C, SIGTERM or `ferry stop`) before the full copy finished",
        "The chunks copied so far are committed and recorded: run the task again and the copy resumes from them.";
    CUT_FENCED = "FERRY-CUT-001", "a cutover fenced this task process off: it writes nothing more",
        "The task was cut over (or is being cut over) under a newer generation; a process of an older one may not write, or the source's changes would overwrite the application's. Nothing to do: `ferry status` shows the cutover.";
    CUT_DONE = "FERRY-CUT-002", "the task was cut over; it does not run again",
        "After cutover the destination belongs to the application. To migrate again, use a new task name (and a destination without these objects).";
    CUT_REFUSED = "FERRY-CUT-003", "cutover refused or rolled back: the task is not ready",
        "The message says why (lag above cutover.lag_s_max, source still written or written after the final position (by sessions read_only does not stop: FERRY-CUT-005), not yet syncing, the final position not applied in time). Nothing was switched; fix that and run `ferry cutover` again.";
    CUT_REVOKE = "FERRY-CUT-004", "ferry's write privileges on the destination could not be revoked",
        "ferry's destination account holds its rights globally (ON *.*) or the REVOKE was refused; grant it rights per database to use revoke_destination_writes, or revoke by hand.";
    CUT_UNSTOPPED = "FERRY-CUT-005", "sessions that read_only does not stop are connected to the source (warning)",
        "Their accounts hold READ_ONLY ADMIN (MariaDB; SUPER before 10.11), SUPER (MySQL without super_read_only) or ALL PRIVILEGES ON *.*; the message names the accounts and session ids (or says whose grants ferry could not read: grant its source account SELECT on mysql.*). End those sessions (KILL) or revoke the privilege before the cutover: it waits for the source's binlog to stand still and rolls back (FERRY-CUT-003) when the source is still written.";
    ADMIN_UNAVAILABLE = "FERRY-ADM-001", "the task's admin endpoint cannot be served or reached",
        "`ferry run` serves it on admin.listen (loopback); pause, resume, stop and throttle need that process running. Check that it runs (ferry status shows the last address) and that the port is free.";
    TRANSIENT_EXHAUSTED = "FERRY-NET-001", "transient failure persisted past its retries",
        "The server kept failing with a retryable error (connection lost, deadlock, lock wait); check its health and run again to resume.";
}
