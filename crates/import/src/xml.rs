//! XML pieces the streaming readers share (PSKC, SafeNet): element names and attributes, and the
//! only entity references a file without a DOCTYPE can hold.

use quick_xml::events::BytesStart;

use crate::Refusal;

/// How element and attribute names are given back.
#[derive(Clone, Copy)]
pub(crate) enum Names {
    /// As written (PSKC's names are case-sensitive).
    AsWritten,
    /// Lower-cased (SafeNet files vary the case).
    Lower,
}

/// The local name and attributes (local names, unescaped values) of an element.
pub(crate) fn element(
    e: &BytesStart<'_>,
    names: Names,
) -> Result<(String, Vec<(String, String)>), Refusal> {
    let malformed = || Refusal::Malformed {
        problem: "an attribute is not well-formed".into(),
    };
    let name_of = |raw: &str| match names {
        Names::AsWritten => raw.to_owned(),
        Names::Lower => raw.to_ascii_lowercase(),
    };
    let name = name_of(e.local_name().into_inner());
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|_| malformed())?;
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|_| malformed())?;
        attrs.push((name_of(a.key.local_name().into_inner()), value.into_owned()));
    }
    Ok((name, attrs))
}

/// The five predefined entities and character references; anything else is refused (there is no
/// DOCTYPE that could define it).
pub(crate) fn resolve_reference(name: &str) -> Result<char, Refusal> {
    let code = match name {
        "amp" => Some(u32::from('&')),
        "lt" => Some(u32::from('<')),
        "gt" => Some(u32::from('>')),
        "quot" => Some(u32::from('"')),
        "apos" => Some(u32::from('\'')),
        _ => match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => name.strip_prefix('#').and_then(|d| d.parse().ok()),
        },
    };
    code.and_then(char::from_u32)
        .ok_or_else(|| Refusal::Malformed {
            problem: "an entity reference that XML does not predefine".into(),
        })
}
