//! What the two built images are keyed on: the dependency image on its
//! stage of the Dockerfile, its inputs and the base; the project image on
//! its stage, the dependency image and the project's build files (not its
//! source, which the services mount).

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use crate::digest::{sha256_bytes, sha256_file};
use crate::downloads;

/// The label that says which project build files (and dependency image) an
/// image's editable install was made from.
pub const PROJECT_KEY_LABEL: &str = "org.libertem.dist-test.project-key";

/// The label that names the project an image was built for, by its tag
/// (which stays on every image of that project, the replaced ones too).
pub const PROJECT_LABEL: &str = "org.libertem.dist-test.project";

/// The label that names the dependency image a project image was built on.
pub const DEPS_LABEL: &str = "org.libertem.dist-test.deps";

/// The files of a project that shape its installed metadata and entry
/// points. Its source is not among them: the services mount that.
const BUILD_FILES: &[&str] = &[
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "hatch_build.py",
    "MANIFEST.in",
];

/// What the project stage is made from, as a short digest: the dependency
/// image (which stands for the deps stage, requirements and base), the
/// project stage's own text and the context files it copies (`ours`: the
/// readiness probe), and the project's build files that exist.
pub(super) fn project_key(
    project: &Path,
    deps_image: &str,
    stage: &str,
    ours: &[&Path],
) -> Result<String> {
    let mut text = format!("deps {deps_image}\n{}\n", sha256_bytes(stage.as_bytes()));
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

/// The line that starts the project stage: the Dockerfile before it is the
/// dependency stage's, after it the project stage's.
pub(super) const PROJECT_STAGE: &str = "FROM ${DEPS_IMAGE} AS project";

/// The Dockerfile's text before the project stage (all of it, if it has
/// none) and from it on.
pub(super) fn dockerfile_stages(dockerfile: &Path) -> Result<(String, String)> {
    let text = fs::read_to_string(dockerfile)
        .with_context(|| format!("reading {}", dockerfile.display()))?;
    let at = text.find(PROJECT_STAGE).unwrap_or(text.len());
    Ok((text[..at].to_string(), text[at..].to_string()))
}

/// What the deps stage reads, as a short digest: the Dockerfile up to the
/// project stage, the requirements it installs, and the base image.
pub(super) fn deps_key(context: &Path, dockerfile: &Path, base_id: &str) -> Result<String> {
    // uv stands in by its pin (version and wheel hashes, checked when it was
    // fetched): hashing its 40 MB program on every build costs more than the
    // rest of a no-change build.
    let mut text = format!("base {base_id}\n{}", downloads::UV.requirement());
    let deps_stage = dockerfile_stages(dockerfile)?.0;
    text.push_str(&format!(
        "{} Dockerfile (deps stage)\n",
        sha256_bytes(deps_stage.as_bytes())
    ));
    let digest = sha256_file(&context.join("requirements.txt"))?;
    text.push_str(&format!("{digest} requirements.txt\n"));
    Ok(sha256_bytes(text.as_bytes())[..12].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "new dependencies"
        );
        assert_ne!(
            project_key(&dir, "deps:1", "RUN b", &[]).unwrap(),
            key,
            "the stage edited"
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

    #[test]
    fn the_committed_dockerfile_has_both_stages() {
        let dockerfile =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/docker/Dockerfile");
        let (deps, project) = dockerfile_stages(&dockerfile).unwrap();
        assert!(deps.contains(" AS deps"), "{deps}");
        assert!(project.starts_with(PROJECT_STAGE), "{project}");
        assert!(!project.contains(" AS deps"), "{project}");
    }
}
