//! A minimal, read-only reader of SQLite database files (https://www.sqlite.org/fileformat.html),
//! enough to list the rows of one table: rpm ≥ 4.16 keeps its package headers in
//! `rpmdb.sqlite`, table `Packages(hnum INTEGER PRIMARY KEY, blob BLOB)`, and the plugin runs in
//! WebAssembly where no C library can read it.
//!
//! Supported: any page size, reserved bytes, table b-trees (interior and leaf pages), payloads
//! spilling onto overflow pages, and the write-ahead log: pages committed to `-wal` but not yet
//! checkpointed into the main file are read from the log, as SQLite itself would. Not needed and
//! not supported: indexes, WITHOUT ROWID tables, UTF-16 schema text.

use std::collections::{HashMap, HashSet};

/// A column value of a record.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

/// An open database: the main file's bytes and the committed pages of its write-ahead log.
pub struct Database<'a> {
    main: &'a [u8],
    page_size: usize,
    /// Usable bytes of a page (the page size minus the reserved bytes at the end of each page).
    usable: usize,
    wal: HashMap<u32, &'a [u8]>,
    /// Number of pages, as the last committed WAL frame or the main file tells it.
    page_count: u32,
}

const HEADER_MAGIC: &[u8; 16] = b"SQLite format 3\0";

fn be16(b: &[u8], at: usize) -> Result<u16, String> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or_else(|| "sqlite: truncated page".to_string())
}

fn be32(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| "sqlite: truncated page".to_string())
}

/// A SQLite varint: 1 to 9 bytes, big-endian groups of 7 bits, the ninth byte whole.
fn varint(b: &[u8], at: usize) -> Result<(u64, usize), String> {
    let mut value: u64 = 0;
    for i in 0..9 {
        let byte = *b
            .get(at + i)
            .ok_or_else(|| "sqlite: truncated varint".to_string())?;
        if i == 8 {
            return Ok(((value << 8) | u64::from(byte), 9));
        }
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    unreachable!("the loop returns by the ninth byte")
}

impl<'a> Database<'a> {
    /// Opens a database from the main file and, when there is one, its `-wal` file.
    pub fn open(main: &'a [u8], wal: Option<&'a [u8]>) -> Result<Self, String> {
        let wal_page_size = wal
            .filter(|w| w.len() >= 32)
            .map(|w| be32(w, 8))
            .transpose()?
            .map(|s| s as usize);
        let (page_size, reserved) = if main.len() >= 100 {
            if &main[..16] != HEADER_MAGIC {
                return Err("not a SQLite 3 database".into());
            }
            let size = match be16(main, 16)? {
                1 => 65536,
                n => n as usize,
            };
            (size, main[20] as usize)
        } else {
            // A database whose every page is still only in the log.
            (
                wal_page_size.ok_or("not a SQLite 3 database (empty file)")?,
                0,
            )
        };
        if !page_size.is_power_of_two() || !(512..=65536).contains(&page_size) {
            return Err(format!("sqlite: invalid page size {page_size}"));
        }
        let usable = page_size - reserved;
        if usable < 480 {
            return Err("sqlite: invalid reserved space".into());
        }
        let mut db = Database {
            main,
            page_size,
            usable,
            wal: HashMap::new(),
            page_count: (main.len() / page_size) as u32,
        };
        if let Some(wal) = wal {
            db.read_wal(wal)?;
        }
        if db.page(1)?.get(..16) != Some(HEADER_MAGIC.as_slice()) {
            return Err("not a SQLite 3 database".into());
        }
        Ok(db)
    }

    /// Loads the committed frames of the write-ahead log (https://www.sqlite.org/walformat.html).
    /// Frames count only up to the last commit frame whose salts match the log header and whose
    /// running checksum is right: anything after is an unfinished or stale transaction.
    fn read_wal(&mut self, wal: &'a [u8]) -> Result<(), String> {
        if wal.len() < 32 {
            return Ok(());
        }
        let magic = be32(wal, 0)?;
        let big_endian = match magic {
            0x377f_0682 => false,
            0x377f_0683 => true,
            _ => return Ok(()),
        };
        if be32(wal, 8)? as usize != self.page_size {
            return Ok(());
        }
        let (salt1, salt2) = (be32(wal, 16)?, be32(wal, 20)?);
        let mut sum = checksum(&wal[..24], (0, 0), big_endian);
        if sum != (be32(wal, 24)?, be32(wal, 28)?) {
            return Ok(());
        }
        let frame_size = 24 + self.page_size;
        let mut pending: Vec<(u32, &'a [u8])> = Vec::new();
        let mut at = 32;
        while at + frame_size <= wal.len() {
            let frame = &wal[at..at + frame_size];
            if (be32(frame, 8)?, be32(frame, 12)?) != (salt1, salt2) {
                break;
            }
            sum = checksum(&frame[..8], sum, big_endian);
            sum = checksum(&frame[24..], sum, big_endian);
            if sum != (be32(frame, 16)?, be32(frame, 20)?) {
                break;
            }
            let page = be32(frame, 0)?;
            pending.push((page, &frame[24..]));
            let db_size = be32(frame, 4)?;
            if db_size != 0 {
                // A commit: everything up to here is part of the database.
                for (page, data) in pending.drain(..) {
                    self.wal.insert(page, data);
                }
                self.page_count = db_size;
            }
            at += frame_size;
        }
        Ok(())
    }

    fn page(&self, number: u32) -> Result<&'a [u8], String> {
        if number == 0 || (number > self.page_count.max(1) && !self.wal.contains_key(&number)) {
            return Err(format!("sqlite: page {number} is out of range"));
        }
        if let Some(&page) = self.wal.get(&number) {
            return Ok(page);
        }
        let start = (number as usize - 1) * self.page_size;
        self.main
            .get(start..start + self.page_size)
            .ok_or_else(|| format!("sqlite: page {number} is past the end of the file"))
    }

    /// Every row of the table `name` (compared without case, as SQLite does): its rowid and its
    /// columns. A column that is an alias of the rowid (`INTEGER PRIMARY KEY`) reads as NULL,
    /// as it is stored.
    pub fn table(&self, name: &str) -> Result<Vec<(i64, Vec<Value>)>, String> {
        let (root, _) = self.table_schema(name)?;
        self.rows(root)
    }

    /// The root page and the declared column names of a table, from the schema table.
    pub fn table_schema(&self, name: &str) -> Result<(u32, Vec<String>), String> {
        for (_, columns) in self.rows(1)? {
            let text = |i: usize| match columns.get(i) {
                Some(Value::Text(t)) => String::from_utf8_lossy(t).into_owned(),
                _ => String::new(),
            };
            if text(0) == "table" && text(1).eq_ignore_ascii_case(name) {
                let root = match columns.get(3) {
                    Some(Value::Integer(n)) if *n > 0 => *n as u32,
                    _ => return Err(format!("sqlite: table {name} has no root page")),
                };
                return Ok((root, column_names(&text(4))));
            }
        }
        Err(format!("sqlite: no table {name}"))
    }

    /// Walks the table b-tree rooted at `root`, in rowid order.
    fn rows(&self, root: u32) -> Result<Vec<(i64, Vec<Value>)>, String> {
        let mut rows = Vec::new();
        let mut visited = HashSet::new();
        let mut stack = vec![root];
        while let Some(number) = stack.pop() {
            if !visited.insert(number) {
                return Err(format!("sqlite: page {number} is linked twice (corrupt)"));
            }
            let page = self.page(number)?;
            let header = if number == 1 { 100 } else { 0 };
            let kind = *page.get(header).ok_or("sqlite: empty page")?;
            let cells = be16(page, header + 3)? as usize;
            match kind {
                // Interior table page: children left to right, then the right-most pointer.
                0x05 => {
                    let mut children = Vec::with_capacity(cells + 1);
                    for i in 0..cells {
                        let cell = be16(page, header + 12 + 2 * i)? as usize;
                        children.push(be32(page, cell)?);
                    }
                    children.push(be32(page, header + 8)?);
                    // Popped from the end: push right to left to visit left to right.
                    stack.extend(children.into_iter().rev());
                }
                0x0d => {
                    for i in 0..cells {
                        let cell = be16(page, header + 8 + 2 * i)? as usize;
                        let (payload_size, n) = varint(page, cell)?;
                        let (rowid, m) = varint(page, cell + n)?;
                        let payload = self.payload(page, cell + n + m, payload_size as usize)?;
                        rows.push((rowid as i64, record(&payload)?));
                    }
                }
                other => {
                    return Err(format!(
                        "sqlite: page {number} of a table b-tree has type {other:#04x}"
                    ));
                }
            }
        }
        Ok(rows)
    }

    /// A leaf cell's payload: the part stored on the page, then the overflow chain.
    fn payload(&self, page: &[u8], start: usize, size: usize) -> Result<Vec<u8>, String> {
        let usable = self.usable;
        let max_local = usable - 35;
        let local = if size <= max_local {
            size
        } else {
            let min_local = (usable - 12) * 32 / 255 - 23;
            let k = min_local + (size - min_local) % (usable - 4);
            if k <= max_local { k } else { min_local }
        };
        let mut payload = page
            .get(start..start + local)
            .ok_or("sqlite: cell runs past its page")?
            .to_vec();
        if local == size {
            return Ok(payload);
        }
        let mut next = be32(page, start + local)?;
        let mut hops = 0;
        while payload.len() < size {
            hops += 1;
            if next == 0 || hops > self.page_count as usize + self.wal.len() {
                return Err("sqlite: overflow chain ends early or loops".into());
            }
            let overflow = self.page(next)?;
            let take = (size - payload.len()).min(usable - 4);
            payload.extend_from_slice(&overflow[4..4 + take]);
            next = be32(overflow, 0)?;
        }
        Ok(payload)
    }
}

/// SQLite's WAL checksum over 32-bit words, continuing from `(s0, s1)`.
fn checksum(data: &[u8], (mut s0, mut s1): (u32, u32), big_endian: bool) -> (u32, u32) {
    let word = |b: &[u8]| {
        let bytes = [b[0], b[1], b[2], b[3]];
        if big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        }
    };
    for pair in data.chunks_exact(8) {
        s0 = s0.wrapping_add(word(&pair[..4])).wrapping_add(s1);
        s1 = s1.wrapping_add(word(&pair[4..])).wrapping_add(s0);
    }
    (s0, s1)
}

/// Decodes a record: a header of serial types, then the values.
fn record(payload: &[u8]) -> Result<Vec<Value>, String> {
    let (header_size, mut at) = varint(payload, 0)?;
    let header_size = header_size as usize;
    if header_size > payload.len() {
        return Err("sqlite: record header past the payload".into());
    }
    let mut types = Vec::new();
    while at < header_size {
        let (serial, n) = varint(payload, at)?;
        types.push(serial);
        at += n;
    }
    let mut body = header_size;
    let mut values = Vec::with_capacity(types.len());
    for serial in types {
        let size = match serial {
            0 | 8 | 9 => 0,
            1 => 1,
            2 => 2,
            3 => 3,
            4 => 4,
            5 => 6,
            6 | 7 => 8,
            10 | 11 => return Err("sqlite: reserved serial type".into()),
            n => ((n - 12) / 2) as usize,
        };
        let bytes = payload
            .get(body..body + size)
            .ok_or("sqlite: record value past the payload")?;
        body += size;
        let integer = || {
            // Big-endian two's complement of 1 to 8 bytes.
            let mut v: i64 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
            for b in bytes {
                v = (v << 8) | i64::from(*b);
            }
            v
        };
        values.push(match serial {
            0 => Value::Null,
            1..=6 => Value::Integer(integer()),
            7 => Value::Real(f64::from_bits(integer() as u64)),
            8 => Value::Integer(0),
            9 => Value::Integer(1),
            n if n % 2 == 0 => Value::Blob(bytes.to_vec()),
            _ => Value::Text(bytes.to_vec()),
        });
    }
    Ok(values)
}

/// The column names of a `CREATE TABLE name (col type, ...)` statement, in order. Enough for
/// the simple tables rpm creates; table constraints (`PRIMARY KEY(...)`, ...) are left out.
fn column_names(sql: &str) -> Vec<String> {
    let Some(open) = sql.find('(') else {
        return Vec::new();
    };
    let body = sql[open + 1..].trim_end().trim_end_matches(')');
    let mut names = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in body.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                names.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    names.push(current);
    names
        .iter()
        .filter_map(|definition| {
            let name = definition.split_whitespace().next()?;
            let name = name.trim_matches(|c| matches!(c, '"' | '`' | '[' | ']' | '\''));
            let upper = name.to_ascii_uppercase();
            (!matches!(
                upper.as_str(),
                "PRIMARY" | "UNIQUE" | "CHECK" | "FOREIGN" | "CONSTRAINT"
            ))
            .then(|| name.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// A scratch directory of its own for each test.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("copa-rpm-sqlite-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Runs a script in the sqlite3 shell (Debian package `sqlite3`, see tests/setup.sh) on
    /// `db`. The script goes to standard input, where the shell also takes dot-commands (at the
    /// start of a line: the lines are trimmed).
    fn sqlite3(db: &Path, script: &str) -> String {
        use std::io::Write;
        let mut child = Command::new("sqlite3")
            .arg("-bail")
            .arg(db)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the sqlite3 shell is installed (tests/setup.sh)");
        let script: String = script.lines().map(|l| format!("{}\n", l.trim())).collect();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "sqlite3 failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// What SQLite itself reads from the table: `hnum|HEX(blob)` lines.
    fn expected(db: &Path) -> String {
        sqlite3(db, "SELECT hnum, hex(blob) FROM Packages ORDER BY hnum;")
    }

    fn ours(main: &[u8], wal: Option<&[u8]>) -> String {
        let db = Database::open(main, wal).unwrap();
        let (_, columns) = db.table_schema("Packages").unwrap();
        assert_eq!(columns, ["hnum", "blob"]);
        let mut out = String::new();
        for (rowid, values) in db.table("packages").unwrap() {
            assert_eq!(values[0], Value::Null, "hnum is the rowid");
            let Value::Blob(blob) = &values[1] else {
                panic!("row {rowid}: {:?}", values[1]);
            };
            let hex: String = blob.iter().map(|b| format!("{b:02X}")).collect();
            out.push_str(&format!("{rowid}|{hex}\n"));
        }
        out
    }

    const CREATE: &str =
        "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);";

    #[test]
    fn reads_small_rows_overflow_chains_and_interior_pages() {
        let dir = scratch("btree");
        let db = dir.join("rpmdb.sqlite");
        // Small pages so that 400 rows need interior pages two levels deep, and blobs from a few
        // bytes to many pages long (several overflow pages each).
        sqlite3(
            &db,
            &format!(
                "PRAGMA page_size=1024; {CREATE}
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 400)
                 INSERT INTO Packages(blob) SELECT randomblob(CASE WHEN i % 50 = 0 THEN 9000 + i
                     WHEN i % 7 = 0 THEN 1100 ELSE i % 200 + 1 END) FROM n;
                 DELETE FROM Packages WHERE hnum % 13 = 0;"
            ),
        );
        let main = std::fs::read(&db).unwrap();
        let want = expected(&db);
        assert_eq!(want.lines().count(), 370);
        assert_eq!(ours(&main, None), want);
    }

    #[test]
    fn large_pages_and_reserved_bytes() {
        let dir = scratch("reserved");
        let big = dir.join("big-pages.sqlite");
        sqlite3(
            &big,
            &format!(
                "PRAGMA page_size=65536; {CREATE}
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 30)
                 INSERT INTO Packages(blob) SELECT randomblob(i * 7000) FROM n;"
            ),
        );
        let mut main = std::fs::read(&big).unwrap();
        // The header's page size 1 means 65536.
        assert_eq!(&main[16..18], &[0, 1]);
        assert_eq!(ours(&main, None), expected(&big));
        main[0] = b'X';
        assert!(Database::open(&main, None).is_err());

        // 32 bytes at the end of every page belong to an extension (checksums, encryption):
        // payloads and overflow pages stop short of them.
        let reserved = dir.join("reserved.sqlite");
        sqlite3(
            &reserved,
            &format!(
                ".filectrl reserve_bytes 32
                 PRAGMA page_size=1024; {CREATE}
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 200)
                 INSERT INTO Packages(blob) SELECT randomblob(i * 37 % 3000 + 1) FROM n;"
            ),
        );
        let main = std::fs::read(&reserved).unwrap();
        assert_eq!(main[20], 32);
        assert_eq!(ours(&main, None), expected(&reserved));
    }

    #[test]
    fn committed_pages_still_in_the_write_ahead_log_are_read() {
        let dir = scratch("wal");
        let db = dir.join("rpmdb.sqlite");
        sqlite3(
            &db,
            &format!(
                "PRAGMA page_size=4096; PRAGMA journal_mode=WAL; {CREATE}
                 INSERT INTO Packages(blob) VALUES (x'0102'), (randomblob(10000));"
            ),
        );
        // While the shell still holds the database open, nothing is checkpointed: copy the main
        // file and the log as they are then, as an image layer would have captured them.
        let snapshot = dir.join("snapshot");
        std::fs::create_dir_all(&snapshot).unwrap();
        sqlite3(
            &db,
            &format!(
                "PRAGMA wal_autocheckpoint=0;
                 INSERT INTO Packages(blob) VALUES (randomblob(20000)), (x'AA');
                 UPDATE Packages SET blob = x'0304' WHERE hnum = 1;
                 DELETE FROM Packages WHERE hnum = 2;
                 .shell cp {db} {db}-wal {snap}/",
                db = db.display(),
                snap = snapshot.display()
            ),
        );
        let main = std::fs::read(snapshot.join("rpmdb.sqlite")).unwrap();
        let wal = std::fs::read(snapshot.join("rpmdb.sqlite-wal")).unwrap();
        assert!(wal.len() > 32, "the log holds the last transactions");
        let want = expected(&db);
        assert!(want.starts_with("1|0304\n3|"), "{want}");
        assert_eq!(ours(&main, Some(&wal)), want);
        // Without the log the reader sees the database as it was before those transactions.
        assert_ne!(ours(&main, None), want);
        // A log whose frames fail their checksum adds nothing.
        let mut torn = wal.clone();
        let last = torn.len() - 1;
        torn[last] ^= 0xff;
        let torn_view = ours(&main, Some(&torn));
        assert_ne!(torn_view, want);
    }

    #[test]
    fn varints_and_record_values() {
        assert_eq!(varint(&[0x05], 0).unwrap(), (5, 1));
        assert_eq!(varint(&[0x81, 0x00], 0).unwrap(), (128, 2));
        assert_eq!(varint(&[0xff; 9], 0).unwrap(), (u64::MAX, 9));
        assert!(varint(&[0x81], 0).is_err());
        // Header: size 5, types NULL, int8, text(2), blob(1); then the values.
        let payload = [5, 0, 1, 17, 14, 0xfe, b'h', b'i', 0x42];
        assert_eq!(
            record(&payload).unwrap(),
            [
                Value::Null,
                Value::Integer(-2),
                Value::Text(b"hi".to_vec()),
                Value::Blob(vec![0x42])
            ]
        );
        assert!(record(&[5, 0, 1, 17, 14, 0xfe]).is_err());
        assert_eq!(
            column_names(
                "CREATE TABLE \"Packages\" (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL, PRIMARY KEY(hnum))"
            ),
            ["hnum", "blob"]
        );
    }
}
