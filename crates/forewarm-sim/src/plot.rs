//! A small SVG Pareto chart: wasted memory-time (normalised to keepalive-10m) against the 75th
//! percentile of per-application cold-start %.

use std::fmt::Write;

use crate::report::Report;

const W: f64 = 720.0;
const H: f64 = 480.0;
const LEFT: f64 = 70.0;
const BOTTOM: f64 = 60.0;
const TOP: f64 = 30.0;
const RIGHT: f64 = 30.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Render the report's policies as points. Without a keepalive-10m entry (or with zero waste
/// there) the x axis shows raw MiB·s.
pub fn pareto_svg(report: &Report) -> String {
    let baseline = report.waste_baseline();
    let x_label = if baseline.is_some() {
        "wasted memory-time / keepalive-10m"
    } else {
        "wasted memory-time (MiB·s)"
    };
    let points: Vec<(String, f64, f64)> = report
        .policies
        .iter()
        .map(|p| {
            let x = baseline.map_or(p.wasted_memory_mib_s, |b| p.wasted_memory_mib_s / b);
            (p.name.clone(), x, p.app_cold_start_pct.p75)
        })
        .collect();
    let x_max = points.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-9) * 1.1;
    let y_max = points.iter().map(|p| p.2).fold(0.0, f64::max).max(1e-9) * 1.1;
    let sx = |x: f64| LEFT + x / x_max * (W - LEFT - RIGHT);
    let sy = |y: f64| H - BOTTOM - y / y_max * (H - BOTTOM - TOP);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<line x1="{LEFT}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="black"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{y0}" stroke="black"/>"#,
        y0 = H - BOTTOM,
        x1 = W - RIGHT
    );
    for i in 0..=5 {
        let fx = x_max * f64::from(i) / 5.0;
        let fy = y_max * f64::from(i) / 5.0;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{fx:.2}</text><text x="{:.1}" y="{:.1}" text-anchor="end">{fy:.1}</text>"#,
            sx(fx),
            H - BOTTOM + 18.0,
            LEFT - 6.0,
            sy(fy) + 4.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{x_label}</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        H - 15.0
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">p75 app cold-start %</text>"#,
        (TOP + H - BOTTOM) / 2.0
    );
    for (name, x, y) in &points {
        let _ = writeln!(
            svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="5" fill="#c0392b"/><text x="{:.1}" y="{:.1}">{}</text>"##,
            sx(*x),
            sy(*y),
            sx(*x) + 8.0,
            sy(*y) - 6.0,
            escape(name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}
