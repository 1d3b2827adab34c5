//! The patch's JSON written by hand: every mutated review sends one, and serde_json's derived
//! serialization escaped each key and string byte by byte through a table (18k instructions of
//! a seed review, docs/benchmarks.md). Here keys and punctuation are literal bytes, strings are
//! checked eight bytes at a time and copied whole when nothing in them needs escaping, and the
//! rare values (env vars, `spec.os`, an installer that could not be kept as JSON) still go
//! through serde. The bytes are serde_json's, byte for byte: the derived `Serialize` impls stay
//! the reference, and the tests compare both on every fixture and value shape.

use super::delivery::{InstallerValue, Volume};
use super::{Handler, Lifecycle, Metadata, Mount, Operation, PatchValue, StatusAnnotation};

/// Appends `text` as a JSON string, escaped exactly as serde_json escapes it: `"` and `\`
/// with a backslash, the C0 controls as `\b \t \n \f \r` or `\u00xx` (lowercase hex), nothing
/// else (`/`, DEL and non-ASCII are written as they are).
pub(crate) fn write_str(out: &mut Vec<u8>, text: &str) {
    let mut rest = text.as_bytes();
    let Some(first) = first_to_escape(rest) else {
        out.reserve(rest.len() + 2);
        out.push(b'"');
        out.extend_from_slice(rest);
        out.push(b'"');
        return;
    };
    out.reserve(rest.len() + 8);
    out.push(b'"');
    let mut next = Some(first);
    while let Some(at) = next {
        out.extend_from_slice(&rest[..at]);
        escape_byte(out, rest[at]);
        rest = &rest[at + 1..];
        next = first_to_escape(rest);
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// Appends an integer as JSON.
fn write_integer(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Where the first byte that JSON escapes is: a quote, a backslash or a C0 control.
fn first_to_escape(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        // The classic "has a zero byte" test (a high bit set where a byte was below the
        // bound), for bytes below 0x20 and for bytes equal to '"' or '\'. A false hit only
        // makes the byte-by-byte search below run on this chunk.
        let controls = word.wrapping_sub(ONES * 0x20);
        let quotes = (word ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES);
        let backslashes = (word ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES);
        if (controls | quotes | backslashes) & !word & HIGHS != 0
            && let Some(at) = chunk.iter().position(|&b| needs_escape(b))
        {
            return Some(offset + at);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| needs_escape(b))
        .map(|at| offset + at)
}

fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

fn escape_byte(out: &mut Vec<u8>, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match byte {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

/// A JSON string literal, quotes included, written as it is into the patch: the status record
/// is serialized straight into it ([`StringLiteral::of_json`]), instead of serialized, then
/// scanned and escaped again (a quote every eight bytes). Serde (the reference the tests
/// compare with, and `to_json_patch`) reads it back as the string it stands for.
#[derive(Debug, Clone)]
pub(super) struct StringLiteral(String);

impl StringLiteral {
    /// `value`'s compact JSON as a JSON string: the bytes of serde_json's `to_string` of
    /// `to_string(value)`. Empty text if `value` does not serialize, which plain structs of
    /// strings and numbers cannot reach.
    pub(super) fn of_json<T: serde::Serialize + ?Sized>(value: &T) -> Self {
        // Room for a typical record up front (the seed pod's is 220 bytes and 30 quotes).
        let mut text = Vec::with_capacity(512);
        text.push(b'"');
        let mut serializer = serde_json::Serializer::with_formatter(&mut text, InString);
        if value.serialize(&mut serializer).is_err() {
            return StringLiteral("\"\"".into());
        }
        text.push(b'"');
        // serde_json writes UTF-8, and the escapes added are ASCII.
        StringLiteral(String::from_utf8(text).unwrap_or_else(|_| "\"\"".into()))
    }
}

impl serde::Serialize for StringLiteral {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text: String = serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&text)
    }
}

/// serde_json's compact format with every string's quotes and escapes escaped once more: the
/// JSON text comes out as the contents of a JSON string. The rest of JSON's syntax (braces,
/// brackets, colons, commas, digits, `true`, `null`) needs no escaping, and serde_json hands
/// over the parts of a string between escapes as fragments free of quotes, backslashes and
/// controls.
struct InString;

impl serde_json::ser::Formatter for InString {
    fn begin_string<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        writer.write_all(b"\\\"")
    }

    fn end_string<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        writer.write_all(b"\\\"")
    }

    fn write_char_escape<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        char_escape: serde_json::ser::CharEscape,
    ) -> std::io::Result<()> {
        use serde_json::ser::CharEscape;
        // The escape serde_json writes, then its backslash (and quote) escaped once more.
        let mut inner = Vec::with_capacity(6);
        match char_escape {
            CharEscape::Quote => inner.extend_from_slice(b"\\\""),
            CharEscape::ReverseSolidus => inner.extend_from_slice(b"\\\\"),
            CharEscape::Solidus => inner.extend_from_slice(b"\\/"),
            CharEscape::Backspace => inner.extend_from_slice(b"\\b"),
            CharEscape::FormFeed => inner.extend_from_slice(b"\\f"),
            CharEscape::LineFeed => inner.extend_from_slice(b"\\n"),
            CharEscape::CarriageReturn => inner.extend_from_slice(b"\\r"),
            CharEscape::Tab => inner.extend_from_slice(b"\\t"),
            CharEscape::AsciiControl(byte) => escape_byte(&mut inner, byte),
        }
        let mut twice = Vec::with_capacity(12);
        for byte in inner {
            if byte == b'\\' || byte == b'"' {
                twice.push(b'\\');
            }
            twice.push(byte);
        }
        writer.write_all(&twice)
    }
}

/// Appends a value through serde_json (the rare shapes); our plain types always serialize.
fn write_serde<T: serde::Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> Result<(), serde_json::Error> {
    serde_json::to_writer(out, value)
}

/// Appends the operations as a JSON array.
pub(super) fn write_patch(out: &mut Vec<u8>, ops: &[Operation]) -> Result<(), serde_json::Error> {
    out.push(b'[');
    for (i, op) in ops.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // The operation names are our own literals, which need no escaping.
        out.extend_from_slice(b"{\"op\":\"");
        out.extend_from_slice(op.op.as_bytes());
        out.extend_from_slice(b"\",\"path\":");
        op.path.write_json(out);
        out.extend_from_slice(b",\"value\":");
        write_value(out, &op.value)?;
        out.push(b'}');
    }
    out.push(b']');
    Ok(())
}

fn write_value(out: &mut Vec<u8>, value: &PatchValue) -> Result<(), serde_json::Error> {
    match value {
        PatchValue::Number(n) => write_integer(out, *n),
        PatchValue::Text(text) => write_str(out, text),
        PatchValue::Literal(literal) => out.extend_from_slice(literal.0.as_bytes()),
        PatchValue::Handler(handler) => write_handler(out, handler)?,
        PatchValue::Lifecycle(lifecycle) => write_lifecycle(out, lifecycle)?,
        PatchValue::Mount(mount) => write_mount(out, mount),
        PatchValue::Mounts([mount]) => {
            out.push(b'[');
            write_mount(out, mount);
            out.push(b']');
        }
        PatchValue::Volume(volume) => write_volume(out, volume),
        PatchValue::Volumes([volume]) => {
            out.push(b'[');
            write_volume(out, volume);
            out.push(b']');
        }
        PatchValue::Installer(installer) => write_installer(out, installer)?,
        PatchValue::Installers([installer]) => {
            out.push(b'[');
            write_installer(out, installer)?;
            out.push(b']');
        }
        PatchValue::Annotations(status) => write_status(out, status),
        PatchValue::Labels(label) => {
            out.extend_from_slice(b"{\"drain.io/planned\":");
            write_str(out, label.planned);
            out.push(b'}');
        }
        PatchValue::Metadata(Metadata {
            annotations,
            labels,
        }) => {
            out.extend_from_slice(b"{\"annotations\":");
            write_status(out, annotations);
            out.extend_from_slice(b",\"labels\":{\"drain.io/planned\":");
            write_str(out, labels.planned);
            out.extend_from_slice(b"}}");
        }
        PatchValue::Os(_) | PatchValue::Env(_) | PatchValue::Envs(_) => write_serde(out, value)?,
    }
    Ok(())
}

fn write_handler(out: &mut Vec<u8>, handler: &Handler) -> Result<(), serde_json::Error> {
    match handler {
        Handler::Sleep { seconds } => {
            out.extend_from_slice(b"{\"sleep\":{\"seconds\":");
            write_integer(out, i64::from(*seconds));
            out.extend_from_slice(b"}}");
        }
        Handler::Exec { command } => {
            out.extend_from_slice(b"{\"exec\":{\"command\":");
            write_serde(out, command)?;
            out.extend_from_slice(b"}}");
        }
        Handler::ExecRendered { command } => {
            out.extend_from_slice(b"{\"exec\":{\"command\":");
            out.extend_from_slice(command.get().as_bytes());
            out.extend_from_slice(b"}}");
        }
    }
    Ok(())
}

fn write_lifecycle(out: &mut Vec<u8>, lifecycle: &Lifecycle) -> Result<(), serde_json::Error> {
    out.extend_from_slice(b"{\"preStop\":");
    write_handler(out, &lifecycle.pre_stop)?;
    if let Some(signal) = lifecycle.stop_signal {
        out.extend_from_slice(b",\"stopSignal\":");
        write_str(out, signal);
    }
    out.push(b'}');
    Ok(())
}

fn write_mount(out: &mut Vec<u8>, mount: &Mount) {
    out.extend_from_slice(b"{\"name\":");
    write_str(out, &mount.name);
    out.extend_from_slice(b",\"mountPath\":");
    write_str(out, mount.mount_path);
    if let Some(read_only) = mount.read_only {
        out.extend_from_slice(if read_only {
            b",\"readOnly\":true"
        } else {
            b",\"readOnly\":false"
        });
    }
    out.push(b'}');
}

fn write_volume(out: &mut Vec<u8>, volume: &Volume) {
    out.extend_from_slice(b"{\"name\":");
    write_str(out, &volume.name);
    if let Some(empty_dir) = &volume.empty_dir {
        out.extend_from_slice(b",\"emptyDir\":{\"sizeLimit\":");
        write_str(out, empty_dir.size_limit);
        out.push(b'}');
    }
    if let Some(image) = &volume.image {
        out.extend_from_slice(b",\"image\":{\"reference\":");
        write_str(out, &image.reference);
        out.extend_from_slice(b",\"pullPolicy\":");
        write_str(out, &image.pull_policy);
        out.push(b'}');
    }
    out.push(b'}');
}

fn write_installer(out: &mut Vec<u8>, installer: &InstallerValue) -> Result<(), serde_json::Error> {
    match installer {
        InstallerValue::Serialized(json) => out.extend_from_slice(json.get().as_bytes()),
        InstallerValue::Typed(_) => write_serde(out, installer)?,
    }
    Ok(())
}

fn write_status(out: &mut Vec<u8>, status: &StatusAnnotation) {
    out.extend_from_slice(b"{\"drain.io/status\":");
    out.extend_from_slice(status.status.0.as_bytes());
    out.push(b'}');
}

#[cfg(test)]
mod tests;
