//! Pushed images: each one a snapshot of a directory, addressed by any image string
//! (`web:v2`, `123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2`, `web@sha256:…`).
//!
//! A push copies (or unpacks) into a fresh directory, so a later change to the source never
//! changes a pushed image, and re-pushing a tag points it at a new snapshot while tasks already
//! running from the old one keep their files. Each image gets a content digest (`sha256:…`) over
//! its files, so the same content always gets the same id however it was pushed. With a state
//! directory, snapshots live under `images/` and `images/index.json` maps names to them.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::EngineError;

const INDEX_FILE: &str = "index.json";

#[derive(Debug, Clone)]
pub struct ImageStore {
    /// Where snapshots live: the state dir's `images/`, or a temporary directory.
    root: PathBuf,
    /// Whether `root` is ours to delete on [`ImageStore::remove_temporary`].
    temporary: bool,
    images: Arc<Mutex<BTreeMap<String, StoredImage>>>,
    /// The temporary root, deleted when the last clone of the store goes (an endpoint dropped
    /// without a shutdown, as tests do, leaves nothing behind).
    _cleanup: Option<Arc<TemporaryRoot>>,
}

#[derive(Debug)]
struct TemporaryRoot(PathBuf);

impl Drop for TemporaryRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the store knows of one image name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredImage {
    /// Snapshot directory name under the root.
    snapshot: String,
    digest: String,
    pushed_at: i64,
}

/// A pushed image as the control API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageInfo {
    pub image: String,
    /// `sha256:<hex>` over the snapshot's paths, modes and contents.
    pub digest: String,
    /// Epoch milliseconds.
    pub pushed_at: i64,
}

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("image name `{0}` is not valid: it must be 1 to 1024 printable characters")]
    InvalidName(String),
    #[error("cannot read `{path}`")]
    Source {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the archive for image `{image}` is not a valid tar file")]
    Archive {
        image: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the archive for image `{image}` has an entry outside the image: `{entry}`")]
    UnsafeEntry { image: String, entry: String },
    #[error("cannot write the snapshot of image `{image}` under `{path}`")]
    Store {
        image: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ImageStore {
    pub fn open(state_dir: Option<&Path>) -> Result<ImageStore, EngineError> {
        let (root, temporary) = match state_dir {
            Some(dir) => (dir.join("images"), false),
            None => (
                std::env::temp_dir().join(format!(
                    "shipmate-local-images-{}-{}",
                    std::process::id(),
                    uuid::Uuid::new_v4().simple()
                )),
                true,
            ),
        };
        std::fs::create_dir_all(&root).map_err(|source| EngineError::StateDir {
            path: root.clone(),
            source,
        })?;
        let images = if temporary {
            BTreeMap::new()
        } else {
            read_index(&root.join(INDEX_FILE))?
        };
        let store = ImageStore {
            _cleanup: temporary.then(|| Arc::new(TemporaryRoot(root.clone()))),
            root,
            temporary,
            images: Arc::new(Mutex::new(images)),
        };
        store.remove_unreferenced_snapshots();
        Ok(store)
    }

    /// The directory of the snapshot pushed under `image`, if any.
    pub fn resolve(&self, image: &str) -> Option<PathBuf> {
        self.lock()
            .get(image)
            .map(|stored| self.root.join(&stored.snapshot))
    }

    /// Every pushed image, by name.
    pub fn list(&self) -> Vec<ImageInfo> {
        self.lock()
            .iter()
            .map(|(image, stored)| info(image, stored))
            .collect()
    }

    /// Snapshots `source` (a copy: later changes to `source` do not change the image) as `image`.
    pub fn push_dir(&self, image: &str, source: &Path) -> std::io::Result<PathBuf> {
        let info = self
            .push_dir_with_info(image, source)
            .map_err(std::io::Error::other)?;
        Ok(self
            .resolve(&info.image)
            .expect("an image just pushed resolves"))
    }

    /// [`ImageStore::push_dir`], answering the image's digest.
    pub fn push_dir_with_info(&self, image: &str, source: &Path) -> Result<ImageInfo, PushError> {
        check_name(image)?;
        let metadata = std::fs::metadata(source).map_err(|source_error| PushError::Source {
            path: source.to_owned(),
            source: source_error,
        })?;
        if !metadata.is_dir() {
            return Err(PushError::Source {
                path: source.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    "an image is pushed from a directory",
                ),
            });
        }
        self.store(image, |snapshot| {
            copy_tree(source, snapshot).map_err(|error| PushError::Source {
                path: source.to_owned(),
                source: error,
            })
        })
    }

    /// Unpacks a tar archive (what `shipmate local push` uploads) as `image`. Entries that would
    /// land outside the snapshot (absolute paths, `..`) are refused.
    pub fn push_tar(&self, image: &str, archive: impl Read) -> Result<ImageInfo, PushError> {
        check_name(image)?;
        self.store(image, |snapshot| unpack(image, archive, snapshot))
    }

    /// Deletes the snapshots of an in-memory store (the state directory's stay).
    pub fn remove_temporary(&self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    fn store(
        &self,
        image: &str,
        fill: impl FnOnce(&Path) -> Result<(), PushError>,
    ) -> Result<ImageInfo, PushError> {
        let name = uuid::Uuid::new_v4().simple().to_string();
        let snapshot = self.root.join(&name);
        let store_error = |source| PushError::Store {
            image: image.to_owned(),
            path: snapshot.clone(),
            source,
        };
        std::fs::create_dir_all(&snapshot).map_err(store_error)?;
        if let Err(error) = fill(&snapshot) {
            let _ = std::fs::remove_dir_all(&snapshot);
            return Err(error);
        }
        let digest = tree_digest(&snapshot).map_err(store_error)?;
        let stored = StoredImage {
            snapshot: name,
            digest,
            pushed_at: crate::logs::epoch_millis(std::time::SystemTime::now()),
        };
        let mut images = self.lock();
        images.insert(image.to_owned(), stored.clone());
        if !self.temporary {
            let bytes = serde_json::to_vec_pretty(&*images).expect("the index always serializes");
            crate::logs::write_atomically(&self.root.join(INDEX_FILE), &bytes)
                .map_err(store_error)?;
        }
        Ok(info(image, &stored))
    }

    /// Snapshots no name points at any more (re-pushed tags, failed pushes) from earlier runs.
    /// Only at start: a running task may still be using an old snapshot.
    fn remove_unreferenced_snapshots(&self) {
        let referenced: std::collections::BTreeSet<String> = self
            .lock()
            .values()
            .map(|stored| stored.snapshot.clone())
            .collect();
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() && !referenced.contains(&name) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, StoredImage>> {
        self.images.lock().expect("image store lock")
    }
}

fn info(image: &str, stored: &StoredImage) -> ImageInfo {
    ImageInfo {
        image: image.to_owned(),
        digest: stored.digest.clone(),
        pushed_at: stored.pushed_at,
    }
}

fn check_name(image: &str) -> Result<(), PushError> {
    if image.is_empty() || image.len() > 1024 || image.chars().any(|c| c.is_control()) {
        return Err(PushError::InvalidName(image.to_owned()));
    }
    Ok(())
}

fn read_index(path: &Path) -> Result<BTreeMap<String, StoredImage>, EngineError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| EngineError::CorruptState {
            path: path.to_owned(),
            source,
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(source) => Err(EngineError::StateDir {
            path: path.to_owned(),
            source,
        }),
    }
}

fn unpack(image: &str, archive: impl Read, snapshot: &Path) -> Result<(), PushError> {
    let archive_error = |source| PushError::Archive {
        image: image.to_owned(),
        source,
    };
    let mut archive = tar::Archive::new(archive);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    for entry in archive.entries().map_err(archive_error)? {
        let mut entry = entry.map_err(archive_error)?;
        let path = entry.path().map_err(archive_error)?.into_owned();
        let safe = path.components().all(|component| {
            matches!(
                component,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        });
        if !safe {
            return Err(PushError::UnsafeEntry {
                image: image.to_owned(),
                entry: path.display().to_string(),
            });
        }
        // unpack_in refuses anything escaping `snapshot` (including through symlinks).
        let unpacked = entry.unpack_in(snapshot).map_err(archive_error)?;
        if !unpacked {
            return Err(PushError::UnsafeEntry {
                image: image.to_owned(),
                entry: path.display().to_string(),
            });
        }
    }
    Ok(())
}

/// Writes `source` as a tar archive (what `shipmate local push` uploads): regular files,
/// directories and symlinks, with their modes.
pub fn archive_dir(source: &Path, out: impl std::io::Write) -> std::io::Result<()> {
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Complete);
    builder.append_dir_all(".", source)?;
    builder.into_inner()?.flush()
}

fn copy_tree(source: &Path, destination: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(destination)?;
    for entry in std::fs::read_dir(source)? {
        let entry = entry?;
        let file_type = entry.file_type()?;
        let target = destination.join(entry.file_name());
        if file_type.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if file_type.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// `sha256:<hex>` over every entry's relative path, kind, executable bit and contents, in path
/// order, so equal trees get equal digests whatever their timestamps or how they were pushed.
fn tree_digest(root: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut entries = Vec::new();
    collect(root, root, &mut entries)?;
    entries.sort();
    let mut hasher = Sha256::new();
    for relative in entries {
        let path = root.join(&relative);
        let metadata = std::fs::symlink_metadata(&path)?;
        hasher.update(relative.as_os_str().as_encoded_bytes());
        hasher.update([0]);
        if metadata.file_type().is_symlink() {
            hasher.update(b"l");
            hasher.update(std::fs::read_link(&path)?.as_os_str().as_encoded_bytes());
        } else if metadata.is_dir() {
            hasher.update(b"d");
        } else {
            let executable = metadata.permissions().mode() & 0o111 != 0;
            hasher.update(if executable { b"x" } else { b"f" });
            let mut file = std::fs::File::open(&path)?;
            let mut buffer = vec![0; 64 * 1024];
            loop {
                let read = file.read(&mut buffer)?;
                if read == 0 {
                    break;
                }
                hasher.update(&buffer[..read]);
            }
        }
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(format!("sha256:{hex}"))
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        out.push(path.strip_prefix(root).expect("under root").to_owned());
        if entry.file_type()?.is_dir() {
            collect(root, &path, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.py"), "print('v1')\n").unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/run"), "#!/bin/sh\necho hi\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("bin/run"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        dir
    }

    fn tar_of(dir: &Path) -> Vec<u8> {
        let mut bytes = Vec::new();
        archive_dir(dir, &mut bytes).unwrap();
        bytes
    }

    #[test]
    fn a_pushed_image_is_a_snapshot() {
        let store = ImageStore::open(None).unwrap();
        let source = source_dir();
        let image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1";
        let snapshot = store.push_dir(image, source.path()).unwrap();
        std::fs::write(source.path().join("app.py"), "print('changed')\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(snapshot.join("app.py")).unwrap(),
            "print('v1')\n"
        );
        assert_eq!(store.resolve(image), Some(snapshot));
        assert_eq!(store.resolve("web:v1"), None);
        store.remove_temporary();
    }

    #[test]
    fn tar_and_directory_pushes_of_the_same_tree_get_the_same_digest() {
        let store = ImageStore::open(None).unwrap();
        let source = source_dir();
        let from_dir = store.push_dir_with_info("a:1", source.path()).unwrap();
        let from_tar = store
            .push_tar("b@sha256:abc", &tar_of(source.path())[..])
            .unwrap();
        assert_eq!(from_dir.digest, from_tar.digest);
        assert!(from_tar.digest.starts_with("sha256:"));
        let unpacked = store.resolve("b@sha256:abc").unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(unpacked.join("bin/run"))
            .unwrap()
            .permissions()
            .mode();
        assert_ne!(mode & 0o111, 0, "the executable bit survives the archive");
        store.remove_temporary();
    }

    #[test]
    fn re_pushing_a_tag_replaces_it() {
        let store = ImageStore::open(None).unwrap();
        let source = source_dir();
        let first = store
            .push_dir_with_info("web:latest", source.path())
            .unwrap();
        std::fs::write(source.path().join("app.py"), "print('v2')\n").unwrap();
        let second = store
            .push_dir_with_info("web:latest", source.path())
            .unwrap();
        assert_ne!(first.digest, second.digest);
        let snapshot = store.resolve("web:latest").unwrap();
        assert_eq!(
            std::fs::read_to_string(snapshot.join("app.py")).unwrap(),
            "print('v2')\n"
        );
        assert_eq!(store.list().len(), 1);
        store.remove_temporary();
    }

    #[test]
    fn archives_escaping_the_snapshot_are_refused() {
        let store = ImageStore::open(None).unwrap();
        let mut bytes = Vec::new();
        {
            let mut builder = tar::Builder::new(&mut bytes);
            let mut header = tar::Header::new_gnu();
            let data = b"evil";
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            // set_path refuses `..`, so write the name bytes directly.
            header.as_old_mut().name[..9].copy_from_slice(b"../escape");
            header.set_cksum();
            builder.append(&header, &data[..]).unwrap();
            builder.finish().unwrap();
        }
        let error = store.push_tar("evil:1", &bytes[..]).unwrap_err();
        assert!(matches!(error, PushError::UnsafeEntry { .. }), "{error:?}");
        assert!(store.resolve("evil:1").is_none());
        let garbage = store.push_tar("bad:1", &b"not a tar archive at all"[..]);
        assert!(garbage.is_err());
        store.remove_temporary();
    }

    #[test]
    fn images_survive_a_restart_with_a_state_dir() {
        let state = tempfile::tempdir().unwrap();
        let source = source_dir();
        let pushed = {
            let store = ImageStore::open(Some(state.path())).unwrap();
            store.push_dir_with_info("web:v1", source.path()).unwrap();
            // Replaced: its first snapshot is garbage after a restart.
            store.push_dir_with_info("web:v1", source.path()).unwrap()
        };
        let reopened = ImageStore::open(Some(state.path())).unwrap();
        assert_eq!(reopened.list()[0].digest, pushed.digest);
        let snapshot = reopened.resolve("web:v1").unwrap();
        assert!(snapshot.join("app.py").exists());
        let snapshots = std::fs::read_dir(state.path().join("images"))
            .unwrap()
            .filter(|entry| entry.as_ref().unwrap().path().is_dir())
            .count();
        assert_eq!(snapshots, 1, "the replaced snapshot was removed");
    }
}
