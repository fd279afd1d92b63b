//! The overview's charts as inline SVG, drawn on the server (no script).
//! Each chart is an `<svg role="img">` with a `<title>` that says what it
//! shows, a `<title>` per bar (the browser's tooltip), and the same figures
//! as a table beside it: the text alternative.

use std::fmt::Write;

use handlebars::html_escape as esc;

use crate::overview::{duration_text, AgentReplies, Series};

/// One colour per series, in order; beyond it, series share the last.
const COLOURS: [&str; 8] = [
    "#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#6b7280",
];

pub fn colour(index: usize) -> &'static str {
    COLOURS[index.min(COLOURS.len() - 1)]
}

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 8.0;

/// A round upper bound for an axis: 1, 2 or 5 times a power of ten.
fn nice_max(value: i64) -> i64 {
    let value = value.max(1);
    let mut step = 1;
    loop {
        for factor in [1, 2, 5] {
            if step * factor >= value {
                return step * factor;
            }
        }
        step = step.saturating_mul(10);
    }
}

/// Events per hour, stacked by type. `hours` are the hours' starts as
/// `YYYY-MM-DD HH:MM ZONE` (in the display time zone), oldest first;
/// `summary` is the chart's title.
pub fn events_per_hour(hours: &[String], series: &[Series], summary: &str) -> String {
    let n = hours.len().max(1);
    let totals: Vec<i64> = (0..n)
        .map(|h| {
            series
                .iter()
                .map(|s| s.counts.get(h).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let max = nice_max(totals.iter().copied().max().unwrap_or(0));
    let plot_w = WIDTH - LEFT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let bar = plot_w / n as f64;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-labelledby=\"events-chart-title\" id=\"events-svg\"><title id=\"events-chart-title\">{}</title>",
        esc(summary)
    );
    // Axis: 0, half, max.
    for value in [0, max / 2, max] {
        let y = TOP + plot_h - plot_h * value as f64 / max as f64;
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{WIDTH}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e4e7eb\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" class=\"axis\">{value}</text>",
            LEFT - 4.0,
            y + 4.0
        );
    }
    let every = if n > 48 { 24 } else { 3 };
    for (h, label) in hours.iter().enumerate() {
        let x = LEFT + bar * h as f64;
        let mut parts = Vec::new();
        let mut y = TOP + plot_h;
        let _ = write!(svg, "<g>");
        for (index, s) in series.iter().enumerate() {
            let count = s.counts.get(h).copied().unwrap_or(0);
            if count == 0 {
                continue;
            }
            parts.push(format!("{count} {}", s.event_type));
            let height = plot_h * count as f64 / max as f64;
            y -= height;
            let _ = write!(
                svg,
                "<rect x=\"{:.2}\" y=\"{y:.2}\" width=\"{:.2}\" height=\"{height:.2}\" fill=\"{}\"/>",
                x + bar * 0.1,
                bar * 0.8,
                colour(index)
            );
        }
        let tooltip = if parts.is_empty() {
            format!("{label}: no events")
        } else {
            format!("{label}: {}", parts.join(", "))
        };
        // A transparent column over the whole hour carries the tooltip.
        let _ = write!(
            svg,
            "<rect x=\"{x:.2}\" y=\"{TOP}\" width=\"{bar:.2}\" height=\"{plot_h}\" fill=\"transparent\"><title>{}</title></rect></g>",
            esc(&tooltip)
        );
        if h % every == 0 {
            let text = if every == 24 {
                label.get(5..10).unwrap_or(label)
            } else {
                label.get(11..16).unwrap_or(label)
            };
            let _ = write!(
                svg,
                "<text x=\"{x:.1}\" y=\"{:.1}\" class=\"axis\">{}</text>",
                HEIGHT - 6.0,
                esc(text)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Per agent: the median time to the first reply as a bar, the 90th
/// percentile as a thinner bar behind it.
pub fn replies(agents: &[AgentReplies], summary: &str) -> String {
    let answered: Vec<&AgentReplies> = agents.iter().filter(|a| a.answered > 0).collect();
    let row = 26.0;
    let label_w = 230.0;
    let height = TOP + row * answered.len().max(1) as f64 + 4.0;
    let max = answered
        .iter()
        .filter_map(|a| a.p90_seconds)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let plot_w = WIDTH - label_w - 110.0;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-labelledby=\"replies-chart-title\" id=\"replies-svg\"><title id=\"replies-chart-title\">{}</title>",
        esc(summary)
    );
    if answered.is_empty() {
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{:.1}\" class=\"axis\">No agent has replied after a handover in these 7 days.</text>",
            TOP + 14.0
        );
    }
    for (i, agent) in answered.iter().enumerate() {
        let y = TOP + row * i as f64;
        let (median, p90) = (
            agent.median_seconds.unwrap_or(0),
            agent.p90_seconds.unwrap_or(0),
        );
        let width = |s: i64| (plot_w * s as f64 / max).max(1.0);
        let name: String = agent.agent.chars().take(34).collect();
        let tip = format!(
            "{}: median {}, 90th percentile {} ({} of {} handovers answered)",
            agent.agent,
            duration_text(median),
            duration_text(p90),
            agent.answered,
            agent.handovers
        );
        let _ = write!(
            svg,
            "<g><title>{}</title><text x=\"0\" y=\"{:.1}\" class=\"label\">{}</text>\
             <rect x=\"{label_w}\" y=\"{:.1}\" width=\"{:.1}\" height=\"8\" fill=\"#bfdbfe\"/>\
             <rect x=\"{label_w}\" y=\"{:.1}\" width=\"{:.1}\" height=\"14\" fill=\"#2563eb\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"label\">{} · p90 {}</text></g>",
            esc(&tip),
            y + 13.0,
            esc(&name),
            y + 5.0,
            width(p90),
            y + 2.0,
            width(median),
            label_w + width(p90) + 6.0,
            y + 13.0,
            esc(&duration_text(median)),
            esc(&duration_text(p90)),
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(nice_max(0), 1);
        assert_eq!(nice_max(7), 10);
        assert_eq!(nice_max(13), 20);
        assert_eq!(nice_max(2_001), 5_000);
    }

    #[test]
    fn chart_text_is_escaped() {
        let series = vec![Series {
            event_type: "<script>".into(),
            counts: vec![2],
            total: 2,
        }];
        let svg = events_per_hour(&["2026-11-30 10:00 UTC".into()], &series, "a <b>");
        assert!(
            svg.contains("2026-11-30 10:00 UTC: 2 &lt;script&gt;"),
            "{svg}"
        );
        assert!(svg.contains("<title id=\"events-chart-title\">a &lt;b&gt;</title>"));
        assert!(!svg.contains("<script>"));
    }
}
