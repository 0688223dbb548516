//! What the engine's disk holds (`docker system df -v`: images, volumes and
//! build cache entries with their sizes), the labels of many images at once,
//! and build cache entries removed one by one.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::Docker;

/// `docker system df -v --format '{{json .}}'`, the parts read here.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiskUse {
    #[serde(default, deserialize_with = "or_empty")]
    pub images: Vec<DfImage>,
    #[serde(default, deserialize_with = "or_empty")]
    pub volumes: Vec<DfVolume>,
    #[serde(default, deserialize_with = "or_empty")]
    pub build_cache: Vec<CacheEntry>,
}

/// `null` (nothing of that kind) as an empty list.
fn or_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DfImage {
    #[serde(rename = "ID")]
    pub id: String,
    pub repository: String,
    pub tag: String,
    /// How many containers (running or not) use it.
    #[serde(deserialize_with = "number")]
    pub containers: u64,
    /// Its own layers: what removing it frees.
    #[serde(deserialize_with = "size")]
    pub unique_size: u64,
    #[serde(deserialize_with = "size")]
    pub size: u64,
}

impl DfImage {
    /// `repo:tag`, or the id for an untagged image.
    pub fn reference(&self) -> String {
        super::images::reference(&self.repository, &self.tag, &self.id)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DfVolume {
    pub name: String,
    /// `a=b,c=d`
    #[serde(default)]
    pub labels: String,
    /// How many containers mount it.
    #[serde(deserialize_with = "number")]
    pub links: u64,
    #[serde(deserialize_with = "size")]
    pub size: u64,
}

/// One BuildKit cache record.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CacheEntry {
    #[serde(rename = "ID")]
    pub id: String,
    /// `regular`, `source.local`, …
    pub cache_type: String,
    pub description: String,
    #[serde(default)]
    pub parent: String,
    #[serde(rename = "InUse", deserialize_with = "truthy")]
    pub in_use: bool,
    /// `2026-12-04 21:27:26.370539084 +0000 UTC`
    pub last_used_at: String,
    #[serde(deserialize_with = "size")]
    pub size: u64,
}

impl CacheEntry {
    /// When it was last used, in seconds since 1970 (UTC), to the
    /// nanosecond; 0 when Docker printed something else.
    pub fn last_used(&self) -> f64 {
        parse_time(&self.last_used_at).unwrap_or(0.0)
    }
}

fn truthy<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(String::deserialize(d)?.eq_ignore_ascii_case("true"))
}

fn number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(String::deserialize(d)?.trim().parse().unwrap_or(0))
}

fn size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(parse_size(&String::deserialize(d)?).unwrap_or(0))
}

/// Docker's sizes (`8.89kB`, `916.5MB`, `1.2GB`; decimal units) in bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let factor = match unit {
        "B" => 1e0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        _ => return None,
    };
    Some((number.trim().parse::<f64>().ok()? * factor).round() as u64)
}

/// `2026-12-04 21:27:26.370539084 +0000 UTC` in seconds since 1970.
fn parse_time(text: &str) -> Option<f64> {
    let mut parts = text.split_whitespace();
    crate::clock::unix_secs(parts.next()?, parts.next()?)
}

/// `1.2 GB`, `35 MB`, `8 kB`: a size for people.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.0} kB", b / 1e3),
        1_000_000..1_000_000_000 => format!("{:.0} MB", b / 1e6),
        _ => format!("{:.2} GB", b / 1e9),
    }
}

/// Whether `docker system df` failed only because another one runs.
fn busy_with_another(error: &str) -> bool {
    error.contains("a disk usage operation is already running")
}

impl Docker<'_> {
    /// What the engine's disk holds, with sizes. The engine answers one
    /// such question at a time ("a disk usage operation is already
    /// running", when another checkout's `clean` or `doctor` asks too):
    /// asked again until it answers, for at most [`super::QUERY_LONG`].
    pub fn disk_use(&self) -> Result<DiskUse> {
        let deadline = std::time::Instant::now() + super::QUERY_LONG;
        let out = loop {
            match self.read(&["system", "df", "--verbose", "--format", "{{json .}}"]) {
                Err(e)
                    if busy_with_another(&format!("{e:#}"))
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                }
                answer => {
                    break answer.context("reading the engine's disk use (docker system df)")?
                }
            }
        };
        serde_json::from_str(out.trim()).context("reading `docker system df`'s answer")
    }

    /// The labels of each image in `ids` that is still there, by id.
    pub fn images_labels(&self, ids: &[String]) -> BTreeMap<String, BTreeMap<String, String>> {
        if ids.is_empty() {
            return BTreeMap::new();
        }
        let mut args = vec![
            "image",
            "inspect",
            "--format",
            r#"{"Id":{{json .Id}},"Labels":{{json .Config.Labels}}}"#,
        ];
        args.extend(ids.iter().map(String::as_str));
        #[derive(Deserialize)]
        struct Row {
            #[serde(rename = "Id")]
            id: String,
            #[serde(rename = "Labels")]
            labels: Option<BTreeMap<String, String>>,
        }
        // An image removed since the listing fails the whole call: then
        // each is asked alone, and one that is gone is left out (never
        // taken for an image without labels).
        let rows: Vec<Row> = match self.read(&args) {
            Ok(out) => super::parse_rows(&out).unwrap_or_default(),
            Err(_) => ids
                .iter()
                .filter_map(|id| {
                    let mut one = args[..4].to_vec();
                    one.push(id);
                    let out = self.read(&one).ok()?;
                    super::parse_rows::<Row>(&out).ok()?.pop()
                })
                .collect(),
        };
        rows.into_iter()
            .map(|r| (r.id, r.labels.unwrap_or_default()))
            .collect()
    }

    /// Remove one build cache record. One that another record is built on,
    /// or one in use, stays (Docker says nothing then: list again to know).
    pub fn cache_rm(&self, id: &str) {
        let filter = format!("id={id}");
        let _ = self.read(&["builder", "prune", "--all", "--force", "--filter", &filter]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times_as_docker_prints_them() {
        assert_eq!(parse_size("8.89kB"), Some(8_890));
        assert_eq!(parse_size("916.5MB"), Some(916_500_000));
        assert_eq!(parse_size("0B"), Some(0));
        assert_eq!(parse_size("1.03GB"), Some(1_030_000_000));
        assert_eq!(parse_size("N/A"), None);
        let t = parse_time("2026-12-04 21:27:26.370539084 +0000 UTC").unwrap();
        // 2026-12-04T21:27:26Z is 1796419646 (date -d ... +%s).
        assert!((t - 1_796_419_646.370_539).abs() < 1e-3, "{t}");
        assert_eq!(human(6_161_000), "6 MB");
        assert_eq!(human(1_950_000_000), "1.95 GB");
    }

    #[test]
    fn another_disk_usage_question_is_waited_for() {
        assert!(busy_with_another(
            "`docker system df` failed (exit status: 1): Error response from daemon: \
             a disk usage operation is already running"
        ));
        assert!(!busy_with_another("Cannot connect to the Docker daemon"));
    }

    #[test]
    fn a_df_answer_reads() {
        let json = r#"{"Images":[{"Containers":"0","ID":"sha256:f7","Repository":"ltdist-x","SharedSize":"120.2MB","Size":"126MB","Tag":"py3.14-pa","UniqueSize":"6.161MB"}],
"Containers":null,
"Volumes":[{"Labels":"org.libertem.dist-test.shared=runtime","Links":"0","Name":"libertem-dist-runtime-ab","Size":"916.5MB"}],
"BuildCache":[{"CacheType":"source.local","Description":"local source for context","ID":"l6","InUse":"false","LastUsedAt":"2026-12-04 21:27:26.371189568 +0000 UTC","Parent":"","Size":"6.15MB"}]}"#;
        let df: DiskUse = serde_json::from_str(json).unwrap();
        assert_eq!(df.images[0].unique_size, 6_161_000);
        assert_eq!(df.images[0].reference(), "ltdist-x:py3.14-pa");
        assert_eq!(df.volumes[0].size, 916_500_000);
        assert!(!df.build_cache[0].in_use);
        assert!(df.build_cache[0].last_used() > 1.7e9);
    }
}
