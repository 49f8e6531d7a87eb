// SPDX-License-Identifier: GPL-2.0

//! Hexadecimal input (`--in`) and output (hex dumps, compact hex strings).

use std::fmt;
use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;

/// Why a hex string could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HexError {
    /// The offending token, as written.
    pub token: String,
    /// Its position (1-based) among the tokens.
    pub index: usize,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid hex input: token {} `{}`: {}",
            self.index, self.token, self.reason
        )
    }
}

impl std::error::Error for HexError {}

/// Characters that separate tokens.
fn is_separator(c: char) -> bool {
    c.is_ascii_whitespace() || matches!(c, ',' | ':' | ';')
}

fn nibble(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Parses bytes written in hex: `01 02`, `0102`, `0x01,0x02`, `de:ad:be:ef`.
///
/// Tokens are separated by whitespace, commas, colons or semicolons. A `0x`-prefixed token is
/// one byte (one or two digits); an unprefixed token is a string of bytes in order (an even
/// number of digits, or a single digit for one byte). An empty string is an empty payload.
pub fn parse(s: &str) -> Result<Vec<u8>, HexError> {
    let mut out = Vec::new();
    for (i, token) in s.split(is_separator).filter(|t| !t.is_empty()).enumerate() {
        let err = |reason| HexError {
            token: token.to_string(),
            index: i.saturating_add(1),
            reason,
        };
        let prefixed = token
            .strip_prefix("0x")
            .or_else(|| token.strip_prefix("0X"));
        let digits = prefixed.unwrap_or(token).as_bytes();
        let values: Option<Vec<u8>> = digits.iter().map(|&c| nibble(c)).collect();
        let values = values.ok_or_else(|| err("not a hexadecimal digit"))?;
        match (prefixed.is_some(), values.as_slice()) {
            (_, []) => return Err(err("no digits")),
            (_, [lo]) => out.push(*lo),
            (true, [hi, lo]) => out.push((hi << 4) | lo),
            (true, _) => return Err(err("a 0x-prefixed token is one byte (1 or 2 digits)")),
            (false, v) if v.len() % 2 != 0 => {
                return Err(err("odd number of digits (write bytes as pairs of digits)"))
            }
            (false, v) => out.extend(v.chunks_exact(2).filter_map(|p| match p {
                [hi, lo] => Some((hi << 4) | lo),
                _ => None,
            })),
        }
    }
    Ok(out)
}

/// Where `--in` takes its bytes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Bytes given in hex on the command line.
    Bytes(Vec<u8>),
    /// A file to read binary data from (`-` is standard input).
    File(String),
}

/// Parses an `--in` argument: `@FILE` (binary; `@-` is standard input) or hex.
pub fn parse_input(arg: &str) -> Result<Input, HexError> {
    match arg.strip_prefix('@') {
        Some("") => Err(HexError {
            token: arg.to_string(),
            index: 1,
            reason: "`@` needs a file name (`@-` reads standard input)",
        }),
        Some(path) => Ok(Input::File(path.to_string())),
        None => parse(arg).map(Input::Bytes),
    }
}

/// The bytes of an [`Input`], reading at most `limit` bytes of its file if it names one (a
/// caller that passes its largest size plus one learns that the file is larger without
/// reading all of it: `/dev/zero` is endless).
pub fn read_input(input: &Input, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut b = Vec::new();
    match input {
        Input::Bytes(v) => b.clone_from(v),
        Input::File(p) if p == "-" => {
            std::io::stdin().lock().take(limit).read_to_end(&mut b)?;
        }
        Input::File(p) => {
            std::fs::File::open(Path::new(p))?
                .take(limit)
                .read_to_end(&mut b)?;
        }
    }
    Ok(b)
}

/// The size in bytes of what `input` holds, when known without reading it: hex bytes, or a
/// regular file (not standard input, a pipe or a device).
pub fn input_len(input: &Input) -> Option<u64> {
    match input {
        Input::Bytes(v) => u64::try_from(v.len()).ok(),
        Input::File(p) if p == "-" => None,
        Input::File(p) => std::fs::metadata(Path::new(p))
            .ok()
            .filter(std::fs::Metadata::is_file)
            .map(|m| m.len()),
    }
}

/// Bytes as one lowercase hex string without separators (`0102ff`).
pub fn to_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A `hexdump -C` style dump: offset, 16 bytes per line (grouped by 8), then the bytes as ASCII.
pub fn dump(bytes: &[u8]) -> String {
    let mut s = String::new();
    for (line, chunk) in bytes.chunks(16).enumerate() {
        let _ = write!(s, "{:08x} ", line * 16);
        for i in 0..16 {
            if i == 8 {
                s.push(' ');
            }
            match chunk.get(i) {
                Some(b) => {
                    let _ = write!(s, " {b:02x}");
                }
                None => s.push_str("   "),
            }
        }
        s.push_str("  |");
        s.extend(chunk.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '.'
            }
        }));
        s.push_str("|\n");
    }
    let _ = writeln!(s, "{:08x}", bytes.len());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        assert_eq!(parse("01 02"), Ok(vec![1, 2]));
        assert_eq!(parse("0102"), Ok(vec![1, 2]));
        assert_eq!(parse("0x01,0x02"), Ok(vec![1, 2]));
        assert_eq!(parse("0X1, 0xFF"), Ok(vec![1, 0xff]));
        assert_eq!(parse("de:ad:BE:ef"), Ok(vec![0xde, 0xad, 0xbe, 0xef]));
        assert_eq!(parse(" 0 1\n2\t a "), Ok(vec![0, 1, 2, 0xa]));
        assert_eq!(parse("0001 ff;10"), Ok(vec![0, 1, 0xff, 0x10]));
        assert_eq!(parse(""), Ok(vec![]));
        assert_eq!(parse(" , "), Ok(vec![]));
    }

    #[test]
    fn rejected_forms_say_why() {
        let e = parse("01 zz").unwrap_err();
        assert_eq!(e.index, 2);
        assert_eq!(e.token, "zz");
        assert_eq!(
            e.to_string(),
            "invalid hex input: token 2 `zz`: not a hexadecimal digit"
        );
        assert!(parse("010").unwrap_err().reason.contains("odd number"));
        assert!(parse("0x").unwrap_err().reason.contains("no digits"));
        assert!(parse("0x123").unwrap_err().reason.contains("one byte"));
        assert!(parse("0x0102").is_err());
        assert!(parse("-1").is_err());
        assert!(parse("é").is_err());
        assert!(parse("1 2 3 0xg")
            .unwrap_err()
            .to_string()
            .contains("token 4"));
    }

    #[test]
    fn input_sources() {
        assert_eq!(parse_input("0102"), Ok(Input::Bytes(vec![1, 2])));
        assert_eq!(parse_input("@/tmp/x"), Ok(Input::File("/tmp/x".into())));
        assert_eq!(parse_input("@-"), Ok(Input::File("-".into())));
        assert!(parse_input("@").is_err());
        assert!(parse_input("q").is_err());
        let dir = std::env::temp_dir().join(format!("swcci-hex-{}", std::process::id()));
        std::fs::write(&dir, [0u8, 0xff, 0x41]).unwrap();
        let input = parse_input(&format!("@{}", dir.display())).unwrap();
        assert_eq!(read_input(&input, 100).unwrap(), vec![0, 0xff, 0x41]);
        assert_eq!(read_input(&input, 2).unwrap(), vec![0, 0xff]);
        assert_eq!(input_len(&input), Some(3));
        std::fs::remove_file(&dir).unwrap();
        // An endless file: read up to the limit only.
        let zero = Input::File("/dev/zero".into());
        assert_eq!(read_input(&zero, 4097).unwrap().len(), 4097);
        assert_eq!(input_len(&zero), None);
        assert_eq!(input_len(&Input::Bytes(vec![1, 2])), Some(2));
        let missing = Input::File("/nonexistent/swcci-input".into());
        assert_eq!(
            read_input(&missing, 1).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
    }

    #[test]
    fn hex_strings() {
        assert_eq!(to_hex(&[]), "");
        assert_eq!(to_hex(&[0, 0xab, 0x10]), "00ab10");
    }

    #[test]
    fn dumps() {
        assert_eq!(dump(&[]), "00000000\n");
        let bytes: Vec<u8> = (0x3c..0x3c + 18).collect();
        let d = dump(&bytes);
        let lines: Vec<&str> = d.lines().collect();
        assert_eq!(
            lines[0],
            "00000000  3c 3d 3e 3f 40 41 42 43  44 45 46 47 48 49 4a 4b  |<=>?@ABCDEFGHIJK|"
        );
        assert_eq!(
            lines[1],
            "00000010  4c 4d                                             |LM|"
        );
        assert_eq!(lines[2], "00000012");
        assert!(dump(&[0, 0x7f, 0x80, b' ']).contains("|... |"));
    }
}
