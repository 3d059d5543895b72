//! The SQLite ticket store (rusqlite, SQLite bundled): the only module that
//! talks to the database. No SQLite type or SQL leaves this file.
//!
//! - **Schema** with versioned migrations (`schema_version` holds the
//!   versions applied; a newer schema than this build knows refuses to
//!   start). WAL, `synchronous = FULL` by default.
//! - **One writer thread** owns the writing connection and commits in
//!   groups: every write waiting when the previous commit ends goes into
//!   the next transaction (each in a savepoint of its own, so one bad write
//!   does not spoil its group), and each caller hears back only once its
//!   group is committed. Throughput grows with load instead of falling.
//! - **Readers** ([`Reader`]) open connections of their own (the command
//!   line, later the API); WAL lets them read while the writer writes.
//! - The logbook is append-only in the database too: triggers refuse
//!   UPDATE and DELETE on it.

use super::chain::{ChainKey, EntryFields, Tag};
use super::{
    CallChange, CallKey, CallOutcome, CallPhase, CallView, Caller, DueTimes, LogbookEntry, Millis,
    NewCall, NewEntry, Opened, Section, StoreError, Tampered, TicketFilter, TicketNumber,
    TicketStatus, TicketStore, TicketSummary, TicketView, Write, Written,
};
use crate::metrics::StoreMetrics;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;
use tokio::sync::oneshot;

/// The schema, one step per version (applied in order, each once).
const MIGRATIONS: &[&str] = &[
    // 1: tickets, their calls and the logbook.
    r#"
    CREATE TABLE tickets (
        number INTEGER PRIMARY KEY,
        caller_uri TEXT NOT NULL,
        caller_user TEXT NOT NULL,
        caller_display TEXT,
        dialed TEXT NOT NULL,
        language TEXT NOT NULL,
        status TEXT NOT NULL,
        level INTEGER NOT NULL,
        category TEXT,
        priority INTEGER,
        due_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        typed_number TEXT,
        merged_into INTEGER,
        entries INTEGER NOT NULL,
        last_mac BLOB NOT NULL,
        row_mac BLOB NOT NULL
    );
    CREATE INDEX tickets_by_caller ON tickets(caller_user, created_at);
    CREATE INDEX tickets_by_status ON tickets(status);
    CREATE TABLE calls (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ticket INTEGER NOT NULL REFERENCES tickets(number),
        sip_call_id TEXT NOT NULL,
        arrived_at INTEGER NOT NULL,
        phase TEXT NOT NULL,
        outcome TEXT,
        ivr_path TEXT NOT NULL DEFAULT '[]',
        fields TEXT NOT NULL DEFAULT '{}',
        queue TEXT,
        priority INTEGER,
        offers TEXT NOT NULL DEFAULT '[]',
        agent TEXT,
        enqueued_at INTEGER,
        offered_at INTEGER,
        answered_at INTEGER,
        ended_at INTEGER,
        wait_ms INTEGER,
        ring_ms INTEGER,
        talk_ms INTEGER,
        hung_up_by TEXT,
        transfers TEXT NOT NULL DEFAULT '[]',
        holds INTEGER,
        hold_ms INTEGER
    );
    CREATE INDEX calls_by_ticket ON calls(ticket);
    CREATE TABLE logbook (
        ticket INTEGER NOT NULL REFERENCES tickets(number),
        seq INTEGER NOT NULL,
        at INTEGER NOT NULL,
        author TEXT NOT NULL,
        call INTEGER,
        section TEXT NOT NULL,
        text TEXT NOT NULL,
        mac BLOB NOT NULL,
        PRIMARY KEY (ticket, seq)
    ) WITHOUT ROWID;
    CREATE TRIGGER logbook_no_update BEFORE UPDATE ON logbook
        BEGIN SELECT RAISE(ABORT, 'the logbook is append-only'); END;
    CREATE TRIGGER logbook_no_delete BEFORE DELETE ON logbook
        BEGIN SELECT RAISE(ABORT, 'the logbook is append-only'); END;
    "#,
    // 2: the calls still up (found at start after a crash) and the
    // caller's related tickets.
    r#"
    CREATE INDEX calls_up ON calls(id) WHERE outcome IS NULL;
    CREATE TABLE related (
        ticket INTEGER NOT NULL REFERENCES tickets(number),
        other INTEGER NOT NULL REFERENCES tickets(number),
        PRIMARY KEY (ticket, other)
    ) WITHOUT ROWID;
    "#,
    // 3: the on-site visit a level-3 ticket books (JSON: when, where, who,
    // why).
    r#"
    ALTER TABLE tickets ADD COLUMN visit TEXT;
    "#,
    // 4: the agent's after-call work (wrap-up) on the call it answered.
    r#"
    ALTER TABLE calls ADD COLUMN wrapup_ms INTEGER;
    "#,
    // 5: the desk: a ticket's disposition (wrap-up code), the agents each
    // ticket was offered to or taken by (what an agent may read), and the
    // words of the logbook for text search (FTS5; row id = ticket * 10^6 +
    // seq): what people write (the system's entries are found by the
    // list's other filters; indexing each call's first entry, which names
    // the caller, cost a fifth of a core at 1,000 calls/s and multiplied
    // the p99 wait before the agent by seven). An entry waits in
    // `logbook_words_queue` (durable, cheap) until the writer indexes the
    // queue in one go, between groups: indexing inside every group's
    // commit halved the store's throughput.
    r#"
    ALTER TABLE tickets ADD COLUMN disposition TEXT;
    CREATE INDEX tickets_by_status_number ON tickets(status, number);
    CREATE INDEX tickets_by_level_number ON tickets(level, number);
    CREATE TABLE ticket_agents (
        agent TEXT NOT NULL,
        ticket INTEGER NOT NULL REFERENCES tickets(number),
        PRIMARY KEY (agent, ticket)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO ticket_agents (agent, ticket)
        SELECT agent, ticket FROM calls WHERE agent IS NOT NULL;
    INSERT OR IGNORE INTO ticket_agents (agent, ticket)
        SELECT json_extract(o.value, '$.agent'), c.ticket FROM calls c, json_each(c.offers) o
        WHERE json_extract(o.value, '$.agent') IS NOT NULL;
    CREATE VIRTUAL TABLE logbook_words USING fts5(
        text, content = '', tokenize = 'unicode61 remove_diacritics 2'
    );
    INSERT INTO logbook_words (rowid, text) SELECT ticket * 1000000 + seq, text FROM logbook
        WHERE section != 'event';
    CREATE TABLE logbook_words_queue (row INTEGER PRIMARY KEY, text TEXT NOT NULL);
    CREATE TRIGGER logbook_words_in AFTER INSERT ON logbook
        WHEN NEW.section != 'event'
        BEGIN
            INSERT INTO logbook_words_queue (row, text)
            VALUES (NEW.ticket * 1000000 + NEW.seq, NEW.text);
        END;
    "#,
];

/// A logbook entry's row in the text index: ticket × this + seq.
const WORDS_ROW: i64 = 1_000_000;

/// Entries indexed for text search in one go, at most.
const INDEX_BATCH: i64 = 4_096;

/// Under steady load, the words are indexed at least this often.
const INDEX_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// The most matches read from the text index at a time.
const TEXT_CHUNK: i64 = 4_096;

/// The schema version this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The most writes committed in one transaction.
const MAX_GROUP: usize = 4096;

/// A caller's open tickets of this long ago are listed as related.
const RELATED_WINDOW_MS: i64 = 30 * 24 * 3600 * 1000;

/// At most this many of them (the latest).
const MAX_RELATED: i64 = 10;

/// How the database file is written to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    /// Every commit reaches the disk (survives a power loss).
    #[default]
    Full,
    /// Survives a crash of the process, not a power loss.
    Normal,
}

/// Where the store lives.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The database file (`<data-dir>/centralita.db`).
    pub path: PathBuf,
    /// The logbook key (`<data-dir>/logbook.key`).
    pub key_path: PathBuf,
    pub synchronous: Synchronous,
    /// How long each level (or queue) has to resolve a ticket.
    pub due: DueTimes,
}

impl StoreOptions {
    /// The files under `data_dir`.
    pub fn in_dir(data_dir: &Path) -> StoreOptions {
        StoreOptions {
            path: data_dir.join("centralita.db"),
            key_path: data_dir.join("logbook.key"),
            synchronous: Synchronous::Full,
            due: DueTimes::default(),
        }
    }
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Job {
    Write(Box<Write>, Reply<Written>),
    Interrupt(Millis, Reply<Vec<TicketNumber>>),
    /// Index every entry waiting for text search, then answer.
    IndexWords(Reply<()>),
}

/// The SQLite store: a handle on its writer thread.
pub struct SqliteStore {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    metrics: StoreMetrics,
    /// The last group could not be committed (until one is).
    failing: Arc<AtomicBool>,
}

impl SqliteStore {
    /// Open (or create) the database and the key, migrate, and start the
    /// writer thread.
    pub fn open(opts: &StoreOptions, metrics: StoreMetrics) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = opts.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: dir.display().to_string(),
                reason: e.to_string(),
            })?;
        }
        let key = ChainKey::load_or_create(&opts.key_path)?;
        let mut conn = open_conn(&opts.path, false)?;
        let sync = match opts.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON;"
        ))
        .map_err(db)?;
        migrate(&mut conn)?;
        conn.set_prepared_statement_cache_capacity(64);
        let open_tickets: i64 = conn
            .query_row(
                "SELECT count(*) FROM tickets WHERE status NOT IN ('resolved', 'closed')",
                [],
                |r| r.get(0),
            )
            .map_err(db)?;
        metrics.tickets_open.set(open_tickets);
        let (tx, rx) = mpsc::channel();
        let failing = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            conn,
            key,
            due: opts.due.clone(),
            metrics: metrics.clone(),
            failing: Arc::clone(&failing),
        };
        let spawn_error = |e: std::io::Error| StoreError::Open {
            path: opts.path.display().to_string(),
            reason: e.to_string(),
        };
        let handle = std::thread::Builder::new()
            .name("ticket-store".into())
            .spawn(move || writer.run(rx))
            .map_err(spawn_error)?;
        Ok(SqliteStore {
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
            metrics,
            failing,
        })
    }

    /// Index every entry still waiting for text search (the writer does
    /// it between groups by itself; tests and a stop ask for it now).
    pub async fn index_words(&self) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::IndexWords(reply))?;
        rx.await.unwrap_or(Err(StoreError::Stopped))
    }

    /// Whether the last group of writes failed to commit.
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    fn send(&self, job: Job) -> Result<(), StoreError> {
        let jobs = self.jobs.lock().map_err(|_| StoreError::Stopped)?;
        let tx = jobs.as_ref().ok_or(StoreError::Stopped)?;
        self.metrics.pending.inc();
        tx.send(job).map_err(|_| {
            self.metrics.pending.dec();
            StoreError::Stopped
        })
    }

    /// Let the writer finish what it holds and stop.
    pub fn close(&self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        if let Some(h) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = h.join();
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

#[async_trait::async_trait]
impl TicketStore for SqliteStore {
    async fn write(&self, w: Write) -> Result<Written, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Write(Box::new(w), reply))?;
        rx.await.unwrap_or(Err(StoreError::Stopped))
    }

    async fn interrupt_unfinished(&self, at: Millis) -> Result<Vec<TicketNumber>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Interrupt(at, reply))?;
        rx.await.unwrap_or(Err(StoreError::Stopped))
    }

    fn failing(&self) -> bool {
        SqliteStore::failing(self)
    }
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

fn open_conn(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags).map_err(|e| StoreError::Open {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(db)?;
    Ok(conn)
}

/// Apply the migrations this database has not had.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    migrate_to(conn, SCHEMA_VERSION)
}

/// The schema version the database has; a newer one than this build
/// knows is refused.
fn schema_version(conn: &Connection) -> Result<i64, StoreError> {
    let found: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )
        .map_err(db)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found,
            known: SCHEMA_VERSION,
        });
    }
    Ok(found)
}

fn migrate_to(conn: &mut Connection, target: i64) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
            version INTEGER PRIMARY KEY,
            applied_at INTEGER NOT NULL
        )",
    )
    .map_err(db)?;
    let found = schema_version(conn)?;
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        if version <= found || version > target {
            continue;
        }
        let tx = conn.transaction().map_err(db)?;
        tx.execute_batch(sql).map_err(db)?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
            params![version, Millis::now().0],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        tracing::info!(version, "ticket store schema migrated");
    }
    Ok(())
}

/// The writer thread: owns the connection, commits in groups.
struct Writer {
    conn: Connection,
    key: ChainKey,
    due: DueTimes,
    metrics: StoreMetrics,
    failing: Arc<AtomicBool>,
}

/// A write's answer, held until its group is committed.
enum Answer {
    Indexed(Reply<()>),
    Write(Reply<Written>, Result<Written, StoreError>),
    Interrupt(
        Reply<Vec<TicketNumber>>,
        Result<Vec<TicketNumber>, StoreError>,
    ),
}

impl Answer {
    /// Whether the database itself refused this write (not a missing
    /// ticket or call).
    fn database_error(&self) -> bool {
        matches!(
            self,
            Answer::Write(_, Err(StoreError::Database(_)))
                | Answer::Interrupt(_, Err(StoreError::Database(_)))
        )
    }

    fn send(self, failed: Option<&str>) {
        let fail = |_| StoreError::Database(failed.unwrap_or_default().to_string());
        match self {
            Answer::Indexed(r) => {
                let _ = r.send(Ok(()));
            }
            Answer::Write(r, v) => {
                let _ = r.send(match failed {
                    Some(_) => v.and_then(|_| Err(fail(()))),
                    None => v,
                });
            }
            Answer::Interrupt(r, v) => {
                let _ = r.send(match failed {
                    Some(_) => v.and_then(|_| Err(fail(()))),
                    None => v,
                });
            }
        }
    }
}

impl Writer {
    fn run(mut self, jobs: mpsc::Receiver<Job>) {
        // What a crash left unindexed.
        self.index_words();
        let mut indexed = Instant::now();
        // Whether entries may wait to be indexed.
        let mut dirty = false;
        loop {
            let first = if dirty {
                match jobs.recv_timeout(INDEX_EVERY) {
                    Ok(j) => j,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        self.index_words();
                        indexed = Instant::now();
                        dirty = false;
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match jobs.recv() {
                    Ok(j) => j,
                    Err(_) => break,
                }
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match jobs.try_recv() {
                    Ok(j) => group.push(j),
                    Err(_) => break,
                }
            }
            self.metrics.pending.sub(group.len() as i64);
            let (asked, writes): (Vec<Job>, Vec<Job>) = group
                .into_iter()
                .partition(|j| matches!(j, Job::IndexWords(_)));
            if !writes.is_empty() {
                self.commit(writes);
                dirty = true;
            }
            // The words, between groups: when asked, after a quiet
            // INDEX_EVERY, and under steady load at least that often.
            if !asked.is_empty() || indexed.elapsed() >= INDEX_EVERY {
                self.index_words();
                indexed = Instant::now();
                dirty = false;
            }
            for j in asked {
                if let Job::IndexWords(reply) = j {
                    let _ = reply.send(Ok(()));
                }
            }
        }
        self.index_words();
    }

    /// Index the entries waiting for text search (a batch at a time, each
    /// in a transaction of its own).
    fn index_words(&mut self) {
        loop {
            let r = (|| -> rusqlite::Result<usize> {
                let tx = self
                    .conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let n = run(
                    &tx,
                    "INSERT INTO logbook_words (rowid, text)
                     SELECT row, text FROM logbook_words_queue ORDER BY row LIMIT ?1",
                    [INDEX_BATCH],
                )?;
                run(
                    &tx,
                    "DELETE FROM logbook_words_queue
                     WHERE row IN (SELECT row FROM logbook_words_queue ORDER BY row LIMIT ?1)",
                    [INDEX_BATCH],
                )?;
                tx.commit()?;
                Ok(n)
            })();
            match r {
                Ok(n) if n as i64 == INDEX_BATCH => continue,
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "the logbook's words could not be indexed (kept for later)");
                    return;
                }
            }
        }
    }

    /// One transaction for the whole group; the answers go out once it is
    /// committed (or all fail with it).
    fn commit(&mut self, group: Vec<Job>) {
        let started = Instant::now();
        let n = group.len();
        let mut answers = Vec::with_capacity(n);
        let mut counts = Counts::default();
        let result = (|| -> Result<(), rusqlite::Error> {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            for job in group {
                answers.push(apply(&tx, &self.key, &self.due, job, &mut counts));
            }
            tx.commit()
        })();
        let failed = result.err().map(|e| e.to_string());
        // A write the database refused (disk full, read-only, locked, …)
        // is the store failing too, even if the rest of its group went in.
        let refused = answers.iter().filter(|a| a.database_error()).count();
        match &failed {
            None => {
                self.failing.store(refused > 0, Ordering::Relaxed);
                if refused > 0 {
                    self.metrics.errors.inc_by(refused as u64);
                    tracing::error!(writes = refused, "the ticket store refused writes");
                }
                counts.publish(&self.metrics);
            }
            Some(e) => {
                self.failing.store(true, Ordering::Relaxed);
                self.metrics.errors.inc_by(n as u64);
                tracing::error!(error = %e, writes = n, "the ticket store could not commit");
            }
        }
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.batch_entries.observe(n as f64);
        for a in answers {
            a.send(failed.as_deref());
        }
    }
}

/// What a group changed, published once it is committed.
#[derive(Default)]
struct Counts {
    new: u64,
    joined: u64,
    open_delta: i64,
    entries: [u64; 5],
}

impl Counts {
    fn publish(&self, m: &StoreMetrics) {
        m.tickets.with_label_values(&["new"]).inc_by(self.new);
        m.tickets.with_label_values(&["joined"]).inc_by(self.joined);
        m.tickets_open.add(self.open_delta);
        for (s, n) in Section::ALL.iter().zip(self.entries) {
            if n > 0 {
                m.entries.with_label_values(&[s.as_str()]).inc_by(n);
            }
        }
    }
}

/// A write through the connection's cache of prepared statements (a
/// statement is parsed once, not for every write).
fn run<P: rusqlite::Params>(tx: &Connection, sql: &str, p: P) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql)?.execute(p)
}

/// A row read through the cache of prepared statements.
fn row<T, P: rusqlite::Params>(
    tx: &Connection,
    sql: &str,
    p: P,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    tx.prepare_cached(sql)?.query_row(p, f)
}

/// One job, in a savepoint of its own: a failure rolls back that job only.
fn apply(
    tx: &Transaction<'_>,
    key: &ChainKey,
    due: &DueTimes,
    job: Job,
    counts: &mut Counts,
) -> Answer {
    let mut job_counts = Counts::default();
    let mut run = |f: &mut dyn FnMut(&Transaction<'_>, &mut Counts) -> Result<(), StoreError>| {
        let sp = run(tx, "SAVEPOINT job", []).map(|_| ()).map_err(db);
        let r = sp.and_then(|_| f(tx, &mut job_counts));
        match r {
            Ok(()) => run(tx, "RELEASE job", []).map(|_| ()).map_err(db),
            Err(e) => {
                let _ = run(tx, "ROLLBACK TO job", []);
                let _ = run(tx, "RELEASE job", []);
                job_counts = Counts::default();
                Err(e)
            }
        }
    };
    let answer = match job {
        Job::Write(w, reply) => {
            let mut out = None;
            let r = run(&mut |tx, c| {
                out = Some(write(tx, key, due, &w, c)?);
                Ok(())
            });
            Answer::Write(reply, r.and_then(|_| out.take().ok_or(StoreError::Stopped)))
        }
        Job::IndexWords(reply) => Answer::Indexed(reply),
        Job::Interrupt(at, reply) => {
            let mut out = Vec::new();
            let r = run(&mut |tx, c| {
                out = interrupt(tx, key, due, at, c)?;
                Ok(())
            });
            Answer::Interrupt(reply, r.map(|_| std::mem::take(&mut out)))
        }
    };
    counts.new += job_counts.new;
    counts.joined += job_counts.joined;
    counts.open_delta += job_counts.open_delta;
    for (a, b) in counts.entries.iter_mut().zip(job_counts.entries) {
        *a += b;
    }
    answer
}

fn write(
    tx: &Transaction<'_>,
    key: &ChainKey,
    due: &DueTimes,
    w: &Write,
    c: &mut Counts,
) -> Result<Written, StoreError> {
    match w {
        Write::Open { call, blocked } => {
            open_ticket(tx, key, due, call, *blocked, c).map(Written::Opened)
        }
        Write::Call {
            call,
            at,
            change,
            entry,
        } => change_call(tx, key, due, *call, *at, change, entry, c)
            .map(|ticket| Written::Call { ticket }),
        Write::Join { call, at, typed } => {
            join(tx, key, due, *call, *at, typed, c).map(|ticket| Written::Call { ticket })
        }
        Write::Callback { ticket, at, agent } => {
            callback(tx, key, *ticket, *at, agent, c).map(Written::Opened)
        }
        Write::Escalate {
            ticket,
            at,
            author,
            level,
        } => escalate(tx, key, due, *ticket, *at, author, level, c)
            .map(|seq| Written::Appended { seq }),
        Write::WrapUp {
            ticket,
            at,
            agent,
            after,
        } => wrap_up(tx, key, *ticket, *at, agent, *after, c).map(|seq| Written::Appended { seq }),
        Write::Update {
            ticket,
            at,
            author,
            status,
            disposition,
        } => update(
            tx,
            key,
            *ticket,
            *at,
            author,
            *status,
            disposition.as_deref(),
            c,
        )
        .map(|seq| Written::Appended { seq }),
        Write::Append { ticket, entry } => {
            exists(tx, *ticket)?;
            append(tx, key, *ticket, entry, c).map(|seq| Written::Appended { seq })
        }
    }
}

fn exists(tx: &Transaction<'_>, n: TicketNumber) -> Result<(), StoreError> {
    let found: Option<i64> = row(
        tx,
        "SELECT number FROM tickets WHERE number = ?1",
        [n.0 as i64],
        |r| r.get(0),
    )
    .optional()
    .map_err(db)?;
    found.map(|_| ()).ok_or(StoreError::NoTicket(n))
}

/// Append an entry to `ticket`'s chain; its sequence number.
fn append(
    tx: &Transaction<'_>,
    key: &ChainKey,
    ticket: TicketNumber,
    e: &NewEntry,
    c: &mut Counts,
) -> Result<u64, StoreError> {
    let (entries, last): (i64, Vec<u8>) = row(
        tx,
        "SELECT entries, last_mac FROM tickets WHERE number = ?1",
        [ticket.0 as i64],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map_err(db)?
    .ok_or(StoreError::NoTicket(ticket))?;
    let prev: Tag = last
        .as_slice()
        .try_into()
        .map_err(|_| StoreError::Database(format!("ticket {ticket}: a bad last MAC")))?;
    let seq = entries as u64 + 1;
    let fields = EntryFields {
        ticket,
        seq,
        at: e.at,
        author: &e.author,
        call: e.call.map(|c| c.0),
        section: e.section.as_str(),
        text: &e.text,
    };
    let mac = key.entry(&prev, &fields);
    run(
        tx,
        "INSERT INTO logbook (ticket, seq, at, author, call, section, text, mac)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            ticket.0 as i64,
            seq as i64,
            e.at.0,
            e.author,
            e.call.map(|c| c.0),
            e.section.as_str(),
            e.text,
            &mac[..]
        ],
    )
    .map_err(db)?;
    let row = key.row(ticket, seq, &mac);
    run(
        tx,
        "UPDATE tickets SET entries = ?2, last_mac = ?3, row_mac = ?4,
             updated_at = MAX(updated_at, ?5)
         WHERE number = ?1",
        params![ticket.0 as i64, seq as i64, &mac[..], &row[..], e.at.0],
    )
    .map_err(db)?;
    if let Some(n) = Section::ALL
        .iter()
        .position(|s| *s == e.section)
        .and_then(|i| c.entries.get_mut(i))
    {
        *n += 1;
    }
    Ok(seq)
}

/// An entry the system writes about a call.
fn event(at: Millis, call: CallKey, text: String) -> NewEntry {
    NewEntry {
        at,
        author: "system".into(),
        call: Some(call),
        section: Section::Event,
        text,
    }
}

fn open_ticket(
    tx: &Transaction<'_>,
    key: &ChainKey,
    due: &DueTimes,
    call: &NewCall,
    blocked: bool,
    c: &mut Counts,
) -> Result<Opened, StoreError> {
    let next: i64 = row(
        tx,
        "SELECT COALESCE(MAX(number) + 1, ?1) FROM tickets",
        [TicketNumber::FIRST.0 as i64],
        |r| r.get(0),
    )
    .map_err(db)?;
    let number = TicketNumber(next.max(TicketNumber::FIRST.0 as i64) as u64);
    let genesis = key.genesis(number);
    let row = key.row(number, 0, &genesis);
    let at = call.at.0;
    run(
        tx,
        "INSERT INTO tickets (number, caller_uri, caller_user, caller_display, dialed,
             language, status, level, created_at, updated_at, due_at, entries, last_mac, row_mac)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', 1, ?7, ?7, ?10, 0, ?8, ?9)",
        params![
            number.0 as i64,
            call.caller.uri,
            call.caller.user,
            call.caller.display,
            call.dialed,
            call.language,
            at,
            &genesis[..],
            &row[..],
            at.saturating_add(due.level_ms(1)),
        ],
    )
    .map_err(db)?;
    let (phase, outcome) = if blocked {
        (CallPhase::Ended, Some(CallOutcome::Blocked.as_str()))
    } else {
        (CallPhase::Arriving, None)
    };
    run(
        tx,
        "INSERT INTO calls (ticket, sip_call_id, arrived_at, phase, outcome, ended_at, hung_up_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            number.0 as i64,
            call.sip_call_id,
            at,
            phase.as_str(),
            outcome,
            blocked.then_some(at),
            blocked.then_some("centralita"),
        ],
    )
    .map_err(db)?;
    let key_call = CallKey(tx.last_insert_rowid());
    // The caller's latest open tickets (a trunk that sends one user for
    // every call must not make this grow with the store).
    run(
        tx,
        "INSERT INTO related (ticket, other)
         SELECT ?1, number FROM tickets
         WHERE caller_user = ?2 AND number != ?1 AND created_at >= ?3
           AND status NOT IN ('resolved', 'closed') AND caller_user != ''
         ORDER BY created_at DESC LIMIT ?4",
        params![
            number.0 as i64,
            call.caller.user,
            at - RELATED_WINDOW_MS,
            MAX_RELATED
        ],
    )
    .map_err(db)?;
    c.new += 1;
    c.open_delta += 1;
    let who = call.caller.display.as_ref().map_or_else(
        || call.caller.user.clone(),
        |d| format!("{d} ({})", call.caller.user),
    );
    let text = format!("Call arrived from {who} to {}.", call.dialed);
    append(tx, key, number, &event(call.at, key_call, text), c)?;
    if blocked {
        let text = "Call refused (486 Busy Here): only the lines kept in reserve were free.";
        append(tx, key, number, &event(call.at, key_call, text.into()), c)?;
    }
    Ok(Opened {
        ticket: number,
        call: key_call,
    })
}

/// A ticket's status as stored (`NoTicket` if there is none).
fn status_of(tx: &Transaction<'_>, ticket: TicketNumber) -> Result<String, StoreError> {
    row(
        tx,
        "SELECT status FROM tickets WHERE number = ?1",
        [ticket.0 as i64],
        |r| r.get(0),
    )
    .optional()
    .map_err(db)?
    .ok_or(StoreError::NoTicket(ticket))
}

/// Level 2, or level 3 with its visit: the ticket is escalated and its
/// logbook says so (the entry's sequence number).
#[allow(clippy::too_many_arguments)]
fn escalate(
    tx: &Transaction<'_>,
    key: &ChainKey,
    due: &DueTimes,
    ticket: TicketNumber,
    at: Millis,
    author: &str,
    level: &super::Level,
    c: &mut Counts,
) -> Result<u64, StoreError> {
    let status = status_of(tx, ticket)?;
    let (n, visit, text) = match level {
        super::Level::Two => (2, None, "Escalated to level 2 (experts).".to_string()),
        super::Level::Three(v) => (
            3,
            serde_json::to_string(v).ok(),
            format!(
                "On-site visit booked (level 3): {} at {}, by {}. Reason: {}",
                v.when, v.place, v.technician, v.reason
            ),
        ),
    };
    run(
        tx,
        "UPDATE tickets SET level = ?2, status = 'escalated', visit = COALESCE(?3, visit),
             due_at = ?4
         WHERE number = ?1",
        params![
            ticket.0 as i64,
            n,
            visit,
            at.0.saturating_add(due.level_ms(n))
        ],
    )
    .map_err(db)?;
    if matches!(
        TicketStatus::parse(&status),
        Some(TicketStatus::Resolved | TicketStatus::Closed)
    ) {
        c.open_delta += 1;
    }
    let entry = NewEntry {
        at,
        author: author.to_string(),
        call: None,
        section: Section::Event,
        text,
    };
    append(tx, key, ticket, &entry, c)
}

/// A person changes the status or gives a disposition: kept, and said by
/// its author (the last entry's sequence number).
#[allow(clippy::too_many_arguments)]
fn update(
    tx: &Transaction<'_>,
    key: &ChainKey,
    ticket: TicketNumber,
    at: Millis,
    author: &str,
    status: Option<TicketStatus>,
    disposition: Option<&str>,
    c: &mut Counts,
) -> Result<u64, StoreError> {
    let was = status_of(tx, ticket)?;
    let closed =
        |s: Option<TicketStatus>| matches!(s, Some(TicketStatus::Resolved | TicketStatus::Closed));
    let mut texts = Vec::new();
    if let Some(st) = status {
        run(
            tx,
            "UPDATE tickets SET status = ?2 WHERE number = ?1",
            params![ticket.0 as i64, st.as_str()],
        )
        .map_err(db)?;
        let was = TicketStatus::parse(&was);
        c.open_delta += match (closed(was), closed(Some(st))) {
            (false, true) => -1,
            (true, false) => 1,
            _ => 0,
        };
        texts.push(format!("Status changed to {}.", st.as_str()));
    }
    if let Some(d) = disposition {
        run(
            tx,
            "UPDATE tickets SET disposition = ?2 WHERE number = ?1",
            params![ticket.0 as i64, d],
        )
        .map_err(db)?;
        texts.push(format!("Disposition: {d}."));
    }
    let mut seq = 0;
    for text in texts {
        let entry = NewEntry {
            at,
            author: author.to_string(),
            call: None,
            section: Section::Event,
            text,
        };
        seq = append(tx, key, ticket, &entry, c)?;
    }
    Ok(seq)
}

/// The agent's wrap-up on its latest call on the ticket ended: the call
/// keeps how long it took, and the logbook says so.
fn wrap_up(
    tx: &Transaction<'_>,
    key: &ChainKey,
    ticket: TicketNumber,
    at: Millis,
    agent: &str,
    after: u64,
    c: &mut Counts,
) -> Result<u64, StoreError> {
    exists(tx, ticket)?;
    let call: Option<i64> = row(
        tx,
        "SELECT id FROM calls WHERE ticket = ?1 AND agent = ?2 ORDER BY id DESC LIMIT 1",
        params![ticket.0 as i64, agent],
        |r| r.get(0),
    )
    .optional()
    .map_err(db)?;
    let ms = i64::try_from(after).unwrap_or(i64::MAX);
    if let Some(id) = call {
        run(
            tx,
            "UPDATE calls SET wrapup_ms = ?2 WHERE id = ?1",
            params![id, ms],
        )
        .map_err(db)?;
    }
    let entry = NewEntry {
        at,
        author: "system".into(),
        call: call.map(CallKey),
        section: Section::Event,
        text: format!("{agent} finished the wrap-up after {} s.", after / 1000),
    };
    append(tx, key, ticket, &entry, c)
}

/// A callback's attempt: a call row on the ticket, its agent ringing.
fn callback(
    tx: &Transaction<'_>,
    key: &ChainKey,
    ticket: TicketNumber,
    at: Millis,
    agent: &str,
    c: &mut Counts,
) -> Result<Opened, StoreError> {
    exists(tx, ticket)?;
    run(
        tx,
        "INSERT INTO calls (ticket, sip_call_id, arrived_at, phase, offered_at, offers)
         VALUES (?1, 'callback', ?2, 'ringing', ?2,
                 json_array(json_object('agent', ?3, 'at', ?2, 'result', '')))",
        params![ticket.0 as i64, at.0, agent],
    )
    .map_err(db)?;
    let call = CallKey(tx.last_insert_rowid());
    run(
        tx,
        "INSERT OR IGNORE INTO ticket_agents (agent, ticket) VALUES (?1, ?2)",
        params![agent, ticket.0 as i64],
    )
    .map_err(db)?;
    let text = format!("Calling the customer back: ringing {agent} first.");
    append(tx, key, ticket, &event(at, call, text), c)?;
    Ok(Opened { ticket, call })
}

/// What a call's row holds that a change needs.
struct CallRow {
    ticket: TicketNumber,
    arrived: i64,
    enqueued: Option<i64>,
    offered: Option<i64>,
    answered: Option<i64>,
}

fn call_row(tx: &Transaction<'_>, call: CallKey) -> Result<CallRow, StoreError> {
    row(
        tx,
        "SELECT ticket, arrived_at, enqueued_at, offered_at, answered_at FROM calls WHERE id = ?1",
        [call.0],
        |r| {
            Ok(CallRow {
                ticket: TicketNumber(r.get::<_, i64>(0)? as u64),
                arrived: r.get(1)?,
                enqueued: r.get(2)?,
                offered: r.get(3)?,
                answered: r.get(4)?,
            })
        },
    )
    .optional()
    .map_err(db)?
    .ok_or(StoreError::NoCall(call.0))
}

/// A JSON path to an object member (quotes escaped).
fn member(name: &str) -> String {
    format!("$.\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

#[allow(clippy::too_many_arguments)]
fn change_call(
    tx: &Transaction<'_>,
    key: &ChainKey,
    due: &DueTimes,
    call: CallKey,
    at: Millis,
    ch: &CallChange,
    entry: &str,
    c: &mut Counts,
) -> Result<TicketNumber, StoreError> {
    let row = call_row(tx, call)?;
    let id = call.0;
    let exec = |sql: &str, p: &[&dyn rusqlite::ToSql]| run(tx, sql, p).map(|_| ()).map_err(db);
    if let Some(phase) = ch.phase {
        exec(
            "UPDATE calls SET phase = ?2 WHERE id = ?1",
            &[&id, &phase.as_str()],
        )?;
    }
    if let Some(lang) = &ch.language {
        exec(
            "UPDATE tickets SET language = ?2 WHERE number = ?1",
            &[&(row.ticket.0 as i64), lang],
        )?;
    }
    if let Some((menu, key_pressed)) = &ch.ivr_step {
        let k = key_pressed.map(|k| k.to_string());
        exec(
            "UPDATE calls SET ivr_path = json_insert(ivr_path, '$[#]', json_object('menu', ?2, 'key', ?3))
             WHERE id = ?1",
            &[&id, menu, &k],
        )?;
    }
    if let Some((name, value)) = &ch.field {
        exec(
            "UPDATE calls SET fields = json_set(fields, ?2, ?3) WHERE id = ?1",
            &[&id, &member(name), value],
        )?;
    }
    if let Some((queue, priority)) = &ch.queue {
        exec(
            "UPDATE calls SET queue = ?2, priority = ?3 WHERE id = ?1",
            &[&id, queue, priority],
        )?;
        exec(
            "UPDATE tickets SET category = ?2, priority = ?3 WHERE number = ?1",
            &[&(row.ticket.0 as i64), queue, priority],
        )?;
        // A level-1 ticket not yet answered takes the queue's own due time.
        if let Some(ms) = due.queue_ms(queue) {
            exec(
                "UPDATE tickets SET due_at = ?2
                 WHERE number = ?1 AND level = 1 AND status = 'open'",
                &[&(row.ticket.0 as i64), &row.arrived.saturating_add(ms)],
            )?;
        }
    }
    if ch.enqueued {
        exec(
            "UPDATE calls SET enqueued_at = COALESCE(enqueued_at, ?2) WHERE id = ?1",
            &[&id, &at.0],
        )?;
    }
    if let Some(result) = &ch.offer_ended {
        exec(
            "UPDATE calls SET offers = json_set(offers, '$[#-1].result', ?2)
             WHERE id = ?1 AND json_array_length(offers) > 0",
            &[&id, result],
        )?;
    }
    for agent in [&ch.offered, &ch.answered_by, &ch.agent]
        .into_iter()
        .flatten()
    {
        exec(
            "INSERT OR IGNORE INTO ticket_agents (agent, ticket) VALUES (?1, ?2)",
            &[agent, &(row.ticket.0 as i64)],
        )?;
    }
    if let Some(agent) = &ch.offered {
        exec(
            "UPDATE calls SET offered_at = ?2,
                 offers = json_insert(offers, '$[#]', json_object('agent', ?3, 'at', ?2, 'result', ''))
             WHERE id = ?1",
            &[&id, &at.0, agent],
        )?;
    }
    if let Some(agent) = &ch.answered_by {
        let waited = at.0 - row.enqueued.unwrap_or(row.arrived);
        let ring = row.offered.map(|o| at.0 - o);
        exec(
            "UPDATE calls SET agent = ?2, answered_at = ?3, wait_ms = COALESCE(wait_ms, ?4),
                 ring_ms = ?5,
                 offers = CASE WHEN json_array_length(offers) > 0
                     THEN json_set(offers, '$[#-1].result', 'answered') ELSE offers END
             WHERE id = ?1",
            &[&id, agent, &at.0, &waited, &ring],
        )?;
        exec(
            "UPDATE tickets SET status = 'in_progress' WHERE number = ?1 AND status = 'open'",
            &[&(row.ticket.0 as i64)],
        )?;
    }
    if let Some(agent) = &ch.agent {
        exec("UPDATE calls SET agent = ?2 WHERE id = ?1", &[&id, agent])?;
    }
    if let Some((how, to)) = &ch.transfer {
        exec(
            "UPDATE calls SET transfers = json_insert(transfers, '$[#]',
                 json_object('at', ?2, 'how', ?3, 'to', ?4))
             WHERE id = ?1",
            &[&id, &at.0, how, to],
        )?;
    }
    if let Some((holds, hold_ms)) = ch.holds {
        exec(
            "UPDATE calls SET holds = ?2, hold_ms = ?3 WHERE id = ?1",
            &[&id, &holds, &(hold_ms as i64)],
        )?;
    }
    if let Some((outcome, by)) = &ch.ended {
        let talk = row.answered.map(|a| at.0 - a);
        exec(
            "UPDATE calls SET outcome = ?2, ended_at = ?3, hung_up_by = ?4, talk_ms = ?5,
                 phase = 'ended'
             WHERE id = ?1",
            &[&id, &outcome.as_str(), &at.0, by, &talk],
        )?;
    }
    append(tx, key, row.ticket, &event(at, call, entry.to_string()), c)?;
    Ok(row.ticket)
}

fn join(
    tx: &Transaction<'_>,
    key: &ChainKey,
    due: &DueTimes,
    call: CallKey,
    at: Millis,
    typed: &str,
    c: &mut Counts,
) -> Result<TicketNumber, StoreError> {
    let row = call_row(tx, call)?;
    let target = TicketNumber::parse(typed).filter(|n| *n != row.ticket);
    let status: Option<String> = match target {
        Some(n) => tx
            .query_row(
                "SELECT status FROM tickets WHERE number = ?1",
                [n.0 as i64],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?,
        None => None,
    };
    let (Some(target), Some(status)) = (target, status) else {
        run(
            tx,
            "UPDATE tickets SET typed_number = ?2 WHERE number = ?1",
            params![row.ticket.0 as i64, typed],
        )
        .map_err(db)?;
        let text = format!("The caller typed ticket number {typed}, which names no ticket.");
        append(tx, key, row.ticket, &event(at, call, text), c)?;
        return Ok(row.ticket);
    };
    run(
        tx,
        "UPDATE calls SET ticket = ?2 WHERE id = ?1",
        params![call.0, target.0 as i64],
    )
    .map_err(db)?;
    let old = row.ticket;
    run(
        tx,
        "UPDATE tickets SET merged_into = ?2, status = 'closed' WHERE number = ?1",
        params![old.0 as i64, target.0 as i64],
    )
    .map_err(db)?;
    let reopen = matches!(
        TicketStatus::parse(&status),
        Some(TicketStatus::Resolved | TicketStatus::Closed)
    );
    if reopen {
        run(
            tx,
            "UPDATE tickets SET status = 'open',
                 due_at = ?2 + CASE level WHEN 2 THEN ?4 WHEN 3 THEN ?5 ELSE ?3 END
             WHERE number = ?1",
            params![
                target.0 as i64,
                at.0,
                due.level_ms(1),
                due.level_ms(2),
                due.level_ms(3)
            ],
        )
        .map_err(db)?;
    }
    // The call's own ticket closes; a reopened one counts open again.
    c.open_delta += if reopen { 0 } else { -1 };
    c.joined += 1;
    let text = format!("The caller typed ticket {target}: this call goes on there.");
    append(tx, key, old, &event(at, call, text), c)?;
    let text = format!(
        "A new call joins this ticket (the caller typed its number){}.",
        if reopen {
            "; the ticket is reopened"
        } else {
            ""
        }
    );
    append(tx, key, target, &event(at, call, text), c)?;
    Ok(target)
}

/// Close every call left up (a crash, or a stop) with outcome interrupted.
fn interrupt(
    tx: &Transaction<'_>,
    key: &ChainKey,
    due: &DueTimes,
    at: Millis,
    c: &mut Counts,
) -> Result<Vec<TicketNumber>, StoreError> {
    let up: Vec<(i64, i64, String)> = {
        let mut q = tx
            .prepare_cached("SELECT id, ticket, phase FROM calls WHERE outcome IS NULL ORDER BY id")
            .map_err(db)?;
        let rows = q
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)?
    };
    let mut tickets = Vec::new();
    for (id, ticket, phase) in up {
        let ch = CallChange {
            ended: Some((CallOutcome::Interrupted, "centralita".into())),
            ..CallChange::default()
        };
        let where_ = match CallPhase::parse(&phase) {
            Some(CallPhase::Arriving) => "while it was being answered",
            Some(CallPhase::Ivr) => "in the menus",
            Some(CallPhase::Queue) => "waiting in the queue",
            Some(CallPhase::Ringing) => "while an agent's phone rang",
            Some(CallPhase::Talking) => "while talking with an agent",
            _ => "",
        };
        let text = format!("The call was interrupted by a stop of centralita {where_}.");
        change_call(tx, key, due, CallKey(id), at, &ch, &text, c)?;
        let t = TicketNumber(ticket as u64);
        if !tickets.contains(&t) {
            tickets.push(t);
        }
    }
    Ok(tickets)
}

/// Past its due time and not resolved.
fn overdue(status: TicketStatus, due: Option<Millis>, now: Millis) -> bool {
    !matches!(status, TicketStatus::Resolved | TicketStatus::Closed) && due.is_some_and(|d| d < now)
}

/// A JSON column read back (what does not parse reads as empty).
fn json<T: serde::de::DeserializeOwned + Default>(s: String) -> T {
    serde_json::from_str(&s).unwrap_or_default()
}

/// A reading connection (the command line, the API).
pub struct Reader {
    conn: Connection,
}

/// A few reading connections for the API, used on blocking threads so that
/// a slow read never holds up the runtime.
pub struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Reader>>,
}

/// Idle connections kept at most.
const POOL_IDLE: usize = 4;

impl ReaderPool {
    pub fn new(path: &Path) -> ReaderPool {
        ReaderPool {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Run `f` with a connection, on a blocking thread.
    pub async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Reader) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let idle = pool.idle.lock().ok().and_then(|mut v| v.pop());
            let reader = match idle {
                Some(r) => r,
                None => Reader::open(&pool.path)?,
            };
            let out = f(&reader);
            if let Ok(mut v) = pool.idle.lock() {
                if v.len() < POOL_IDLE {
                    v.push(reader);
                }
            }
            out
        })
        .await
        .unwrap_or(Err(StoreError::Stopped))
    }
}

impl Reader {
    /// Whether `agent` was offered or took a call on the ticket (what an
    /// agent may read and write).
    pub fn agent_may_see(&self, n: TicketNumber, agent: &str) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached("SELECT 1 FROM ticket_agents WHERE agent = ?1 AND ticket = ?2")
            .and_then(|mut q| q.exists(params![agent, n.0 as i64]))
            .map_err(db)
    }

    /// One ticket's line, as in a list.
    pub fn summary(&self, n: TicketNumber) -> Result<Option<TicketSummary>, StoreError> {
        let f = TicketFilter {
            number: Some(n),
            limit: 1,
            ..TicketFilter::default()
        };
        Ok(self.list(&f)?.pop())
    }

    /// Open the database read-only (it must exist and be of a schema this
    /// build knows).
    pub fn open(path: &Path) -> Result<Reader, StoreError> {
        if !path.exists() {
            return Err(StoreError::Open {
                path: path.display().to_string(),
                reason: "no ticket store there yet (start centralita once)".into(),
            });
        }
        let conn = open_conn(path, true)?;
        schema_version(&conn)?;
        Ok(Reader { conn })
    }

    /// How many tickets and logbook entries there are.
    pub fn totals(&self) -> Result<(u64, u64), StoreError> {
        self.conn
            .query_row(
                "SELECT count(*), COALESCE(SUM(entries), 0) FROM tickets",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(db)
    }

    /// Tickets matching `f`, newest first.
    pub fn list(&self, f: &TicketFilter) -> Result<Vec<TicketSummary>, StoreError> {
        let limit = if f.limit == 0 {
            100
        } else {
            f.limit.min(100_000)
        };
        let Some(words) = f
            .text
            .as_deref()
            .and_then(|t| crate::text::fts_query(t, crate::text::Words::All))
        else {
            return self.page(f, None, limit);
        };
        let mut out = self.by_words(f, &words, limit)?;
        // One word may be the caller's number (the user part of its
        // address): those tickets too, newest first with the rest.
        let typed = f.text.as_deref().map(str::trim).unwrap_or_default();
        if !typed.is_empty() && !typed.contains(char::is_whitespace) && f.caller.is_none() {
            let by_caller = TicketFilter {
                caller: Some(typed.to_string()),
                text: None,
                ..f.clone()
            };
            out.extend(self.page(&by_caller, None, limit)?);
            out.sort_by_key(|t| std::cmp::Reverse(t.number));
            out.dedup_by_key(|t| t.number);
            out.truncate(limit);
        }
        Ok(out)
    }

    /// The tickets whose notes hold `words` (an FTS5 query), newest first.
    fn by_words(
        &self,
        f: &TicketFilter,
        words: &str,
        limit: usize,
    ) -> Result<Vec<TicketSummary>, StoreError> {
        // Words: walk the text index from the newest entries down, a chunk
        // at a time, and keep the tickets the other filters accept (the
        // work is bounded by what matches, not by the store's size).
        let mut below = f
            .before
            .map_or(i64::MAX, |b| (b.0 as i64).saturating_mul(WORDS_ROW));
        let mut out: Vec<TicketSummary> = Vec::new();
        let mut q = self
            .conn
            .prepare_cached(
                "SELECT rowid FROM logbook_words WHERE logbook_words MATCH ?1 AND rowid < ?2
                 ORDER BY rowid DESC LIMIT ?3",
            )
            .map_err(db)?;
        // Twice a page's worth first (what a desk's search usually needs),
        // more each time after.
        let mut chunk = (limit as i64 * 2).clamp(64, TEXT_CHUNK);
        while out.len() < limit {
            let rows: Vec<i64> = q
                .query_map(params![words, below, chunk], |r| r.get(0))
                .map_err(db)?
                .collect::<Result<_, _>>()
                .map_err(db)?;
            let Some(last) = rows.last() else { break };
            below = *last;
            let mut numbers: Vec<i64> = rows.iter().map(|r| r / WORDS_ROW).collect();
            numbers.dedup();
            numbers.retain(|n| out.last().is_none_or(|t| (*n as u64) < t.number.0));
            if numbers.is_empty() {
                continue;
            }
            let found = self.page(f, Some(&numbers), limit - out.len())?;
            out.extend(found);
            if rows.len() < chunk as usize {
                break;
            }
            chunk = (chunk * 2).min(TEXT_CHUNK);
        }
        Ok(out)
    }

    /// One page of `f` (its words aside); among `numbers` when given.
    fn page(
        &self,
        f: &TicketFilter,
        numbers: Option<&[i64]>,
        limit: usize,
    ) -> Result<Vec<TicketSummary>, StoreError> {
        // An agent's tickets are read from its own index, newest first.
        let (from, order) = match &f.agent {
            Some(_) => (
                "FROM ticket_agents ta JOIN tickets t ON t.number = ta.ticket WHERE ta.agent = ?",
                "ta.ticket",
            ),
            None => ("FROM tickets t WHERE 1 = 1", "t.number"),
        };
        let mut sql = format!(
            "SELECT t.number, t.status, t.level, t.caller_uri, t.dialed, t.category,
                    t.created_at, t.updated_at, t.entries,
                    (SELECT count(*) FROM calls c WHERE c.ticket = t.number),
                    (SELECT c.outcome FROM calls c WHERE c.ticket = t.number ORDER BY c.id DESC LIMIT 1),
                    (SELECT c.agent FROM calls c WHERE c.ticket = t.number ORDER BY c.id DESC LIMIT 1),
                    (SELECT count(*) FROM calls c WHERE c.ticket = t.number AND c.outcome IS NULL),
                    t.due_at
             {from}"
        );
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        if let Some(a) = &f.agent {
            args.push(Box::new(a.clone()));
        }
        if let Some(s) = f.status {
            sql.push_str(" AND t.status = ?");
            args.push(Box::new(s.as_str()));
        }
        if let Some(q) = &f.queue {
            sql.push_str(
                " AND EXISTS (SELECT 1 FROM calls c WHERE c.ticket = t.number AND c.queue = ?)",
            );
            args.push(Box::new(q.clone()));
        }
        if let Some(l) = f.level {
            sql.push_str(" AND t.level = ?");
            args.push(Box::new(l));
        }
        if let Some(ns) = numbers {
            let list: Vec<String> = ns.iter().map(i64::to_string).collect();
            sql.push_str(&format!(" AND t.number IN ({})", list.join(",")));
        }
        if let Some(b) = f.before {
            sql.push_str(&format!(" AND {order} < ?"));
            args.push(Box::new(b.0 as i64));
        }
        if let Some(n) = f.number {
            sql.push_str(" AND t.number = ?");
            args.push(Box::new(n.0 as i64));
        }
        if let Some(c) = &f.caller {
            sql.push_str(" AND t.caller_user = ?");
            args.push(Box::new(c.clone()));
        }
        if let Some(since) = f.since {
            sql.push_str(" AND t.created_at >= ?");
            args.push(Box::new(since.0));
        }
        let now = Millis::now();
        if f.overdue {
            sql.push_str(" AND t.due_at < ? AND t.status NOT IN ('resolved', 'closed')");
            args.push(Box::new(now.0));
        }
        sql.push_str(&format!(" ORDER BY {order} DESC LIMIT ?"));
        args.push(Box::new(limit as i64));
        let mut q = self.conn.prepare(&sql).map_err(db)?;
        let rows = q
            .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                let up: i64 = r.get(12)?;
                let outcome: Option<String> = r.get(10)?;
                let status =
                    TicketStatus::parse(&r.get::<_, String>(1)?).unwrap_or(TicketStatus::Open);
                let due = r.get::<_, Option<i64>>(13)?.map(Millis);
                Ok(TicketSummary {
                    number: TicketNumber(r.get::<_, i64>(0)? as u64),
                    status,
                    due,
                    overdue: overdue(status, due, now),
                    level: r.get(2)?,
                    caller: r.get(3)?,
                    dialed: r.get(4)?,
                    category: r.get(5)?,
                    created: Millis(r.get(6)?),
                    updated: Millis(r.get(7)?),
                    entries: r.get::<_, i64>(8)? as u64,
                    calls: r.get::<_, i64>(9)? as u32,
                    last_outcome: if up > 0 {
                        None
                    } else {
                        outcome.as_deref().and_then(CallOutcome::parse)
                    },
                    last_agent: r.get(11)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    /// One ticket with its calls, related tickets and logbook.
    pub fn show(&self, n: TicketNumber) -> Result<Option<TicketView>, StoreError> {
        let t = self
            .conn
            .query_row(
                "SELECT status, level, caller_uri, caller_user, caller_display, dialed, language,
                        category, priority, created_at, updated_at, typed_number, merged_into,
                        visit, due_at, disposition
                 FROM tickets WHERE number = ?1",
                [n.0 as i64],
                |r| {
                    let status =
                        TicketStatus::parse(&r.get::<_, String>(0)?).unwrap_or(TicketStatus::Open);
                    let due = r.get::<_, Option<i64>>(14)?.map(Millis);
                    Ok(TicketView {
                        number: n,
                        status,
                        due,
                        overdue: overdue(status, due, Millis::now()),
                        disposition: r.get(15)?,
                        level: r.get(1)?,
                        caller: Caller {
                            uri: r.get(2)?,
                            user: r.get(3)?,
                            display: r.get(4)?,
                        },
                        dialed: r.get(5)?,
                        language: r.get(6)?,
                        category: r.get(7)?,
                        priority: r.get(8)?,
                        created: Millis(r.get(9)?),
                        updated: Millis(r.get(10)?),
                        typed_number: r.get(11)?,
                        merged_into: r.get::<_, Option<i64>>(12)?.map(|m| TicketNumber(m as u64)),
                        visit: r
                            .get::<_, Option<String>>(13)?
                            .and_then(|v| serde_json::from_str(&v).ok()),
                        related: Vec::new(),
                        calls: Vec::new(),
                        logbook: Vec::new(),
                    })
                },
            )
            .optional()
            .map_err(db)?;
        let Some(mut t) = t else { return Ok(None) };
        t.related = self.related(n)?;
        t.calls = self.calls(n)?;
        t.logbook = self.logbook(n)?;
        Ok(Some(t))
    }

    fn related(&self, n: TicketNumber) -> Result<Vec<TicketNumber>, StoreError> {
        let mut q = self
            .conn
            .prepare("SELECT other FROM related WHERE ticket = ?1 ORDER BY other")
            .map_err(db)?;
        let rows = q
            .query_map([n.0 as i64], |r| {
                Ok(TicketNumber(r.get::<_, i64>(0)? as u64))
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn calls(&self, n: TicketNumber) -> Result<Vec<CallView>, StoreError> {
        let mut q = self
            .conn
            .prepare(
                "SELECT id, sip_call_id, arrived_at, phase, outcome, ivr_path, fields, queue,
                        priority, offers, agent, enqueued_at, offered_at, answered_at, ended_at,
                        wait_ms, ring_ms, talk_ms, hung_up_by, transfers, holds, hold_ms,
                        wrapup_ms
                 FROM calls WHERE ticket = ?1 ORDER BY id",
            )
            .map_err(db)?;
        let ms = |v: Option<i64>| v.map(Millis);
        let rows = q
            .query_map([n.0 as i64], |r| {
                Ok(CallView {
                    id: CallKey(r.get(0)?),
                    sip_call_id: r.get(1)?,
                    arrived: Millis(r.get(2)?),
                    phase: CallPhase::parse(&r.get::<_, String>(3)?).unwrap_or(CallPhase::Ended),
                    outcome: r
                        .get::<_, Option<String>>(4)?
                        .as_deref()
                        .and_then(CallOutcome::parse),
                    ivr_path: json(r.get::<_, String>(5)?),
                    fields: json(r.get::<_, String>(6)?),
                    queue: r.get(7)?,
                    priority: r.get(8)?,
                    offers: json(r.get::<_, String>(9)?),
                    agent: r.get(10)?,
                    enqueued: ms(r.get(11)?),
                    offered: ms(r.get(12)?),
                    answered: ms(r.get(13)?),
                    ended: ms(r.get(14)?),
                    wait_ms: r.get(15)?,
                    ring_ms: r.get(16)?,
                    talk_ms: r.get(17)?,
                    hung_up_by: r.get(18)?,
                    transfers: json(r.get::<_, String>(19)?),
                    holds: r.get(20)?,
                    hold_ms: r.get(21)?,
                    wrapup_ms: r.get(22)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn logbook(&self, n: TicketNumber) -> Result<Vec<LogbookEntry>, StoreError> {
        let mut q = self
            .conn
            .prepare(
                "SELECT seq, at, author, call, section, text FROM logbook
                 WHERE ticket = ?1 ORDER BY seq",
            )
            .map_err(db)?;
        let rows = q
            .query_map([n.0 as i64], |r| {
                Ok(LogbookEntry {
                    seq: r.get::<_, i64>(0)? as u64,
                    time: Millis(r.get(1)?),
                    author: r.get(2)?,
                    call: r.get::<_, Option<i64>>(3)?.map(CallKey),
                    section: Section::parse(&r.get::<_, String>(4)?).unwrap_or(Section::Event),
                    text: r.get(5)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    /// Walk every ticket's chain; the tickets whose history was edited,
    /// deleted, inserted, reordered or cut short.
    pub fn verify(&self, key: &ChainKey) -> Result<Vec<Tampered>, StoreError> {
        let tickets: Vec<(i64, i64, Vec<u8>, Vec<u8>)> = {
            let mut q = self
                .conn
                .prepare("SELECT number, entries, last_mac, row_mac FROM tickets ORDER BY number")
                .map_err(db)?;
            let rows = q
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)?
        };
        let mut q = self
            .conn
            .prepare(
                "SELECT seq, at, author, call, section, text, mac FROM logbook
                 WHERE ticket = ?1 ORDER BY seq",
            )
            .map_err(db)?;
        let mut bad = Vec::new();
        for (number, entries, last, row_mac) in tickets {
            let ticket = TicketNumber(number as u64);
            let mut problem = |p: String| bad.push(Tampered { ticket, problem: p });
            let last: Option<Tag> = last.as_slice().try_into().ok();
            let row_ok = last
                .map(|l| key.row(ticket, entries as u64, &l).as_slice() == row_mac.as_slice())
                .unwrap_or(false);
            if !row_ok {
                problem("the ticket's row was rewritten (its MAC does not match)".into());
                continue;
            }
            let mut prev = key.genesis(ticket);
            let mut seen = 0u64;
            let mut broken = None;
            let rows = q
                .query_map([number], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, Vec<u8>>(6)?,
                    ))
                })
                .map_err(db)?;
            for row in rows {
                let (seq, at, author, call, section, text, mac) = row.map_err(db)?;
                seen += 1;
                if seq as u64 != seen {
                    broken = Some(format!(
                        "entry {seen} is missing (found {seq} in its place)"
                    ));
                    break;
                }
                let fields = EntryFields {
                    ticket,
                    seq: seen,
                    at: Millis(at),
                    author: &author,
                    call,
                    section: &section,
                    text: &text,
                };
                let want = key.entry(&prev, &fields);
                if want.as_slice() != mac.as_slice() {
                    broken = Some(format!("entry {seen} was edited, inserted or moved"));
                    break;
                }
                prev = want;
            }
            if let Some(b) = broken {
                problem(b);
            } else if seen != entries as u64 || last != Some(prev) {
                problem(format!(
                    "the logbook is cut short or extended: the ticket says {entries} entries, {seen} chain"
                ));
            }
        }
        Ok(bad)
    }
}

#[cfg(test)]
mod tests;
