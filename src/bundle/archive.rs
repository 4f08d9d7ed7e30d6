//! The bundle file on disk: a plain tar, written member by member as the engine streams
//! each image out, and read back with every member hashed.
//!
//! A tar header states its member's size, which for a `docker save` stream (and its zstd
//! form) is known only at the end; so each header is written as a placeholder and patched
//! once the member is complete. This is blocking file I/O: callers run it on a blocking
//! thread and feed it through a channel.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::manifest::{Encoding, FoundMember, MANIFEST_MEMBER, Manifest};

const BLOCK: u64 = 512;
/// zstd level 3 (the zstd CLI's default): most of the size win for a fraction of the time
/// higher levels take (measured in the README's bundle section).
const ZSTD_LEVEL: i32 = 3;

/// Writes a bundle: members one after the other, then the manifest, then the end blocks.
pub struct BundleWriter {
    file: File,
    mtime: u64,
}

/// What was written for one member.
#[derive(Debug, Clone)]
pub struct WrittenMember {
    pub size: u64,
    pub sha256: String,
}

impl BundleWriter {
    pub fn new(file: File, mtime: u64) -> BundleWriter {
        BundleWriter { file, mtime }
    }

    /// Writes one member from `chunks`, compressing it when asked, hashing what is stored.
    pub fn write_member(
        &mut self,
        name: &str,
        encoding: Encoding,
        chunks: impl Iterator<Item = std::io::Result<bytes::Bytes>>,
    ) -> std::io::Result<WrittenMember> {
        let header_at = self.file.stream_position()?;
        self.file.write_all(&[0u8; BLOCK as usize])?;
        let mut sink = HashingWriter {
            inner: &mut self.file,
            hasher: Sha256::new(),
            written: 0,
        };
        match encoding {
            Encoding::None => {
                for chunk in chunks {
                    sink.write_all(&chunk?)?;
                }
            }
            Encoding::Zstd => {
                let mut encoder = zstd::stream::write::Encoder::new(&mut sink, ZSTD_LEVEL)?;
                // Both cores: compression is the slow part of `bundle create`.
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
                encoder.multithread(threads)?;
                for chunk in chunks {
                    encoder.write_all(&chunk?)?;
                }
                encoder.finish()?;
            }
        }
        let size = sink.written;
        let sha256 = hex::encode(sink.hasher.finalize());
        self.pad(size)?;
        let end = self.file.stream_position()?;
        self.file.seek(SeekFrom::Start(header_at))?;
        self.file.write_all(&self.header(name, size)?)?;
        self.file.seek(SeekFrom::Start(end))?;
        Ok(WrittenMember { size, sha256 })
    }

    /// Writes the manifest and the end-of-archive blocks, and flushes to disk.
    pub fn finish(mut self, manifest: &Manifest) -> std::io::Result<File> {
        let text = serde_json::to_vec_pretty(manifest).map_err(std::io::Error::other)?;
        self.file
            .write_all(&self.header(MANIFEST_MEMBER, text.len() as u64)?)?;
        self.file.write_all(&text)?;
        self.pad(text.len() as u64)?;
        self.file.write_all(&[0u8; 2 * BLOCK as usize])?;
        self.file.sync_all()?;
        Ok(self.file)
    }

    fn header(&self, name: &str, size: u64) -> std::io::Result<[u8; BLOCK as usize]> {
        let mut header = tar::Header::new_gnu();
        header.set_path(name)?;
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(self.mtime);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let mut block = [0u8; BLOCK as usize];
        block.copy_from_slice(header.as_bytes());
        Ok(block)
    }

    fn pad(&mut self, size: u64) -> std::io::Result<()> {
        let rest = (BLOCK - size % BLOCK) % BLOCK;
        self.file.write_all(&vec![0u8; rest as usize])
    }
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Why a file is not a readable bundle, in words for the error message.
pub type Damage = String;

/// Reads every member once, hashing it; returns the manifest and the members found.
/// `on_bytes` is told how many bytes were read so far (for the progress bar).
pub fn scan(
    path: &Path,
    mut on_bytes: impl FnMut(u64),
) -> Result<(Manifest, Vec<FoundMember>), ScanError> {
    let file = File::open(path).map_err(ScanError::Open)?;
    let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 20, file));
    let mut members = Vec::new();
    let mut manifest = None;
    let mut done = 0u64;
    let entries = archive.entries().map_err(|e| damaged(&e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| damaged(&e))?;
        let name = entry
            .path()
            .map_err(|e| damaged(&e))?
            .to_string_lossy()
            .into_owned();
        let size = entry.header().size().map_err(|e| damaged(&e))?;
        let offset = entry.raw_file_position();
        if manifest.is_some() {
            return Err(ScanError::Damaged(format!(
                "member {name} follows the manifest"
            )));
        }
        if name == MANIFEST_MEMBER {
            let mut text = Vec::new();
            entry
                .read_to_end(&mut text)
                .map_err(|e| damaged_in(&name, &e))?;
            if text.len() as u64 != size {
                return Err(ScanError::Damaged(format!(
                    "it ends in the middle of {name}: the file is truncated"
                )));
            }
            let parsed: Manifest = serde_json::from_slice(&text)
                .map_err(|e| ScanError::Damaged(format!("its manifest is not valid: {e}")))?;
            manifest = Some(parsed);
            continue;
        }
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 20];
        let mut read = 0u64;
        loop {
            let n = entry.read(&mut buffer).map_err(|e| damaged_in(&name, &e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            read += n as u64;
            done += n as u64;
            on_bytes(done);
        }
        if read != size {
            return Err(ScanError::Damaged(format!(
                "member {name} ends after {read} of its {size} bytes: the file is truncated"
            )));
        }
        members.push(FoundMember {
            name,
            offset,
            size,
            sha256: hex::encode(hasher.finalize()),
        });
    }
    let manifest = manifest.ok_or_else(|| {
        ScanError::Damaged(format!(
            "it has no {MANIFEST_MEMBER} (it is the last member): the file is truncated or not a kindlab bundle"
        ))
    })?;
    Ok((manifest, members))
}

/// Reads only the manifest, skipping over the members (no hashing): for `doctor`.
pub fn read_manifest(path: &Path) -> Result<Manifest, ScanError> {
    let file = File::open(path).map_err(ScanError::Open)?;
    let mut archive = tar::Archive::new(file);
    let entries = archive.entries_with_seek().map_err(|e| damaged(&e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| damaged(&e))?;
        let is_manifest = entry.path().is_ok_and(|p| p == Path::new(MANIFEST_MEMBER));
        if is_manifest {
            let size = entry.header().size().map_err(|e| damaged(&e))?;
            let mut text = Vec::new();
            entry
                .read_to_end(&mut text)
                .map_err(|e| damaged_in(MANIFEST_MEMBER, &e))?;
            if text.len() as u64 != size {
                return Err(ScanError::Damaged(format!(
                    "it ends in the middle of {MANIFEST_MEMBER}: the file is truncated"
                )));
            }
            return serde_json::from_slice(&text)
                .map_err(|e| ScanError::Damaged(format!("its manifest is not valid: {e}")));
        }
    }
    Err(ScanError::Damaged(format!(
        "it has no {MANIFEST_MEMBER}: the file is truncated or not a kindlab bundle"
    )))
}

/// Streams one member's bytes (decompressed), checking its SHA-256 again on the way: the
/// file may have changed since it was verified. Each chunk goes to `send`; a `false` from
/// it stops the copy (the receiver went away).
pub fn stream_member(
    path: &Path,
    member: &FoundMember,
    encoding: Encoding,
    mut send: impl FnMut(std::io::Result<bytes::Bytes>) -> bool,
) {
    let result = (|| -> std::io::Result<()> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(member.offset))?;
        let mut hashed = HashingReader {
            inner: BufReader::with_capacity(1 << 20, file.take(member.size)),
            hasher: Sha256::new(),
            read: 0,
        };
        let mut buffer = vec![0u8; 1 << 20];
        {
            let mut reader: Box<dyn Read + '_> = match encoding {
                Encoding::None => Box::new(&mut hashed),
                Encoding::Zstd => Box::new(zstd::stream::read::Decoder::new(&mut hashed)?),
            };
            loop {
                let n = reader.read(&mut buffer)?;
                if n == 0 {
                    break;
                }
                if !send(Ok(bytes::Bytes::copy_from_slice(&buffer[..n]))) {
                    return Ok(());
                }
            }
        }
        // The decoder may stop before the member's last bytes (zstd padding): hash them too.
        std::io::copy(&mut hashed, &mut std::io::sink())?;
        if hashed.read != member.size || hex::encode(hashed.hasher.finalize()) != member.sha256 {
            return Err(std::io::Error::other(format!(
                "member {} changed while it was being loaded",
                member.name
            )));
        }
        Ok(())
    })();
    if let Err(e) = result {
        send(Err(e));
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot open it: {0}")]
    Open(#[source] std::io::Error),
    #[error("{0}")]
    Damaged(Damage),
}

fn damaged(e: &std::io::Error) -> ScanError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        ScanError::Damaged("it ends in the middle of a member: the file is truncated".into())
    } else {
        ScanError::Damaged(format!("it is not a readable tar file ({e})"))
    }
}

fn damaged_in(member: &str, e: &std::io::Error) -> ScanError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        ScanError::Damaged(format!(
            "it ends in the middle of member {member}: the file is truncated"
        ))
    } else {
        ScanError::Damaged(format!("cannot read member {member}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::manifest::{FORMAT, RegistryInfo, WorkspaceInfo, check_members};

    fn manifest() -> Manifest {
        Manifest {
            format: FORMAT.into(),
            created_at: "2026-12-01T00:00:00Z".into(),
            kindlab_version: "0.1.0".into(),
            kind_version: None,
            workspace: WorkspaceInfo {
                cluster: "c".into(),
                registry: RegistryInfo {
                    name: "r".into(),
                    port: 5001,
                    image: "registry:3".into(),
                },
            },
            default_node_image: false,
            images: Vec::new(),
        }
    }

    fn chunks(data: &[u8]) -> impl Iterator<Item = std::io::Result<bytes::Bytes>> + '_ {
        data.chunks(1000)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
    }

    /// Writes two members (one plain, one zstd) and returns the file and its manifest.
    fn write_bundle(dir: &Path) -> (std::path::PathBuf, Manifest, Vec<u8>) {
        let path = dir.join("b.tar");
        let data: Vec<u8> = (0..5000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut writer = BundleWriter::new(File::create(&path).unwrap(), 0);
        let plain = writer
            .write_member("images/00-a.tar", Encoding::None, chunks(&data))
            .unwrap();
        let packed = writer
            .write_member("images/01-b.tar.zst", Encoding::Zstd, chunks(&data))
            .unwrap();
        assert_eq!(plain.size, data.len() as u64);
        assert!(packed.size < plain.size, "zstd did not shrink {packed:?}");
        let mut m = manifest();
        for (name, encoding, w) in [
            ("images/00-a.tar", Encoding::None, plain),
            ("images/01-b.tar.zst", Encoding::Zstd, packed),
        ] {
            m.images.push(crate::bundle::manifest::ImageEntry {
                role: crate::bundle::manifest::ImageRole::Base,
                reference: name.into(),
                id: "sha256:x".into(),
                size: 1,
                app: None,
                used_by: Vec::new(),
                member: name.into(),
                encoding,
                member_size: w.size,
                member_sha256: w.sha256,
            });
        }
        writer.finish(&m).unwrap();
        (path, m, data)
    }

    #[test]
    fn written_members_scan_back_whole_and_stream_back_decompressed() {
        let dir = tempfile::tempdir().unwrap();
        let (path, m, data) = write_bundle(dir.path());
        // Other tar readers see a normal archive.
        let names: Vec<String> = tar::Archive::new(File::open(&path).unwrap())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            ["images/00-a.tar", "images/01-b.tar.zst", MANIFEST_MEMBER]
        );

        let (read, found) = scan(&path, |_| {}).unwrap();
        assert_eq!(read, m);
        let located = check_members(&m, &found).unwrap();
        assert_eq!(read_manifest(&path).unwrap(), m);
        for (image, member) in m.images.iter().zip(&located) {
            let mut out = Vec::new();
            stream_member(&path, member, image.encoding, |chunk| {
                out.extend_from_slice(&chunk.unwrap());
                true
            });
            assert_eq!(out, data, "{}", image.member);
        }
    }

    #[test]
    fn a_flipped_byte_is_a_checksum_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let (path, m, _) = write_bundle(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[512 + 100] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (_, found) = scan(&path, |_| {}).unwrap();
        let err = check_members(&m, &found).unwrap_err();
        assert!(err.contains("images/00-a.tar"), "{err}");
    }

    #[test]
    fn a_truncated_file_is_named_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _, _) = write_bundle(dir.path());
        let bytes = std::fs::read(&path).unwrap();
        for keep in [600, 20_500, bytes.len() - 1500] {
            std::fs::write(&path, &bytes[..keep]).unwrap();
            let err = scan(&path, |_| {}).unwrap_err().to_string();
            assert!(err.contains("truncated"), "cut at {keep}: {err}");
        }
        // Cut anywhere before the end-of-archive blocks, it is refused.
        for keep in (0..bytes.len() - 1024).step_by(97) {
            std::fs::write(&path, &bytes[..keep]).unwrap();
            assert!(scan(&path, |_| {}).is_err(), "cut at {keep} was accepted");
        }
    }

    #[test]
    fn a_file_that_is_no_tar_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tar");
        std::fs::write(&path, vec![7u8; 4096]).unwrap();
        let err = scan(&path, |_| {}).unwrap_err().to_string();
        assert!(
            err.contains("not a readable tar") || err.contains("no manifest"),
            "{err}"
        );
    }
}
