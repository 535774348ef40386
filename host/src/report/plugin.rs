//! Copa-style scanner plugins: `copa-NAME REPORT` reads a report of any scanner and prints a
//! Copa update manifest on its standard output.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Result, anyhow, bail};

use crate::setting::Setting;

/// Runs `copa-NAME REPORT` from PATH and returns what it printed. Its standard error is the
/// plugin's log: passed on line by line, each line prefixed with the plugin's name.
pub fn run(name: &str, report: &Path) -> Result<Vec<u8>> {
    let program = format!("copa-{name}");
    let mut child = Command::new(&program)
        .arg(report)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                anyhow!(
                    "scanner plugin {program} not found on PATH ({} {name})",
                    Setting::Scanner
                )
            }
            _ => anyhow!("scanner plugin {program}: cannot run it: {e}"),
        })?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let log = {
        let program = program.clone();
        // Read on its own thread: a plugin that logs more than a pipe holds must not block
        // while its output waits to be read.
        std::thread::spawn(move || {
            let mut last = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!(
                    "{}",
                    crate::terminal::printable(&format!("{program}: {line}"))
                );
                if !line.trim().is_empty() {
                    last = line.trim().to_owned();
                }
            }
            last
        })
    };
    let mut output = Vec::new();
    let read = child
        .stdout
        .take()
        .expect("stdout is piped")
        .read_to_end(&mut output);
    let status = child.wait()?;
    let last_log_line = log.join().unwrap_or_default();
    read.map_err(|e| anyhow!("scanner plugin {program}: reading its output: {e}"))?;
    if !status.success() {
        let status = match status.code() {
            Some(code) => format!("exit status {code}"),
            None => "a signal".to_owned(),
        };
        if last_log_line.is_empty() {
            bail!("scanner plugin {program} failed with {status}");
        }
        bail!("scanner plugin {program} failed with {status}: {last_log_line}");
    }
    Ok(output)
}
