//! `file`: one `.eml` file per message in a folder (Django's file-based
//! backend). Written to a temporary name and renamed, so a reader never
//! sees half a message.

use std::path::PathBuf;

use futures::future::BoxFuture;

use super::{EmailBackend, OutgoingEmail, SendError};

/// Writes emails as files.
pub struct FileBackend {
    dir: PathBuf,
}

impl FileBackend {
    /// A backend writing into `dir` (created now if missing).
    pub fn new(dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("email_file_path {}: {e}", dir.display()))?;
        Ok(Self { dir })
    }
}

impl EmailBackend for FileBackend {
    fn send<'a>(&'a self, email: &'a OutgoingEmail) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let bytes = email.to_message()?.formatted();
            let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
            let path = self.dir.join(format!("{stamp}-{}.eml", email.id));
            let tmp = self.dir.join(format!(".{}.eml.tmp", email.id));
            let io = |e: std::io::Error| SendError::transient(format!("{}: {e}", path.display()));
            tokio::fs::write(&tmp, &bytes).await.map_err(io)?;
            tokio::fs::rename(&tmp, &path).await.map_err(io)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_one_eml_per_message() {
        let dir = tempfile::tempdir().expect("tmp");
        let backend = FileBackend::new(dir.path().join("mail")).expect("dir");
        let mut email = crate::email::tests::sample();
        backend.send(&email).await.expect("first");
        email.id = "0190a1b2-0000-7000-8000-000000000002".into();
        backend.send(&email).await.expect("second");
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join("mail"))
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.iter().all(|n| n.ends_with(".eml")));
        let raw = std::fs::read_to_string(dir.path().join("mail").join(&names[0])).expect("read");
        assert!(raw.contains("Subject: Welcome to Bazaar, ada!"));
    }
}
