//! Seeds: the library of human designs embedded in the binary (so campaigns run from any
//! directory), how a campaign names its seeds ([`SeedSpec`]), and the header comment every
//! design file starts with ([`Header`], the one parser of it).

use std::path::{Path, PathBuf};

use autoarch_sandbox::TaskKind;

/// Every library seed: (file stem, source).
pub const LIBRARY: &[(&str, &str)] = &[
    ("cnn", include_str!("../../seeds/cnn.star")),
    (
        "gated_retention",
        include_str!("../../seeds/gated_retention.star"),
    ),
    ("image_mlp", include_str!("../../seeds/image_mlp.star")),
    (
        "linear_attention",
        include_str!("../../seeds/linear_attention.star"),
    ),
    ("long_conv", include_str!("../../seeds/long_conv.star")),
    (
        "looped_transformer",
        include_str!("../../seeds/looped_transformer.star"),
    ),
    ("mlp_only", include_str!("../../seeds/mlp_only.star")),
    ("mobilenet", include_str!("../../seeds/mobilenet.star")),
    (
        "patch_transformer",
        include_str!("../../seeds/patch_transformer.star"),
    ),
    ("resnet", include_str!("../../seeds/resnet.star")),
    (
        "shift_attention",
        include_str!("../../seeds/shift_attention.star"),
    ),
    ("transformer", include_str!("../../seeds/transformer.star")),
];

/// The library seeds for `task`: those written for it (their `# task:` header), or for a task of
/// the same form — the token seeds (written for `mqar`) also fit `charlm` and the MAD tasks (the
/// same `[B, SEQ_LEN]` tokens in, `[B, SEQ_LEN, VOCAB]` out), and the image seeds (written for
/// `digits`) also fit `fashion`; they use the task's constants, not fixed sizes.
pub fn for_task(task: &str) -> Vec<(&'static str, &'static str)> {
    let family = TaskKind::from_name(task).map_or(task, |k| k.seed_task().name());
    LIBRARY
        .iter()
        .filter(|(_, code)| Header::parse(code).task().as_deref() == Some(family))
        .copied()
        .collect()
}

/// One library seed by file stem.
pub fn by_name(name: &str) -> Option<&'static str> {
    LIBRARY.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

/// The library's seed names, for messages.
pub fn names() -> String {
    LIBRARY
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A seed as a campaign names it: `library`, `library:NAME` or a path to a `.star` file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum SeedSpec {
    /// Every library seed for the campaign's task.
    Library,
    /// One library seed, by file stem.
    Named(String),
    /// A design file.
    File(PathBuf),
}

/// A seed spec that names nothing that exists.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SeedError {
    #[error("{0:?}: write \"library\" or \"library:NAME\"")]
    Malformed(String),
    #[error("{0:?} does not exist (library seeds: {lib})", lib = names())]
    Missing(String),
    #[error("the library has no seeds for task {0}; list .star files in `seeds`")]
    NoneForTask(String),
    #[error("seed {path}: {message}")]
    Unreadable { path: String, message: String },
}

impl SeedSpec {
    /// Reads a spec as a config file or the command line writes it.
    pub fn parse(spec: &str) -> Result<SeedSpec, SeedError> {
        match spec.strip_prefix("library") {
            Some("") => Ok(SeedSpec::Library),
            Some(rest) => match rest.strip_prefix(':') {
                Some(name) if !name.is_empty() => Ok(SeedSpec::Named(name.to_string())),
                _ => Err(SeedError::Malformed(spec.to_string())),
            },
            None => Ok(SeedSpec::File(PathBuf::from(spec))),
        }
    }

    /// The spec as it is written.
    pub fn to_spec(&self) -> String {
        match self {
            SeedSpec::Library => "library".into(),
            SeedSpec::Named(n) => format!("library:{n}"),
            SeedSpec::File(p) => p.display().to_string(),
        }
    }

    /// A file spec relative to `base` (the config file's directory); library specs as they are.
    pub fn rebased(self, base: &Path) -> SeedSpec {
        match self {
            SeedSpec::File(p) if !p.is_absolute() && base != Path::new(".") => {
                SeedSpec::File(base.join(p))
            }
            other => other,
        }
    }

    /// Refuses a spec that names nothing (before anything is created).
    pub fn check_exists(&self) -> Result<(), SeedError> {
        let missing = match self {
            SeedSpec::Library => false,
            SeedSpec::Named(name) => by_name(name).is_none(),
            SeedSpec::File(p) => !p.is_file(),
        };
        if missing {
            return Err(SeedError::Missing(self.to_spec()));
        }
        Ok(())
    }

    /// The designs this spec stands for, for `task`.
    pub fn designs(&self, task: &str) -> Result<Vec<SeedDesign>, SeedError> {
        match self {
            SeedSpec::Library => Ok(for_task(task)
                .into_iter()
                .map(|(name, code)| SeedDesign::new(name, code, format!("library:{name}")))
                .collect()),
            SeedSpec::Named(name) => {
                let code = by_name(name).ok_or_else(|| SeedError::Missing(self.to_spec()))?;
                Ok(vec![SeedDesign::new(name, code, self.to_spec())])
            }
            SeedSpec::File(path) => {
                let code = std::fs::read_to_string(path).map_err(|e| SeedError::Unreadable {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
                let stem = path
                    .file_stem()
                    .map_or_else(|| self.to_spec(), |n| n.to_string_lossy().into_owned());
                Ok(vec![SeedDesign::new(&stem, &code, self.to_spec())])
            }
        }
    }
}

impl TryFrom<String> for SeedSpec {
    type Error = SeedError;
    fn try_from(spec: String) -> Result<SeedSpec, SeedError> {
        SeedSpec::parse(&spec)
    }
}

impl From<SeedSpec> for String {
    fn from(spec: SeedSpec) -> String {
        spec.to_spec()
    }
}

/// A seed's code with its name (from its header, else its file stem) and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedDesign {
    pub name: String,
    pub idea: Option<String>,
    pub code: String,
    pub source: String,
}

impl SeedDesign {
    fn new(stem: &str, code: &str, source: String) -> SeedDesign {
        let header = Header::parse(code);
        SeedDesign {
            name: header.get("name").unwrap_or_else(|| stem.to_string()),
            idea: header.get("idea"),
            code: code.to_string(),
            source,
        }
    }
}

/// The comment block a design file starts with: `# key: value` fields (`name`, `task`, `idea`,
/// `paper`, `edit`, ...), a value continued on the comment lines that follow without a key.
#[derive(Clone, Debug, PartialEq)]
pub struct Header<'a> {
    /// The comment lines before the first line of code, as written (blank lines between them
    /// left out).
    pub lines: Vec<&'a str>,
    /// The byte offset where the header ends (after its last comment line and its newline).
    pub end: usize,
}

impl<'a> Header<'a> {
    pub fn parse(source: &'a str) -> Header<'a> {
        let mut lines = Vec::new();
        let mut end = 0;
        let mut at = 0;
        for line in source.split_inclusive('\n') {
            let text = line.trim_end_matches(['\n', '\r']);
            at += line.len();
            if text.trim_start().starts_with('#') {
                lines.push(text);
                end = at;
            } else if !text.trim().is_empty() {
                break;
            }
        }
        Header { lines, end }
    }

    /// The fields in order, continuation lines joined with spaces.
    pub fn fields(&self) -> Vec<(String, String)> {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in &self.lines {
            let text = line.trim_start().trim_start_matches('#').trim();
            match field(text) {
                Some((key, value)) => fields.push((key.to_string(), value.to_string())),
                None => {
                    if let Some((_, value)) = fields.last_mut() {
                        value.push(' ');
                        value.push_str(text);
                    }
                }
            }
        }
        fields
    }

    /// The first value of a field.
    pub fn get(&self, key: &str) -> Option<String> {
        self.fields()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty())
    }

    /// Every value of a field, in order (`edit` lines, say).
    pub fn all(&self, key: &str) -> Vec<String> {
        self.fields()
            .into_iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect()
    }

    /// The task the `# task:` line names (its first word: `# task: digits (8x8)` is digits).
    pub fn task(&self) -> Option<String> {
        self.get("task")
            .and_then(|t| t.split_whitespace().next().map(str::to_string))
    }
}

/// `key: value` where the key is one word.
fn field(text: &str) -> Option<(&str, &str)> {
    let (key, value) = text.split_once(':')?;
    let word = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    word.then(|| (key, value.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_library_is_the_seeds_directory() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../seeds");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "star"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = LIBRARY.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, embedded);
        assert!(for_task("mqar").len() >= 5);
        assert_eq!(for_task("charlm"), for_task("mqar"));
        for mad in [
            "fuzzy_recall",
            "noisy_recall",
            "selective_copy",
            "memorization",
        ] {
            assert_eq!(for_task(mad), for_task("mqar"), "{mad}");
        }
        assert_eq!(for_task("fashion"), for_task("digits"));
        assert!(for_task("custom").is_empty());
    }

    #[test]
    fn headers_join_continued_lines_and_stop_at_the_code() {
        let source =
            "# name: X\n# idea: one\n#       two\n\n# task: digits (8x8)\n\nD = 1\n# note: not header\n";
        let h = Header::parse(source);
        assert_eq!(h.get("name").as_deref(), Some("X"));
        assert_eq!(h.get("idea").as_deref(), Some("one two"));
        assert_eq!(h.task().as_deref(), Some("digits"));
        assert_eq!(h.get("note"), None);
        assert_eq!(&source[h.end..], "\nD = 1\n# note: not header\n");
        assert_eq!(
            Header::parse("def model(x):\n    # task: digits\n").task(),
            None
        );
        let edits = Header::parse("# edit: a\n# edit: b\nx = 1\n").all("edit");
        assert_eq!(edits, vec!["a", "b"]);
    }

    #[test]
    fn seed_specs_are_read_once_and_checked() {
        assert_eq!(SeedSpec::parse("library"), Ok(SeedSpec::Library));
        assert_eq!(
            SeedSpec::parse("library:cnn"),
            Ok(SeedSpec::Named("cnn".into()))
        );
        assert_eq!(
            SeedSpec::parse("a.star"),
            Ok(SeedSpec::File("a.star".into()))
        );
        assert!(matches!(
            SeedSpec::parse("libraryx"),
            Err(SeedError::Malformed(_))
        ));
        assert!(matches!(
            SeedSpec::parse("library:"),
            Err(SeedError::Malformed(_))
        ));
        let missing = SeedSpec::Named("nope".into()).check_exists().unwrap_err();
        assert!(missing.to_string().contains("does not exist"), "{missing}");
        assert!(SeedSpec::File("nope.star".into()).check_exists().is_err());
        let transformer = SeedSpec::Named("transformer".into())
            .designs("mqar")
            .unwrap();
        assert_eq!(transformer[0].name, "Softmax-attention transformer");
        assert_eq!(transformer[0].source, "library:transformer");
        assert_eq!(
            SeedSpec::File("a.star".into()).rebased(Path::new("dir")),
            SeedSpec::File("dir/a.star".into())
        );
    }
}
