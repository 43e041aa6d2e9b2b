//! Flame graphs from folded stacks, by `inferno`: one per profile, and a differential one
//! (the second profile's shape, coloured by how each frame's share changed from the first:
//! red grew, blue shrank), both self-contained SVG.

use inferno::{differential, flamegraph};

use super::stacks::Stacks;

fn options(title: &str, subtitle: &str) -> flamegraph::Options<'static> {
    let mut o = flamegraph::Options::default();
    o.title = title.to_string();
    o.subtitle = Some(subtitle.to_string());
    o.count_name = "samples".to_string();
    o
}

/// A flame graph of `stacks`.
pub fn svg(stacks: &Stacks, title: &str, subtitle: &str) -> Result<Vec<u8>, String> {
    let folded = stacks.to_folded();
    let mut out = Vec::new();
    flamegraph::from_lines(&mut options(title, subtitle), folded.lines(), &mut out)
        .map_err(|e| format!("flame graph: {e}"))?;
    Ok(out)
}

/// The differential lines `chain before after`, `before` scaled to `after`'s total (so a
/// frame's colour is its change in share, not in count).
pub fn differential(before: &Stacks, after: &Stacks) -> Result<String, String> {
    let mut out = Vec::new();
    differential::from_readers(
        differential::Options {
            normalize: true,
            strip_hex: true,
        },
        before.to_folded().as_bytes(),
        after.to_folded().as_bytes(),
        &mut out,
    )
    .map_err(|e| format!("differential: {e}"))?;
    String::from_utf8(out).map_err(|e| format!("differential: {e}"))
}

/// A differential flame graph: `after`'s stacks, coloured by the change from `before`.
pub fn differential_svg(
    before: &Stacks,
    after: &Stacks,
    title: &str,
    subtitle: &str,
) -> Result<Vec<u8>, String> {
    let lines = differential(before, after)?;
    let mut out = Vec::new();
    flamegraph::from_lines(&mut options(title, subtitle), lines.lines(), &mut out)
        .map_err(|e| format!("differential flame graph: {e}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stacks() -> Stacks {
        Stacks::parse("srv;main;parse 30\nsrv;main;send;tcp_sendmsg_[k] 50\nsrv;main 20\n")
            .expect("folded")
    }

    #[test]
    fn a_profile_draws_as_an_svg_with_its_frames() {
        let svg =
            String::from_utf8(svg(&stacks(), "tokio", "keepalive").expect("svg")).expect("utf-8");
        assert!(
            svg.starts_with("<?xml") && svg.contains("<svg"),
            "{}",
            &svg[..80]
        );
        for frame in ["parse", "tcp_sendmsg", "main"] {
            assert!(svg.contains(frame), "{frame} missing");
        }
    }

    #[test]
    fn the_differential_of_identical_profiles_is_flat() {
        let lines = differential(&stacks(), &stacks()).expect("diff");
        assert_eq!(lines.lines().count(), 3);
        for l in lines.lines() {
            let f: Vec<&str> = l.rsplitn(3, ' ').collect();
            assert_eq!(f[0], f[1], "unchanged counts in {l}");
        }
        // The same shape at twice the samples is still flat once normalised.
        let double = Stacks {
            counts: stacks()
                .counts
                .into_iter()
                .map(|(k, v)| (k, 2 * v))
                .collect(),
        };
        for l in differential(&stacks(), &double).expect("diff").lines() {
            let f: Vec<&str> = l.rsplitn(3, ' ').collect();
            assert_eq!(f[0], f[1], "normalised: {l}");
        }
        // A real change is not flat: parse's share doubles.
        let changed =
            Stacks::parse("srv;main;parse 60\nsrv;main;send;tcp_sendmsg_[k] 20\nsrv;main 20\n")
                .expect("folded");
        let moved = differential(&stacks(), &changed).expect("diff");
        assert!(moved.lines().any(|l| {
            let f: Vec<&str> = l.rsplitn(3, ' ').collect();
            f[0] != f[1]
        }));
        differential_svg(&stacks(), &changed, "diff", "test").expect("differential svg");
    }
}
