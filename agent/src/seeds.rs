//! The seed library, embedded in the binary so campaigns run from any directory.

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
/// the same form — the token seeds (written for `mqar`) also fit `charlm`, and the image seeds
/// (written for `digits`) also fit `fashion`; they use the task's constants, not fixed sizes.
pub fn for_task(task: &str) -> Vec<(&'static str, &'static str)> {
    let family = match task {
        "charlm" => "mqar",
        "fashion" => "digits",
        other => other,
    };
    LIBRARY
        .iter()
        .filter(|(_, code)| crate::header_task(code).as_deref() == Some(family))
        .copied()
        .collect()
}

/// One library seed by file stem.
pub fn by_name(name: &str) -> Option<&'static str> {
    LIBRARY.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

#[cfg(test)]
mod tests {
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
        let embedded: Vec<&str> = super::LIBRARY.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, embedded);
        assert!(super::for_task("mqar").len() >= 5);
        assert_eq!(super::for_task("charlm"), super::for_task("mqar"));
        assert_eq!(super::for_task("fashion"), super::for_task("digits"));
        assert!(super::for_task("custom").is_empty());
    }
}
