//! Which of green's log lines are kept: per task, the lines that look like errors
//! first, then the last lines before the failure; masked; at most [`MAX_LINES`]
//! lines and [`MAX_BYTES`] bytes in all, so the excerpt fits a notification.

use super::{LogLine, Redactor};

/// The most lines an excerpt holds, over all tasks.
pub const MAX_LINES: usize = 40;
/// The most bytes an excerpt's messages hold, over all tasks.
pub const MAX_BYTES: usize = 4096;
/// A longer line is cut (a stack trace on one line, a JSON blob).
const MAX_LINE_CHARS: usize = 300;

/// Words that mark a line as an error, whatever the logging library.
const ERROR_WORDS: &[&str] = &[
    "error",
    "fatal",
    "panic",
    "exception",
    "traceback",
    "critical",
    "killed",
    "out of memory",
    "segmentation fault",
    "refused",
    "failed",
];

/// Whether a log line looks like an error.
pub fn error_like(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    ERROR_WORDS.iter().any(|w| lower.contains(w))
}

/// The excerpt from each task's lines (`(task id, [(at ms, message)])`, oldest
/// first), oldest first.
pub(crate) fn select(
    streams: Vec<(String, Vec<(i64, String)>)>,
    redactor: &Redactor,
) -> Vec<LogLine> {
    if streams.is_empty() {
        return Vec::new();
    }
    let per_task = (MAX_LINES / streams.len()).max(4);
    let mut kept: Vec<LogLine> = Vec::new();
    for (task_id, events) in streams {
        let errors: Vec<usize> = (0..events.len())
            .filter(|&i| error_like(&events[i].1))
            .collect();
        // The newest errors, up to half the task's share, then the newest lines.
        let mut chosen: Vec<usize> = errors.iter().rev().take(per_task / 2).copied().collect();
        for i in (0..events.len()).rev() {
            if chosen.len() >= per_task {
                break;
            }
            if !chosen.contains(&i) {
                chosen.push(i);
            }
        }
        chosen.sort_unstable();
        kept.extend(chosen.into_iter().map(|i| {
            let (at, message) = &events[i];
            let message = cut(&redactor.mask(message.trim_end()));
            LogLine {
                task_id: task_id.clone(),
                at: *at,
                error: error_like(&message),
                message,
            }
        }));
    }
    kept.sort_by_key(|l| l.at);
    while kept.len() > MAX_LINES || bytes(&kept) > MAX_BYTES {
        // The oldest ordinary line goes first; errors only when nothing else is left.
        let drop = kept.iter().position(|l| !l.error).unwrap_or(0);
        kept.remove(drop);
    }
    kept
}

fn bytes(lines: &[LogLine]) -> usize {
    lines.iter().map(|l| l.message.len() + 1).sum()
}

fn cut(message: &str) -> String {
    if message.chars().count() <= MAX_LINE_CHARS {
        return message.to_string();
    }
    let mut cut: String = message.chars().take(MAX_LINE_CHARS).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(n: usize, error_at: &[usize]) -> Vec<(i64, String)> {
        (0..n)
            .map(|i| {
                let text = if error_at.contains(&i) {
                    format!("ERROR line {i}")
                } else {
                    format!("info line {i}")
                };
                (i as i64 * 10, text)
            })
            .collect()
    }

    #[test]
    fn errors_survive_and_the_last_lines_fill_the_rest() {
        let r = Redactor::new(&[]);
        let kept = select(vec![("t1".into(), lines(200, &[3]))], &r);
        assert_eq!(kept.len(), MAX_LINES);
        assert!(kept.iter().any(|l| l.message == "ERROR line 3"));
        assert_eq!(kept.last().unwrap().message, "info line 199");
        assert!(kept.windows(2).all(|w| w[0].at <= w[1].at), "oldest first");
    }

    #[test]
    fn the_excerpt_is_bounded_in_lines_and_bytes_over_five_tasks() {
        let r = Redactor::new(&[]);
        let long = |t: &str| -> (String, Vec<(i64, String)>) {
            (
                t.into(),
                (0..100)
                    .map(|i| (i, format!("{i} {}", "x".repeat(500))))
                    .collect(),
            )
        };
        let kept = select((0..5).map(|i| long(&format!("t{i}"))).collect(), &r);
        assert!(kept.len() <= MAX_LINES);
        assert!(bytes(&kept) <= MAX_BYTES, "{} bytes", bytes(&kept));
        assert!(!kept.is_empty());
        assert!(kept
            .iter()
            .all(|l| l.message.chars().count() <= MAX_LINE_CHARS + 1));
    }

    #[test]
    fn lines_are_masked_before_they_are_kept() {
        let r = Redactor::new(&[]);
        let kept = select(
            vec![(
                "t1".into(),
                vec![(1, "FATAL key AKIAIOSFODNN7EXAMPLE rejected".into())],
            )],
            &r,
        );
        assert_eq!(kept.len(), 1);
        assert!(!kept[0].message.contains("AKIAIOSFODNN7EXAMPLE"));
        assert!(kept[0].error);
    }

    #[test]
    fn ordinary_words_are_not_errors() {
        assert!(error_like("panic: runtime error: index out of range"));
        assert!(error_like("Traceback (most recent call last):"));
        assert!(!error_like("GET /health 200 3ms"));
    }
}
