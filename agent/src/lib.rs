//! The autoarch agent: the campaign loop, the proposers, and the commands behind the `autoarch`
//! tool (running and reporting campaigns, checking code, reviewing and seeding the archive).

pub mod archive_cmd;
pub mod campaign;
pub mod config;
pub mod eval_cmd;
pub mod format;
pub mod llm;
pub mod mutation;
pub mod prompts;
pub mod proposer;
pub mod report;
pub mod review;
pub mod run_cmd;
pub mod seeds;

/// An error in how the tool was called (exit 2), as opposed to a finding about the code (exit 1).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

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
