//! The two versions a .NET assembly carries, read from its PE file: the assembly version (row 1
//! of the CLI metadata's Assembly table, ECMA-335 §II.22.2) and the file version (the Win32
//! version resource's VS_FIXEDFILEINFO). deps.json records both, and the runtime compares them
//! when an app-local copy competes with a framework one, so they must be the DLL's own.

use std::fmt;

/// A four-part version as .NET writes it in deps.json ("1.0.1.0").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FourPart(pub [u16; 4]);

impl FourPart {
    /// "1.2.3.4" as deps.json writes it; missing parts are zero ("8.0" is 8.0.0.0).
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = [0u16; 4];
        for (i, part) in text.trim().split('.').enumerate() {
            *parts.get_mut(i)? = part.parse().ok()?;
        }
        Some(FourPart(parts))
    }
}

impl fmt::Display for FourPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AssemblyVersions {
    pub assembly: FourPart,
    /// None when the file has no version resource.
    pub file: Option<FourPart>,
}

/// Reads both versions; an error says why the file is not a readable .NET assembly.
pub fn read_versions(bytes: &[u8]) -> Result<AssemblyVersions, String> {
    let pe = Pe::parse(bytes)?;
    let assembly = pe.assembly_version()?;
    Ok(AssemblyVersions {
        assembly,
        file: pe.file_version(),
    })
}

/// Whether `bytes` start like a PE file (a DLL or EXE rather than a native .so).
pub fn is_pe(bytes: &[u8]) -> bool {
    bytes.starts_with(b"MZ")
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

struct Section {
    virtual_address: u32,
    virtual_size: u32,
    raw_size: u32,
    raw_offset: u32,
}

struct Pe<'a> {
    bytes: &'a [u8],
    sections: Vec<Section>,
    /// (rva, size) of the data directories.
    directories: Vec<(u32, u32)>,
}

const DIR_RESOURCE: usize = 2;
const DIR_CLI: usize = 14;

impl<'a> Pe<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        let bad = |why: &str| format!("not a .NET assembly: {why}");
        if !is_pe(bytes) {
            return Err(bad("no MZ header"));
        }
        let pe = u32_at(bytes, 0x3c).ok_or_else(|| bad("truncated DOS header"))? as usize;
        if bytes.get(pe..pe + 4) != Some(b"PE\0\0") {
            return Err(bad("no PE signature"));
        }
        let coff = pe + 4;
        let sections_count = u16_at(bytes, coff + 2).ok_or_else(|| bad("truncated COFF header"))?;
        let optional_size = u16_at(bytes, coff + 16).ok_or_else(|| bad("truncated COFF header"))?;
        let optional = coff + 20;
        let (count_at, dirs_at) = match u16_at(bytes, optional) {
            Some(0x10b) => (optional + 92, optional + 96),
            Some(0x20b) => (optional + 108, optional + 112),
            _ => return Err(bad("unknown optional header")),
        };
        let count = u32_at(bytes, count_at).ok_or_else(|| bad("truncated optional header"))?;
        let directories = (0..count.min(16) as usize)
            .map(|i| {
                Some((
                    u32_at(bytes, dirs_at + i * 8)?,
                    u32_at(bytes, dirs_at + i * 8 + 4)?,
                ))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("truncated data directories"))?;
        let table = optional + optional_size as usize;
        let sections = (0..sections_count as usize)
            .map(|i| {
                let at = table + i * 40;
                Some(Section {
                    virtual_size: u32_at(bytes, at + 8)?,
                    virtual_address: u32_at(bytes, at + 12)?,
                    raw_size: u32_at(bytes, at + 16)?,
                    raw_offset: u32_at(bytes, at + 20)?,
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("truncated section table"))?;
        Ok(Pe {
            bytes,
            sections,
            directories,
        })
    }

    fn offset(&self, rva: u32) -> Option<usize> {
        let section = self.sections.iter().find(|s| {
            rva >= s.virtual_address && rva < s.virtual_address + s.virtual_size.max(s.raw_size)
        })?;
        let offset = (rva - section.virtual_address) as usize + section.raw_offset as usize;
        (offset < self.bytes.len()).then_some(offset)
    }

    fn directory(&self, index: usize) -> Option<&'a [u8]> {
        let &(rva, size) = self.directories.get(index)?;
        if rva == 0 || size == 0 {
            return None;
        }
        let start = self.offset(rva)?;
        self.bytes.get(start..start + size as usize)
    }

    fn assembly_version(&self) -> Result<FourPart, String> {
        let bad = |why: &str| format!("not a .NET assembly: {why}");
        let cli = self
            .directory(DIR_CLI)
            .ok_or_else(|| bad("no CLI header (a native library?)"))?;
        let metadata_rva = u32_at(cli, 8).ok_or_else(|| bad("truncated CLI header"))?;
        let metadata_size = u32_at(cli, 12).ok_or_else(|| bad("truncated CLI header"))?;
        let start = self
            .offset(metadata_rva)
            .ok_or_else(|| bad("metadata outside the file"))?;
        let metadata = self
            .bytes
            .get(start..start + metadata_size as usize)
            .ok_or_else(|| bad("metadata outside the file"))?;
        let tables = tables_stream(metadata).ok_or_else(|| bad("no metadata tables"))?;
        assembly_row_version(tables).ok_or_else(|| bad("unreadable Assembly table"))
    }

    /// VS_FIXEDFILEINFO of the first RT_VERSION resource.
    fn file_version(&self) -> Option<FourPart> {
        let resources = self.directory(DIR_RESOURCE)?;
        // Type (RT_VERSION = 16) -> first name -> first language -> data entry.
        let mut dir = resource_entry(resources, 0, Some(16))?;
        for _ in 0..2 {
            dir = resource_entry(resources, dir, None)?;
        }
        let data_rva = u32_at(resources, dir)?;
        let data_size = u32_at(resources, dir + 4)?;
        let start = self.offset(data_rva)?;
        let data = self.bytes.get(start..start + data_size as usize)?;
        let signature = 0xFEEF04BDu32.to_le_bytes();
        let at = data.windows(4).position(|w| w == signature)?;
        let ms = u32_at(data, at + 8)?;
        let ls = u32_at(data, at + 12)?;
        Some(FourPart([
            (ms >> 16) as u16,
            ms as u16,
            (ls >> 16) as u16,
            ls as u16,
        ]))
    }
}

/// In the resource directory at `dir` (an offset into the resource section), the entry with
/// `id` (or the first entry): the offset of what it points to (a subdirectory or a data entry).
fn resource_entry(resources: &[u8], dir: usize, id: Option<u32>) -> Option<usize> {
    let named = u16_at(resources, dir + 12)? as usize;
    let ids = u16_at(resources, dir + 14)? as usize;
    for i in 0..named + ids {
        let at = dir + 16 + i * 8;
        let name = u32_at(resources, at)?;
        let target = u32_at(resources, at + 4)?;
        if id.is_none_or(|id| name == id) {
            return Some((target & 0x7fff_ffff) as usize);
        }
    }
    None
}

/// The `#~` (or uncompressed `#-`) stream of a metadata root.
fn tables_stream(metadata: &[u8]) -> Option<&[u8]> {
    if u32_at(metadata, 0)? != 0x424A_5342 {
        return None;
    }
    let version_length = u32_at(metadata, 12)? as usize;
    let mut at = 16 + version_length + 2;
    let streams = u16_at(metadata, at)?;
    at += 2;
    for _ in 0..streams {
        let offset = u32_at(metadata, at)? as usize;
        let size = u32_at(metadata, at + 4)? as usize;
        at += 8;
        let name_end = metadata[at..].iter().position(|&b| b == 0)?;
        let name = &metadata[at..at + name_end];
        // Names are NUL-terminated and padded to four bytes.
        at += (name_end + 1).div_ceil(4) * 4;
        if name == b"#~" || name == b"#-" {
            return metadata.get(offset..offset + size);
        }
    }
    None
}

/// A column of a metadata table, as far as its width goes.
#[derive(Clone, Copy)]
enum Col {
    U16,
    U32,
    Str,
    Guid,
    Blob,
    /// A simple index into a table.
    Idx(u8),
    Code(Coded),
}

/// Coded index kinds: the tables they can point into (tag order does not matter for widths).
#[derive(Clone, Copy)]
enum Coded {
    TypeDefOrRef,
    HasConstant,
    HasCustomAttribute,
    HasFieldMarshal,
    HasDeclSecurity,
    MemberRefParent,
    HasSemantics,
    MethodDefOrRef,
    MemberForwarded,
    CustomAttributeType,
    ResolutionScope,
}

impl Coded {
    /// (tag bits, tables).
    fn tables(self) -> (u32, &'static [u8]) {
        match self {
            Coded::TypeDefOrRef => (2, &[0x02, 0x01, 0x1B]),
            Coded::HasConstant => (2, &[0x04, 0x08, 0x17]),
            Coded::HasCustomAttribute => (
                5,
                &[
                    0x06, 0x04, 0x01, 0x02, 0x08, 0x09, 0x0A, 0x00, 0x0E, 0x17, 0x14, 0x11, 0x1A,
                    0x1B, 0x20, 0x23, 0x26, 0x27, 0x28, 0x2A, 0x2C, 0x2B,
                ],
            ),
            Coded::HasFieldMarshal => (1, &[0x04, 0x08]),
            Coded::HasDeclSecurity => (2, &[0x02, 0x06, 0x20]),
            Coded::MemberRefParent => (3, &[0x02, 0x01, 0x1A, 0x06, 0x1B]),
            Coded::HasSemantics => (1, &[0x14, 0x17]),
            Coded::MethodDefOrRef => (1, &[0x06, 0x0A]),
            Coded::MemberForwarded => (1, &[0x04, 0x06]),
            Coded::CustomAttributeType => (3, &[0x06, 0x0A]),
            Coded::ResolutionScope => (2, &[0x00, 0x1A, 0x23, 0x01]),
        }
    }
}

/// Columns of tables 0x00..=0x1F, which precede the Assembly table (0x20) in the stream.
fn columns(table: u8) -> &'static [Col] {
    use Coded::*;
    use Col::*;
    match table {
        0x00 => &[U16, Str, Guid, Guid, Guid],
        0x01 => &[Code(ResolutionScope), Str, Str],
        0x02 => &[U32, Str, Str, Code(TypeDefOrRef), Idx(0x04), Idx(0x06)],
        0x03 => &[Idx(0x04)],
        0x04 => &[U16, Str, Blob],
        0x05 => &[Idx(0x06)],
        0x06 => &[U32, U16, U16, Str, Blob, Idx(0x08)],
        0x07 => &[Idx(0x08)],
        0x08 => &[U16, U16, Str],
        0x09 => &[Idx(0x02), Code(TypeDefOrRef)],
        0x0A => &[Code(MemberRefParent), Str, Blob],
        0x0B => &[U16, Code(HasConstant), Blob],
        0x0C => &[Code(HasCustomAttribute), Code(CustomAttributeType), Blob],
        0x0D => &[Code(HasFieldMarshal), Blob],
        0x0E => &[U16, Code(HasDeclSecurity), Blob],
        0x0F => &[U16, U32, Idx(0x02)],
        0x10 => &[U32, Idx(0x04)],
        0x11 => &[Blob],
        0x12 => &[Idx(0x02), Idx(0x14)],
        0x13 => &[Idx(0x14)],
        0x14 => &[U16, Str, Code(TypeDefOrRef)],
        0x15 => &[Idx(0x02), Idx(0x17)],
        0x16 => &[Idx(0x17)],
        0x17 => &[U16, Str, Blob],
        0x18 => &[U16, Idx(0x06), Code(HasSemantics)],
        0x19 => &[Idx(0x02), Code(MethodDefOrRef), Code(MethodDefOrRef)],
        0x1A => &[Str],
        0x1B => &[Blob],
        0x1C => &[U16, Code(MemberForwarded), Str, Idx(0x1A)],
        0x1D => &[U32, Idx(0x04)],
        0x1E => &[U32, U32],
        0x1F => &[U32],
        _ => &[],
    }
}

/// The version columns of the Assembly table's only row.
fn assembly_row_version(stream: &[u8]) -> Option<FourPart> {
    let heap_sizes = *stream.get(6)?;
    let valid = u64::from_le_bytes(stream.get(8..16)?.try_into().ok()?);
    let mut rows = [0u32; 64];
    let mut at = 24;
    for (table, count) in rows.iter_mut().enumerate() {
        if valid & (1 << table) != 0 {
            *count = u32_at(stream, at)?;
            at += 4;
        }
    }
    // Bit 0x40 of HeapSizes: four bytes of extra data follow the row counts.
    if heap_sizes & 0x40 != 0 {
        at += 4;
    }
    if rows[0x20] == 0 {
        return None;
    }
    let heap = |bit: u8| if heap_sizes & bit != 0 { 4 } else { 2 };
    let width = |col: Col| -> usize {
        match col {
            Col::U16 => 2,
            Col::U32 => 4,
            Col::Str => heap(0x01),
            Col::Guid => heap(0x02),
            Col::Blob => heap(0x04),
            Col::Idx(t) => {
                if rows[t as usize] < 1 << 16 {
                    2
                } else {
                    4
                }
            }
            Col::Code(kind) => {
                let (bits, tables) = kind.tables();
                let most = tables.iter().map(|&t| rows[t as usize]).max().unwrap_or(0);
                if most < 1 << (16 - bits) { 2 } else { 4 }
            }
        }
    };
    for table in 0..0x20u8 {
        let row: usize = columns(table).iter().map(|&c| width(c)).sum();
        if rows[table as usize] != 0 && row == 0 {
            return None;
        }
        at += row * rows[table as usize] as usize;
    }
    // Assembly: HashAlgId (u32), then Major, Minor, Build, Revision (u16 each).
    let version = |i: usize| u16_at(stream, at + 4 + 2 * i);
    Some(FourPart([
        version(0)?,
        version(1)?,
        version(2)?,
        version(3)?,
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions_as_deps_json_writes_them() {
        assert_eq!(
            FourPart::parse("8.0.424.16909"),
            Some(FourPart([8, 0, 424, 16909]))
        );
        assert_eq!(FourPart::parse("8.0"), Some(FourPart([8, 0, 0, 0])));
        assert_eq!(FourPart::parse("1.2.3.4.5"), None);
        assert_eq!(FourPart::parse("1.x"), None);
        assert_eq!(FourPart::parse("70000.0"), None);
    }

    #[test]
    fn rejects_what_is_not_an_assembly() {
        assert!(read_versions(b"").unwrap_err().contains("no MZ header"));
        assert!(read_versions(b"\x7fELF\x02\x01").is_err());
        let mut dos = b"MZ".to_vec();
        dos.resize(0x40, 0);
        assert!(read_versions(&dos).is_err());
        assert!(is_pe(b"MZ\x90\x00"));
        assert!(!is_pe(b"\x7fELF"));
    }

    #[test]
    fn reads_mcs_built_assemblies() {
        // tests/data/make.sh builds these with mono-mcs.
        let versioned = read_versions(include_bytes!("../tests/data/Versioned.dll")).unwrap();
        assert_eq!(versioned.assembly, FourPart([1, 2, 3, 4]));
        assert_eq!(versioned.file, Some(FourPart([5, 6, 7, 8])));
        let plain = read_versions(include_bytes!("../tests/data/Unversioned.dll")).unwrap();
        assert_eq!(plain.assembly, FourPart([0, 0, 0, 0]));
        assert_eq!(plain.file, Some(FourPart([0, 0, 0, 0])));
        // A truncated copy is an error, not a wrong answer.
        let bytes = include_bytes!("../tests/data/Versioned.dll");
        assert!(read_versions(&bytes[..600]).is_err());
    }

    #[test]
    fn four_part_display() {
        assert_eq!(FourPart([13, 0, 0, 0]).to_string(), "13.0.0.0");
        assert_eq!(FourPart([1, 0, 1, 65535]).to_string(), "1.0.1.65535");
    }
}
