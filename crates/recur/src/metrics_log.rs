//! A JSON Lines metrics log: one JSON object per line, flushed after each record, so a crashed
//! run keeps everything it logged and `tail -f` or pandas (`read_json(lines=True)`) can read it.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use crate::error::{Error, Result};

/// An open metrics log file.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    // A mutex so `log` takes `&self` and the log can be shared between threads.
    file: Mutex<File>,
}

impl MetricsLog {
    /// Creates (or truncates) the log at `path` for a new run.
    pub fn create(path: impl AsRef<Path>) -> Result<MetricsLog> {
        let path = path.as_ref();
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        Ok(MetricsLog {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// Opens the log at `path` for appending (resuming a run), creating it if needed.
    pub fn append(path: impl AsRef<Path>) -> Result<MetricsLog> {
        let path = path.as_ref();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(MetricsLog {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// Opens the log of a run being resumed from the checkpoint at `step`: records of later
    /// steps (logged after that checkpoint, and about to be replayed) and a torn last line are
    /// cut first, by an atomic rewrite, so the log reads as if the run had never stopped.
    pub fn resume(path: impl AsRef<Path>, step: usize) -> Result<MetricsLog> {
        let path = path.as_ref();
        let records = match read_records(path) {
            Err(Error::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
                Vec::new()
            }
            other => other?,
        };
        let mut text = Vec::new();
        for r in records {
            if r["step"].as_u64().is_none_or(|s| s <= step as u64) {
                serde_json::to_writer(&mut text, &r).map_err(|e| Error::io(path, e.into()))?;
                text.push(b'\n');
            }
        }
        let tmp = path.with_extension(format!("jsonl.tmp-{}", std::process::id()));
        let written = File::create(&tmp)
            .and_then(|mut f| f.write_all(&text).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io(path, e));
        }
        MetricsLog::append(path)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `record` as one line of JSON (it should serialize to an object) and flushes.
    pub fn log(&self, record: &(impl Serialize + ?Sized)) -> Result<()> {
        let io = |e: std::io::Error| Error::io(&self.path, e);
        let mut line = serde_json::to_vec(record).map_err(|e| io(e.into()))?;
        line.push(b'\n');
        // A poisoned lock only means another thread panicked mid-write; the file is still usable.
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        // One write_all per record so concurrent appenders never interleave within a line.
        file.write_all(&line)
            .and_then(|()| file.flush())
            .map_err(io)
    }
}

/// Reads every record of a log written by [`MetricsLog`]. Blank lines are skipped; a line that
/// is not JSON is an error naming the file and line, except a torn last line (no trailing
/// newline: the writer was killed mid-write), which is ignored.
pub fn read_records(path: impl AsRef<Path>) -> Result<Vec<serde_json::Value>> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::new(file);
    let mut out = Vec::new();
    let mut line = String::new();
    for number in 1.. {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&line) {
            Ok(v) => out.push(v),
            Err(_) if !line.ends_with('\n') => break,
            Err(e) => {
                return Err(Error::Parse {
                    path: path.to_path_buf(),
                    line: Some(number),
                    msg: format!("not a JSON record: {e}"),
                })
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("recur-mlog-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d.join(name)
    }

    #[derive(Serialize)]
    struct Rec {
        step: u64,
        train_loss: f64,
    }

    #[test]
    fn create_log_append_read() {
        let path = temp("a.jsonl");
        let log = MetricsLog::create(&path).unwrap();
        log.log(&Rec {
            step: 1,
            train_loss: 2.5,
        })
        .unwrap();
        log.log(&json!({"step": 2, "dev_accuracy": 0.5})).unwrap();
        drop(log);
        // Flushed per record: readable without closing, and append resumes after it.
        let log = MetricsLog::append(&path).unwrap();
        log.log(&json!({"step": 3})).unwrap();
        assert_eq!(
            read_records(&path).unwrap(),
            vec![
                json!({"step": 1, "train_loss": 2.5}),
                json!({"step": 2, "dev_accuracy": 0.5}),
                json!({"step": 3}),
            ]
        );
        // create truncates.
        MetricsLog::create(&path).unwrap();
        assert!(read_records(&path).unwrap().is_empty());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn resume_cuts_later_steps_and_a_torn_line() {
        let path = temp("r.jsonl");
        let text = "{\"event\":\"step\",\"step\":1}\n{\"event\":\"eval\",\"step\":2}\n\
                    {\"event\":\"step\",\"step\":3}\n{\"event\":\"st";
        std::fs::write(&path, text).unwrap();
        let log = MetricsLog::resume(&path, 2).unwrap();
        log.log(&json!({"event": "step", "step": 3})).unwrap();
        let steps: Vec<u64> = read_records(&path)
            .unwrap()
            .iter()
            .map(|r| r["step"].as_u64().unwrap())
            .collect();
        assert_eq!(steps, [1, 2, 3]);
        std::fs::remove_file(&path).unwrap();
        // A run resumed before it logged anything starts an empty log.
        MetricsLog::resume(&path, 0).unwrap();
        assert!(read_records(&path).unwrap().is_empty());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn bad_lines_and_missing_files() {
        let path = temp("b.jsonl");
        std::fs::write(&path, "{\"step\": 1}\n\nnot json\n{\"step\": 2}\n").unwrap();
        let err = read_records(&path).unwrap_err();
        assert!(err.to_string().contains("b.jsonl:3"), "{err}");

        // A torn final line (killed mid-write) is dropped, not an error.
        std::fs::write(&path, "{\"step\": 1}\n{\"st").unwrap();
        assert_eq!(read_records(&path).unwrap(), vec![json!({"step": 1})]);
        std::fs::remove_file(&path).unwrap();

        let err = read_records(temp("missing.jsonl")).unwrap_err();
        assert!(matches!(err, Error::Io { .. }));
        assert!(MetricsLog::create("/nonexistent-dir/x.jsonl").is_err());
    }
}
