//! Markdown output: tables, and the machine they were measured on.

use std::fmt::Write as _;

/// A markdown table, built row by row.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        out.push_str(&line(&self.header));
        out.push_str(&line(&vec!["---".to_owned(); self.header.len()]));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// A section of BENCHMARKS.md as one binary produces it: `run.sh` pastes it between the
/// markers `<!-- BEGIN name -->` and `<!-- END name -->`, so the prose around stays.
pub struct Section {
    text: String,
}

impl Section {
    /// Starts with the command that produced the section.
    pub fn new(command: &str) -> Self {
        let mut text = String::new();
        let _ = writeln!(text, "Command: `{command}`\n");
        Self { text }
    }

    pub fn para(&mut self, p: &str) {
        let _ = writeln!(self.text, "{p}\n");
    }

    pub fn table(&mut self, t: &Table) {
        let _ = writeln!(self.text, "{}", t.render());
    }

    /// Writes the section to `path` (or stdout when `path` is `None`).
    pub fn write(&self, path: Option<&str>) {
        match path {
            Some(path) => std::fs::write(path, &self.text)
                .unwrap_or_else(|e| panic!("cannot write the results to {path}: {e}")),
            None => print!("{}", self.text),
        }
    }
}

/// This process's command line as someone would retype it: the binary as
/// `target/release/<name>`, without the `--out*` options that only say where the
/// section goes.
pub fn command() -> String {
    let mut args = std::env::args();
    let program = args.next().unwrap_or_default();
    let name = std::path::Path::new(&program)
        .file_name()
        .map_or(program.clone(), |n| n.to_string_lossy().into_owned());
    let mut shown = vec![format!("target/release/{name}")];
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
        } else if a.starts_with("--out") {
            skip = true;
        } else {
            shown.push(a);
        }
    }
    shown.join(" ")
}

/// Whether `--flag` is on the command line.
pub fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

/// The value of `--name VALUE`, parsed, or `default`.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a value of the right type, not {v:?}"))
        })
        .unwrap_or(default)
}

/// One line naming the machine: CPU model, cores, memory, and the load when measured.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU", str::trim)
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    format!(
        "{model}, {cores} cores, {mem_gib:.0} GiB; load average at start {}",
        load_average()
    )
}

/// The 1-minute load average, as `uptime` shows it.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}
