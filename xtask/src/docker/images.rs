//! Images: their id and labels, tags, removal, listing, and images made
//! from a stream (`docker import`) or sent to another engine (`save | load`).

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::Docker;
use crate::exec;

/// A line of `docker image ls --format '{{json .}}'`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageRow {
    pub repository: String,
    pub tag: String,
    #[serde(rename = "ID")]
    pub id: String,
}

impl ImageRow {
    /// `repo:tag`, or the id for an untagged image.
    pub fn reference(&self) -> String {
        reference(&self.repository, &self.tag, &self.id)
    }
}

/// `repo:tag`, or the id for an untagged image (as Docker lists it).
pub fn reference(repository: &str, tag: &str, id: &str) -> String {
    if tag == "<none>" || repository == "<none>" {
        id.to_string()
    } else {
        format!("{repository}:{tag}")
    }
}

#[derive(Debug, Deserialize)]
struct Inspected {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "Labels", default)]
    labels: Option<BTreeMap<String, String>>,
}

impl Docker<'_> {
    fn inspect_image(&self, image: &str) -> Option<Inspected> {
        let format = r#"{"Id":{{json .Id}},"Labels":{{json .Config.Labels}}}"#;
        let out = self
            .read(&["image", "inspect", "--format", format, image])
            .ok()?;
        serde_json::from_str(out.trim()).ok()
    }

    /// The image's id (`sha256:…`), when it is here.
    pub fn image_id(&self, image: &str) -> Option<String> {
        self.inspect_image(image).map(|i| i.id)
    }

    /// One label of the image, when it is here and has it.
    pub fn image_label(&self, image: &str, label: &str) -> Option<String> {
        self.inspect_image(image)?.labels?.remove(label)
    }

    pub fn image_exists(&self, image: &str) -> bool {
        self.image_id(image).is_some()
    }

    /// `docker image rm`: `true` when it went. An image a container uses
    /// (running or not) is refused by Docker and stays.
    pub fn image_rm(&self, image: &str) -> bool {
        self.succeeds(&["image", "rm", image])
    }

    /// Every `repository:tag` of the image `id`.
    pub fn image_tags(&self, id: &str) -> Vec<String> {
        let out = self
            .read(&["image", "inspect", "--format", "{{json .RepoTags}}", id])
            .unwrap_or_default();
        serde_json::from_str(out.trim()).unwrap_or_default()
    }

    /// `docker pull --quiet`: `true` when the image is here afterwards.
    pub fn pull(&self, image: &str) -> bool {
        exec::succeeds(self.cmd(&["pull", "--quiet", image]), super::LONG, self.ui)
    }

    pub fn tag(&self, image: &str, tag: &str) -> Result<()> {
        self.run(&["tag", image, tag])
            .with_context(|| format!("tagging {image} as {tag}"))
    }

    /// Images matching `filters` (`label=…`, `reference=…`), dangling ones
    /// included with `all`.
    pub fn images(&self, filters: &[String], all: bool) -> Result<Vec<ImageRow>> {
        let mut args = vec!["image", "ls", "--no-trunc", "--format", "{{json .}}"];
        if all {
            args.push("--all");
        }
        for f in filters {
            args.extend(["--filter", f]);
        }
        self.rows(&args)
    }

    /// `producer | docker import --change C… - TAG`, both ends checked. A
    /// failure leaves no image under `tag` (an import of a cut stream is
    /// removed again).
    pub fn import(
        &self,
        producer: Command,
        changes: &[&str],
        tag: &str,
        limit: Duration,
    ) -> Result<()> {
        let mut args = vec!["import"];
        for change in changes {
            args.extend(["--change", change]);
        }
        args.extend(["-", tag]);
        let piped = exec::pipe(producer, self.command(&args), limit)
            .with_context(|| format!("importing into {tag}"));
        if piped.is_err() {
            self.image_rm(tag);
        }
        piped
    }

    /// `docker save IMAGE | docker -H OTHER load`: the images onto another engine.
    pub fn send_image(&self, images: &[String], to: &Docker, limit: Duration) -> Result<()> {
        let (save, load) = self.send_commands(images, to);
        exec::pipe(save, load, limit)
    }

    /// The two ends of [`Docker::send_image`], to run on a thread of their own.
    pub fn send_commands(&self, images: &[String], to: &Docker) -> (Command, Command) {
        let mut save = vec!["save"];
        save.extend(images.iter().map(String::as_str));
        (self.command(&save), to.command(&["load", "--quiet"]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_rows_name_themselves() {
        let rows: Vec<ImageRow> = super::super::parse_rows(
            r#"{"Containers":"N/A","CreatedAt":"2026-12-03","ID":"sha256:ab","Repository":"ltdist-x","Tag":"3f","Size":"1GB"}
{"ID":"sha256:cd","Repository":"<none>","Tag":"<none>"}"#,
        )
        .unwrap();
        assert_eq!(rows[0].reference(), "ltdist-x:3f");
        assert_eq!(rows[1].reference(), "sha256:cd");
    }
}
