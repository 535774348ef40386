//! rpm package headers as the rpm database stores them: the header structure without the lead
//! and without the 8-byte magic of a package file. Big-endian throughout:
//!
//! ```text
//! int32 index_count, int32 data_length,
//! index_count × { int32 tag, int32 type, int32 offset, int32 count },
//! data_length bytes of data store
//! ```

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

pub const NAME: u32 = 1000;
pub const VERSION: u32 = 1001;
pub const RELEASE: u32 = 1002;
pub const EPOCH: u32 = 1003;
pub const ARCH: u32 = 1022;
pub const PROVIDENAME: u32 = 1047;
pub const PROVIDEFLAGS: u32 = 1112;
pub const PROVIDEVERSION: u32 = 1113;

/// rpm refuses headers with more entries or data than this (`hdrchkTags`, `hdrchkData`); so does
/// this reader, so that a corrupt count cannot make it allocate without bound.
const MAX_ENTRIES: usize = 0xffff;
const MAX_DATA: usize = 256 << 20;

/// A parsed header: the index entries over the data store.
pub struct Header<'a> {
    entries: Vec<Entry>,
    data: &'a [u8],
}

#[derive(Clone, Copy)]
struct Entry {
    tag: u32,
    kind: u32,
    offset: usize,
    count: usize,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

impl<'a> Header<'a> {
    pub fn parse(blob: &'a [u8]) -> Result<Self, String> {
        let count = be32(blob, 0).ok_or("rpm header: too short")? as usize;
        let data_length = be32(blob, 4).ok_or("rpm header: too short")? as usize;
        if count == 0 || count > MAX_ENTRIES || data_length > MAX_DATA {
            return Err(format!(
                "rpm header: implausible size ({count} entries, {data_length} bytes)"
            ));
        }
        let store = 8 + count * 16;
        let data = blob
            .get(store..store + data_length)
            .ok_or("rpm header: shorter than its index says")?;
        let mut entries = Vec::with_capacity(count);
        for i in 0..count {
            let at = 8 + i * 16;
            let field = |k: usize| be32(blob, at + 4 * k).expect("within the checked index");
            let entry = Entry {
                tag: field(0),
                kind: field(1),
                offset: field(2) as usize,
                count: field(3) as usize,
            };
            if entry.offset > data_length {
                return Err(format!(
                    "rpm header: tag {} points past the data store",
                    entry.tag
                ));
            }
            entries.push(entry);
        }
        Ok(Header { entries, data })
    }

    fn entry(&self, tag: u32) -> Option<Entry> {
        self.entries.iter().copied().find(|e| e.tag == tag)
    }

    /// The NUL-terminated strings of a string entry, from its offset on.
    fn strings(&self, entry: Entry) -> Option<Vec<String>> {
        let mut strings = Vec::with_capacity(entry.count);
        let mut at = entry.offset;
        for _ in 0..entry.count {
            let rest = self.data.get(at..)?;
            let end = rest.iter().position(|&b| b == 0)?;
            strings.push(String::from_utf8_lossy(&rest[..end]).into_owned());
            at += end + 1;
        }
        Some(strings)
    }

    /// A string tag (for an i18n string, its first translation, the untranslated text).
    pub fn string(&self, tag: u32) -> Option<String> {
        let entry = self.entry(tag)?;
        match entry.kind {
            TYPE_STRING | TYPE_I18NSTRING | TYPE_STRING_ARRAY if entry.count >= 1 => self
                .strings(Entry { count: 1, ..entry })?
                .into_iter()
                .next(),
            _ => None,
        }
    }

    pub fn string_array(&self, tag: u32) -> Option<Vec<String>> {
        let entry = self.entry(tag)?;
        match entry.kind {
            TYPE_STRING_ARRAY | TYPE_I18NSTRING | TYPE_STRING => self.strings(entry),
            _ => None,
        }
    }

    pub fn int32_array(&self, tag: u32) -> Option<Vec<u32>> {
        let entry = self.entry(tag)?;
        if entry.kind != TYPE_INT32 {
            return None;
        }
        (0..entry.count)
            .map(|i| be32(self.data, entry.offset + 4 * i))
            .collect()
    }

    pub fn int32(&self, tag: u32) -> Option<u32> {
        self.int32_array(tag)?.first().copied()
    }
}

/// What the plugin needs of one installed package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    pub arch: Option<String>,
    /// (name, flags, version) of each capability the package provides.
    pub provides: Vec<(String, u32, String)>,
}

impl Package {
    pub fn from_header(blob: &[u8]) -> Result<Package, String> {
        let header = Header::parse(blob)?;
        let name = header.string(NAME).ok_or("rpm header: no name")?;
        let version = header
            .string(VERSION)
            .ok_or_else(|| format!("rpm header of {name}: no version"))?;
        let release = header
            .string(RELEASE)
            .ok_or_else(|| format!("rpm header of {name}: no release"))?;
        let names = header.string_array(PROVIDENAME).unwrap_or_default();
        let flags = header.int32_array(PROVIDEFLAGS).unwrap_or_default();
        let versions = header.string_array(PROVIDEVERSION).unwrap_or_default();
        let provides = names
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    n,
                    flags.get(i).copied().unwrap_or(0),
                    versions.get(i).cloned().unwrap_or_default(),
                )
            })
            .collect();
        Ok(Package {
            epoch: header.int32(EPOCH),
            arch: header.string(ARCH),
            name,
            version,
            release,
            provides,
        })
    }

    /// The version as Trivy writes an rpm package's InstalledVersion: `[epoch:]version-release`,
    /// the epoch only when it is not 0.
    pub fn evr(&self) -> String {
        match self.epoch {
            Some(epoch) if epoch != 0 => format!("{epoch}:{}-{}", self.version, self.release),
            _ => format!("{}-{}", self.version, self.release),
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// Builds a header blob the way rpm lays one out, for tests.
    pub fn build(entries: &[(u32, u32, Vec<u8>, u32)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, kind, bytes, count) in entries {
            if *kind == TYPE_INT32 {
                while data.len() % 4 != 0 {
                    data.push(0);
                }
            }
            index.extend(tag.to_be_bytes());
            index.extend(kind.to_be_bytes());
            index.extend((data.len() as u32).to_be_bytes());
            index.extend(count.to_be_bytes());
            data.extend(bytes);
        }
        let mut blob = Vec::new();
        blob.extend((entries.len() as u32).to_be_bytes());
        blob.extend((data.len() as u32).to_be_bytes());
        blob.extend(index);
        blob.extend(data);
        blob
    }

    pub fn string(tag: u32, text: &str) -> (u32, u32, Vec<u8>, u32) {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0);
        (tag, TYPE_STRING, bytes, 1)
    }

    pub fn strings(tag: u32, texts: &[&str]) -> (u32, u32, Vec<u8>, u32) {
        let mut bytes = Vec::new();
        for text in texts {
            bytes.extend(text.as_bytes());
            bytes.push(0);
        }
        (tag, TYPE_STRING_ARRAY, bytes, texts.len() as u32)
    }

    pub fn int32s(tag: u32, values: &[u32]) -> (u32, u32, Vec<u8>, u32) {
        let bytes = values.iter().flat_map(|v| v.to_be_bytes()).collect();
        (tag, TYPE_INT32, bytes, values.len() as u32)
    }

    #[test]
    fn reads_name_epoch_version_release_arch_and_provides() {
        let blob = build(&[
            string(NAME, "rocky-release"),
            string(VERSION, "9.3"),
            string(RELEASE, "1.2.el9"),
            string(ARCH, "noarch"),
            strings(
                PROVIDENAME,
                &[
                    "rocky-release",
                    "system-release",
                    "system-release(releasever)",
                ],
            ),
            int32s(PROVIDEFLAGS, &[8, 8, 8]),
            strings(PROVIDEVERSION, &["9.3-1.2.el9", "9.3-1.2.el9", "9"]),
            int32s(EPOCH, &[1]),
        ]);
        let package = Package::from_header(&blob).unwrap();
        assert_eq!(package.name, "rocky-release");
        assert_eq!(package.evr(), "1:9.3-1.2.el9");
        assert_eq!(package.arch.as_deref(), Some("noarch"));
        assert_eq!(
            package.provides[2],
            ("system-release(releasever)".to_string(), 8, "9".to_string())
        );
    }

    #[test]
    fn epoch_zero_or_absent_is_left_out() {
        let mut entries = vec![
            string(NAME, "bash"),
            string(VERSION, "5.1.8"),
            string(RELEASE, "6.el9_1"),
        ];
        assert_eq!(
            Package::from_header(&build(&entries)).unwrap().evr(),
            "5.1.8-6.el9_1"
        );
        entries.push(int32s(EPOCH, &[0]));
        assert_eq!(
            Package::from_header(&build(&entries)).unwrap().evr(),
            "5.1.8-6.el9_1"
        );
    }

    #[test]
    fn rejects_truncated_and_implausible_headers() {
        let blob = build(&[string(NAME, "bash"), string(VERSION, "5")]);
        assert!(Package::from_header(&blob[..blob.len() - 3]).is_err());
        assert!(Package::from_header(&blob).is_err(), "no release");
        assert!(Header::parse(&[0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(Header::parse(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]).is_err());
        // An offset past the data store.
        let mut bad = build(&[string(NAME, "bash")]);
        bad[8 + 8..8 + 12].copy_from_slice(&1000u32.to_be_bytes());
        assert!(Header::parse(&bad).is_err());
        // A string without its terminating NUL.
        let mut unterminated = build(&[string(NAME, "bash")]);
        unterminated.pop();
        let len = unterminated.len() as u32 - 8 - 16;
        unterminated[4..8].copy_from_slice(&len.to_be_bytes());
        assert_eq!(Header::parse(&unterminated).unwrap().string(NAME), None);
    }
}
