//! Layer × head heatmaps and pruning curves (plotters), each as an SVG and a PNG with the same
//! cells, lines and text (title, axis labels, ticks, legend). The PNG's text is drawn with the
//! bundled DejaVu Sans (assets/fonts, registered as plotters' `sans-serif`); the SVG names
//! `sans-serif` and leaves the glyphs to the viewer. Written to temporary names and renamed.

use crate::error::{Error, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// DejaVu Sans 2.37 (Bitstream Vera and Arev licences: assets/fonts/LICENSE).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Label size (plotters units: the SVG gets `font-size` 14 / 1.24 ≈ 11.3 px). Even, because
/// plotters 0.3's ab_glyph renderer places each glyph at `size / 2 + top`, truncated: with an
/// odd size, glyphs reaching above that line and those below it land on baselines a pixel apart.
const FONT_SIZE: f64 = 14.0;

/// Registers the bundled font with plotters as the `sans-serif` family (what every label here
/// asks for), once per process, before the first drawing.
fn register_fonts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_err() {
            panic!("the bundled assets/fonts/DejaVuSans.ttf does not parse");
        }
    });
}

/// The horizontal metrics of a TrueType font, read from its `hhea`, `hmtx`, `cmap` (format 4)
/// and `kern` (format 0) tables: what it takes to place glyphs one by one.
struct Metrics {
    font: &'static [u8],
    /// ascender − descender (`hhea`), the height plotters' ab_glyph scales to the font size
    height: f64,
    hmtx: usize,
    long_metrics: usize,
    cmap4: usize,
    /// (offset of the first pair, number of pairs) of the `kern` format-0 subtable
    kern: Option<(usize, usize)>,
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

impl Metrics {
    fn parse(font: &'static [u8]) -> Option<Metrics> {
        let tables = be16(font, 4)? as usize;
        let table = |tag: &[u8; 4]| {
            (0..tables).find_map(|i| {
                let rec = 12 + 16 * i;
                let at = u32::from_be_bytes(font.get(rec + 8..rec + 12)?.try_into().ok()?);
                (font.get(rec..rec + 4)? == tag).then_some(at as usize)
            })
        };
        let hhea = table(b"hhea")?;
        let (asc, desc) = (be16(font, hhea + 4)? as i16, be16(font, hhea + 6)? as i16);
        let cmap = table(b"cmap")?;
        let cmap4 = (0..be16(font, cmap + 2)? as usize).find_map(|i| {
            let rec = cmap + 4 + 8 * i;
            let (platform, encoding) = (be16(font, rec)?, be16(font, rec + 2)?);
            let at =
                cmap + u32::from_be_bytes(font.get(rec + 4..rec + 8)?.try_into().ok()?) as usize;
            ((platform, encoding) == (3, 1) && be16(font, at)? == 4).then_some(at)
        })?;
        let kern = table(b"kern").and_then(|k| {
            // version 0, first subtable: format 0 (coverage high byte) and horizontal
            let coverage = be16(font, k + 8)?;
            (be16(font, k)? == 0 && coverage >> 8 == 0 && coverage & 1 == 1)
                .then_some((k + 18, be16(font, k + 10)? as usize))
        });
        Some(Metrics {
            font,
            height: asc as f64 - desc as f64,
            hmtx: table(b"hmtx")?,
            long_metrics: be16(font, hhea + 34)? as usize,
            cmap4,
            kern,
        })
    }

    /// The glyph for `c` (0, the missing glyph, outside the BMP or the map).
    fn glyph(&self, c: char) -> u16 {
        self.glyph_bmp(c).unwrap_or(0)
    }

    fn glyph_bmp(&self, c: char) -> Option<u16> {
        let (d, t) = (self.font, self.cmap4);
        let c = u16::try_from(c as u32).ok()?;
        let segs = be16(d, t + 6)? as usize / 2;
        let (ends, starts) = (t + 14, t + 16 + 2 * segs);
        let (deltas, ranges) = (starts + 2 * segs, starts + 4 * segs);
        let i = (0..segs).find(|&i| be16(d, ends + 2 * i).is_some_and(|e| e >= c))?;
        let start = be16(d, starts + 2 * i)?;
        if c < start {
            return None;
        }
        let (delta, range) = (be16(d, deltas + 2 * i)?, be16(d, ranges + 2 * i)?);
        if range == 0 {
            return Some(c.wrapping_add(delta));
        }
        let at = ranges + 2 * i + range as usize + 2 * (c - start) as usize;
        let g = be16(d, at)?;
        Some(if g == 0 { 0 } else { g.wrapping_add(delta) })
    }

    /// (advance width, left side bearing) in font units.
    fn h_metrics(&self, g: u16) -> (f64, f64) {
        let (d, n, g) = (self.font, self.long_metrics.max(1), g as usize);
        let advance = be16(d, self.hmtx + 4 * g.min(n - 1)).unwrap_or(0);
        let lsb = if g < n {
            be16(d, self.hmtx + 4 * g + 2)
        } else {
            be16(d, self.hmtx + 4 * n + 2 * (g - n))
        };
        (advance as f64, lsb.unwrap_or(0) as i16 as f64)
    }

    /// The kerning between two glyphs in font units (pairs sorted by (left, right)).
    fn kern(&self, left: u16, right: u16) -> f64 {
        let Some((pairs, n)) = self.kern else {
            return 0.0;
        };
        let key = (left as u32) << 16 | right as u32;
        let at = |i: usize| {
            let p = pairs + 6 * i;
            let k = (be16(self.font, p).unwrap_or(0) as u32) << 16
                | be16(self.font, p + 2).unwrap_or(0) as u32;
            (k, be16(self.font, p + 4).unwrap_or(0) as i16)
        };
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match at(mid).0.cmp(&key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return at(mid).1 as f64,
            }
        }
        0.0
    }

    /// Each character of `text` with its pen position and left side bearing, and the advance
    /// of the whole, in pixels at plotters font size `size` (ab_glyph scales the font so that
    /// ascender − descender spans `size` pixels).
    fn layout(&self, text: &str, size: f64) -> (Vec<(char, f64, f64)>, f64) {
        let scale = size / self.height;
        let mut out = Vec::with_capacity(text.len());
        let (mut x, mut prev) = (0.0, None);
        for c in text.chars() {
            let g = self.glyph(c);
            if let Some(p) = prev {
                x += self.kern(p, g) * scale;
            }
            let (advance, bearing) = self.h_metrics(g);
            out.push((c, x, bearing * scale));
            x += advance * scale;
            prev = Some(g);
        }
        (out, x)
    }
}

fn metrics() -> Option<&'static Metrics> {
    static M: std::sync::OnceLock<Option<Metrics>> = std::sync::OnceLock::new();
    M.get_or_init(|| Metrics::parse(FONT)).as_ref()
}

/// How a backend gets its text. SVG: one `<text>` per label, laid out by the viewer. Bitmap:
/// one glyph at a time at positions from the font's metrics, because plotters 0.3.7's ab_glyph
/// renderer, drawing a whole string, drops each glyph's left side bearing and truncates the
/// pen position, which moves letters by up to 2 px (visible gaps and collisions at 11 px).
trait Labels: DrawingBackend + Sized {
    const PER_GLYPH: bool;
}

impl Labels for SVGBackend<'_> {
    const PER_GLYPH: bool = false;
}

impl<P: plotters::backend::PixelFormat> Labels for BitMapBackend<'_, P> {
    const PER_GLYPH: bool = true;
}

/// Draws `text` anchored at `pos` as `style.pos` says (see [`Labels`]).
fn label<DB: Labels>(root: &Area<DB>, text: &str, pos: (i32, i32), style: &TextStyle) -> Drawn {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    let m = match metrics() {
        Some(m) if DB::PER_GLYPH => m,
        _ => return root.draw(&Text::new(text, pos, style.clone())).map_err(e),
    };
    let (glyphs, width) = m.layout(text, style.font.get_size());
    let x0 = pos.0 as f64
        - match style.pos.h_pos {
            HPos::Left => 0.0,
            HPos::Center => width / 2.0,
            HPos::Right => width,
        };
    // plotters draws a glyph's bitmap from its left edge, floor(bearing) from the origin
    let one = style.pos(Pos::new(HPos::Left, style.pos.v_pos));
    for (c, p, bearing) in glyphs {
        if c.is_whitespace() {
            continue;
        }
        let at = (x0 + p).round() as i32 + bearing.floor() as i32;
        root.draw(&Text::new(c.to_string(), (at, pos.1), one.clone()))
            .map_err(e)?;
    }
    Ok(())
}

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

/// A colour-bar label: integers as such, moderate values to 4 significant digits, the rest
/// in exponent form.
fn number(v: f64) -> String {
    let a = v.abs();
    if v.fract() == 0.0 && a < 1e6 {
        format!("{v:.0}")
    } else if (1e-3..1e4).contains(&a) {
        let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.3e}")
    }
}

const CELL_W: i32 = 36;
const CELL_H: i32 = 28;
const LEFT: i32 = 70;
const TOP: i32 = 40;
const BAR: i32 = 60;

fn draw<DB: Labels>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    values: &[f32],
    grid: &Grid,
    title: &str,
) -> std::result::Result<(), String> {
    let (layers, heads) = (grid.rows.len(), grid.columns.len());
    let (left, cell_w) = (grid.left(), grid.cell_w());
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
            let (x, y) = (left + h as i32 * cell_w, TOP + l as i32 * CELL_H);
            let c = viridis(norm(values[l * heads + h]));
            root.draw(&Rectangle::new(
                [(x, y), (x + cell_w - 1, y + CELL_H - 1)],
                c.filled(),
            ))
            .map_err(e)?;
        }
    }
    if grid.annotate {
        let centred = TextStyle::from(("sans-serif", FONT_SIZE).into_font())
            .pos(Pos::new(HPos::Center, VPos::Center));
        for l in 0..layers {
            for h in 0..heads {
                let v = values[l * heads + h];
                // dark text on the light (yellow) end of viridis, light text elsewhere
                let ink = if norm(v) > 0.6 { BLACK } else { WHITE };
                let (x, y) = (
                    left + h as i32 * cell_w + cell_w / 2,
                    TOP + l as i32 * CELL_H + CELL_H / 2,
                );
                label(&root, &format!("{v:.2}"), (x, y), &centred.color(&ink))?;
            }
        }
    }
    // colour bar beside the grid: low at the bottom, high at the top
    let bx = left + heads as i32 * cell_w + 20;
    let bh = (layers as i32 * CELL_H).max(40);
    for i in 0..bh {
        let c = viridis(1.0 - i as f64 / (bh - 1).max(1) as f64);
        root.draw(&Rectangle::new(
            [(bx, TOP + i), (bx + 14, TOP + i + 1)],
            c.filled(),
        ))
        .map_err(e)?;
    }
    let font = TextStyle::from(("sans-serif", FONT_SIZE).into_font());
    label(&root, title, (left, 12), &font)?;
    for l in 0..layers {
        let y = TOP + l as i32 * CELL_H + CELL_H / 3;
        label(&root, &grid.rows[l], (8, y), &font)?;
    }
    let below = font.pos(Pos::new(HPos::Center, VPos::Top));
    for h in 0..heads {
        let x = left + h as i32 * cell_w + cell_w / 2;
        let y = TOP + layers as i32 * CELL_H + 6;
        label(&root, &grid.columns[h], (x, y), &below)?;
    }
    let y = TOP + layers as i32 * CELL_H + 22;
    label(&root, grid.column_axis, (left, y), &font)?;
    label(&root, &number(hi), (bx + 18, TOP), &font)?;
    label(&root, &number(lo), (bx + 18, TOP + bh - 12), &font)?;
    root.present().map_err(e)?;
    Ok(())
}

/// A heatmap's row and column labels; `annotate` writes each cell's value in it.
pub struct Grid<'a> {
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    pub column_axis: &'a str,
    pub annotate: bool,
}

/// A generous width of a label in pixels at [`FONT_SIZE`].
fn label_width(text: &str) -> i32 {
    8 * text.chars().count() as i32
}

impl Grid<'_> {
    /// The grid's left edge: room for the widest row label.
    fn left(&self) -> i32 {
        let widest = self.rows.iter().map(|r| label_width(r)).max().unwrap_or(0);
        LEFT.max(widest + 16)
    }

    /// A cell's width: room for the widest column label.
    fn cell_w(&self) -> i32 {
        let widest = self
            .columns
            .iter()
            .map(|c| label_width(c))
            .max()
            .unwrap_or(0);
        CELL_W.max(widest + 8)
    }
}

/// Writes `stem.svg` and `stem.png` under `dir`: a heatmap of `values` [layers, heads].
pub fn heatmap(
    dir: &Path,
    stem: &str,
    values: &[f32],
    (layers, heads): (usize, usize),
    title: &str,
) -> Result<Vec<std::path::PathBuf>> {
    let grid = Grid {
        rows: (0..layers).map(|l| format!("layer {l}")).collect(),
        columns: (0..heads).map(|h| h.to_string()).collect(),
        column_axis: "head",
        annotate: false,
    };
    grid_heatmap(dir, stem, values, &grid, title)
}

/// Writes `stem.svg` and `stem.png` under `dir`: a heatmap of `values` [rows, columns].
pub fn grid_heatmap(
    dir: &Path,
    stem: &str,
    values: &[f32],
    grid: &Grid,
    title: &str,
) -> Result<Vec<std::path::PathBuf>> {
    let (rows, columns) = (grid.rows.len(), grid.columns.len());
    assert_eq!(
        values.len(),
        rows * columns,
        "heatmap values are [rows, columns]"
    );
    let w = (grid.left() + columns as i32 * grid.cell_w() + 20 + BAR + 40) as u32;
    let h = (TOP + (rows as i32 * CELL_H).max(40) + 40) as u32;
    render(
        dir,
        stem,
        (w, h),
        |a| draw(a, values, grid, title),
        |a| draw(a, values, grid, title),
    )
}

/// A round step (1, 2 or 5 × 10^k, at least `min_step`) giving about `target` intervals over
/// `range`.
fn nice_step(range: f64, target: usize, min_step: f64) -> f64 {
    let raw = range / target as f64;
    if !(raw.is_finite() && raw > 0.0) {
        return min_step.max(1.0);
    }
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&s| s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag);
    step.max(min_step)
}

/// The multiples of `nice_step` strictly inside (lo, hi).
fn nice_ticks(lo: f64, hi: f64, target: usize, min_step: f64) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite() && hi > lo) {
        return Vec::new();
    }
    let step = nice_step(hi - lo, target, min_step);
    let first = (lo / step).floor() as i64 + 1;
    (first..first + 4 * target as i64 + 4)
        .map(|k| k as f64 * step)
        .filter(|&v| v > lo + step * 1e-6 && v < hi - step * 1e-6)
        .collect()
}

const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

fn draw_curve<DB: Labels>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    series: &[(String, Vec<(f64, f64)>)],
    (xlabel, ylabel): (&str, &str),
    title: &str,
) -> std::result::Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let (w, h) = root.dim_in_pixel();
    // the legend (swatch, gap, name) takes the right margin: 190 px, or more for long names
    let name_w = |n: &str| match metrics() {
        Some(m) => m.layout(n, FONT_SIZE).1,
        None => 8.0 * n.chars().count() as f64,
    };
    let legend = series.iter().map(|(n, _)| name_w(n)).fold(0.0, f64::max);
    let right = (legend.ceil() as i32 + 50).clamp(190, w as i32 / 2);
    let (x0, y0, x1, y1) = (70i32, 40i32, w as i32 - right, h as i32 - 50);
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
    // interior ticks at round values, with faint grid lines; the ends carry the exact extremes
    // (labelled below), so ticks too close to them to label are left out
    let xt: Vec<f64> = nice_ticks(xmin, xmax, 8, 1.0)
        .into_iter()
        .filter(|&v| px(v) - x0 >= 25 && x1 - px(v) >= 25)
        .collect();
    let (yt, ystep) = (
        nice_ticks(ymin, ymax, 6, 0.0),
        nice_step(ymax - ymin, 6, 0.0),
    );
    let yt: Vec<f64> = yt
        .into_iter()
        .filter(|&v| py(v) - y0 >= 18 && y1 - py(v) >= 18)
        .collect();
    let grid = ShapeStyle::from(&RGBColor(225, 225, 225)).stroke_width(1);
    for &v in &xt {
        root.draw(&PathElement::new(vec![(px(v), y0), (px(v), y1)], grid))
            .map_err(e)?;
    }
    for &v in &yt {
        root.draw(&PathElement::new(vec![(x0, py(v)), (x1, py(v))], grid))
            .map_err(e)?;
    }
    for x in [x0, x1].into_iter().chain(xt.iter().map(|&v| px(v))) {
        root.draw(&PathElement::new(vec![(x, y1), (x, y1 + 4)], axis))
            .map_err(e)?;
    }
    for y in [y0, y1].into_iter().chain(yt.iter().map(|&v| py(v))) {
        root.draw(&PathElement::new(vec![(x0 - 4, y), (x0, y)], axis))
            .map_err(e)?;
    }
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
    let font = TextStyle::from(("sans-serif", FONT_SIZE).into_font());
    // the title centred over the plot, clear of the y-axis label in the top-left corner
    let centred = font.pos(Pos::new(HPos::Center, VPos::Top));
    label(&root, title, ((x0 + x1) / 2, 12), &centred)?;
    label(&root, xlabel, ((x0 + x1) / 2, y1 + 28), &centred)?;
    label(&root, ylabel, (4, y0 - 22), &font)?;
    // x labels centred under their ticks; y labels right-aligned against theirs, the extremes
    // with 4 decimals and the round ticks with as many as their step needs (0.05 → 2)
    for v in [xmin, xmax].into_iter().chain(xt.iter().copied()) {
        label(&root, &format!("{v:.0}"), (px(v), y1 + 6), &centred)?;
    }
    let left = font.pos(Pos::new(HPos::Right, VPos::Center));
    let decimals = (-ystep.log10().floor()).max(0.0) as usize;
    let ends = [ymin, ymax].map(|v| (v, format!("{v:.4}")));
    let round = yt.iter().map(|&v| (v, format!("{v:.decimals$}")));
    for (v, text) in ends.into_iter().chain(round) {
        label(&root, &text, (x0 - 7, py(v)), &left)?;
    }
    for (i, (name, _)) in series.iter().enumerate() {
        let y = y0 + 20 * i as i32;
        let c = COLORS[i % COLORS.len()];
        root.draw(&Rectangle::new(
            [(x1 + 15, y), (x1 + 30, y + 10)],
            c.filled(),
        ))
        .map_err(e)?;
        label(&root, name, (x1 + 36, y - 1), &font)?;
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
        |a| draw_curve(a, series, labels, title),
        |a| draw_curve(a, series, labels, title),
    )
}

type Area<DB> = DrawingArea<DB, plotters::coord::Shift>;
type Drawn = std::result::Result<(), String>;

/// Draws one figure into `stem.svg` and `stem.png` (the same drawing code for both backends),
/// each written to a temporary name and renamed.
fn render(
    dir: &Path,
    stem: &str,
    (w, h): (u32, u32),
    svg_fig: impl FnOnce(Area<SVGBackend>) -> Drawn,
    png_fig: impl FnOnce(Area<BitMapBackend>) -> Drawn,
) -> Result<Vec<std::path::PathBuf>> {
    register_fonts();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Dark pixels in an RGB buffer (the figures are drawn on white).
    fn inked(buf: &[u8]) -> usize {
        buf.chunks(3).filter(|p| p.iter().all(|&c| c < 128)).count()
    }

    #[test]
    fn the_bitmap_backend_draws_text_with_the_bundled_font() {
        register_fonts();
        let (w, h) = (120u32, 30u32);
        let mut buf = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            root.fill(&WHITE).unwrap();
            root.draw(&Text::new(
                "layer 0",
                (4, 8),
                ("sans-serif", FONT_SIZE).into_font(),
            ))
            .unwrap();
            root.present().unwrap();
        }
        assert!(inked(&buf) > 20, "no glyphs drawn");
    }

    #[test]
    fn the_font_metrics_agree_with_ab_glyph() {
        register_fonts();
        let m = metrics().expect("the bundled font's tables parse");
        let font = ("sans-serif", FONT_SIZE).into_font();
        for text in [
            "eval accuracy",
            "oneshot pruning, example importance",
            "AVATAR To Yo 0.8876",
            "mean dep:det score (uniform attention = 1; τ = 3)",
        ] {
            // plotters measures a string with ab_glyph: advances and kerning, truncated
            let theirs = font.box_size(text).unwrap().0 as f64;
            let (_, ours) = m.layout(text, FONT_SIZE);
            assert!(
                (ours.trunc() - theirs).abs() <= 1.0,
                "{text}: {ours} vs {theirs}"
            );
        }
        assert_ne!(m.glyph('τ'), 0);
        assert_eq!(m.glyph('\u{10FFFF}'), 0);
        // 'n' stands off its origin, which plotters' whole-string drawing loses
        assert!(m.h_metrics(m.glyph('n')).1 > 0.0);
        assert!(m.kern(m.glyph('A'), m.glyph('V')) < 0.0);
    }

    #[test]
    fn colour_bar_numbers_are_short() {
        assert_eq!(number(15.0), "15");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(12.87), "12.87");
        assert_eq!(number(0.4351), "0.4351");
        assert_eq!(number(1.25e-4), "1.250e-4");
        assert_eq!(number(-3.5), "-3.500");
    }

    #[test]
    fn nice_ticks_are_round_and_strictly_inside() {
        assert_eq!(
            nice_ticks(0.0, 72.0, 8, 1.0),
            [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0]
        );
        assert_eq!(
            nice_ticks(22.0, 72.0, 8, 1.0),
            [30.0, 40.0, 50.0, 60.0, 70.0]
        );
        assert_eq!(nice_ticks(3.0, 5.0, 8, 1.0), [4.0]);
        let y = nice_ticks(0.4908, 0.8876, 6, 0.0);
        let want = [0.5, 0.6, 0.7, 0.8];
        assert!(y.len() == 4 && y.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12));
        assert_eq!(nice_step(0.3968, 6, 0.0), 0.1);
        assert!(nice_ticks(1.0, 1.0, 6, 0.0).is_empty());
        assert!(nice_ticks(f64::MAX, f64::MIN, 6, 0.0).is_empty());
    }

    #[test]
    fn the_bitmap_heatmap_carries_its_title() {
        register_fonts();
        let (layers, heads) = (2usize, 3usize);
        let w = (LEFT + heads as i32 * CELL_W + 20 + BAR + 40) as u32;
        let h = (TOP + (layers as i32 * CELL_H).max(40) + 40) as u32;
        let mut buf = vec![0u8; (w * h * 3) as usize];
        let values: Vec<f32> = (0..layers * heads).map(|i| i as f32).collect();
        let mut grid = Grid {
            rows: vec!["en".into(), "de".into()],
            columns: vec!["a".into(), "b".into(), "c".into()],
            column_axis: "head",
            annotate: false,
        };
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw(root, &values, &grid, "a title").unwrap();
        // nothing but the title is drawn above the grid
        let above = &buf[..(TOP as u32 * w * 3) as usize];
        assert!(inked(above) > 20, "no title in the bitmap");
        // an annotated grid writes each value into its cell: the first cell is no longer one
        // flat colour
        let first_cell = |buf: &[u8]| -> std::collections::HashSet<[u8; 3]> {
            (TOP..TOP + CELL_H - 1)
                .flat_map(|y| (LEFT..LEFT + CELL_W - 1).map(move |x| (x, y)))
                .map(|(x, y)| {
                    let at = ((y as u32 * w + x as u32) * 3) as usize;
                    [buf[at], buf[at + 1], buf[at + 2]]
                })
                .collect()
        };
        assert_eq!(first_cell(&buf).len(), 1);
        grid.annotate = true;
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw(root, &values, &grid, "a title").unwrap();
        assert!(first_cell(&buf).len() > 2, "no value written in the cell");
    }
}
