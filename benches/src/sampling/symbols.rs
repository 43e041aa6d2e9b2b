//! Addresses to names: kernel frames from `/proc/kallsyms` (readable as root), user frames
//! of a live process from its binaries' symbols and debug info through `blazesym`, inlined
//! functions included (a Rust release build inlines most of a request's path).

use std::collections::HashMap;

use std::path::{Component, Path, PathBuf};

use blazesym::symbolize::source::{Elf, Process, Source};
use blazesym::symbolize::{CodeInfo, Input, Symbolized, Symbolizer};
use blazesym::Pid;

/// The kernel's text symbols, sorted by address.
#[derive(Debug)]
pub struct Kallsyms {
    symbols: Vec<(u64, String)>,
}

impl Kallsyms {
    /// `/proc/kallsyms`'s text (read on the servers' host); `None` if hidden (every
    /// address zero without root).
    pub fn parse(text: &str) -> Option<Self> {
        let mut symbols: Vec<(u64, String)> = text
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let addr = u64::from_str_radix(f.next()?, 16).ok()?;
                let kind = f.next()?;
                let name = f.next()?;
                matches!(kind, "t" | "T" | "w" | "W").then(|| (addr, name.to_string()))
            })
            .filter(|(a, _)| *a != 0)
            .collect();
        if symbols.is_empty() {
            return None;
        }
        symbols.sort_unstable_by_key(|(a, _)| *a);
        Some(Self { symbols })
    }

    /// The symbol an address falls in: the last one at or below it.
    pub fn name(&self, addr: u64) -> Option<&str> {
        let i = self.symbols.partition_point(|(a, _)| *a <= addr);
        (i > 0).then(|| self.symbols[i - 1].1.as_str())
    }
}

/// A frame's name as a flame graph shows it: a Rust symbol without its hash
/// (`::h0123456789abcdef`) and without generic arguments (`with<tokio::...>` → `with`; an
/// inlined frame's DWARF name carries them in full, hundreds of characters deep), keeping
/// qualified paths (`<Box as FnOnce>::call_once`); `;` (the folded format's separator)
/// becomes `,`.
pub fn clean(name: &str) -> String {
    let name = match name.rfind("::h") {
        Some(i) if name.len() - i == 19 && name[i + 3..].bytes().all(|b| b.is_ascii_hexdigit()) => {
            &name[..i]
        }
        _ => name,
    };
    let mut out = String::with_capacity(name.len());
    // Depth inside generic arguments being dropped (0: keeping).
    let mut skipping = 0usize;
    let mut prev = ' ';
    for c in name.chars() {
        match c {
            '<' if skipping > 0 => skipping += 1,
            // After a name: generic arguments. Elsewhere (start, `::<`, a space): a
            // qualified path, kept.
            '<' if prev.is_alphanumeric() || matches!(prev, '_' | '}' | '>') => skipping = 1,
            '>' if skipping > 0 => skipping -= 1,
            _ if skipping > 0 => {}
            ';' => out.push(','),
            _ => out.push(c),
        }
        if skipping == 0 {
            prev = c;
        }
    }
    out
}

/// The crate a source file belongs to, from its path: a registry crate's name without its
/// version (`tokio`, `tokio_uring`), `std`/`core`/`alloc` for the standard library, this
/// workspace's crates by folder, `librdkafka` for the Kafka client's C code.
pub fn crate_of(path: &Path) -> Option<String> {
    let parts: Vec<&str> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    if parts
        .iter()
        .any(|p| p.starts_with("rdkafka-sys") || *p == "librdkafka")
    {
        return Some("librdkafka".into());
    }
    if let Some(i) = parts.iter().position(|p| *p == "registry") {
        // .../registry/src/<index>/<crate>-<version>/...
        let dir = parts.get(i + 3)?;
        let name = match dir.rsplit_once('-') {
            Some((n, v)) if v.starts_with(|c: char| c.is_ascii_digit()) => n,
            _ => dir,
        };
        return Some(name.replace('-', "_"));
    }
    if let Some(i) = parts.iter().position(|p| *p == "library") {
        if parts.first() == Some(&"rustc") || parts.contains(&"rustc") {
            return parts.get(i + 1).map(|c| c.to_string());
        }
    }
    for (dir, name) in [
        ("common", "common"),
        ("server-tokio", "server_tokio"),
        ("server-uring", "server_uring"),
        ("benches", "bench"),
    ] {
        if parts.windows(2).any(|w| w[0] == dir && w[1] == "src") {
            return Some(name.into());
        }
    }
    None
}

/// A frame's name, qualified by its crate when its own name is not (an inlined frame's
/// DWARF name is bare: `poll`, `{async_fn#0}`).
fn frame_name(name: &str, code: Option<&CodeInfo<'_>>) -> String {
    let short = clean(name);
    if short.starts_with('<') || short.contains("::") {
        return short;
    }
    let path: Option<PathBuf> = code.map(CodeInfo::to_path).map(|p| p.into_owned());
    match path.as_deref().and_then(crate_of) {
        Some(krate) => format!("{krate}::{short}"),
        None => short,
    }
}

/// Each distinct user address of a process to its frames, outermost first (the function,
/// then what was inlined into it at that address). Unknown addresses map to `[unknown]`.
pub fn user_frames(pid: u32, addrs: &[u64]) -> Result<HashMap<u64, Vec<String>>, String> {
    let mut unique: Vec<u64> = addrs.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let source = Source::Process(Process::new(Pid::from(pid)));
    let symbolizer = Symbolizer::new();
    let found = symbolizer
        .symbolize(&source, Input::AbsAddr(&unique[..]))
        .map_err(|e| format!("symbolizing process {pid}: {e}"))?;
    Ok(unique
        .into_iter()
        .zip(found)
        .map(|(addr, sym)| (addr, frames(sym)))
        .collect())
}

/// A symbolized address's frames, outermost first; `[unknown]` if none.
fn frames(sym: Symbolized<'_>) -> Vec<String> {
    match sym {
        Symbolized::Sym(s) => std::iter::once(frame_name(&s.name, s.code_info.as_deref()))
            .chain(
                s.inlined
                    .iter()
                    .map(|f| frame_name(&f.name, f.code_info.as_ref())),
            )
            .collect(),
        Symbolized::Unknown(..) => vec!["[unknown]".to_string()],
    }
}

/// A remote process's user addresses named from the local files its binaries are copies
/// of: each address is placed in its mapping (`maps`: that process's `/proc/PID/maps`),
/// turned into an offset in the mapped file, and named from the local copy when there is
/// one (`local_copy`: the copied servers). Addresses in other files (the C library, the
/// loader of that host) are `[unknown]`: their files there may differ from any here.
pub fn user_frames_of_copies<'a>(
    maps: &str,
    addrs: &[u64],
    local_copy: impl Fn(&str) -> Option<&'a Path>,
) -> Result<HashMap<u64, Vec<String>>, String> {
    let mut unique: Vec<u64> = addrs.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let mappings = parse_maps(maps);
    let mut by_file: HashMap<&Path, Vec<(u64, u64)>> = HashMap::new();
    let mut out: HashMap<u64, Vec<String>> = HashMap::new();
    for &addr in &unique {
        let local = mappings
            .iter()
            .find(|m| (m.start..m.end).contains(&addr))
            .and_then(|m| Some((local_copy(&m.path)?, addr - m.start + m.offset)));
        match local {
            Some((file, offset)) => by_file.entry(file).or_default().push((addr, offset)),
            None => {
                out.insert(addr, vec!["[unknown]".to_string()]);
            }
        }
    }
    let symbolizer = Symbolizer::new();
    for (file, pairs) in by_file {
        let source = Source::Elf(Elf::new(file));
        let offsets: Vec<u64> = pairs.iter().map(|(_, o)| *o).collect();
        let found = symbolizer
            .symbolize(&source, Input::FileOffset(&offsets[..]))
            .map_err(|e| format!("symbolizing {}: {e}", file.display()))?;
        for ((addr, _), sym) in pairs.into_iter().zip(found) {
            out.insert(addr, frames(sym));
        }
    }
    Ok(out)
}

/// One file-backed mapping of a process (`/proc/PID/maps`).
#[derive(Debug, PartialEq)]
struct Mapping {
    start: u64,
    end: u64,
    offset: u64,
    path: String,
}

fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (start, end) = f.next()?.split_once('-')?;
            let _perms = f.next()?;
            let offset = u64::from_str_radix(f.next()?, 16).ok()?;
            let (_dev, _inode) = (f.next()?, f.next()?);
            let path = f.next()?.to_string();
            Some(Mapping {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                offset,
                path,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kallsyms_names_an_address_by_the_symbol_below_it() {
        let k = Kallsyms::parse(
            "ffffffff81000000 T _stext\nffffffff81000100 t tcp_sendmsg\nffffffff81000200 D some_data\nffffffff81000300 T tcp_recvmsg\n",
        )
        .expect("symbols");
        assert_eq!(k.name(0xffff_ffff_8100_0150), Some("tcp_sendmsg"));
        assert_eq!(
            k.name(0xffff_ffff_8100_0250),
            Some("tcp_sendmsg"),
            "data symbols skipped"
        );
        assert_eq!(k.name(0xffff_ffff_8100_0300), Some("tcp_recvmsg"));
        assert_eq!(k.name(0x1000), None);
        // Without root every address reads zero: no symbols, not wrong ones.
        assert!(Kallsyms::parse("0000000000000000 T _stext\n").is_none());
    }

    #[inline(never)]
    fn a_function_to_find(x: u64) -> u64 {
        std::hint::black_box(x).wrapping_mul(31)
    }

    #[test]
    fn a_copy_names_another_process_frames_by_file_offset() {
        // This process stands in for the remote one: its maps, its addresses, and its own
        // executable as the "local copy".
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        let exe = std::fs::read_link("/proc/self/exe").expect("exe");
        let f = a_function_to_find as fn(u64) -> u64 as usize as u64;
        assert_eq!(a_function_to_find(1), 31);
        let libc = libc::getpid as *const () as usize as u64;
        let names = user_frames_of_copies(&maps, &[f, libc, 0x10], |there| {
            (Path::new(there) == exe).then_some(exe.as_path())
        })
        .expect("symbolize");
        assert!(
            names[&f].iter().any(|n| n.contains("a_function_to_find")),
            "{:?}",
            names[&f]
        );
        // Not a copied file (the C library of "that host"), and no mapping at all.
        assert_eq!(names[&libc], ["[unknown]"]);
        assert_eq!(names[&0x10], ["[unknown]"]);
        let m = parse_maps("55d0c0000000-55d0c0001000 r-xp 00002000 08:01 1234 /tmp/rbench-1/server-tokio\n7ffd0000-7ffd1000 rw-p 00000000 00:00 0 [stack]\n7ffe0000-7ffe1000 rw-p 00000000 00:00 0\n");
        assert_eq!(
            m[0],
            Mapping {
                start: 0x55d0_c000_0000,
                end: 0x55d0_c000_1000,
                offset: 0x2000,
                path: "/tmp/rbench-1/server-tokio".into()
            }
        );
        assert_eq!(m.len(), 2, "anonymous mappings have no path: {m:?}");
    }

    #[test]
    fn a_source_path_names_its_crate() {
        let c = |p: &str| crate_of(Path::new(p));
        assert_eq!(
            c("/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-uring-0.5.0/src/runtime/mod.rs").as_deref(),
            Some("tokio_uring")
        );
        assert_eq!(
            c("/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/task/poll.rs")
                .as_deref(),
            Some("core")
        );
        assert_eq!(
            c("/work/main/common/src/conn.rs").as_deref(),
            Some("common")
        );
        assert_eq!(
            c("/work/main/target/release/build/rdkafka-sys-306232ed5b6fe7cb/out/src/rdkafka_msg.c").as_deref(),
            Some("librdkafka")
        );
        assert_eq!(
            c("/usr/include/x86_64-linux-gnu/bits/string_fortified.h"),
            None
        );
    }

    #[test]
    fn rust_hashes_and_separators_are_cleaned() {
        assert_eq!(
            clean("tokio::runtime::park::h0123456789abcdef"),
            "tokio::runtime::park"
        );
        assert_eq!(
            clean("<[u8; 16] as Debug>::fmt"),
            "<[u8, 16] as Debug>::fmt"
        );
        assert_eq!(clean("memcpy"), "memcpy");
        assert_eq!(
            clean("with<tokio::runtime::context::Context, set_scheduler::{closure_env#0}<(Box<Core>, Option<()>)>>"),
            "with"
        );
        assert_eq!(
            clean("<alloc::boxed::Box<dyn FnOnce<(), Output = ()> + Send> as core::ops::function::FnOnce<()>>::call_once"),
            "<alloc::boxed::Box as core::ops::function::FnOnce>::call_once"
        );
        assert_eq!(
            clean("{closure#0}<core::task::poll::Poll<()>>"),
            "{closure#0}"
        );
    }
}
