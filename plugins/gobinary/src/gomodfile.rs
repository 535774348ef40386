//! The text files of a Go module tree, `go.mod` and `go.work`, read as far as patching needs
//! them (which modules at which versions, what is replaced, which
//! directories a workspace uses).

/// A `require` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Require {
    pub path: String,
    pub version: String,
    pub indirect: bool,
}

/// A `replace` line: `old [version] => new [version]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replace {
    pub old: String,
    pub old_version: Option<String>,
    pub new: String,
    pub new_version: Option<String>,
}

/// What a `go.mod` or `go.work` declares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModFile {
    /// `module` (go.mod only).
    pub module: Option<String>,
    pub go: Option<String>,
    pub toolchain: Option<String>,
    pub requires: Vec<Require>,
    pub replaces: Vec<Replace>,
    /// `use` directories (go.work only).
    pub uses: Vec<String>,
}

/// Parses `go.mod` / `go.work` syntax: directives, `( ... )` blocks, `//` comments (the
/// `// indirect` marker is kept), quoted or bare tokens.
pub fn parse(text: &str) -> Result<ModFile, String> {
    let mut file = ModFile::default();
    let mut block: Option<String> = None;
    for (number, raw) in text.lines().enumerate() {
        let (code, comment) = match raw.find("//") {
            Some(i) => (&raw[..i], raw[i + 2..].trim()),
            None => (raw, ""),
        };
        let tokens = tokens(code).map_err(|e| format!("line {}: {e}", number + 1))?;
        if tokens.is_empty() {
            continue;
        }
        let (verb, args): (String, Vec<String>) = match &block {
            Some(_) if tokens == [")"] => {
                block = None;
                continue;
            }
            Some(verb) => (verb.clone(), tokens),
            None if tokens.len() == 2 && tokens[1] == "(" => {
                block = Some(tokens[0].clone());
                continue;
            }
            None => (tokens[0].clone(), tokens[1..].to_vec()),
        };
        let line = number + 1;
        match verb.as_str() {
            "module" => file.module = args.first().cloned(),
            "go" => file.go = args.first().cloned(),
            "toolchain" => file.toolchain = args.first().cloned(),
            "require" => match &args[..] {
                [path, version] => file.requires.push(Require {
                    path: path.clone(),
                    version: version.clone(),
                    indirect: comment == "indirect" || comment.starts_with("indirect;"),
                }),
                _ => return Err(format!("line {line}: require needs a path and a version")),
            },
            "replace" => {
                let arrow = args
                    .iter()
                    .position(|t| t == "=>")
                    .ok_or_else(|| format!("line {line}: replace without =>"))?;
                let (old, new) = (&args[..arrow], &args[arrow + 1..]);
                let (Some(old_path), Some(new_path)) = (old.first(), new.first()) else {
                    return Err(format!("line {line}: incomplete replace"));
                };
                file.replaces.push(Replace {
                    old: old_path.clone(),
                    old_version: old.get(1).cloned(),
                    new: new_path.clone(),
                    new_version: new.get(1).cloned(),
                });
            }
            "use" => file.uses.extend(args),
            // exclude, retract, godebug, ...: nothing patching needs.
            _ => {}
        }
    }
    if block.is_some() {
        return Err("unterminated ( block".into());
    }
    Ok(file)
}

/// Splits a line into tokens; `"..."` and `` `...` `` are one token each, `(`/`)`/`=>` their own.
fn tokens(code: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = code.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' || c == '`' {
            chars.next();
            let mut token = String::new();
            loop {
                match chars.next() {
                    Some(end) if end == c => break,
                    Some('\\') if c == '"' => token.push(chars.next().ok_or("bad escape")?),
                    Some(other) => token.push(other),
                    None => return Err("unterminated quoted string".into()),
                }
            }
            out.push(token);
        } else if c == '(' || c == ')' {
            chars.next();
            out.push(c.to_string());
        } else {
            let mut token = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '(' || c == ')' {
                    break;
                }
                token.push(c);
                chars.next();
            }
            out.push(token);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GO_MOD: &str = r#"// The fixture service.
module example.com/copa/service

go 1.21

toolchain go1.21.13

require (
	golang.org/x/crypto v0.4.0
	golang.org/x/text v0.7.0 // indirect
	"github.com/quoted/mod" v1.0.0
)

require golang.org/x/sys v0.3.0 // indirect; comment

replace golang.org/x/term => ../term
replace (
	github.com/a/b v1.2.0 => github.com/fork/b v1.2.1
)

exclude golang.org/x/net v0.1.0
retract v0.9.0
"#;

    #[test]
    fn parses_go_mod() {
        let file = parse(GO_MOD).unwrap();
        assert_eq!(file.module.as_deref(), Some("example.com/copa/service"));
        assert_eq!(file.go.as_deref(), Some("1.21"));
        assert_eq!(file.toolchain.as_deref(), Some("go1.21.13"));
        let requires: Vec<(&str, &str, bool)> = file
            .requires
            .iter()
            .map(|r| (r.path.as_str(), r.version.as_str(), r.indirect))
            .collect();
        assert_eq!(
            requires,
            [
                ("golang.org/x/crypto", "v0.4.0", false),
                ("golang.org/x/text", "v0.7.0", true),
                ("github.com/quoted/mod", "v1.0.0", false),
                ("golang.org/x/sys", "v0.3.0", true),
            ]
        );
        assert_eq!(file.replaces.len(), 2);
        assert_eq!(file.replaces[0].new, "../term");
        assert_eq!(file.replaces[0].old_version, None);
        assert_eq!(file.replaces[1].old_version.as_deref(), Some("v1.2.0"));
        assert_eq!(file.replaces[1].new_version.as_deref(), Some("v1.2.1"));
    }

    #[test]
    fn parses_go_work() {
        let file = parse("go 1.22\n\nuse (\n\t./app\n\t./lib\n)\nuse ./tools\n").unwrap();
        assert_eq!(file.uses, ["./app", "./lib", "./tools"]);
        assert_eq!(file.module, None);
    }

    #[test]
    fn rejects_broken_files() {
        assert!(parse("require (\n golang.org/x/crypto v0.4.0\n").is_err());
        assert!(parse("require golang.org/x/crypto\n").is_err());
        assert!(parse("replace a b\n").is_err());
        assert!(parse("module \"unterminated\n").is_err());
    }
}
