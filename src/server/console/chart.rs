//! The health page's chart: decisions per day as stacked bars, drawn on the server as SVG (no
//! script, no external asset; colours come from the console's style sheet).

use maud::{html, Markup};

const WIDTH: u32 = 760;
const HEIGHT: u32 = 240;
const LEFT: u32 = 56;
const BOTTOM: u32 = 28;
const TOP: u32 = 12;

/// A round number at or above `max` for the axis (1, 2 or 5 times a power of ten).
fn axis_top(max: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for factor in [1, 2, 5] {
            if step.saturating_mul(factor) >= max {
                return step.saturating_mul(factor).max(1);
            }
        }
        step = step.saturating_mul(10);
    }
}

/// `2026-11-03` as `3 Nov`.
fn short_day(day: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = day
        .get(5..7)
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)));
    let date = day.get(8..10).and_then(|d| d.parse::<u32>().ok());
    match (date, month) {
        (Some(date), Some(month)) => format!("{date} {month}"),
        _ => day.to_owned(),
    }
}

/// Stacked bars of `(day, allowed, refused)`, oldest on the left.
pub fn decisions_per_day(days: &[(String, u64, u64)]) -> Markup {
    let max = days.iter().map(|(_, a, r)| a + r).max().unwrap_or(0);
    let top = axis_top(max);
    let plot_height = HEIGHT - TOP - BOTTOM;
    let plot_width = WIDTH - LEFT - 8;
    let slot = plot_width / (days.len().max(1) as u32);
    let bar = slot.saturating_sub(2).max(1);
    let y = |value: u64| -> u32 {
        let scaled = (value as f64 / top as f64 * f64::from(plot_height)).round() as u32;
        TOP + plot_height - scaled.min(plot_height)
    };
    let label_every = (days.len() / 6).max(1);
    html! {
        svg id="decisions-chart" role="img"
            viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) width=(WIDTH) height=(HEIGHT)
            aria-label=(format!("Decisions per day over the last {} days: allowed and refused", days.len())) {
            title { "Decisions per day: allowed and refused" }
            @for tick in [0, top / 2, top] {
                line.grid x1=(LEFT) x2=(WIDTH - 8) y1=(y(tick)) y2=(y(tick)) {}
                text.axis x=(LEFT - 6) y=(y(tick) + 4) text-anchor="end" { (tick) }
            }
            @for (i, (day, allowed, refused)) in days.iter().enumerate() {
                @let x = LEFT + i as u32 * slot + 1;
                @let allowed_top = y(*allowed);
                @let total_top = y(allowed + refused);
                rect.allowed x=(x) y=(allowed_top) width=(bar) height=(TOP + plot_height - allowed_top) {
                    title { (day) ": " (allowed) " allowed" }
                }
                rect.refused x=(x) y=(total_top) width=(bar) height=(allowed_top - total_top) {
                    title { (day) ": " (refused) " refused" }
                }
                @if i % label_every == 0 || i + 1 == days.len() {
                    text.axis x=(x + bar / 2) y=(HEIGHT - 8) text-anchor="middle" {
                        (short_day(day))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_ends_on_a_round_number_at_or_above_the_highest_day() {
        assert_eq!(axis_top(0), 1);
        assert_eq!(axis_top(7), 10);
        assert_eq!(axis_top(11), 20);
        assert_eq!(axis_top(201), 500);
        assert_eq!(axis_top(1_000_000), 1_000_000);
    }

    #[test]
    fn days_are_labelled_with_the_month_in_words() {
        assert_eq!(short_day("2026-11-03"), "3 Nov");
        assert_eq!(short_day("2026-01-31"), "31 Jan");
        assert_eq!(short_day("not a day"), "not a day");
    }

    #[test]
    fn each_day_has_a_bar_per_outcome_with_its_figures_in_words() {
        let days = vec![
            ("2026-11-01".to_owned(), 10, 2),
            ("2026-11-02".to_owned(), 0, 0),
        ];
        let svg = decisions_per_day(&days).into_string();
        assert_eq!(svg.matches("<rect class=\"allowed\"").count(), 2);
        assert_eq!(svg.matches("<rect class=\"refused\"").count(), 2);
        assert!(svg.contains("2026-11-01: 10 allowed"));
        assert!(svg.contains("2026-11-01: 2 refused"));
        assert!(
            !svg.contains("style="),
            "colours come from the style sheet (CSP)"
        );
    }
}
