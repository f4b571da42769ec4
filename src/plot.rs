//! Layer × head heatmaps (plotters): SVG with layer/head labels and the value range, and PNG
//! with the same cells and colour bar (no text: the bitmap backend has no font here). Written
//! to temporary names and renamed.

use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::Path;

/// Viridis, by linear interpolation between nine anchors.
fn viridis(t: f64) -> RGBColor {
    const A: [(u8, u8, u8); 9] = [
        (68, 1, 84),
        (71, 44, 122),
        (59, 81, 139),
        (44, 113, 142),
        (33, 144, 141),
        (39, 173, 129),
        (92, 200, 99),
        (170, 220, 50),
        (253, 231, 37),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (A.len() - 1) as f64;
    let i = (x.floor() as usize).min(A.len() - 2);
    let f = x - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    RGBColor(
        mix(A[i].0, A[i + 1].0),
        mix(A[i].1, A[i + 1].1),
        mix(A[i].2, A[i + 1].2),
    )
}

const CELL_W: i32 = 36;
const CELL_H: i32 = 28;
const LEFT: i32 = 70;
const TOP: i32 = 40;
const BAR: i32 = 60;

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    values: &[f32],
    (layers, heads): (usize, usize),
    title: &str,
    text: bool,
) -> std::result::Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let lo = values.iter().cloned().fold(f32::INFINITY, f32::min) as f64;
    let hi = values.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let norm = |v: f32| {
        if hi > lo {
            (v as f64 - lo) / (hi - lo)
        } else {
            0.5
        }
    };
    for l in 0..layers {
        for h in 0..heads {
            let (x, y) = (LEFT + h as i32 * CELL_W, TOP + l as i32 * CELL_H);
            let c = viridis(norm(values[l * heads + h]));
            root.draw(&Rectangle::new(
                [(x, y), (x + CELL_W - 1, y + CELL_H - 1)],
                c.filled(),
            ))
            .map_err(e)?;
        }
    }
    // colour bar beside the grid: low at the bottom, high at the top
    let bx = LEFT + heads as i32 * CELL_W + 20;
    let bh = (layers as i32 * CELL_H).max(40);
    for i in 0..bh {
        let c = viridis(1.0 - i as f64 / (bh - 1).max(1) as f64);
        root.draw(&Rectangle::new(
            [(bx, TOP + i), (bx + 14, TOP + i + 1)],
            c.filled(),
        ))
        .map_err(e)?;
    }
    if text {
        let font = ("sans-serif", 13).into_font();
        root.draw(&Text::new(title.to_string(), (LEFT, 12), font.clone()))
            .map_err(e)?;
        for l in 0..layers {
            let y = TOP + l as i32 * CELL_H + CELL_H / 3;
            root.draw(&Text::new(format!("layer {l}"), (8, y), font.clone()))
                .map_err(e)?;
        }
        for h in 0..heads {
            let x = LEFT + h as i32 * CELL_W + CELL_W / 3;
            let y = TOP + layers as i32 * CELL_H + 6;
            root.draw(&Text::new(format!("{h}"), (x, y), font.clone()))
                .map_err(e)?;
        }
        root.draw(&Text::new(
            "head",
            (LEFT, TOP + layers as i32 * CELL_H + 22),
            font.clone(),
        ))
        .map_err(e)?;
        root.draw(&Text::new(
            format!("{hi:.3e}"),
            (bx + 18, TOP),
            font.clone(),
        ))
        .map_err(e)?;
        root.draw(&Text::new(
            format!("{lo:.3e}"),
            (bx + 18, TOP + bh - 12),
            font,
        ))
        .map_err(e)?;
    }
    root.present().map_err(e)?;
    Ok(())
}

/// Writes `stem.svg` and `stem.png` under `dir`: a heatmap of `values` [layers, heads].
pub fn heatmap(
    dir: &Path,
    stem: &str,
    values: &[f32],
    shape: (usize, usize),
    title: &str,
) -> Result<Vec<std::path::PathBuf>> {
    let (layers, heads) = shape;
    assert_eq!(
        values.len(),
        layers * heads,
        "heatmap values are [layers, heads]"
    );
    let w = (LEFT + heads as i32 * CELL_W + 20 + BAR + 40) as u32;
    let h = (TOP + (layers as i32 * CELL_H).max(40) + 40) as u32;
    let svg_path = dir.join(format!("{stem}.svg"));
    let mut svg = String::new();
    draw(
        SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area(),
        values,
        shape,
        title,
        true,
    )
    .map_err(|e| Error::output(&svg_path, format!("cannot draw: {e}")))?;
    crate::output::write_atomic(&svg_path, svg.as_bytes())?;
    let png_path = dir.join(format!("{stem}.png"));
    let tmp = dir.join(format!(".{stem}.tmp-{}.png", std::process::id()));
    let drawn = draw(
        BitMapBackend::new(&tmp, (w, h)).into_drawing_area(),
        values,
        shape,
        title,
        false,
    );
    if let Err(e) = drawn {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::output(&png_path, format!("cannot draw: {e}")));
    }
    std::fs::rename(&tmp, &png_path)
        .map_err(|e| Error::output(&png_path, format!("cannot rename into place: {e}")))?;
    Ok(vec![svg_path, png_path])
}
