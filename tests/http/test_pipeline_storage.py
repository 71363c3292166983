"""Image pipeline: blobs at rest (SPEC §9) — compressed (--compress), encrypted
(--encryption-key-file), both; `crmblob keygen`, `crmblob rekey`, and the
server refusing to start with a key that does not match the data.

BlobSize (stored), OriginalSize (served), IsZipped and IsEncrypted always tell
the truth, and GET Image always answers the exact uploaded bytes.
"""
import os
import re
import stat
import subprocess

import pytest

import imgmeta
from conftest import BIN, assert_fits, assert_image_answer, img

PHOTO = "photo_320x240.jpg"
FLAT = "flat_200x170.tif"


# --------------------------------------------------------------------------
# helpers


def keygen(path):
    p = subprocess.run([str(BIN), "keygen", str(path)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, f"keygen -> {p.returncode}: {p.stdout} {p.stderr}"
    return path


@pytest.fixture
def keys(tmp_path):
    d = tmp_path / "keys"
    d.mkdir()
    return {n: keygen(d / f"{n}.key") for n in ("old", "new", "other")}


def upload(c, kind, name):
    eid = c.create(kind)
    c.put_image(kind, eid, img(name))
    return eid


def check_exact(c, kind, eid, name):
    body = img(name)
    r = c.get_image(kind, eid)
    assert assert_image_answer(r, imgmeta.mime(body)) == body, \
        f"{name}: GET did not give the uploaded bytes back"
    h = c.head(f"/api/v1/{kind}/{eid}/Image")
    assert h.headers.get("Content-Length") == str(len(body))
    p = c.get_image(kind, eid, headers={"Range": "bytes=0-9"})
    assert p.status_code == 206 and p.content == body[:10]


def check_info(c, kind, eid, name, zipped, encrypted):
    info = c.info(kind, eid)
    n = len(img(name))
    assert info["OriginalSize"] == n, info
    assert info["IsZipped"] is zipped, info
    assert info["IsEncrypted"] is encrypted, info
    if zipped:
        assert info["BlobSize"] < n, info
    elif encrypted:
        assert info["BlobSize"] > n, f"encryption adds a header/tag: {info}"
    else:
        assert info["BlobSize"] == n, info
    return info


def stored_files(s):
    return [p for p in s.dir.rglob("*") if p.is_file() and p != s.log_path]


def at_rest(s):
    return b"".join(p.read_bytes() for p in stored_files(s))


def needles(name):
    b = img(name)
    if name == FLAT:
        return [b"\xc8\x78\x28" * 64]
    return [b[i:i + 48] for i in (len(b) // 4, len(b) // 2, 3 * len(b) // 4)]


def assert_no_plaintext(s, names, extra=()):
    raw = at_rest(s)
    for name in names:
        for n in needles(name):
            assert n not in raw, f"plaintext of {name} found in {[str(p) for p in stored_files(s)]}"
    for label, n in extra:
        assert n not in raw, f"plaintext of {label} found at rest"


def restart_with(s, serve_args):
    if s.alive():
        rc = s.stop()
        assert rc == 0, f"SIGTERM exit {rc}\n{s.log()[-2000:]}"
    s.serve_args = [str(a) for a in serve_args]
    s.start()
    return s.client("admin")


def refuses(s, serve_args, pattern):
    if s.alive():
        assert s.stop() == 0
    s.serve_args = [str(a) for a in serve_args]
    rc = s.try_start(timeout=8)
    assert rc is not None, f"serve {serve_args} kept running on a db it cannot read"
    assert rc != 0, f"serve {serve_args} exited 0"
    assert re.search(pattern, s.refusal, re.I), f"refusal message: {s.refusal[-1500:]!r}"
    return s.refusal


KEY_MISMATCH = r"key.*(match|wrong|differ)|(match|wrong|differ).*key"
KEY_NEEDED = r"key|encrypt"


def rekey(s, *args):
    return s.cli("rekey", "--db", str(s.db), *[str(a) for a in args], timeout=120)


# --------------------------------------------------------------------------
# keygen


def test_keygen_file(tmp_path):
    a = keygen(tmp_path / "a.key")
    b = keygen(tmp_path / "b.key")
    ta, tb = a.read_text(), b.read_text()
    assert re.fullmatch(r"[0-9a-fA-F]{64}\n", ta), repr(ta)
    assert ta != tb, "two keys are the same"
    assert stat.S_IMODE(os.stat(a).st_mode) == 0o600, oct(os.stat(a).st_mode)


def test_keygen_never_overwrites_a_key(tmp_path):
    """Losing a key loses the data it encrypted: keygen refuses an existing file."""
    a = keygen(tmp_path / "a.key")
    before = a.read_bytes()
    p = subprocess.run([str(BIN), "keygen", str(a)], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0, "keygen overwrote an existing key file"
    assert a.read_bytes() == before


# --------------------------------------------------------------------------
# compression


def test_compress_flat_tiff_zipped(make_arg_server):
    s = make_arg_server(["--compress"])
    c = s.client("admin")
    eid = upload(c, "Person", FLAT)
    check_info(c, "Person", eid, FLAT, zipped=True, encrypted=False)
    check_exact(c, "Person", eid, FLAT)
    assert_no_plaintext(s, [FLAT])
    body = assert_image_answer(c.get_image("Person", eid, params={"w": 50}), "image/tiff")
    assert_fits(imgmeta.dims(body), 200, 170, 50)


def test_compress_photo_not_zipped(make_arg_server):
    s = make_arg_server(["--compress"])
    c = s.client("admin")
    eid = upload(c, "Product", PHOTO)
    check_info(c, "Product", eid, PHOTO, zipped=False, encrypted=False)
    check_exact(c, "Product", eid, PHOTO)


def test_compress_replace_updates_flags(make_arg_server):
    s = make_arg_server(["--compress"])
    c = s.client("admin")
    eid = upload(c, "Contact", FLAT)
    check_info(c, "Contact", eid, FLAT, zipped=True, encrypted=False)
    c.put_image("Contact", eid, img(PHOTO))
    check_info(c, "Contact", eid, PHOTO, zipped=False, encrypted=False)
    check_exact(c, "Contact", eid, PHOTO)
    c.put_image("Contact", eid, img(FLAT))
    check_info(c, "Contact", eid, FLAT, zipped=True, encrypted=False)
    check_exact(c, "Contact", eid, FLAT)


def test_compressed_blobs_readable_without_flag(make_arg_server):
    s = make_arg_server(["--compress"])
    c = s.client("admin")
    eid = upload(c, "Project", FLAT)
    c = restart_with(s, [])
    check_info(c, "Project", eid, FLAT, zipped=True, encrypted=False)
    check_exact(c, "Project", eid, FLAT)
    # new uploads without the flag are stored as they are
    e2 = upload(c, "Project", FLAT)
    check_info(c, "Project", e2, FLAT, zipped=False, encrypted=False)


def test_no_compress_by_default(make_arg_server):
    s = make_arg_server([])
    c = s.client("admin")
    eid = upload(c, "Person", FLAT)
    check_info(c, "Person", eid, FLAT, zipped=False, encrypted=False)


# --------------------------------------------------------------------------
# encryption


def test_encrypted_roundtrip(make_arg_server, keys):
    s = make_arg_server(["--encryption-key-file", keys["old"]])
    c = s.client("admin")
    ids = {}
    for kind, name in (("Person", PHOTO), ("Contact", FLAT), ("Product", "anim_40x30.gif"),
                       ("Project", "be_24x18.tif")):
        ids[name] = (kind, upload(c, kind, name))
        check_info(c, kind, ids[name][1], name, zipped=False, encrypted=True)
        check_exact(c, kind, ids[name][1], name)
    kind, eid = ids[PHOTO]
    v = assert_image_answer(c.get_image(kind, eid, params={"w": 100, "h": 100}), "image/jpeg")
    assert imgmeta.dims(v) == (100, 75)
    v2 = c.get_image(kind, eid, params={"w": 100, "h": 100}).content
    assert v2 == v
    assert_no_plaintext(s, [PHOTO, FLAT],
                        extra=[("the cached 100x75 variant", v[len(v) // 2:len(v) // 2 + 48])])


def test_encrypted_and_compressed(make_arg_server, keys):
    s = make_arg_server(["--compress", "--encryption-key-file", keys["old"]])
    c = s.client("admin")
    f = upload(c, "Person", FLAT)
    check_info(c, "Person", f, FLAT, zipped=True, encrypted=True)
    check_exact(c, "Person", f, FLAT)
    p = upload(c, "Person", PHOTO)
    check_info(c, "Person", p, PHOTO, zipped=False, encrypted=True)
    check_exact(c, "Person", p, PHOTO)
    assert_no_plaintext(s, [PHOTO, FLAT])


def test_encrypted_survives_restart_same_key(make_arg_server, keys):
    s = make_arg_server(["--encryption-key-file", keys["old"]])
    c = s.client("admin")
    eid = upload(c, "Person", PHOTO)
    c = restart_with(s, ["--encryption-key-file", keys["old"]])
    check_info(c, "Person", eid, PHOTO, zipped=False, encrypted=True)
    check_exact(c, "Person", eid, PHOTO)


def test_different_key_refuses_to_start(make_arg_server, keys):
    s = make_arg_server(["--encryption-key-file", keys["old"]])
    c = s.client("admin")
    eid = upload(c, "Person", PHOTO)
    refuses(s, ["--encryption-key-file", keys["other"]], KEY_MISMATCH)
    # the right key still works afterwards
    c = restart_with(s, ["--encryption-key-file", keys["old"]])
    check_exact(c, "Person", eid, PHOTO)


def test_no_key_on_encrypted_db_refuses_to_start(make_arg_server, keys):
    s = make_arg_server(["--encryption-key-file", keys["old"]])
    c = s.client("admin")
    eid = upload(c, "Contact", FLAT)
    refuses(s, [], KEY_NEEDED)
    refuses(s, ["--compress"], KEY_NEEDED)
    c = restart_with(s, ["--encryption-key-file", keys["old"]])
    check_exact(c, "Contact", eid, FLAT)


@pytest.mark.parametrize("content", [b"", b"not a key\n", b"abcd" * 8 + b"\n",
                                     b"zz" * 32 + b"\n"])
def test_malformed_key_file_refuses_to_start(make_arg_server, tmp_path, content):
    k = tmp_path / "bad.key"
    k.write_bytes(content)
    os.chmod(k, 0o600)
    s = make_arg_server(["--encryption-key-file", k], start=False)
    rc = s.try_start(timeout=8)
    assert rc not in (None, 0), f"serve with a key file {content!r} -> {rc}: {s.refusal[-500:]}"


def test_missing_key_file_refuses_to_start(make_arg_server, tmp_path):
    s = make_arg_server(["--encryption-key-file", tmp_path / "nope.key"], start=False)
    rc = s.try_start(timeout=8)
    assert rc not in (None, 0), rc


# --------------------------------------------------------------------------
# rekey


def test_rekey_old_to_new(make_arg_server, keys):
    s = make_arg_server(["--encryption-key-file", keys["old"]])
    c = s.client("admin")
    p = upload(c, "Person", PHOTO)
    f = upload(c, "Product", FLAT)
    v_before = c.get_image("Person", p, params={"w": 64}).content
    info_before = {(k, e): c.info(k, e) for k, e in (("Person", p), ("Product", f))}
    assert s.stop() == 0
    r = rekey(s, "--encryption-key-file", keys["old"], "--new-key-file", keys["new"])
    assert r.returncode == 0, f"rekey -> {r.returncode}: {r.stdout} {r.stderr}"
    # not a terminal: one plain summary line on stderr (2 pictures, the w=64 variant...)
    last = re.search(r"^rekey: (\d+) pictures and variants, ([\d.]+) MiB", r.stderr, re.M)
    assert last and int(last.group(1)) >= 3, r.stderr
    c = restart_with(s, ["--encryption-key-file", keys["new"]])
    check_info(c, "Person", p, PHOTO, zipped=False, encrypted=True)
    check_info(c, "Product", f, FLAT, zipped=False, encrypted=True)
    check_exact(c, "Person", p, PHOTO)
    check_exact(c, "Product", f, FLAT)
    assert c.get_image("Person", p, params={"w": 64}).content == v_before
    for (k, e) in (("Person", p), ("Product", f)):
        after = c.info(k, e)
        for field in ("BlobId", "MimeType", "OriginalSize", "UpdatedDate", "CreatedDate"):
            assert after[field] == info_before[(k, e)][field], (field, after, info_before[(k, e)])
    refuses(s, ["--encryption-key-file", keys["old"]], KEY_MISMATCH)
    refuses(s, [], KEY_NEEDED)


def test_rekey_with_wrong_old_key_fails_and_changes_nothing(make_arg_server, keys):
    s = make_arg_server(["--encryption-key-file", keys["old"]])
    c = s.client("admin")
    p = upload(c, "Person", PHOTO)
    assert s.stop() == 0
    r = rekey(s, "--encryption-key-file", keys["other"], "--new-key-file", keys["new"])
    assert r.returncode != 0, f"rekey with the wrong old key exited 0: {r.stdout} {r.stderr}"
    assert re.search(r"key", r.stdout + r.stderr, re.I), r.stderr
    c = restart_with(s, ["--encryption-key-file", keys["old"]])
    check_exact(c, "Person", p, PHOTO)


def test_rekey_encrypted_db_without_old_key_fails(make_arg_server, keys):
    s = make_arg_server(["--encryption-key-file", keys["old"]])
    c = s.client("admin")
    p = upload(c, "Person", PHOTO)
    assert s.stop() == 0
    r = rekey(s, "--new-key-file", keys["new"])
    assert r.returncode != 0, f"rekey without the old key exited 0: {r.stdout} {r.stderr}"
    c = restart_with(s, ["--encryption-key-file", keys["old"]])
    check_exact(c, "Person", p, PHOTO)


def test_rekey_plain_db_encrypts_everything(make_arg_server, keys):
    s = make_arg_server([])
    c = s.client("admin")
    p = upload(c, "Person", PHOTO)
    f = upload(c, "Contact", FLAT)
    g = upload(c, "Project", "anim_40x30.gif")
    c.get_image("Person", p, params={"w": 100})       # a cached variant, to be encrypted too
    assert s.stop() == 0
    r = rekey(s, "--new-key-file", keys["new"])
    assert r.returncode == 0, f"rekey -> {r.returncode}: {r.stdout} {r.stderr}"
    c = restart_with(s, ["--encryption-key-file", keys["new"]])
    for kind, eid, name in (("Person", p, PHOTO), ("Contact", f, FLAT),
                            ("Project", g, "anim_40x30.gif")):
        check_info(c, kind, eid, name, zipped=False, encrypted=True)
        check_exact(c, kind, eid, name)
    assert imgmeta.dims(c.get_image("Person", p, params={"w": 100}).content) == (100, 75)
    refuses(s, [], KEY_NEEDED)
    refuses(s, ["--encryption-key-file", keys["other"]], KEY_MISMATCH)


def test_rekey_plain_db_leaves_no_plaintext(make_arg_server, keys):
    """After encrypting a plain db, the old plaintext must not linger in the
    database file (free pages, WAL)."""
    s = make_arg_server([])
    c = s.client("admin")
    upload(c, "Person", PHOTO)
    upload(c, "Contact", FLAT)
    assert s.stop() == 0
    r = rekey(s, "--new-key-file", keys["new"])
    assert r.returncode == 0, f"rekey -> {r.returncode}: {r.stdout} {r.stderr}"
    assert_no_plaintext(s, [PHOTO, FLAT])


def test_rekey_compress_keeps_compression(make_arg_server, keys):
    s = make_arg_server(["--compress"])
    c = s.client("admin")
    f = upload(c, "Person", FLAT)
    p = upload(c, "Person", PHOTO)
    assert s.stop() == 0
    r = rekey(s, "--new-key-file", keys["new"], "--compress")
    assert r.returncode == 0, f"rekey -> {r.returncode}: {r.stdout} {r.stderr}"
    c = restart_with(s, ["--compress", "--encryption-key-file", keys["new"]])
    check_info(c, "Person", f, FLAT, zipped=True, encrypted=True)
    check_info(c, "Person", p, PHOTO, zipped=False, encrypted=True)
    check_exact(c, "Person", f, FLAT)
    check_exact(c, "Person", p, PHOTO)


def test_rekey_twice(make_arg_server, keys):
    s = make_arg_server([])
    c = s.client("admin")
    p = upload(c, "Product", PHOTO)
    assert s.stop() == 0
    assert rekey(s, "--new-key-file", keys["old"]).returncode == 0
    r = rekey(s, "--encryption-key-file", keys["old"], "--new-key-file", keys["new"])
    assert r.returncode == 0, r.stderr
    c = restart_with(s, ["--encryption-key-file", keys["new"]])
    check_info(c, "Product", p, PHOTO, zipped=False, encrypted=True)
    check_exact(c, "Product", p, PHOTO)


def test_rekey_without_compress_flags_tell_the_truth(make_arg_server, keys):
    """`rekey` without --compress may store blobs uncompressed; whatever it
    does, the record's flags and sizes describe it and the bytes come back."""
    s = make_arg_server(["--compress"])
    c = s.client("admin")
    f = upload(c, "Person", FLAT)
    assert s.stop() == 0
    r = rekey(s, "--new-key-file", keys["new"])
    assert r.returncode == 0, f"rekey -> {r.returncode}: {r.stdout} {r.stderr}"
    c = restart_with(s, ["--encryption-key-file", keys["new"]])
    info = c.info("Person", f)
    check_info(c, "Person", f, FLAT, zipped=info["IsZipped"], encrypted=True)
    check_exact(c, "Person", f, FLAT)


def test_rekey_compress_on_plain_db(make_arg_server, keys):
    s = make_arg_server([])
    c = s.client("admin")
    f = upload(c, "Contact", FLAT)
    p = upload(c, "Contact", PHOTO)
    assert s.stop() == 0
    r = rekey(s, "--new-key-file", keys["new"], "--compress")
    assert r.returncode == 0, f"rekey -> {r.returncode}: {r.stdout} {r.stderr}"
    c = restart_with(s, ["--encryption-key-file", keys["new"]])
    check_info(c, "Contact", f, FLAT, zipped=True, encrypted=True)
    check_info(c, "Contact", p, PHOTO, zipped=False, encrypted=True)
    check_exact(c, "Contact", f, FLAT)
    check_exact(c, "Contact", p, PHOTO)


def test_compressed_variants_readable_without_flag(make_arg_server):
    """Cached variants stored compressed are read back after a restart without --compress."""
    s = make_arg_server(["--compress"])
    c = s.client("admin")
    eid = upload(c, "Person", FLAT)
    v1 = c.get_image("Person", eid, params={"w": 100})
    assert_image_answer(v1, "image/tiff")
    c = restart_with(s, [])
    v2 = c.get_image("Person", eid, params={"w": 100})
    assert assert_image_answer(v2, "image/tiff") == v1.content
    assert s.alive()


def test_rekey_while_server_runs_is_refused_or_safe(make_arg_server, keys):
    """`rekey` is meant for a stopped server. Run against a live one it must
    refuse (non-zero exit), or else leave every picture readable — those
    stored before and those uploaded after it ran."""
    s = make_arg_server(["--encryption-key-file", keys["old"]])
    c = s.client("admin")
    p = upload(c, "Person", PHOTO)
    r = rekey(s, "--encryption-key-file", keys["old"], "--new-key-file", keys["new"])
    if r.returncode != 0:
        check_exact(c, "Person", p, PHOTO)
        return
    check_exact(c, "Person", p, PHOTO)          # the running server still reads it
    q = upload(c, "Person", FLAT)
    c = restart_with(s, ["--encryption-key-file", keys["new"]])
    check_exact(c, "Person", p, PHOTO)
    check_exact(c, "Person", q, FLAT)           # uploaded between rekey and restart


def test_key_added_to_plain_db_flags_tell_the_truth(make_arg_server, keys):
    """Starting with a key on a db of plain pictures: the old ones stay plain
    (IsEncrypted false) and readable, new ones are encrypted."""
    s = make_arg_server([])
    c = s.client("admin")
    p = upload(c, "Person", PHOTO)
    c = restart_with(s, ["--encryption-key-file", keys["old"]])
    check_info(c, "Person", p, PHOTO, zipped=False, encrypted=False)
    check_exact(c, "Person", p, PHOTO)
    q = upload(c, "Person", FLAT)
    check_info(c, "Person", q, FLAT, zipped=False, encrypted=True)
    check_exact(c, "Person", q, FLAT)
    refuses(s, ["--encryption-key-file", keys["other"]], KEY_MISMATCH)
