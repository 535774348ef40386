//! A read-only reader of the Berkeley DB hash file rpm ≤ 4.15 keeps its headers in
//! (`/var/lib/rpm/Packages`: RHEL/CentOS ≤ 8, Amazon Linux 2, older Photon and Mariner). Only
//! what that file needs: the metadata page, hash pages and their overflow chains, in the byte
//! order the metadata's magic tells. The values are returned as stored (rpm headers, and the
//! 4-byte record rpm keeps under key 0), for the caller to keep what parses.

const HASH_MAGIC: u32 = 0x0006_1561;
const PAGE_HEADER: usize = 26;
/// Page types (db_page.h).
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASH: u8 = 13;
/// Item types on a hash page.
const H_KEYDATA: u8 = 1;
const H_OFFPAGE: u8 = 3;

struct Layout<'a> {
    file: &'a [u8],
    page_size: usize,
    big_endian: bool,
}

impl Layout<'_> {
    fn u16(&self, b: &[u8], at: usize) -> Option<u16> {
        let s = b.get(at..at + 2)?;
        let bytes = [s[0], s[1]];
        Some(if self.big_endian {
            u16::from_be_bytes(bytes)
        } else {
            u16::from_le_bytes(bytes)
        })
    }

    fn u32(&self, b: &[u8], at: usize) -> Option<u32> {
        let s = b.get(at..at + 4)?;
        let bytes = [s[0], s[1], s[2], s[3]];
        Some(if self.big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        })
    }

    fn page(&self, number: u32) -> Result<&[u8], String> {
        let start = number as usize * self.page_size;
        self.file
            .get(start..start + self.page_size)
            .ok_or_else(|| format!("Berkeley DB: page {number} is past the end of the file"))
    }

    /// An off-page value: the overflow pages from `first` on, each holding its `hf_offset`
    /// bytes after the page header, `total` bytes in all.
    fn overflow(&self, first: u32, total: usize, last_page: u32) -> Result<Vec<u8>, String> {
        let mut value = Vec::with_capacity(total.min(64 << 20));
        let mut next = first;
        let mut hops = 0;
        while next != 0 && value.len() < total {
            hops += 1;
            if hops > last_page as usize + 1 {
                return Err("Berkeley DB: overflow chain loops".into());
            }
            let page = self.page(next)?;
            if page[25] != P_OVERFLOW {
                return Err(format!("Berkeley DB: page {next} is not an overflow page"));
            }
            let used = self.u16(page, 22).unwrap_or(0) as usize;
            let take = used
                .min(self.page_size - PAGE_HEADER)
                .min(total - value.len());
            value.extend_from_slice(&page[PAGE_HEADER..PAGE_HEADER + take]);
            next = self.u32(page, 16).unwrap_or(0);
        }
        if value.len() != total {
            return Err("Berkeley DB: overflow chain ends early".into());
        }
        Ok(value)
    }
}

/// Every value stored in a hash database file.
pub fn values(file: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    // The metadata page alone is at least 512 bytes.
    if file.len() < 512 {
        return Err("not a Berkeley DB hash database".into());
    }
    let magic_le = file
        .get(12..16)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]));
    let big_endian = match magic_le {
        Some(HASH_MAGIC) => false,
        Some(m) if m.swap_bytes() == HASH_MAGIC => true,
        _ => return Err("not a Berkeley DB hash database".into()),
    };
    let mut layout = Layout {
        file,
        page_size: 0,
        big_endian,
    };
    let page_size = layout.u32(file, 20).unwrap_or(0) as usize;
    if !page_size.is_power_of_two() || !(512..=65536).contains(&page_size) {
        return Err(format!("Berkeley DB: invalid page size {page_size}"));
    }
    layout.page_size = page_size;
    if file[24] != 0 {
        return Err("Berkeley DB: encrypted databases are not supported".into());
    }
    let last_page = layout.u32(file, 32).unwrap_or(0);

    let mut values = Vec::new();
    for number in 1..=last_page {
        let page = layout.page(number)?;
        if !matches!(page[25], P_HASH | P_HASH_UNSORTED) {
            continue;
        }
        let entries = layout.u16(page, 20).unwrap_or(0) as usize;
        let offset = |i: usize| layout.u16(page, PAGE_HEADER + 2 * i).map(usize::from);
        // Items come in key/value pairs; an item runs from its offset to the previous item's
        // offset (the first to the end of the page).
        for i in (1..entries).step_by(2) {
            let (Some(start), Some(end)) = (offset(i), offset(i - 1)) else {
                return Err(format!("Berkeley DB: page {number} index is truncated"));
            };
            if start >= end || end > page_size {
                return Err(format!("Berkeley DB: page {number} has a bad item"));
            }
            let item = &page[start..end];
            match item[0] {
                H_OFFPAGE => {
                    let (Some(first), Some(total)) = (layout.u32(item, 4), layout.u32(item, 8))
                    else {
                        return Err(format!("Berkeley DB: page {number} has a bad item"));
                    };
                    values.push(layout.overflow(first, total as usize, last_page)?);
                }
                H_KEYDATA => values.push(item[1..].to_vec()),
                // Duplicate sets: rpm's Packages has unique keys.
                _ => {}
            }
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Writes `records` into a hash database with Berkeley DB's own db_load (Debian package
    /// `db5.3-util`, see tests/setup.sh) and returns the file.
    fn db_load(name: &str, page_size: usize, records: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!("copa-rpm-bdb-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let mut dump = format!(
            "VERSION=3\nformat=bytevalue\ntype=hash\ndb_pagesize={page_size}\nHEADER=END\n"
        );
        for (key, value) in records {
            dump.push_str(&format!(" {}\n {}\n", hex(key), hex(value)));
        }
        dump.push_str("DATA=END\n");
        std::fs::write(dir.join("dump"), dump).unwrap();
        let status = Command::new("db5.3_load")
            .arg("-f")
            .arg(dir.join("dump"))
            .arg(dir.join("Packages"))
            .status()
            .expect("db5.3_load is installed (tests/setup.sh)");
        assert!(status.success());
        std::fs::read(dir.join("Packages")).unwrap()
    }

    #[test]
    fn reads_values_on_page_and_on_overflow_chains() {
        // rpm's layout: 4-byte header numbers as keys; values from a few bytes (kept on the
        // hash page) to many pages (kept on a chain of overflow pages), enough of them that the
        // table splits over many buckets.
        let records: Vec<(Vec<u8>, Vec<u8>)> = (1u32..=300)
            .map(|i| {
                let size = match i % 10 {
                    0 => 5000 + i as usize * 13,
                    1..=3 => 600 + i as usize,
                    _ => (i as usize * 7) % 200 + 1,
                };
                let value = (0..size).map(|j| (j as u32 * 31 + i) as u8).collect();
                (i.to_le_bytes().to_vec(), value)
            })
            .collect();
        for page_size in [512, 4096, 16384] {
            let file = db_load(&format!("p{page_size}"), page_size, &records);
            let mut got = values(&file).unwrap();
            let mut want: Vec<Vec<u8>> = records.iter().map(|(_, v)| v.clone()).collect();
            got.sort();
            want.sort();
            assert_eq!(got.len(), want.len(), "page size {page_size}");
            assert!(got == want, "page size {page_size}: values differ");
        }
    }

    #[test]
    fn rejects_what_is_not_a_hash_database() {
        assert!(values(b"SQLite format 3\0........................").is_err());
        let mut meta = vec![0u8; 512];
        meta[12..16].copy_from_slice(&HASH_MAGIC.to_le_bytes());
        meta[20..24].copy_from_slice(&100u32.to_le_bytes());
        assert_eq!(
            values(&meta).unwrap_err(),
            "Berkeley DB: invalid page size 100"
        );
        meta[20..24].copy_from_slice(&512u32.to_le_bytes());
        assert_eq!(values(&meta).unwrap(), Vec::<Vec<u8>>::new());
        // Big-endian: the same magic, swapped.
        let mut be = vec![0u8; 512];
        be[12..16].copy_from_slice(&HASH_MAGIC.to_be_bytes());
        be[20..24].copy_from_slice(&512u32.to_be_bytes());
        assert!(values(&be).is_ok());
    }
}
