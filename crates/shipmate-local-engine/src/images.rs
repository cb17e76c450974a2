//! Pushed images: each one a snapshot of a directory, addressed by any image string
//! (`web:v2`, `123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2`, …).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::EngineError;

#[derive(Debug, Clone)]
pub struct ImageStore {
    /// Where snapshots live: the state dir's `images/`, or a temporary directory.
    root: PathBuf,
    images: Arc<Mutex<BTreeMap<String, PathBuf>>>,
}

impl ImageStore {
    pub fn open(state_dir: Option<&Path>) -> Result<ImageStore, EngineError> {
        let root = match state_dir {
            Some(dir) => dir.join("images"),
            None => {
                std::env::temp_dir().join(format!("shipmate-local-images-{}", std::process::id()))
            }
        };
        std::fs::create_dir_all(&root).map_err(|source| EngineError::StateDir {
            path: root.clone(),
            source,
        })?;
        Ok(ImageStore {
            root,
            images: Arc::default(),
        })
    }

    /// The directory of the snapshot pushed under `image`, if any.
    pub fn resolve(&self, image: &str) -> Option<PathBuf> {
        self.images
            .lock()
            .expect("image store lock")
            .get(image)
            .cloned()
    }

    /// Snapshots `source` (a copy: later changes to `source` do not change the image) as `image`.
    pub fn push_dir(&self, image: &str, source: &Path) -> std::io::Result<PathBuf> {
        let snapshot = self.root.join(uuid::Uuid::new_v4().simple().to_string());
        copy_tree(source, &snapshot)?;
        self.images
            .lock()
            .expect("image store lock")
            .insert(image.to_owned(), snapshot.clone());
        Ok(snapshot)
    }
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
