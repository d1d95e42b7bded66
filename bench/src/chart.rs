//! The ratio chart: one horizontal bar per anchor (anchor time / ferry time), a line at 1x, as SVG.
//!
//! Written by hand: a bar chart is a few rectangles and labels, and a plotting crate would add a font and
//! raster stack to the build for it.

use crate::Section;

const ROW_PX: usize = 26;
const LABEL_PX: usize = 360;
const BAR_PX: usize = 420;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The SVG document for `(section, anchor, ratio)` rows.
pub fn svg(ratios: &[(Section, String, f64)]) -> String {
    let scale_max = ratios.iter().map(|r| r.2).fold(2.0_f64, f64::max).ceil();
    let width = LABEL_PX + BAR_PX + 80;
    let height = 50 + ROW_PX * ratios.len().max(1) + 30;
    let x = |r: f64| LABEL_PX as f64 + BAR_PX as f64 * (r / scale_max).clamp(0.0, 1.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"14\">ferry bench: anchor time / ferry time (above 1x, ferry is faster)</text>\n"
    );
    if ratios.is_empty() {
        s.push_str("<text x=\"10\" y=\"60\">no ratios: no anchor ran</text>\n");
    }
    for (i, (section, anchor, r)) in ratios.iter().enumerate() {
        let y = 40 + i * ROW_PX;
        let color = if *r >= 1.0 { "#3a7d44" } else { "#b5443b" };
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}: {}</text>\n\
             <rect x=\"{LABEL_PX}\" y=\"{y}\" width=\"{:.1}\" height=\"{}\" fill=\"{color}\"/>\n\
             <text x=\"{:.1}\" y=\"{}\">{r:.2}x</text>\n",
            LABEL_PX - 8,
            y + 15,
            section.as_str(),
            escape(anchor),
            x(*r) - LABEL_PX as f64,
            ROW_PX - 6,
            x(*r) + 4.0,
            y + 15,
        ));
    }
    let one = x(1.0);
    let bottom = 40 + ROW_PX * ratios.len().max(1);
    s.push_str(&format!(
        "<line x1=\"{one:.1}\" y1=\"34\" x2=\"{one:.1}\" y2=\"{bottom}\" stroke=\"black\" stroke-dasharray=\"4 3\"/>\n\
         <text x=\"{one:.1}\" y=\"{}\" text-anchor=\"middle\">1x</text>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{scale_max:.0}x</text>\n</svg>\n",
        bottom + 16,
        LABEL_PX + BAR_PX,
        bottom + 16
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bar_per_ratio_and_names_escaped() {
        let s = svg(&[
            (Section::Copy, "mariadb-dump | mariadb".into(), 3.2),
            (Section::Verify, "pt-table-sync <print>".into(), 0.8),
        ]);
        assert_eq!(s.matches("<rect x=").count(), 2);
        assert!(s.contains("pt-table-sync &lt;print&gt;"));
        assert!(s.contains("3.20x") && s.contains("0.80x"));
        assert!(s.contains("#b5443b"), "a ratio below 1 is drawn red");
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn no_ratios_still_draws_a_chart() {
        assert!(svg(&[]).contains("no anchor ran"));
    }
}
