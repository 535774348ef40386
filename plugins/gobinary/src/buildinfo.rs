//! The build information the Go linker embeds in every binary (what `go version -m` prints):
//! found through the ELF file's `.go.buildinfo` section (or, when section headers are gone, the
//! first writable segment), in both layouts Go has used: the inline strings of Go 1.18+ and the
//! pointers to string headers of older releases.

use std::fmt;

/// The magic at the start of the build-info blob, 16-byte aligned.
const MAGIC: &[u8] = b"\xff Go buildinf:";
/// Header: magic, pointer size, flags, then two pointers (old layout) or padding (inline).
const HEADER_LEN: usize = 32;
/// flags bit 0: big-endian pointers; bit 1: version and module info inline after the header.
const FLAG_BIG_ENDIAN: u8 = 0x1;
const FLAG_INLINE: u8 = 0x2;

/// A module as the build info records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    pub path: String,
    pub version: String,
    pub sum: String,
    /// The `=>` line after it: the module was replaced by this one.
    pub replace: Option<Box<Module>>,
}

/// What `runtime/debug.BuildInfo` holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// The toolchain that built the binary: "go1.21.13".
    pub go_version: String,
    /// The main package's import path.
    pub path: String,
    pub main: Option<Module>,
    pub deps: Vec<Module>,
    /// `build` lines in order: "-ldflags", "-tags", "CGO_ENABLED", "GOOS", "vcs.revision", ...
    pub settings: Vec<(String, String)>,
}

impl BuildInfo {
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// Not an ELF file, or an ELF file without Go build info: not an error for a scan.
    NotGo,
    /// An ELF file with the magic whose build info cannot be read.
    Malformed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotGo => f.write_str("not a Go binary"),
            Error::Malformed(why) => write!(f, "unreadable Go build info: {why}"),
        }
    }
}

/// Whether `head` (the first bytes of a file) starts like an ELF executable or shared object,
/// so a scan can pass over other files cheaply.
pub fn looks_like_elf(head: &[u8]) -> bool {
    head.len() >= 20 && head.starts_with(b"\x7fELF") && matches!(head[4], 1 | 2)
}

/// Reads the build info of an ELF binary.
pub fn read(file: &[u8]) -> Result<BuildInfo, Error> {
    let elf = Elf::parse(file).ok_or(Error::NotGo)?;
    let data = elf.buildinfo_region().ok_or(Error::NotGo)?;
    // The blob sits at a 16-byte aligned address within the region.
    let start = (0..data.len().saturating_sub(HEADER_LEN))
        .step_by(16)
        .find(|&i| data[i..].starts_with(MAGIC))
        .ok_or(Error::NotGo)?;
    let blob = &data[start..];
    let ptr_size = blob[14] as usize;
    let flags = blob[15];
    let (version, modinfo) = if flags & FLAG_INLINE != 0 {
        let (version, rest) = varint_string(&blob[HEADER_LEN..])
            .ok_or_else(|| Error::Malformed("truncated version string".into()))?;
        let (modinfo, _) =
            varint_string(rest).ok_or_else(|| Error::Malformed("truncated module info".into()))?;
        (version.to_vec(), modinfo.to_vec())
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return Err(Error::Malformed(format!("pointer size {ptr_size}")));
        }
        let big_endian = flags & FLAG_BIG_ENDIAN != 0;
        let read_ptr = |bytes: &[u8]| -> Option<u64> {
            let bytes = bytes.get(..ptr_size)?;
            let mut value = 0u64;
            for i in 0..ptr_size {
                let byte = if big_endian {
                    bytes[i]
                } else {
                    bytes[ptr_size - 1 - i]
                };
                value = (value << 8) | u64::from(byte);
            }
            Some(value)
        };
        // Each pointer leads to a Go string header (data pointer, length).
        let string_at = |header_addr: u64| -> Option<Vec<u8>> {
            let header = elf.read_at(header_addr, 2 * ptr_size)?;
            let data = read_ptr(header)?;
            let len = read_ptr(&header[ptr_size..])? as usize;
            elf.read_at(data, len).map(<[u8]>::to_vec)
        };
        let version_ptr =
            read_ptr(&blob[16..]).ok_or_else(|| Error::Malformed("truncated header".into()))?;
        let modinfo_ptr = read_ptr(&blob[16 + ptr_size..])
            .ok_or_else(|| Error::Malformed("truncated header".into()))?;
        (
            string_at(version_ptr)
                .ok_or_else(|| Error::Malformed("version string outside the file".into()))?,
            string_at(modinfo_ptr).unwrap_or_default(),
        )
    };
    let version =
        String::from_utf8(version).map_err(|_| Error::Malformed("version is not UTF-8".into()))?;
    if version.is_empty() {
        return Err(Error::Malformed("empty Go version".into()));
    }
    let modinfo = strip_sentinels(&modinfo);
    let mut info = parse_modinfo(&String::from_utf8_lossy(modinfo)).map_err(Error::Malformed)?;
    info.go_version = version;
    Ok(info)
}

/// The module info is framed by 16 random-looking bytes on each side (so the linker can find
/// it); `debug/buildinfo` drops them the same way.
fn strip_sentinels(modinfo: &[u8]) -> &[u8] {
    if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        &modinfo[16..modinfo.len() - 16]
    } else {
        modinfo
    }
}

/// A uvarint length followed by that many bytes.
fn varint_string(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut len: u64 = 0;
    let mut shift = 0;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        len |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            let rest = &bytes[i + 1..];
            let len = usize::try_from(len).ok()?;
            return (rest.len() >= len).then(|| rest.split_at(len));
        }
        shift += 7;
    }
    None
}

/// Parses the text `runtime/debug.BuildInfo.String` writes (tab-separated lines).
pub fn parse_modinfo(text: &str) -> Result<BuildInfo, String> {
    let mut info = BuildInfo::default();
    // Index of the module the next `=>` line replaces: None (main), Some(i) (deps[i]).
    let mut replace_target: Option<Option<usize>> = None;
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields[..] {
            ["path", path] => info.path = path.to_string(),
            ["mod", path, version, ref rest @ ..] => {
                info.main = Some(module(path, version, rest));
                replace_target = Some(None);
            }
            ["dep", path, version, ref rest @ ..] => {
                info.deps.push(module(path, version, rest));
                replace_target = Some(Some(info.deps.len() - 1));
            }
            ["=>", path, version, ref rest @ ..] => {
                let replacement = Box::new(module(path, version, rest));
                let target = match replace_target.take() {
                    Some(None) => info.main.as_mut(),
                    Some(Some(i)) => info.deps.get_mut(i),
                    None => None,
                }
                .ok_or_else(|| format!("replacement without a module: {line:?}"))?;
                target.replace = Some(replacement);
            }
            ["build", setting] => {
                let (key, value) = build_setting(setting)
                    .ok_or_else(|| format!("unreadable build setting {setting:?}"))?;
                info.settings.push((key, value));
            }
            [""] => {}
            // Lines of fields a later Go adds are not ours to reject.
            _ => {}
        }
    }
    Ok(info)
}

fn module(path: &str, version: &str, rest: &[&str]) -> Module {
    Module {
        path: path.to_string(),
        version: version.to_string(),
        sum: rest.first().copied().unwrap_or_default().to_string(),
        replace: None,
    }
}

/// `key=value`, either side possibly quoted the way Go's `strconv.Quote` writes it (when it holds
/// spaces, tabs, quotes, newlines or `=`).
fn build_setting(setting: &str) -> Option<(String, String)> {
    let (key, rest) = if setting.starts_with(['"', '`']) {
        let (key, len) = unquote_prefix(setting)?;
        (key, setting[len..].strip_prefix('=')?)
    } else {
        let (key, rest) = setting.split_once('=')?;
        (key.to_string(), rest)
    };
    if key.is_empty() {
        return None;
    }
    let value = if rest.starts_with(['"', '`']) {
        let (value, len) = unquote_prefix(rest)?;
        if len != rest.len() {
            return None;
        }
        value
    } else {
        rest.to_string()
    };
    Some((key, value))
}

/// A Go string literal at the start of `text`: its value and the literal's length in bytes.
fn unquote_prefix(text: &str) -> Option<(String, usize)> {
    if let Some(raw) = text.strip_prefix('`') {
        let end = raw.find('`')?;
        return Some((raw[..end].to_string(), end + 2));
    }
    let body = text.strip_prefix('"')?;
    let mut out = String::new();
    let mut bytes: Vec<u8> = Vec::new();
    let mut chars = body.char_indices();
    // Escapes such as \xff produce raw bytes; collect bytes and decode once.
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                out.push_str(&String::from_utf8_lossy(&bytes));
                return Some((out, i + 2));
            }
            '\\' => {
                let (_, escape) = chars.next()?;
                let mut take_hex = |n: usize| -> Option<u32> {
                    let mut value = 0u32;
                    for _ in 0..n {
                        value = value * 16 + chars.next()?.1.to_digit(16)?;
                    }
                    Some(value)
                };
                match escape {
                    'a' => bytes.push(0x07),
                    'b' => bytes.push(0x08),
                    'f' => bytes.push(0x0c),
                    'n' => bytes.push(b'\n'),
                    'r' => bytes.push(b'\r'),
                    't' => bytes.push(b'\t'),
                    'v' => bytes.push(0x0b),
                    '\\' => bytes.push(b'\\'),
                    '"' => bytes.push(b'"'),
                    '\'' => bytes.push(b'\''),
                    'x' => bytes.push(u8::try_from(take_hex(2)?).ok()?),
                    'u' => push_char(&mut bytes, char::from_u32(take_hex(4)?)?),
                    'U' => push_char(&mut bytes, char::from_u32(take_hex(8)?)?),
                    '0'..='7' => {
                        let mut value = escape.to_digit(8)?;
                        for _ in 0..2 {
                            value = value * 8 + chars.next()?.1.to_digit(8)?;
                        }
                        bytes.push(u8::try_from(value).ok()?);
                    }
                    _ => return None,
                }
            }
            '\n' => return None,
            c => push_char(&mut bytes, c),
        }
    }
    None
}

fn push_char(bytes: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// Just enough of an ELF file to find the build info and to follow pointers into it.
struct Elf<'a> {
    file: &'a [u8],
    big_endian: bool,
    is64: bool,
}

struct Segment {
    vaddr: u64,
    offset: u64,
    filesz: u64,
    writable: bool,
}

impl<'a> Elf<'a> {
    fn parse(file: &'a [u8]) -> Option<Elf<'a>> {
        if !looks_like_elf(file) {
            return None;
        }
        let is64 = file[4] == 2;
        let big_endian = match file[5] {
            1 => false,
            2 => true,
            _ => return None,
        };
        Some(Elf {
            file,
            big_endian,
            is64,
        })
    }

    fn uint(&self, offset: u64, size: usize) -> Option<u64> {
        let start = usize::try_from(offset).ok()?;
        let bytes = self.file.get(start..start.checked_add(size)?)?;
        let mut value = 0u64;
        for i in 0..size {
            let byte = if self.big_endian {
                bytes[i]
            } else {
                bytes[size - 1 - i]
            };
            value = (value << 8) | u64::from(byte);
        }
        Some(value)
    }

    /// An address-sized field.
    fn word(&self, offset: u64) -> Option<u64> {
        self.uint(offset, if self.is64 { 8 } else { 4 })
    }

    fn segments(&self) -> Vec<Segment> {
        let (phoff, phentsize, phnum) = if self.is64 {
            (self.word(0x20), self.uint(0x36, 2), self.uint(0x38, 2))
        } else {
            (self.word(0x1c), self.uint(0x2a, 2), self.uint(0x2c, 2))
        };
        let (Some(phoff), Some(size), Some(count)) = (phoff, phentsize, phnum) else {
            return Vec::new();
        };
        (0..count)
            .filter_map(|i| {
                let at = phoff + i * size;
                if self.uint(at, 4)? != 1 {
                    return None; // not PT_LOAD
                }
                let (flags, offset, vaddr, filesz) = if self.is64 {
                    (
                        self.uint(at + 4, 4)?,
                        self.word(at + 8)?,
                        self.word(at + 16)?,
                        self.word(at + 32)?,
                    )
                } else {
                    (
                        self.uint(at + 24, 4)?,
                        self.word(at + 4)?,
                        self.word(at + 8)?,
                        self.word(at + 16)?,
                    )
                };
                Some(Segment {
                    vaddr,
                    offset,
                    filesz,
                    writable: flags & 0x2 != 0,
                })
            })
            .collect()
    }

    /// The bytes at a virtual address.
    fn read_at(&self, addr: u64, len: usize) -> Option<&'a [u8]> {
        let segment = self
            .segments()
            .into_iter()
            .find(|s| addr >= s.vaddr && addr - s.vaddr < s.filesz)?;
        let start = usize::try_from(segment.offset + (addr - segment.vaddr)).ok()?;
        self.file.get(start..start.checked_add(len)?)
    }

    /// Where to look for the blob: the `.go.buildinfo` section, else (section headers stripped)
    /// the first writable loadable segment, as `debug/buildinfo` does.
    fn buildinfo_region(&self) -> Option<&'a [u8]> {
        if let Some((section, _)) = self.section(".go.buildinfo") {
            return Some(section);
        }
        let segment = self.segments().into_iter().find(|s| s.writable)?;
        let start = usize::try_from(segment.offset).ok()?;
        let end = start.checked_add(usize::try_from(segment.filesz).ok()?)?;
        self.file.get(start..end)
    }

    fn section(&self, wanted: &str) -> Option<(&'a [u8], u64)> {
        let (shoff, shentsize, shnum, shstrndx) = if self.is64 {
            (
                self.word(0x28)?,
                self.uint(0x3a, 2)?,
                self.uint(0x3c, 2)?,
                self.uint(0x3e, 2)?,
            )
        } else {
            (
                self.word(0x20)?,
                self.uint(0x2e, 2)?,
                self.uint(0x30, 2)?,
                self.uint(0x32, 2)?,
            )
        };
        if shoff == 0 || shnum == 0 {
            return None;
        }
        // (name offset, address, file offset, size) of section i.
        let header = |i: u64| -> Option<(u64, u64, u64, u64)> {
            let at = shoff + i * shentsize;
            if self.is64 {
                Some((
                    self.uint(at, 4)?,
                    self.word(at + 16)?,
                    self.word(at + 24)?,
                    self.word(at + 32)?,
                ))
            } else {
                Some((
                    self.uint(at, 4)?,
                    self.word(at + 12)?,
                    self.word(at + 16)?,
                    self.word(at + 20)?,
                ))
            }
        };
        let (_, _, strtab, strtab_size) = header(shstrndx)?;
        let names = self.slice(strtab, strtab_size)?;
        (0..shnum).find_map(|i| {
            let (name, addr, offset, size) = header(i)?;
            let name = names.get(usize::try_from(name).ok()?..)?;
            let end = name.iter().position(|&b| b == 0)?;
            (&name[..end] == wanted.as_bytes()).then_some(())?;
            Some((self.slice(offset, size)?, addr))
        })
    }

    fn slice(&self, offset: u64, size: u64) -> Option<&'a [u8]> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(size).ok()?)?;
        self.file.get(start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODINFO: &str = "path\texample.com/copa/hello\n\
        mod\texample.com/copa/hello\t(devel)\t\n\
        dep\tgolang.org/x/crypto\tv0.4.0\th1:7g9j3KR54Xz9PrSdI0s2yB9f0QHKKziVGtECT5hH8PM=\n\
        dep\tgithub.com/a/b\tv1.2.0\th1:abc=\n\
        =>\t../b\t(devel)\t\n\
        dep\tgithub.com/c/d\tv2.0.0+incompatible\th1:def=\n\
        =>\tgithub.com/fork/d\tv2.0.1-0.20230101120000-abcdef123456\th1:ghi=\n\
        build\t-buildmode=exe\n\
        build\t-compiler=gc\n\
        build\t-ldflags=\"-s -w -X main.version=1.0.0\"\n\
        build\t-tags=netgo,osusergo\n\
        build\tDefaultGODEBUG=panicnil=1\n\
        build\tCGO_ENABLED=0\n\
        build\tGOARCH=amd64\n\
        build\tGOOS=linux\n\
        build\tGOAMD64=v1\n\
        build\tvcs=git\n\
        build\tvcs.revision=3090f84acf0d5e4d264b0718a8d064af68b4a606\n\
        build\tvcs.time=2024-01-02T03:04:05Z\n\
        build\tvcs.modified=false\n";

    #[test]
    fn parses_modinfo_text() {
        let info = parse_modinfo(MODINFO).unwrap();
        assert_eq!(info.path, "example.com/copa/hello");
        assert_eq!(info.main.as_ref().unwrap().version, "(devel)");
        assert_eq!(info.deps.len(), 3);
        assert_eq!(info.deps[0].path, "golang.org/x/crypto");
        assert_eq!(info.deps[0].version, "v0.4.0");
        assert_eq!(
            info.deps[0].sum,
            "h1:7g9j3KR54Xz9PrSdI0s2yB9f0QHKKziVGtECT5hH8PM="
        );
        assert_eq!(info.deps[0].replace, None);
        assert_eq!(info.deps[1].replace.as_ref().unwrap().path, "../b");
        let fork = info.deps[2].replace.as_ref().unwrap();
        assert_eq!(fork.path, "github.com/fork/d");
        assert_eq!(fork.version, "v2.0.1-0.20230101120000-abcdef123456");
        assert_eq!(
            info.setting("-ldflags"),
            Some("-s -w -X main.version=1.0.0")
        );
        assert_eq!(info.setting("-tags"), Some("netgo,osusergo"));
        assert_eq!(info.setting("DefaultGODEBUG"), Some("panicnil=1"));
        assert_eq!(info.setting("CGO_ENABLED"), Some("0"));
        assert_eq!(info.setting("GOAMD64"), Some("v1"));
        assert_eq!(info.setting("vcs.modified"), Some("false"));
        assert_eq!(info.settings.len(), 13);
    }

    #[test]
    fn quoted_keys_and_values() {
        assert_eq!(
            build_setting(r#""a=b"="c\td\x41\u00e9""#),
            Some(("a=b".into(), "c\tdAé".into()))
        );
        assert_eq!(
            build_setting("-gcflags=`all=-N -l`"),
            Some(("-gcflags".into(), "all=-N -l".into()))
        );
        assert_eq!(build_setting("=x"), None);
        assert_eq!(build_setting("novalue"), None);
        assert_eq!(build_setting(r#"k="unterminated"#), None);
        assert!(parse_modinfo("build\t\"broken\n").is_err());
    }

    #[test]
    fn replacement_without_module_is_an_error() {
        assert!(parse_modinfo("path\tx\n=>\ty\tv1.0.0\t\n").is_err());
    }

    #[test]
    fn varints_and_sentinels() {
        let mut bytes = vec![0x81, 0x01];
        bytes.extend(std::iter::repeat_n(b'a', 129));
        bytes.push(b'!');
        let (string, rest) = varint_string(&bytes).unwrap();
        assert_eq!(string.len(), 129);
        assert_eq!(rest, b"!");
        assert_eq!(varint_string(&[0x05, b'a']), None);
        let framed = [&[0u8; 16][..], b"path\tx\n", &[1u8; 16][..]].concat();
        assert_eq!(strip_sentinels(&framed), b"path\tx\n");
        assert_eq!(strip_sentinels(b"short"), b"short");
    }

    #[test]
    fn non_go_files() {
        assert_eq!(read(b"#!/bin/sh\necho hi\n"), Err(Error::NotGo));
        assert_eq!(read(&[]), Err(Error::NotGo));
        // A real ELF file that no Go toolchain built.
        let sh = std::fs::read("/bin/sh").expect("/bin/sh");
        assert!(looks_like_elf(&sh));
        assert_eq!(read(&sh), Err(Error::NotGo));
    }

    /// Binaries Debian's Go toolchains built (tests/setup.sh installs them): the 1.18+ inline
    /// layout, read straight from the ELF section.
    #[test]
    fn reads_debian_go_binaries() {
        for (go, version_prefix) in [
            ("1.19", "go1.19."),
            ("1.21", "go1.21."),
            ("1.22", "go1.22."),
        ] {
            let path = format!("/usr/lib/go-{go}/bin/gofmt");
            let bytes =
                std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e} (run tests/setup.sh)"));
            let info = read(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(
                info.go_version.starts_with(version_prefix),
                "{path}: {}",
                info.go_version
            );
            assert_eq!(info.path, "cmd/gofmt", "{path}");
            assert_eq!(info.setting("-compiler"), Some("gc"), "{path}");
            assert_eq!(info.setting("GOOS"), Some("linux"), "{path}");
            assert_eq!(info.setting("GOARCH"), Some("amd64"), "{path}");
        }
    }

    /// Section headers stripped: the blob is found in the first writable segment instead.
    #[test]
    fn reads_without_section_headers() {
        let mut bytes = std::fs::read("/usr/lib/go-1.21/bin/gofmt").expect("run tests/setup.sh");
        let expected = read(&bytes).unwrap();
        // e_shoff = 0, e_shnum = 0.
        bytes[0x28..0x30].fill(0);
        bytes[0x3c..0x3e].fill(0);
        assert_eq!(read(&bytes), Ok(expected));
    }

    /// The pointer layout of Go before 1.18, built around a real ELF file: the blob's two
    /// pointers lead to string headers, which lead to the strings.
    #[test]
    fn reads_the_pointer_layout() {
        let mut bytes = std::fs::read("/usr/lib/go-1.21/bin/gofmt").expect("run tests/setup.sh");
        let elf = Elf::parse(&bytes).unwrap();
        let (region, region_addr) = elf.section(".go.buildinfo").unwrap();
        let region_offset = region.as_ptr() as usize - bytes.as_ptr() as usize;
        // Framed by 16 sentinel bytes on each side, as the linker writes it.
        let modinfo = [
            &b"x".repeat(16)[..],
            b"path\tcmd/old\nbuild\tGOOS=linux\n",
            &b"y".repeat(16)[..],
        ]
        .concat();
        // Layout inside the section: header (32), two string headers (16 each), the strings.
        let version = b"go1.16.15";
        let mut blob = Vec::new();
        blob.extend_from_slice(MAGIC);
        blob.push(8);
        blob.push(0); // little-endian, pointers
        let addr = |offset: usize| region_addr + offset as u64;
        blob.extend_from_slice(&addr(32).to_le_bytes());
        blob.extend_from_slice(&addr(48).to_le_bytes());
        blob.extend_from_slice(&addr(64).to_le_bytes());
        blob.extend_from_slice(&(version.len() as u64).to_le_bytes());
        blob.extend_from_slice(&addr(64 + version.len()).to_le_bytes());
        blob.extend_from_slice(&(modinfo.len() as u64).to_le_bytes());
        blob.extend_from_slice(version);
        blob.extend_from_slice(&modinfo);
        assert!(blob.len() <= region.len(), "the section is large enough");
        bytes[region_offset..region_offset + blob.len()].copy_from_slice(&blob);
        let info = read(&bytes).unwrap();
        assert_eq!(info.go_version, "go1.16.15");
        assert_eq!(info.path, "cmd/old");
        assert_eq!(info.setting("GOOS"), Some("linux"));
    }
}
