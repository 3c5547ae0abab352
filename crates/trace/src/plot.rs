//! Line charts of measurements over a replay: [`fragmentation_svg`].

use std::fmt::Write;

use crate::svg::{Svg, escape};

/// Line colours, one per series in order (repeating after eight).
pub const PALETTE: [&str; 8] = [
    "#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948", "#9c755f",
];

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = WIDTH - 180.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = HEIGHT - 50.0;

/// External fragmentation over a replay, one line per series: each series is a label
/// (an allocator's name) and its `(ops run, value)` samples, as in
/// [`crate::replay::ReplayReport::external_fragmentation`]. The x axis runs from 0 to the
/// last op of any series, the y axis from 0 to 1 (or to the largest value, if larger);
/// both have ticks with labels. Each line is a `<polyline>` with a `data-label`
/// attribute; a legend names the lines. Points that are not finite are left out.
pub fn fragmentation_svg<L: AsRef<str>>(series: &[(L, Vec<(usize, f64)>)]) -> String {
    let points = || {
        series
            .iter()
            .flat_map(|(_, points)| points.iter())
            .filter(|(_, y)| y.is_finite())
    };
    let last_x = points().map(|&(x, _)| x).max().unwrap_or(0).max(1) as f64;
    let x_step = nice_step(last_x).max(1.0);
    let x_max = (last_x / x_step).ceil() * x_step;
    let y_min = points().map(|&(_, y)| y).fold(0.0, f64::min);
    let y_top = points().map(|&(_, y)| y).fold(1.0, f64::max);
    let y_step = nice_step(y_top - y_min);
    let y_max = (y_top / y_step).ceil() * y_step;
    let y_min = (y_min / y_step).floor() * y_step;
    let to_x = |x: f64| LEFT + (x / x_max) * (RIGHT - LEFT);
    let to_y = |y: f64| BOTTOM - (y - y_min) / (y_max - y_min) * (BOTTOM - TOP);

    let mut svg = Svg::new(WIDTH, HEIGHT);
    let body = &mut svg.body;
    body.push_str("<title>external fragmentation over a replay</title>\n");
    body.push_str("<g class=\"axes\" stroke=\"#333\">\n");
    let _ = writeln!(
        body,
        r#"<line x1="{LEFT}" y1="{BOTTOM}" x2="{RIGHT}" y2="{BOTTOM}"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{BOTTOM}"/>"#
    );
    body.push_str("</g>\n<g class=\"x-ticks\" text-anchor=\"middle\">\n");
    for i in 0..=((x_max / x_step).round() as usize) {
        let value = i as f64 * x_step;
        let x = to_x(value);
        let _ = writeln!(
            body,
            r##"<line x1="{x:.2}" y1="{BOTTOM}" x2="{x:.2}" y2="{}" stroke="#333"/><text x="{x:.2}" y="{}" data-tick="{value}">{value}</text>"##,
            BOTTOM + 5.0,
            BOTTOM + 18.0,
        );
    }
    body.push_str("</g>\n<g class=\"y-ticks\" text-anchor=\"end\">\n");
    let decimals = decimals(y_step);
    for i in 0..=(((y_max - y_min) / y_step).round() as usize) {
        let value = y_min + i as f64 * y_step;
        let y = to_y(value);
        let _ = writeln!(
            body,
            r##"<line x1="{}" y1="{y:.2}" x2="{RIGHT}" y2="{y:.2}" stroke="#e6e6e6"/><text x="{}" y="{:.2}" data-tick="{value:.decimals$}">{value:.decimals$}</text>"##,
            LEFT - 5.0,
            LEFT - 8.0,
            y + 4.0,
        );
    }
    body.push_str("</g>\n");
    let _ = writeln!(
        body,
        r#"<text x="{:.1}" y="{}" text-anchor="middle">operations</text>"#,
        (LEFT + RIGHT) / 2.0,
        HEIGHT - 12.0
    );
    let _ = writeln!(
        body,
        r#"<text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">external fragmentation (1 - largest free / free)</text>"#,
        (TOP + BOTTOM) / 2.0
    );
    for (index, (label, points)) in series.iter().enumerate() {
        let colour = PALETTE[index % PALETTE.len()];
        let label = escape(label.as_ref());
        let coordinates: Vec<String> = points
            .iter()
            .filter(|(_, y)| y.is_finite())
            .map(|&(x, y)| format!("{:.2},{:.2}", to_x(x as f64), to_y(y)))
            .collect();
        let _ = writeln!(
            body,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" data-label="{label}" points="{}"/>"#,
            coordinates.join(" ")
        );
        let y = TOP + 10.0 + index as f64 * 18.0;
        let _ = writeln!(
            body,
            r#"<g class="legend"><line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="{colour}" stroke-width="3"/><text x="{}" y="{}">{label}</text></g>"#,
            RIGHT + 12.0,
            RIGHT + 32.0,
            RIGHT + 38.0,
            y + 4.0,
        );
    }
    svg.finish()
}

/// A tick spacing of 1, 2 or 5 times a power of ten that cuts `range` into about five
/// steps. Powers of ten come from repeated multiplication, not `log10` and `powf`,
/// whose last bits may differ between platforms.
fn nice_step(range: f64) -> f64 {
    let raw = range / 5.0;
    if !(raw > 0.0 && raw.is_finite()) {
        return 1.0;
    }
    let mut magnitude = 1.0;
    while magnitude * 10.0 <= raw {
        magnitude *= 10.0;
    }
    while magnitude > raw {
        magnitude /= 10.0;
    }
    let step = match raw / magnitude {
        n if n <= 1.0 => 1.0,
        n if n <= 2.0 => 2.0,
        n if n <= 5.0 => 5.0,
        _ => 10.0,
    };
    step * magnitude
}

/// The decimals needed to print multiples of `step` (at most 12).
fn decimals(step: f64) -> usize {
    let mut scaled = step;
    let mut decimals = 0;
    while scaled.fract().abs() > 1e-9 && decimals < 12 {
        scaled *= 10.0;
        decimals += 1;
    }
    decimals
}
