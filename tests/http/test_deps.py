"""scripts/deps.sh's groups: `make run` installs what building and running
need and nothing of the tests', the runtime group (the Docker image's run
stage) holds every library the built programs load, the build group every
package the Makefile's pkg-config modules come from.

What the programs load and where a .pc file comes from is asked of this
machine (readelf, dpkg -S), so a new library linked without its package
in the lists fails here.
"""
import re
import shutil
import subprocess

import pytest

from conftest import BIN, REPO

DEPS = REPO / "scripts" / "deps.sh"


def group(*names):
    p = subprocess.run(["bash", str(DEPS), "--list", *names], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return set(p.stdout.split())


def package_of(path):
    p = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
    assert p.returncode == 0, f"no package holds {path}: {p.stderr}"
    return p.stdout.split(":")[0].strip()


def needs_dpkg():
    if shutil.which("dpkg") is None or shutil.which("readelf") is None:
        pytest.skip("dpkg and readelf are needed (a Debian machine, binutils)")


def test_groups_are_apart():
    build, test, fuzz = group("build"), group("test"), group("fuzz")
    assert build and test and fuzz
    assert not build & (test | fuzz), build & (test | fuzz)
    assert "clang" not in build and "python3-pytest" not in build


def test_unknown_group_is_refused():
    p = subprocess.run(["bash", str(DEPS), "--list", "tests"], capture_output=True, text=True)
    assert p.returncode == 2 and "unknown group 'tests'" in p.stderr


def test_make_run_installs_the_build_group_only():
    make = (REPO / "Makefile").read_text()

    def prereqs(target):
        return re.search(rf"^{target}:(.*)$", make, re.M).group(1).split()

    def installs(target):
        p = subprocess.run(["make", "-n", "-C", str(REPO), target], capture_output=True,
                           text=True, timeout=60)
        return re.findall(r"scripts/deps\.sh(.*)", p.stdout)

    assert "deps" in prereqs("run") and installs("deps") == [" build"]
    assert "test-deps" in prereqs("test") and installs("test-deps") == [" build test fuzz"]
    assert "fuzz-deps" in prereqs("fuzz-build") and installs("fuzz-deps") == [" build fuzz"]
    assert not {"test-deps", "fuzz-deps"} & set(prereqs("run") + prereqs("bench"))


def test_runtime_group_holds_every_library_loaded():
    needs_dpkg()
    runtime = group("runtime")
    missing = {}
    known = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    for prog in ("crmblob", "crmblob-img", "crmblob-pg.so"):
        out = subprocess.run(["readelf", "-d", str(BIN.parent / prog)], capture_output=True,
                             text=True, check=True).stdout
        for lib in re.findall(r"\(NEEDED\).*\[(.+)\]", out):
            if re.match(r"lib[alt]?[a-z]*san\.so", lib):
                continue  # a sanitizer's runtime (the ASan build), never in a release
            m = re.search(rf"^\s*{re.escape(lib)} \([^)]*\) => (\S+)$", known, re.M)
            assert m, f"{prog}: {lib} not known to ldconfig"
            # /lib is /usr/lib (merged /usr): ask for the path under either
            pkg = package_of("*" + re.sub(r"^/usr", "", m.group(1))).split(",")[0]
            if pkg not in runtime and pkg != "libc6":
                missing.setdefault(pkg, []).append(f"{prog}: {lib}")
    assert not missing, f"the runtime group lacks {missing}"


def test_build_group_holds_every_pkg_config_module():
    needs_dpkg()
    build = group("build")
    make = (REPO / "Makefile").read_text()
    mods = set(re.search(r"^SRV_PKGS\s*:=(.*)$", make, re.M).group(1).split())
    mods |= {m for m in re.search(r"^PKGS\s*:=(.*)$", make, re.M).group(1).split()
             if not m.startswith("$(")}
    assert {"libmicrohttpd", "libpq", "vips"} <= mods, mods
    for mod in sorted(mods):
        d = subprocess.run(["pkg-config", "--variable=pcfiledir", mod], capture_output=True,
                           text=True, check=True).stdout.strip()
        pkg = package_of(f"{d}/{mod}.pc")
        assert pkg in build, f"pkg-config {mod} comes from {pkg}, not in the build group"
