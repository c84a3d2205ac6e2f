//! Training curves as a PNG: training loss (left) and dev accuracy (right) against the step,
//! from the records of a [`MetricsLog`](recur::metrics_log::MetricsLog).
//!
//! Text is drawn with plotters' pure-Rust `ab_glyph` renderer and a DejaVu Sans font embedded
//! in the binary (`assets/fonts`, with its license), so labels render on machines without
//! fontconfig, freetype or any installed font.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use recur::error::{Error, Result};

/// The embedded font; `&'static` because plotters keeps it for the life of the process.
static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// Panel size in pixels; the image is two panels side by side.
const PANEL: (u32, u32) = (640, 480);

/// Plots `train_loss` and `dev_accuracy` against `step` into the PNG file `out`.
///
/// Records lacking `step` or a panel's field, or holding a non-finite value, are skipped for
/// that panel; a panel with no points says so instead of drawing axes.
pub fn plot_curves(records: &[serde_json::Value], out: &Path) -> Result<()> {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // Fails only if the embedded file is not a font, which the test catches.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
    let fail = |e: String| Error::io(out, std::io::Error::other(e));

    let root = BitMapBackend::new(out, (PANEL.0 * 2, PANEL.1)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let panels = root.split_evenly((1, 2));
    let specs = [
        ("train_loss", "training loss", RED),
        ("dev_accuracy", "dev accuracy", BLUE),
    ];
    for (area, (field, title, color)) in panels.iter().zip(specs) {
        draw_panel(area, &series(records, field), title, color).map_err(fail)?;
    }
    root.present().map_err(|e| fail(e.to_string()))
}

/// `(step, value)` pairs of the records that have both, finite.
fn series(records: &[serde_json::Value], field: &str) -> Vec<(f64, f64)> {
    records
        .iter()
        .filter_map(|r| Some((r.get("step")?.as_f64()?, r.get(field)?.as_f64()?)))
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect()
}

/// `[lo, hi]` widened so a single value or a flat line still gets a visible range.
fn range(values: impl Iterator<Item = f64>, margin: f64) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let pad = if hi > lo {
        (hi - lo) * margin
    } else {
        lo.abs().max(1.0) * 0.05
    };
    (lo - pad)..(hi + pad)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    points: &[(f64, f64)],
    title: &str,
    color: RGBColor,
) -> std::result::Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    if points.is_empty() {
        let style = ("sans-serif", 20).into_font().color(&BLACK);
        area.draw_text(&format!("{title}: no data"), &style, (40, 40))
            .map_err(err)?;
        return Ok(());
    }
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        // Room for the last x label, which is centred on the right edge.
        .margin_right(30)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            range(points.iter().map(|p| p.0), 0.0),
            range(points.iter().map(|p| p.1), 0.05),
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("step")
        // Steps are integers; the default formatter would print `200.0`.
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc(title)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            points.iter().copied(),
            color.stroke_width(2),
        ))
        .map_err(err)?;
    // Sparse series (dev evaluations) also get a dot per point, so a single one is visible.
    if points.len() <= 200 {
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_a_png() {
        let mut records = Vec::new();
        for step in (0..=2000).step_by(50) {
            let s = step as f64;
            records.push(json!({"step": step, "train_loss": 3.0 * (-s / 600.0).exp() + 0.2}));
            if step % 250 == 0 {
                records
                    .push(json!({"step": step, "dev_accuracy": 0.9 * (1.0 - (-s / 500.0).exp())}));
            }
        }
        records.push(json!({"epoch": 1}));
        let dir = std::env::temp_dir().join(format!("recur-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("curves.png");
        plot_curves(&records, &out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert!(bytes.len() > 1000);
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");

        // Empty panels and a single point must not fail (no degenerate ranges).
        plot_curves(&[json!({"step": 5, "train_loss": 1.0})], &out).unwrap();
        plot_curves(&[], &out).unwrap();
        assert!(plot_curves(&records, &dir.join("no/such/dir.png")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
