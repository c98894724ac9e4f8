//! `--pid-file`: the master's pid, for scripts that signal it (logrotate's postrotate, an
//! init script). Written once the master has bound its listeners, removed when it exits;
//! left alone if another process has written its own pid there since.

use std::io;
use std::path::{Path, PathBuf};

pub struct PidFile {
    path: PathBuf,
    pid: u32,
}

impl PidFile {
    /// Write this process's pid to `path` (replacing what was there: a stale file from a
    /// server that was killed), or say what is wrong with the path.
    pub fn write(path: &Path) -> Result<PidFile, String> {
        let pid = std::process::id();
        std::fs::write(path, format!("{pid}\n")).map_err(|e| match (e.kind(), path.parent()) {
            (io::ErrorKind::NotFound, Some(dir)) if !dir.as_os_str().is_empty() => {
                format!(
                    "--pid-file {}: the directory {} does not exist; create it first",
                    path.display(),
                    dir.display()
                )
            }
            _ => format!("--pid-file {}: {e}", path.display()),
        })?;
        Ok(PidFile { path: path.to_path_buf(), pid })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if std::fs::read_to_string(&self.path).is_ok_and(|s| s.trim() == self.pid.to_string()) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_then_removed_unless_another_pid_replaced_it() {
        let dir = std::env::temp_dir().join(format!("c10k-pidfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c10k.pid");
        let file = PidFile::write(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", std::process::id()));
        drop(file);
        assert!(!path.exists(), "removed at exit");
        let file = PidFile::write(&path).unwrap();
        std::fs::write(&path, "1\n").unwrap();
        drop(file);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n", "another server's pid is left alone");
        let missing = PidFile::write(&dir.join("nope/c10k.pid")).map(drop).unwrap_err();
        assert!(missing.contains("the directory") && missing.contains("does not exist"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
