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
    SIM_SERVER = "FERRY-SIM-001", "throwaway server could not be started",
        "Install MariaDB (apt-get install mariadb-server) or build the image with docker/build-mariadb-image.sh; the message has the server log tail.";
    CDC_BINLOG_OFF = "FERRY-CDC-001", "source has no binary log",
        "Start the source with log_bin enabled, binlog_format=ROW and binlog_row_image=FULL.";
    CDC_POSITION = "FERRY-CDC-002", "binlog position cannot be used",
        "The message names the position; positions from a MySQL and a MariaDB server never mix.";
    CDC_DECODE = "FERRY-CDC-003", "binlog row cannot be decoded against the table's shape",
        "The table changed shape outside ferry's view (or the binlog is not ROW/FULL); the message names table and column.";
    CDC_UNSUPPORTED_BINLOG = "FERRY-CDC-004", "source binlog uses a setting ferry cannot read",
        "The message names the setting (log_bin_compress, encrypt_binlog, binlog_row_value_options=PARTIAL_JSON); turn it off on the source.";
    CDC_PURGED = "FERRY-CDC-005", "binlog needed by the task is no longer on the source",
        "The source purged binlog files past the task's checkpoint; nothing was written. Raise binlog retention (binlog_expire_logs_seconds / expire_logs_days) and start the task again on a fresh destination.";
    CDC_UNIQUE_CONFLICT = "FERRY-CDC-006", "unique key conflict while applying the binlog",
        "Two rows claim the same unique value on the destination; the message names both. Something other than ferry writes to the destination, or the destination's unique keys differ from the source's.";
    CDC_DIVERGED = "FERRY-CDC-007", "destination row is not where the binlog says it is",
        "In exact mode a row to update or delete is missing, or a row to insert exists: something else changed the destination. Stop writers on the destination and re-run the full copy of the table named.";
    CDC_NO_START = "FERRY-CDC-008", "task has no start position for incremental",
        "The task copied rows before incremental was part of it, so no binlog position covers the copy; start the task again on a fresh destination with types including incremental.";
    CDC_DDL = "FERRY-CDC-009", "DDL on a migrated table in the binlog",
        "This version replicates row changes only; the message has the statement. Apply it to the destination by hand and set the checkpoint past it, or restart the task after the DDL.";
    TRANSIENT_EXHAUSTED = "FERRY-NET-001", "transient failure persisted past its retries",
        "The server kept failing with a retryable error (connection lost, deadlock, lock wait); check its health and run again to resume.";
}
