//! The leftover file of a PSKC import: the `KeyPackage`s that were skipped, written back as a
//! PSKC file with the container's header (`EncryptionKey`, `MACMethod`) as it was, so that the
//! same key or password still opens it and the vendor, or a later import, can deal with them.
//!
//! Packages are counted as the reader counts them (`KeyPackage #N`, from 1, the root's children
//! in order) and copied event by event, prefixes and all; everything outside the packages is
//! copied too. The same limits as the reader: no DOCTYPE, nesting at most 32, a text at most
//! 64 KiB.

use std::collections::BTreeSet;
use std::io::{BufReader, Read, Write};

use quick_xml::events::Event;

use crate::Refusal;
use crate::limits::{BoundedRead, read_refusal};

const MAX_RUN: usize = 64 * 1024;
const MAX_DEPTH: usize = 32;

/// The package numbers of the skips of a PSKC import, from their locators (`KeyPackage #12
/// serial=…`).
pub fn skipped_packages<'a>(locators: impl IntoIterator<Item = &'a str>) -> BTreeSet<usize> {
    locators
        .into_iter()
        .filter_map(|l| l.strip_prefix("KeyPackage #"))
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .collect()
}

/// Copies `input` to `out` with only the `KeyPackage`s numbered in `keep`. Returns how many
/// were written.
pub fn write_leftover<R: Read, W: Write>(
    input: R,
    keep: &BTreeSet<usize>,
    out: W,
) -> Result<usize, Refusal> {
    let bounded = BoundedRead::new(input, b"<>", MAX_RUN);
    let mut xml = quick_xml::Reader::from_reader(BufReader::with_capacity(64 * 1024, bounded));
    xml.config_mut().check_end_names = true;
    let mut writer = quick_xml::Writer::new(out);
    let write_err = |e: std::io::Error| Refusal::Read {
        problem: format!("the leftover file could not be written: {e}"),
    };
    let mut buf = Vec::new();
    let (mut depth, mut index, mut written) = (0usize, 0usize, 0usize);
    // Inside a package at this depth: whether it is copied.
    let mut package: Option<(usize, bool)> = None;
    loop {
        buf.clear();
        let event = match xml.read_event_into(&mut buf) {
            Ok(e) => e,
            Err(quick_xml::Error::Io(e)) => return Err(read_refusal(&e)),
            Err(_) => {
                return Err(Refusal::Malformed {
                    problem: format!("not well-formed XML near byte {}", xml.error_position()),
                });
            }
        };
        let copy = package.is_none_or(|(_, keep)| keep);
        match &event {
            Event::DocType(_) => return Err(Refusal::Doctype),
            Event::Eof => {
                if depth > 0 {
                    return Err(Refusal::Truncated);
                }
                break;
            }
            Event::Start(e) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Refusal::TooLarge {
                        limit: "element nesting".into(),
                    });
                }
                if depth == 2 && package.is_none() && e.local_name().as_ref() == "KeyPackage" {
                    index += 1;
                    let kept = keep.contains(&index);
                    written += usize::from(kept);
                    package = Some((depth, kept));
                    if !kept {
                        continue;
                    }
                }
            }
            Event::Empty(e)
                if depth == 1 && package.is_none() && e.local_name().as_ref() == "KeyPackage" =>
            {
                index += 1;
                if !keep.contains(&index) {
                    continue;
                }
                written += 1;
            }
            Event::End(_) => {
                let closing = package.is_some_and(|(d, _)| d == depth);
                depth = depth.saturating_sub(1);
                if closing {
                    package = None;
                }
            }
            _ => {}
        }
        if copy {
            writer.write_event(event.borrow()).map_err(write_err)?;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"<?xml version="1.0"?>
<pskc:KeyContainer xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" Version="1.0">
  <pskc:MACMethod Algorithm="x"/>
  <pskc:KeyPackage><pskc:DeviceInfo><pskc:SerialNo>1</pskc:SerialNo></pskc:DeviceInfo></pskc:KeyPackage>
  <pskc:KeyPackage><pskc:DeviceInfo><pskc:SerialNo>2</pskc:SerialNo></pskc:DeviceInfo></pskc:KeyPackage>
  <pskc:KeyPackage/>
</pskc:KeyContainer>"#;

    fn leftover(keep: &[usize]) -> (usize, String) {
        let mut out = Vec::new();
        let keep: BTreeSet<usize> = keep.iter().copied().collect();
        let n = write_leftover(FILE.as_bytes(), &keep, &mut out).unwrap();
        (n, String::from_utf8(out).unwrap())
    }

    #[test]
    fn only_the_skipped_packages_with_the_header() {
        let (n, text) = leftover(&[2, 3]);
        assert_eq!(n, 2);
        assert!(text.contains("<pskc:MACMethod Algorithm=\"x\"/>"), "{text}");
        assert!(!text.contains("<pskc:SerialNo>1<"), "{text}");
        assert!(text.contains("<pskc:SerialNo>2<") && text.contains("<pskc:KeyPackage/>"));
        assert!(text.trim_end().ends_with("</pskc:KeyContainer>"));
        assert_eq!(leftover(&[]).0, 0);
    }

    #[test]
    fn locators_give_the_package_numbers() {
        let set = skipped_packages(["KeyPackage #12 serial=9", "KeyPackage #3", "line 4"]);
        assert_eq!(set.into_iter().collect::<Vec<_>>(), [3, 12]);
    }

    #[test]
    fn doctype_and_truncation_are_refused() {
        let keep = BTreeSet::new();
        let r = write_leftover(&b"<!DOCTYPE x><a/>"[..], &keep, Vec::new());
        assert_eq!(r.unwrap_err().code(), "xml_doctype");
        let r = write_leftover(&b"<a><b>"[..], &keep, Vec::new());
        assert_eq!(r.unwrap_err().code(), "file_truncated");
    }
}
