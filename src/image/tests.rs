//! Verification tests on disk images built here with sfdisk, mkfs.vfat/mcopy and mkfs.ext4
//! (packages fdisk, dosfstools, mtools, e2fsprogs), gzip and python3.
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::verify::{scan, verify, Layout, VerifyOptions};
use crate::formats::hex::encode as hex;
use crate::formats::sha256::sha256;

const MIB: u64 = 1 << 20;

fn have_tools() -> bool {
    [
        "sfdisk",
        "mkfs.vfat",
        "mcopy",
        "mkfs.ext4",
        "gzip",
        "python3",
    ]
    .iter()
    .all(|t| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    })
}

macro_rules! need_tools {
    () => {
        if !have_tools() {
            eprintln!("skipped: needs sfdisk, mkfs.vfat, mcopy, mkfs.ext4, gzip, python3");
            return;
        }
    };
}

fn run(cmd: &str, args: &[&str], dir: &Path) {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sh(script: &str, dir: &Path) {
    run("sh", &["-ec", script], dir);
}

/// Removes the fixture directories of earlier test runs whose process is gone.
fn remove_stale() {
    let Ok(rd) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if let Some(rest) = n.strip_prefix("takeover-image-") {
            let pid = rest.split('-').next().unwrap_or("");
            if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}

fn tmpdir(name: &str) -> PathBuf {
    crate::testutil::temp_dir("image", name)
}

fn write_at(disk: &Path, offset: u64, part: &Path) {
    let mut f = fs::OpenOptions::new().write(true).open(disk).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let data = fs::read(part).unwrap();
    f.write_all(&data).unwrap();
}

fn vfat(dir: &Path, name: &str, label: &str, mib: u64, files: &[(&str, &str)]) -> PathBuf {
    let p = dir.join(name);
    run(
        "mkfs.vfat",
        &[
            "-F",
            "16",
            "-s",
            "1",
            "-n",
            label,
            "-C",
            p.to_str().unwrap(),
            &(mib * 1024).to_string(),
        ],
        dir,
    );
    for (fname, content) in files {
        let src = dir.join(format!("{name}.{fname}"));
        fs::write(&src, content).unwrap();
        run(
            "mcopy",
            &[
                "-i",
                p.to_str().unwrap(),
                src.to_str().unwrap(),
                &format!("::/{fname}"),
            ],
            dir,
        );
    }
    p
}

fn ext4(dir: &Path, name: &str, label: &str, mib: u64, content: Option<&Path>) -> PathBuf {
    let p = dir.join(name);
    let mut args = vec!["-q", "-F", "-t", "ext4"];
    if !label.is_empty() {
        args.extend(["-L", label]);
    }
    if let Some(c) = content {
        args.extend(["-d", c.to_str().unwrap()]);
    }
    let size = format!("{mib}M");
    args.push(p.to_str().unwrap());
    args.push(&size);
    run("mkfs.ext4", &args, dir);
    p
}

/// Partition offsets (MiB) of every fixture: boot 4+8, rootA 12+s, rootB, extended, state, data.
struct Geometry {
    root_mib: u64,
}

impl Geometry {
    fn parts(&self) -> [(u64, u64); 5] {
        let r = self.root_mib;
        let a = 12;
        let b = a + r;
        let ext = b + 4;
        let state = ext + 4;
        // Logical partitions need room for their EBR before them (meta-balena aligns to 4 MiB).
        let data = state + 8;
        [(4, 8), (a, r), (b, 4), (state, 4), (data, 8)]
    }
    fn disk_mib(&self) -> u64 {
        let p = self.parts();
        p[4].0 + p[4].1
    }
}

/// Builds a balenaOS-like disk image. `prefix` is "resin" or "flash"; `gpt` names partitions.
fn build_disk(
    dir: &Path,
    name: &str,
    prefix: &str,
    gpt: bool,
    slug: &str,
    root_a_content: Option<&Path>,
    root_mib: u64,
) -> PathBuf {
    let g = Geometry { root_mib };
    let p = g.parts();
    let disk = dir.join(name);
    let f = fs::File::create(&disk).unwrap();
    // GPT keeps its backup copy in the last sectors.
    f.set_len((g.disk_mib() + u64::from(gpt)) * MIB).unwrap();
    drop(f);
    let s = |mib: u64| mib * 2048;
    let script = if gpt {
        let names = ["boot", "rootA", "rootB", "state", "data"];
        let mut t = String::from("label: gpt\n");
        for (i, (st, sz)) in p.iter().enumerate() {
            let ty = if i == 0 {
                "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
            } else {
                "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
            };
            t += &format!(
                "start={}, size={}, type={ty}, name={prefix}-{}\n",
                s(*st),
                s(*sz),
                names[i]
            );
        }
        t
    } else {
        format!(
            "label: dos\nstart={}, size={}, type=e, bootable\nstart={}, size={}, type=83\n\
             start={}, size={}, type=83\nstart={}, size={}, type=5\nstart={}, size={}, type=83\n\
             start={}, size={}, type=83\n",
            s(p[0].0),
            s(p[0].1),
            s(p[1].0),
            s(p[1].1),
            s(p[2].0),
            s(p[2].1),
            s(p[2].0 + p[2].1),
            s(g.disk_mib() - p[2].0 - p[2].1),
            s(p[3].0),
            s(p[3].1),
            s(p[4].0),
            s(p[4].1)
        )
    };
    let sf = dir.join(format!("{name}.sfdisk"));
    fs::write(&sf, script).unwrap();
    sh(
        &format!("sfdisk -q {} < {}", disk.display(), sf.display()),
        dir,
    );
    let dt = format!("{{\"slug\":\"{slug}\",\"name\":\"Test device\",\"arch\":\"aarch64\"}}\n");
    let files = [
        ("device-type.json", dt.as_str()),
        (
            "os-release",
            "ID=balena-os\nNAME=\"balenaOS\"\nVERSION=\"2.115.7\"\nVERSION_ID=\"2.115.7\"\n",
        ),
        ("config.json", "{\"deviceType\":\"x\"}\n"),
    ];
    let parts = [
        vfat(
            dir,
            &format!("{name}.boot"),
            &format!("{prefix}-boot"),
            8,
            &files,
        ),
        ext4(
            dir,
            &format!("{name}.rootA"),
            &format!("{prefix}-rootA"),
            p[1].1,
            root_a_content,
        ),
        ext4(
            dir,
            &format!("{name}.rootB"),
            &format!("{prefix}-rootB"),
            4,
            None,
        ),
        ext4(
            dir,
            &format!("{name}.state"),
            &format!("{prefix}-state"),
            4,
            None,
        ),
        ext4(
            dir,
            &format!("{name}.data"),
            &format!("{prefix}-data"),
            8,
            None,
        ),
    ];
    for (img, (st, _)) in parts.iter().zip(p) {
        write_at(&disk, st * MIB, img);
        fs::remove_file(img).unwrap();
    }
    disk
}

struct Fixtures {
    dir: PathBuf,
    balena: PathBuf,
    gpt: PathBuf,
    flasher: PathBuf,
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        remove_stale();
        let dir = tmpdir("fixtures");
        let balena = build_disk(
            &dir,
            "balena.img",
            "resin",
            false,
            "raspberrypi4-64",
            None,
            4,
        );
        let gpt = build_disk(&dir, "gpt.img", "resin", true, "genericx86-64", None, 4);
        let opt = dir.join("flasher-root");
        fs::create_dir_all(opt.join("opt")).unwrap();
        fs::copy(
            &gpt,
            opt.join("opt/balena-image-genericx86-64.balenaos-img"),
        )
        .unwrap();
        let flasher = build_disk(
            &dir,
            "flasher.img",
            "flash",
            true,
            "genericx86-64",
            Some(&opt),
            52,
        );
        Fixtures {
            dir,
            balena,
            gpt,
            flasher,
        }
    })
}

fn opts(dir: &Path) -> VerifyOptions {
    VerifyOptions {
        target_size: None,
        expected_sha256: None,
        expected_device_type: None,
        work_dir: dir.to_path_buf(),
    }
}

fn gz(src: &Path, dst: &Path, extra: &str) {
    sh(
        &format!("gzip -c {extra} {} > {}", src.display(), dst.display()),
        Path::new("/"),
    );
}

fn err_of(path: &Path, o: &VerifyOptions) -> String {
    match verify(path, o) {
        Ok(v) => panic!("{} was accepted: {v:?}", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn raw_mbr_image_with_logical_partitions() {
    need_tools!();
    let f = fixtures();
    let d = tmpdir("raw");
    let mut o = opts(&d);
    o.expected_device_type = Some("raspberrypi4-64".into());
    let v = verify(&f.balena, &o).unwrap();
    assert_eq!(v.format, "raw");
    assert_eq!(v.table, "mbr");
    assert_eq!(v.layout, Layout::Balena);
    assert_eq!(v.device_type.as_deref(), Some("raspberrypi4-64"));
    assert_eq!(v.boot_version.as_deref(), Some("2.115.7"));
    assert_eq!(v.uncompressed_bytes, fs::metadata(&f.balena).unwrap().len());
    assert_eq!(v.sha256, hex(&sha256(&fs::read(&f.balena).unwrap())));
    let got: Vec<(u32, &str, Option<&str>)> = v
        .partitions
        .iter()
        .map(|p| (p.part.index, p.fstype, p.label.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, "vfat", Some("resin-boot")),
            (2, "ext4", Some("resin-rootA")),
            (3, "ext4", Some("resin-rootB")),
            (4, "extended", None),
            (5, "ext4", Some("resin-state")),
            (6, "ext4", Some("resin-data")),
        ]
    );
    assert!(v.partitions[0].part.bootable);
    assert_eq!(v.partitions[0].part.start, 4 * MIB);
    // The boot copy is gone.
    assert_eq!(fs::read_dir(&d).unwrap().count(), 0);
    let r = v.to_report(&f.balena);
    assert_eq!(r.layout, "balena");
    assert_eq!(r.format.as_deref(), Some("raw"));
}

#[test]
fn gpt_image_by_partition_names() {
    need_tools!();
    let f = fixtures();
    let d = tmpdir("gpt");
    let g = d.join("gpt.img.gz");
    gz(&f.gpt, &g, "-n");
    let v = verify(&g, &opts(&d)).unwrap();
    assert_eq!((v.format, v.table.as_str()), ("gzip", "gpt"));
    assert_eq!(v.layout, Layout::Balena);
    assert_eq!(v.device_type.as_deref(), Some("genericx86-64"));
    assert_eq!(v.partitions.len(), 5);
    assert_eq!(v.partitions[0].part.name.as_deref(), Some("resin-boot"));
    assert_eq!(v.partitions[4].part.name.as_deref(), Some("resin-data"));
    assert_eq!(v.uncompressed_bytes, fs::metadata(&f.gpt).unwrap().len());
    // The reader stage 2 uses: decoded bytes, and file bytes read for progress.
    let mut r = super::open_image(&g).unwrap();
    assert_eq!(r.format.as_str(), "gzip");
    let n = std::io::copy(&mut r, &mut std::io::sink()).unwrap();
    assert_eq!(n, v.uncompressed_bytes);
    assert_eq!(r.file_bytes_read(), r.compressed_bytes);
}

#[test]
fn gzip_variants_are_accepted() {
    need_tools!();
    let f = fixtures();
    let d = tmpdir("gzvariants");
    let size = fs::metadata(&f.balena).unwrap().len();
    // With FNAME (gzip -N stores the name), and python's FNAME + mtime.
    let named = d.join("named.img.gz");
    gz(&f.balena, &named, "-N -1");
    // Multi-member: two halves compressed separately.
    let mm = d.join("multi.img.gz");
    sh(
        &format!(
            "head -c {h} {s} | gzip -n > {m}; tail -c +{t} {s} | gzip -n >> {m}",
            h = size / 2,
            t = size / 2 + 1,
            s = f.balena.display(),
            m = mm.display()
        ),
        &d,
    );
    // Zero padding after the last member.
    let pad = d.join("padded.img.gz");
    gz(&f.balena, &pad, "-n");
    sh(&format!("head -c 4096 /dev/zero >> {}", pad.display()), &d);
    // Python with a comment (FCOMMENT is not written by gzip(1)): build the header by hand.
    let py = d.join("py.img.gz");
    run(
        "python3",
        &[
            "-c",
            "import sys,zlib,struct\n\
             data=open(sys.argv[1],'rb').read()\n\
             c=zlib.compressobj(6,zlib.DEFLATED,-15)\n\
             body=c.compress(data)+c.flush()\n\
             h=b'\\x1f\\x8b\\x08'+bytes([4|8|16])+struct.pack('<I',0)+b'\\x00\\x03'\n\
             h+=struct.pack('<H',4)+b'ab\\x00\\x00'+b'disk.img\\x00'+b'built for tests\\x00'\n\
             t=struct.pack('<II',zlib.crc32(data),len(data)&0xffffffff)\n\
             open(sys.argv[2],'wb').write(h+body+t)\n",
            f.balena.to_str().unwrap(),
            py.to_str().unwrap(),
        ],
        &d,
    );
    for p in [&named, &mm, &pad, &py] {
        let v = verify(p, &opts(&d)).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(v.uncompressed_bytes, size, "{}", p.display());
        assert_eq!(v.layout, Layout::Balena);
        assert_eq!(v.compressed_bytes, fs::metadata(p).unwrap().len());
    }
    let mut g = crate::formats::gzip::GzDecoder::new(fs::File::open(&mm).unwrap());
    std::io::copy(&mut g, &mut std::io::sink()).unwrap();
    assert_eq!(g.members(), 2);
    let mut g = crate::formats::gzip::GzDecoder::new(fs::File::open(&py).unwrap());
    let mut b = [0u8; 1];
    g.read_exact(&mut b).unwrap();
    assert_eq!(
        g.header().unwrap().comment.as_deref(),
        Some("built for tests")
    );
}

#[test]
fn broken_gzip_files_are_refused_naming_the_problem() {
    need_tools!();
    let f = fixtures();
    let d = tmpdir("gzbroken");
    let good = d.join("good.img.gz");
    gz(&f.balena, &good, "-n");
    let bytes = fs::read(&good).unwrap();
    let o = opts(&d);

    let garbage = d.join("garbage.img.gz");
    let mut g = bytes.clone();
    g.extend(b"\0\0\0<html>error</html>");
    fs::write(&garbage, &g).unwrap();
    let e = err_of(&garbage, &o);
    assert!(
        e.contains(&format!(
            "after the last gzip member at byte {}",
            bytes.len() + 3
        )),
        "{e}"
    );
    assert!(e.contains("download the image again"), "{e}");
    assert!(e.contains("garbage.img.gz"), "{e}");

    let trunc = d.join("trunc.img.gz");
    fs::write(&trunc, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let e = err_of(&trunc, &o);
    assert!(e.contains("truncated at byte"), "{e}");

    let trailer = d.join("trailer.img.gz");
    fs::write(&trailer, &bytes[..bytes.len() - 2]).unwrap();
    let e = err_of(&trailer, &o);
    assert!(e.contains("truncated") && e.contains("trailer"), "{e}");

    // A flipped byte in the middle: a CRC mismatch or corrupt deflate data, never success.
    let corrupt = d.join("corrupt.img.gz");
    let mut c = bytes.clone();
    let mid = c.len() / 2;
    c[mid] ^= 0x55;
    fs::write(&corrupt, &c).unwrap();
    let e = err_of(&corrupt, &o);
    assert!(
        e.contains("CRC-32 mismatch")
            || e.contains("corrupt deflate")
            || e.contains("size mismatch"),
        "{e}"
    );

    // A raw image cut short: no checksum, but the partitions run past its end.
    let cut = d.join("cut.img");
    fs::copy(&f.balena, &cut).unwrap();
    let len = fs::metadata(&cut).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&cut)
        .unwrap()
        .set_len(len - MIB)
        .unwrap();
    let e = err_of(&cut, &o);
    assert!(
        e.contains("partition 6 (resin-data) ends at byte") && e.contains("truncated"),
        "{e}"
    );

    let notimg = d.join("notimage.bin");
    fs::write(&notimg, vec![7u8; 4096]).unwrap();
    let e = err_of(&notimg, &o);
    assert!(e.contains("not a gzip, zip or raw disk image"), "{e}");
}

#[test]
fn zip_archives_deflate_stored_zip64() {
    need_tools!();
    let f = fixtures();
    let d = tmpdir("zip");
    let size = fs::metadata(&f.balena).unwrap().len();
    let script = "import sys,zipfile\n\
        src,dst,mode=sys.argv[1],sys.argv[2],sys.argv[3]\n\
        comp=zipfile.ZIP_STORED if mode=='stored' else zipfile.ZIP_DEFLATED\n\
        with zipfile.ZipFile(dst,'w',compression=comp) as z:\n\
        \x20   if mode=='zip64':\n\
        \x20       with open(src,'rb') as s, z.open('balena.img','w',force_zip64=True) as w:\n\
        \x20           while True:\n\
        \x20               b=s.read(1<<20)\n\
        \x20               if not b: break\n\
        \x20               w.write(b)\n\
        \x20   else:\n\
        \x20       z.writestr('README.txt','hello')\n\
        \x20       z.write(src,'balena-cloud-app-raspberrypi4-64-2.115.7.img')\n\
        \x20       if mode=='two':\n\
        \x20           z.writestr('other.img','not a disk')\n\
        \x20       if mode=='twodisks':\n\
        \x20           z.write(src,'second.img')\n";
    for mode in ["deflate", "stored", "zip64", "two"] {
        let z = d.join(format!("{mode}.zip"));
        run(
            "python3",
            &[
                "-c",
                script,
                f.balena.to_str().unwrap(),
                z.to_str().unwrap(),
                mode,
            ],
            &d,
        );
        let v = verify(&z, &opts(&d)).unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(v.format, "zip");
        assert_eq!(v.uncompressed_bytes, size, "{mode}");
        assert_eq!(v.device_type.as_deref(), Some("raspberrypi4-64"));
    }
    let z = d.join("twodisks.zip");
    run(
        "python3",
        &[
            "-c",
            script,
            f.balena.to_str().unwrap(),
            z.to_str().unwrap(),
            "twodisks",
        ],
        &d,
    );
    let e = err_of(&z, &opts(&d));
    assert!(
        e.contains("2 .img entries") && e.contains("second.img"),
        "{e}"
    );
    // A zip64 archive written by hand: sizes and offset only in the zip64 extra fields of the
    // central directory, zip64 end records (python writes zip64 fields only past 4 GiB).
    let z = d.join("hand64.zip");
    run(
        "python3",
        &[
            "-c",
            "import sys,zlib,struct\n\
             data=open(sys.argv[1],'rb').read()\n\
             name=b'balena.img'\n\
             crc=zlib.crc32(data)\n\
             n=len(data)\n\
             x=struct.pack('<HHQQ',1,16,n,n)\n\
             lh=struct.pack('<IHHHHHIIIHH',0x04034b50,45,0,0,0,0,crc,0xffffffff,0xffffffff,len(name),len(x))+name+x\n\
             out=b'PAD'*0+lh+data\n\
             cx=struct.pack('<HHQQQ',1,24,n,n,0)\n\
             cd=struct.pack('<IHHHHHHIIIHHHHHII',0x02014b50,45,45,0,0,0,0,crc,0xffffffff,0xffffffff,len(name),len(cx),0,0,0,0,0xffffffff)+name+cx\n\
             cdoff=len(out)\n\
             out+=cd\n\
             z64=len(out)\n\
             out+=struct.pack('<IQHHIIQQQQ',0x06064b50,44,45,45,0,0,1,1,len(cd),cdoff)\n\
             out+=struct.pack('<IIQI',0x07064b50,0,z64,1)\n\
             out+=struct.pack('<IHHHHIIH',0x06054b50,0,0,0xffff,0xffff,0xffffffff,0xffffffff,0)\n\
             open(sys.argv[2],'wb').write(out)\n",
            f.balena.to_str().unwrap(),
            z.to_str().unwrap(),
        ],
        &d,
    );
    let mut zf = fs::File::open(&z).unwrap();
    let ents = crate::formats::zip::entries(&mut zf).unwrap();
    assert_eq!(ents.len(), 1);
    assert_eq!(
        (ents[0].size, ents[0].compressed, ents[0].local_offset),
        (size, size, 0)
    );
    let v = verify(&z, &opts(&d)).unwrap();
    assert_eq!(v.uncompressed_bytes, size);
    // A corrupt stored entry: CRC mismatch.
    let z = d.join("stored.zip");
    let mut b = fs::read(&z).unwrap();
    let at = b.len() / 2;
    b[at] ^= 1;
    let zc = d.join("stored-corrupt.zip");
    fs::write(&zc, &b).unwrap();
    let e = err_of(&zc, &opts(&d));
    assert!(e.contains("CRC-32 mismatch in the zip entry"), "{e}");
}

#[test]
fn wrong_device_type_unknown_layout_size_and_checksum_are_refused() {
    need_tools!();
    let f = fixtures();
    let d = tmpdir("policy");
    let size = fs::metadata(&f.balena).unwrap().len();
    let mut o = opts(&d);
    o.expected_device_type = Some("raspberrypi3".into());
    let e = err_of(&f.balena, &o);
    assert!(
        e.contains(
            "the image is for raspberrypi4-64 but the device type to install is raspberrypi3"
        ) && e.contains("image for raspberrypi3")
            && !e.contains("--no-dt-check"),
        "{e}"
    );

    let mut o = opts(&d);
    o.target_size = Some(size - MIB);
    let e = err_of(&f.balena, &o);
    assert!(
        e.contains(&format!(
            "the target disk is too small: the image needs {size} bytes ({} MiB), the disk has {} bytes",
            size >> 20,
            size - MIB
        )),
        "{e}"
    );
    // Compressed, the size is known only while decoding; still refused, both numbers named.
    let g = d.join("b.img.gz");
    gz(&f.balena, &g, "-n");
    let e = err_of(&g, &o);
    assert!(
        e.contains("larger than the target disk") && e.contains(&(size - MIB).to_string()),
        "{e}"
    );
    o.target_size = Some(size);
    verify(&g, &o).unwrap();

    let mut o = opts(&d);
    o.expected_sha256 = Some("00".repeat(32));
    let e = err_of(&f.balena, &o);
    assert!(
        e.contains("SHA-256 is") && e.contains("--image-sha256"),
        "{e}"
    );
    o.expected_sha256 = Some(hex(&sha256(&fs::read(&g).unwrap())).to_uppercase());
    verify(&g, &o).unwrap();

    // Unknown layout: rename resin-rootB's label in a copy.
    let u = d.join("unknown.img");
    fs::copy(&f.balena, &u).unwrap();
    let root_b = Geometry { root_mib: 4 }.parts()[2].0 * MIB;
    let mut file = fs::OpenOptions::new().write(true).open(&u).unwrap();
    file.seek(SeekFrom::Start(root_b + 1024 + 120)).unwrap();
    file.write_all(b"something-else\0\0").unwrap();
    drop(file);
    let e = err_of(&u, &opts(&d));
    assert!(
        e.contains("not a balenaOS image") && e.contains("something-else"),
        "{e}"
    );
}

#[test]
fn flasher_image_is_recognised_and_never_accepted_as_is() {
    need_tools!();
    let f = fixtures();
    let d = tmpdir("flasher");
    let v = scan(&f.flasher, &opts(&d)).unwrap();
    assert_eq!(v.layout, Layout::Flasher);
    let e = err_of(&f.flasher, &opts(&d));
    assert!(e.contains("flasher image") && e.contains("/opt/"), "{e}");
    // prepare() extracts the inner image (raw flasher: read in place; gzip: via a sparse copy).
    let g = d.join("flasher.img.gz");
    gz(&f.flasher, &g, "-n -1");
    for src in [&f.flasher, &g] {
        let mut o = opts(&d);
        o.expected_device_type = Some("genericx86-64".into());
        o.expected_sha256 = Some(hex(&sha256(&fs::read(src).unwrap())));
        let p = super::verify::prepare(src, &o, 1).unwrap();
        // Named as what it is (issue 20).
        assert_eq!(
            p.image,
            d.join("balena-image-genericx86-64.from-flasher.img.gz")
        );
        assert_eq!(p.flasher.as_ref().unwrap().layout, Layout::Flasher);
        assert_eq!(p.verified.layout, Layout::Balena);
        assert_eq!(p.verified.table, "gpt");
        assert_eq!(p.verified.device_type.as_deref(), Some("genericx86-64"));
        let mut inner = Vec::new();
        crate::formats::gzip::GzDecoder::new(fs::File::open(&p.image).unwrap())
            .read_to_end(&mut inner)
            .unwrap();
        assert!(inner == fs::read(&f.gpt).unwrap(), "inner image differs");
        // gzip(1) agrees with our encoder.
        sh(&format!("gzip -t {}", p.image.display()), &d);
        // Dropped (the run ended, failed or not): removed. Kept (`-d`): stays.
        let path = p.image.clone();
        drop(p);
        assert!(!path.exists(), "the extracted image outlived the run");
        let mut p = super::verify::prepare(src, &o, 1).unwrap();
        let kept = p.extracted.take().unwrap().keep();
        drop(p);
        assert!(kept.exists());
        fs::remove_file(&kept).unwrap();
    }
    // A refused inner image (another device type) is removed too.
    let mut o = opts(&d);
    o.expected_device_type = Some("raspberrypi4-64".into());
    let e = super::verify::prepare(&f.flasher, &o, 1).unwrap_err();
    assert!(e.to_string().contains("raspberrypi4-64"), "{e}");
    // Only the image given and the gzip copy remain: no temporary files.
    let mut left: Vec<String> = fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, vec!["flasher.img.gz"]);
}

#[test]
fn ext_reader_block_maps_extents_holes_and_big_dirs() {
    need_tools!();
    let d = tmpdir("ext");
    let content = d.join("content");
    fs::create_dir_all(content.join("opt/many")).unwrap();
    // A file through direct, single and double indirect blocks (1 KiB blocks, ext2), and
    // sparse with a hole.
    let big: Vec<u8> = (0..1_500_000u32).map(|i| (i * 31 % 253) as u8).collect();
    fs::write(content.join("opt/big.bin"), &big).unwrap();
    sh(
        "truncate -s 3M opt/sparse && printf tail >> opt/sparse",
        &content,
    );
    for i in 0..400 {
        fs::write(
            content.join(format!("opt/many/file-with-a-longish-name-{i:04}")),
            i.to_string(),
        )
        .unwrap();
    }
    for (name, args) in [
        ("ext2.img", vec!["-t", "ext2", "-b", "1024"]),
        ("ext4.img", vec!["-t", "ext4"]),
        ("ext4-64.img", vec!["-t", "ext4", "-O", "64bit"]),
    ] {
        let img = d.join(name);
        let mut a = vec!["-q", "-F"];
        a.extend(args);
        a.extend([
            "-d",
            content.to_str().unwrap(),
            img.to_str().unwrap(),
            "16M",
        ]);
        run("mkfs.ext4", &a, &d);
        let len = fs::metadata(&img).unwrap().len();
        let mut e =
            crate::formats::ext4::Ext4::open(fs::File::open(&img).unwrap(), 0, len).unwrap();
        let ino = e.lookup("/opt/big.bin").unwrap();
        let mut got = Vec::new();
        e.open_file(&ino).unwrap().read_to_end(&mut got).unwrap();
        assert!(got == big, "{name}: big.bin differs");
        let ino = e.lookup("/opt/sparse").unwrap();
        let mut got = Vec::new();
        e.open_file(&ino).unwrap().read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), 3 * 1024 * 1024 + 4, "{name}");
        assert!(
            got[..3 << 20].iter().all(|&b| b == 0) && got.ends_with(b"tail"),
            "{name}"
        );
        let many = e.lookup("/opt/many").unwrap();
        assert_eq!(e.read_dir(&many).unwrap().len(), 402, "{name}");
        let ino = e.lookup("/opt/many/file-with-a-longish-name-0399").unwrap();
        let mut got = String::new();
        e.open_file(&ino).unwrap().read_to_string(&mut got).unwrap();
        assert_eq!(got, "399");
        assert!(e.lookup("/opt/missing").is_err());
    }
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn throughput() {
    need_tools!();
    let f = fixtures();
    let d = tmpdir("speed");
    // 64 MiB image: the balena fixture followed by random bytes and OS files (compressible
    // like a real rootfs), gzip -6.
    let big = d.join("big.img");
    fs::copy(&f.balena, &big).unwrap();
    sh(
        "{ head -c 8M /dev/urandom; tar cf - /usr/share /usr/lib 2>/dev/null | head -c 16M; } >> big.img; \
         truncate -s 64M big.img",
        &d,
    );
    let g = d.join("big.img.gz");
    gz(&big, &g, "-n -6");
    let v = scan(&g, &opts(&d)).unwrap();
    println!(
        "verification: {} MiB decoded at {:.0} MB/s (build profile of this test)",
        v.uncompressed_bytes >> 20,
        v.mb_per_s
    );
    assert_eq!(v.uncompressed_bytes, 64 * MIB);
    assert_eq!(v.layout, Layout::Balena);
    let _ = (&f.dir, fs::remove_dir_all(&d));
}

/// Release-mode measurement on a 1 GiB image (like spec/build-and-baselines.md §6: zeros, OS
/// files, random data). Run: `TAKEOVER_BENCH_DIR=/tmp/x cargo test --release --lib
/// image::tests::bench_1gib -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_1gib() {
    need_tools!();
    let f = fixtures();
    let d = std::env::var_os("TAKEOVER_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmpdir("bench"));
    fs::create_dir_all(&d).unwrap();
    let raw = d.join("bench.img");
    let gzp = d.join("bench.img.gz");
    if !gzp.exists() {
        // Start with a real balena-like disk, then fill to 1 GiB after its partitions.
        fs::copy(&f.balena, &raw).unwrap();
        sh(
            &format!(
                "cd {d}; tar cf - /usr/lib/x86_64-linux-gnu 2>/dev/null | head -c 400M > os.tar; \
                 head -c 150M /dev/urandom > rnd; \
                 {{ head -c 4M /dev/zero; head -c 200M os.tar; cat rnd; head -c 150M /dev/zero; \
                    tail -c 200M os.tar; head -c 150M /dev/urandom; head -c 120M /dev/zero; }} >> bench.img; \
                 truncate -s 1G bench.img; rm -f os.tar rnd; gzip -6 -n -c bench.img > bench.img.gz",
                d = d.display()
            ),
            &d,
        );
    }
    // Wall time depends on the machine's load; the CPU time of this thread does not (much).
    let cpu = || -> f64 {
        let s = fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
        s.split_whitespace()
            .next()
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1e9
    };
    let timed = |f: &mut dyn FnMut()| {
        let (t, c) = (std::time::Instant::now(), cpu());
        f();
        (t.elapsed().as_secs_f64(), cpu() - c)
    };
    let raw_bytes = fs::read(&raw).unwrap();
    let gib = raw_bytes.len() as f64;
    let mut c = 0;
    let (crc_w, crc_c) = timed(&mut || c = crate::formats::crc32::crc32(0, &raw_bytes));
    let mut h = [0u8; 32];
    let (sha_w, sha_c) = timed(&mut || h = sha256(&raw_bytes));
    drop(raw_bytes);
    let mut n = 0;
    let (dec_w, dec_c) = timed(&mut || {
        let mut g = crate::formats::gzip::GzDecoder::new(fs::File::open(&gzp).unwrap());
        n = std::io::copy(&mut g, &mut std::io::sink()).unwrap();
    });
    let v = scan(&gzp, &opts(&d)).unwrap();
    println!(
        "bench (wall / CPU-time rates): crc32 {:.2} / {:.2} GB/s (crc {c:08x}); sha256 {:.0} / {:.0} MB/s ({}..); \
         gzip decode+CRC to sink {:.0} / {:.0} MB/s ({n} bytes); full verification pass (decode + \
         SHA-256 thread) {:.0} MB/s wall ({} -> {} bytes, layout {})",
        gib / crc_w / 1e9,
        gib / crc_c / 1e9,
        gib / sha_w / 1e6,
        gib / sha_c / 1e6,
        &hex(&h)[..8],
        n as f64 / dec_w / 1e6,
        n as f64 / dec_c / 1e6,
        v.mb_per_s,
        v.compressed_bytes,
        v.uncompressed_bytes,
        v.layout.as_str()
    );
}

/// Corrupted tables, archives and filesystems give errors, never panics or endless loops.
#[test]
fn corrupted_structures_never_panic() {
    need_tools!();
    let f = fixtures();
    let d = tmpdir("mutate");
    let mut x = 0x9e37_79b9_u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // Partition tables: MBR + EBR chain, and GPT.
    for disk in [&f.balena, &f.gpt] {
        let base = fs::read(disk).unwrap();
        let t = crate::formats::partition::read_table(&mut std::io::Cursor::new(&base)).unwrap();
        let mut hot: Vec<u64> = vec![0, 512, 1024];
        hot.extend(
            t.partitions
                .iter()
                .map(|p| p.start.saturating_sub(512 * 2048)),
        );
        hot.extend(t.partitions.iter().map(|p| p.start.saturating_sub(512)));
        for _ in 0..300 {
            let mut m = base.clone();
            for _ in 0..1 + rnd() % 4 {
                let at = hot[(rnd() % hot.len() as u64) as usize] as usize + (rnd() % 512) as usize;
                if at < m.len() {
                    m[at] = rnd() as u8;
                }
            }
            let _ = crate::formats::partition::read_table(&mut std::io::Cursor::new(&m));
            let first = &m[..4096];
            let _ = crate::formats::fslabel::probe(first);
        }
    }
    // Zip central directories.
    let z = d.join("small.zip");
    run(
        "python3",
        &["-c", "import zipfile,sys\nwith zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_DEFLATED) as z:\n  z.writestr('a.img',b'x'*5000)\n  z.writestr('b.txt',b'y'*10)\n", z.to_str().unwrap()],
        &d,
    );
    let zb = fs::read(&z).unwrap();
    let zm = d.join("m.zip");
    for _ in 0..300 {
        let mut m = zb.clone();
        let n = m.len();
        for _ in 0..1 + rnd() % 3 {
            let at = n - 1 - (rnd() % 200) as usize;
            m[at] = rnd() as u8;
        }
        fs::write(&zm, &m).unwrap();
        let mut file = fs::File::open(&zm).unwrap();
        if let Ok(ents) = crate::formats::zip::entries(&mut file) {
            if let Ok(e) = crate::formats::zip::pick_image(&file, &ents) {
                if let Ok(mut r) = crate::formats::zip::open_entry(fs::File::open(&zm).unwrap(), &e)
                {
                    let _ = std::io::copy(&mut r, &mut std::io::sink());
                }
            }
        }
    }
    // ext4 metadata: superblock, group descriptors, inode table, directory and extent blocks.
    let content = d.join("c");
    fs::create_dir_all(content.join("opt")).unwrap();
    fs::write(content.join("opt/f.balenaos-img"), vec![1u8; 300_000]).unwrap();
    for (name, ty) in [("m4.img", "ext4"), ("m2.img", "ext2")] {
        let img = d.join(name);
        run(
            "mkfs.ext4",
            &[
                "-q",
                "-F",
                "-t",
                ty,
                "-b",
                "1024",
                "-N",
                "64",
                "-d",
                content.to_str().unwrap(),
                img.to_str().unwrap(),
                "2M",
            ],
            &d,
        );
        let base = fs::read(&img).unwrap();
        // The metadata lives in the first 64 KiB or so of a fresh small filesystem.
        for _ in 0..400 {
            let mut m = base.clone();
            for _ in 0..1 + rnd() % 4 {
                let at = 1024 + (rnd() % (96 << 10)) as usize;
                m[at] = rnd() as u8;
            }
            let len = m.len() as u64;
            if let Ok(mut e) = crate::formats::ext4::Ext4::open(std::io::Cursor::new(m), 0, len) {
                if let Ok(ino) = e.lookup("/opt/f.balenaos-img") {
                    if ino.size <= len {
                        if let Ok(mut r) = e.open_file(&ino) {
                            let _ = std::io::copy(&mut r, &mut std::io::sink());
                        }
                    }
                }
            }
        }
    }
    let _ = fs::remove_dir_all(&d);
}
