//! The file channel: a JSON-lines outbox, the sandbox and test back end.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Channel, DeliveryError, Message};

/// Appends one JSON line per delivered key to a file and skips keys already in it, so a retry
/// after a crash between "delivered" and "acknowledged" does not write a second line.
///
/// A line is written with one `write` on a file opened for append: it survives a crash of this
/// process as soon as `deliver` returns (the page cache outlives the process), which is the
/// durability the engine promises; it does not fsync per line.
pub struct FileChannel {
    path: PathBuf,
    state: Mutex<Outbox>,
}

struct Outbox {
    file: File,
    keys: HashSet<String>,
    lines: u64,
}

impl FileChannel {
    /// Opens (or creates) the outbox. A torn last line, left by a crash in the middle of a
    /// write, is cut off: that delivery was never acknowledged and will be retried.
    ///
    /// The outbox is never opened through a symbolic link, and must be a regular file this
    /// user owns that no one else may write: tickler cuts and appends to it.
    pub fn open(path: &Path) -> std::io::Result<FileChannel> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = crate::private_fs::open_private_append(path)
            .map_err(|err| std::io::Error::new(std::io::ErrorKind::PermissionDenied, err))?;
        let mut keys = HashSet::new();
        let mut lines = 0;
        let mut complete_len = 0u64;
        {
            let mut reader = BufReader::new(&file);
            let mut line = String::new();
            loop {
                line.clear();
                let read = reader.read_line(&mut line)?;
                if read == 0 || !line.ends_with('\n') {
                    break;
                }
                complete_len += read as u64;
                lines += 1;
                if let Ok(message) = serde_json::from_str::<Message>(&line) {
                    keys.insert(message.idempotency_key);
                }
            }
        }
        if file.metadata()?.len() != complete_len {
            tracing::warn!(path = %path.display(), "cutting off a torn last outbox line");
            file.set_len(complete_len)?;
        }
        file.seek(SeekFrom::End(0))?;
        Ok(FileChannel {
            path: path.to_owned(),
            state: Mutex::new(Outbox { file, keys, lines }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl Channel for FileChannel {
    async fn deliver(&self, message: &Message) -> Result<String, DeliveryError> {
        let mut line = serde_json::to_string(message)
            .map_err(|err| DeliveryError::Permanent(format!("cannot encode message: {err}")))?;
        line.push('\n');
        let mut outbox = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if outbox.keys.contains(&message.idempotency_key) {
            return Ok(format!("{} already in the outbox", message.idempotency_key));
        }
        // A write that fails part way (a full disk) may have written part of the line: cut the
        // file back to where it was, or the next message would be glued to that part.
        let before = outbox.file.metadata().map(|m| m.len());
        if let Err(err) = outbox.file.write_all(line.as_bytes()) {
            let cut = before.and_then(|len| outbox.file.set_len(len));
            let error = format!("cannot write {}: {err}", self.path.display());
            return Err(DeliveryError::Transient(match cut {
                Ok(()) => error,
                Err(cut) => format!("{error}; cutting the partial line off failed too: {cut}"),
            }));
        }
        outbox.lines += 1;
        outbox.keys.insert(message.idempotency_key.clone());
        Ok(format!("outbox line {}", outbox.lines))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickler_core::Timestamp;

    fn message(key: &str) -> Message {
        Message {
            idempotency_key: key.into(),
            entity: "due/1".into(),
            rule: "pre-due".into(),
            kind: "due-soon".into(),
            recipient: "r@example.org".into(),
            channel: "file".into(),
            due_at: Timestamp::from_millis(0).unwrap(),
            fired_at: Timestamp::from_millis(0).unwrap(),
            attempt: 1,
            subject: "s".into(),
            body: "b".into(),
            html: None,
        }
    }

    #[tokio::test]
    async fn a_key_is_written_once_even_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.jsonl");
        let outbox = FileChannel::open(&path).unwrap();
        outbox.deliver(&message("a")).await.unwrap();
        outbox.deliver(&message("a")).await.unwrap();
        drop(outbox);
        let outbox = FileChannel::open(&path).unwrap();
        outbox.deliver(&message("a")).await.unwrap();
        outbox.deliver(&message("b")).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
    }

    #[tokio::test]
    async fn a_torn_last_line_is_cut_off_and_its_key_delivered_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.jsonl");
        let outbox = FileChannel::open(&path).unwrap();
        outbox.deliver(&message("a")).await.unwrap();
        drop(outbox);
        let torn = serde_json::to_string(&message("b")).unwrap();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(&torn.as_bytes()[..20]).unwrap();
        drop(file);
        let outbox = FileChannel::open(&path).unwrap();
        outbox.deliver(&message("b")).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let keys: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<Message>(l).unwrap().idempotency_key)
            .collect();
        assert_eq!(keys, ["a", "b"]);
    }

    /// Issue 20 (M5): an outbox replaced by a symbolic link is refused before anything is read,
    /// cut or appended: the link's target stays as it was.
    #[test]
    fn an_outbox_that_is_a_symlink_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.conf");
        std::fs::write(&victim, "root:x:0:0\nlast-line-without-newline").unwrap();
        let path = dir.path().join("outbox.jsonl");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let err = FileChannel::open(&path).err().expect("refused").to_string();
        assert!(
            err.contains("symbolic link") && err.contains("outbox.jsonl"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "root:x:0:0\nlast-line-without-newline"
        );
    }
}
