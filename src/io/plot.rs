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
    render(
        dir,
        stem,
        (w, h),
        |a| draw(a, values, shape, title, true),
        |a| draw(a, values, shape, title, false),
    )
}

const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

fn draw_curve<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    series: &[(String, Vec<(f64, f64)>)],
    (xlabel, ylabel): (&str, &str),
    title: &str,
    text: bool,
) -> std::result::Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let (w, h) = root.dim_in_pixel();
    let (x0, y0, x1, y1) = (70i32, 40i32, w as i32 - 190, h as i32 - 50);
    let pts = series.iter().flat_map(|(_, p)| p.iter());
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        xmin = xmin.min(x);
        xmax = xmax.max(x);
        ymin = ymin.min(y);
        ymax = ymax.max(y);
    }
    if xmax <= xmin {
        xmax = xmin + 1.0;
    }
    if ymax <= ymin {
        ymax = ymin + 1e-3;
    }
    let px = |x: f64| x0 + ((x - xmin) / (xmax - xmin) * (x1 - x0) as f64).round() as i32;
    let py = |y: f64| y1 - ((y - ymin) / (ymax - ymin) * (y1 - y0) as f64).round() as i32;
    let axis = ShapeStyle::from(&BLACK).stroke_width(1);
    root.draw(&PathElement::new(vec![(x0, y1), (x1, y1)], axis))
        .map_err(e)?;
    root.draw(&PathElement::new(vec![(x0, y0), (x0, y1)], axis))
        .map_err(e)?;
    for (i, (_, p)) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let line: Vec<(i32, i32)> = p.iter().map(|&(x, y)| (px(x), py(y))).collect();
        root.draw(&PathElement::new(line.clone(), c.stroke_width(2)))
            .map_err(e)?;
        for q in line {
            root.draw(&Circle::new(q, 3, c.filled())).map_err(e)?;
        }
    }
    if text {
        let font = ("sans-serif", 13).into_font();
        root.draw(&Text::new(title.to_string(), (x0, 12), font.clone()))
            .map_err(e)?;
        root.draw(&Text::new(
            xlabel.to_string(),
            ((x0 + x1) / 2 - 30, y1 + 28),
            font.clone(),
        ))
        .map_err(e)?;
        root.draw(&Text::new(ylabel.to_string(), (4, y0 - 22), font.clone()))
            .map_err(e)?;
        for (v, pos) in [(xmin, (x0, y1 + 6)), (xmax, (x1 - 10, y1 + 6))] {
            root.draw(&Text::new(format!("{v:.0}"), pos, font.clone()))
                .map_err(e)?;
        }
        for (v, pos) in [(ymin, (8, y1 - 6)), (ymax, (8, y0 - 6))] {
            root.draw(&Text::new(format!("{v:.4}"), pos, font.clone()))
                .map_err(e)?;
        }
        for (i, (name, _)) in series.iter().enumerate() {
            let y = y0 + 20 * i as i32;
            let c = COLORS[i % COLORS.len()];
            root.draw(&Rectangle::new(
                [(x1 + 15, y), (x1 + 30, y + 10)],
                c.filled(),
            ))
            .map_err(e)?;
            root.draw(&Text::new(name.clone(), (x1 + 36, y - 1), font.clone()))
                .map_err(e)?;
        }
    }
    root.present().map_err(e)?;
    Ok(())
}

/// Writes `stem.svg` and `stem.png` under `dir`: each series a line of (x, y) points.
pub fn curve(
    dir: &Path,
    stem: &str,
    series: &[(String, Vec<(f64, f64)>)],
    labels: (&str, &str),
    title: &str,
) -> Result<Vec<std::path::PathBuf>> {
    let (w, h) = (760u32, 420u32);
    render(
        dir,
        stem,
        (w, h),
        |a| draw_curve(a, series, labels, title, true),
        |a| draw_curve(a, series, labels, title, false),
    )
}

type Area<DB> = DrawingArea<DB, plotters::coord::Shift>;
type Drawn = std::result::Result<(), String>;

/// Draws one figure into `stem.svg` (with text) and `stem.png` (without), each written to a
/// temporary name and renamed.
fn render(
    dir: &Path,
    stem: &str,
    (w, h): (u32, u32),
    svg_fig: impl FnOnce(Area<SVGBackend>) -> Drawn,
    png_fig: impl FnOnce(Area<BitMapBackend>) -> Drawn,
) -> Result<Vec<std::path::PathBuf>> {
    let svg_path = dir.join(format!("{stem}.svg"));
    let mut svg = String::new();
    svg_fig(SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area())
        .map_err(|e| Error::output(&svg_path, format!("cannot draw: {e}")))?;
    crate::io::output::write_atomic(&svg_path, svg.as_bytes())?;
    let png_path = dir.join(format!("{stem}.png"));
    let tmp = dir.join(format!(".{stem}.tmp-{}.png", std::process::id()));
    if let Err(e) = png_fig(BitMapBackend::new(&tmp, (w, h)).into_drawing_area()) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::output(&png_path, format!("cannot draw: {e}")));
    }
    std::fs::rename(&tmp, &png_path)
        .map_err(|e| Error::output(&png_path, format!("cannot rename into place: {e}")))?;
    Ok(vec![svg_path, png_path])
}
