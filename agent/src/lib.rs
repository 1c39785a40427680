//! The autoarch agent: today the glue behind the `autoarch` command-line tool; the campaign loop,
//! proposers and LLM client land here next (see ARCHITECTURE.md).

pub mod format;

/// The task a file names in a header comment line such as `# task: mqar`.
pub fn header_task(source: &str) -> Option<String> {
    source
        .lines()
        .take_while(|l| l.trim_start().starts_with('#') || l.trim().is_empty())
        .find_map(|l| {
            let rest = l.trim_start().trim_start_matches('#').trim();
            let value = rest.strip_prefix("task:")?.trim();
            let name = value.split_whitespace().next()?;
            Some(name.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_task_reads_the_comment_block_only() {
        assert_eq!(
            header_task("# name: x\n# task: digits (8x8)\n\ndef model(x):\n"),
            Some("digits".to_string())
        );
        assert_eq!(header_task("def model(x):\n    # task: digits\n"), None);
    }
}
