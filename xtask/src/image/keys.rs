//! What the project image is keyed on: the Dockerfile, the runtime volume
//! and the project's build files (not its source, which the services
//! mount). The runtime's own key is in [`crate::runtime`].

use std::path::Path;

use anyhow::Result;

use crate::digest::{sha256_bytes, sha256_file};

/// The files of a project that shape its installed metadata and entry
/// points. Its source is not among them: the services mount that.
const BUILD_FILES: &[&str] = &[
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "hatch_build.py",
    "MANIFEST.in",
];

/// What the project image is made from, as a short digest: the runtime
/// volume (which stands for the base, the requirements and how the runtime
/// is made), the Dockerfile's text and the context files it copies
/// (`ours`: the readiness probe), and the project's build files that exist.
pub(super) fn project_key(
    project: &Path,
    runtime: &str,
    stage: &str,
    ours: &[&Path],
) -> Result<String> {
    let mut text = format!("runtime {runtime}\n{}\n", sha256_bytes(stage.as_bytes()));
    for file in ours {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        text.push_str(&format!("{} {name}\n", sha256_file(file)?));
    }
    for name in BUILD_FILES {
        let file = project.join(name);
        if file.is_file() {
            text.push_str(&format!("{} {name}\n", sha256_file(&file)?));
        }
    }
    Ok(sha256_bytes(text.as_bytes())[..12].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn the_project_stage_is_keyed_on_build_files_not_source() {
        let dir = std::env::temp_dir().join(format!("xtask-project-key-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("src/pkg")).unwrap();
        fs::write(dir.join("pyproject.toml"), "[project]\nname = \"pkg\"\n").unwrap();
        fs::write(dir.join("src/pkg/__init__.py"), "").unwrap();
        let key = project_key(&dir, "deps:1", "RUN a", &[]).unwrap();
        fs::write(dir.join("src/pkg/__init__.py"), "x = 1\n").unwrap();
        assert_eq!(
            project_key(&dir, "deps:1", "RUN a", &[]).unwrap(),
            key,
            "a source edit"
        );
        assert_ne!(
            project_key(&dir, "deps:2", "RUN a", &[]).unwrap(),
            key,
            "a new runtime"
        );
        assert_ne!(
            project_key(&dir, "deps:1", "RUN b", &[]).unwrap(),
            key,
            "the Dockerfile edited"
        );
        let probe = dir.join("probe.py");
        fs::write(&probe, "a").unwrap();
        let with_probe = project_key(&dir, "deps:1", "RUN a", &[&probe]).unwrap();
        assert_ne!(with_probe, key, "a file of ours the stage copies");
        fs::write(&probe, "b").unwrap();
        assert_ne!(
            project_key(&dir, "deps:1", "RUN a", &[&probe]).unwrap(),
            with_probe,
            "that file edited"
        );
        fs::write(dir.join("setup.py"), "").unwrap();
        let with_setup = project_key(&dir, "deps:1", "RUN a", &[]).unwrap();
        assert_ne!(with_setup, key, "a new build file");
        fs::write(dir.join("pyproject.toml"), "[project]\nname = \"pkg2\"\n").unwrap();
        assert_ne!(
            project_key(&dir, "deps:1", "RUN a", &[]).unwrap(),
            with_setup,
            "an edited one"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
