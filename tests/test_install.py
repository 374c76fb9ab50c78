"""Installation: with-env.sh's argument handling and checks, the torch pairing table, the wheelhouse's
missing-package error, and pyproject's dependency list. No real install runs here (README "Requirements"
says how the offline install was tested)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WITH_ENV = ROOT / "workflow" / "scripts" / "with-env.sh"

spec = importlib.util.spec_from_file_location("hera_env", ROOT / "workflow" / "scripts" / "hera_env.py")
hera_env = importlib.util.module_from_spec(spec)
sys.modules["hera_env"] = hera_env
spec.loader.exec_module(hera_env)


def with_env(tmp_path, *args, python=None, env=None):
    e = {k: v for k, v in os.environ.items() if k not in ("HERA_PYTHON", "HERA_TORCH")}
    e.update(HERA_VENV=str(tmp_path / "venv"), HERA_PYTHON=python or sys.executable, **(env or {}))
    return subprocess.run(["bash", str(WITH_ENV), *args], capture_output=True, text=True, env=e, timeout=120)


def _one_line_error(proc) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "error:" in ln]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _fake_python(tmp_path, version: str, venv_ok: bool = True) -> str:
    """An interpreter stand-in that reports ``version`` and fails ``import venv, ensurepip`` unless venv_ok."""
    p = tmp_path / f"python{version}"
    p.write_text("#!/bin/sh\n"
                 + ("" if venv_ok else 'case "$*" in *ensurepip*) exit 1;; esac\n')
                 + f"echo {version}\n")
    p.chmod(0o755)
    return str(p)


def test_with_env_argument_errors(tmp_path):
    assert "unknown option --frobnicate" in _one_line_error(with_env(tmp_path, "--frobnicate", "true"))
    assert "no command given" in _one_line_error(with_env(tmp_path))
    assert "--wheelhouse needs a directory" in _one_line_error(with_env(tmp_path, "--wheelhouse"))
    err = _one_line_error(with_env(tmp_path, "--wheelhouse", str(tmp_path / "nowhere"), "true"))
    assert f"wheelhouse {tmp_path / 'nowhere'} is not a directory" in err
    assert not (tmp_path / "venv").exists()


def test_with_env_checks_python_version_and_venv(tmp_path):
    err = _one_line_error(with_env(tmp_path, "true", python=str(tmp_path / "no-such-python")))
    assert "no Python interpreter" in err and "python3.11-venv" in err
    err = _one_line_error(with_env(tmp_path, "true", python=_fake_python(tmp_path, "3.9")))
    assert "is Python 3.9; Hera needs Python >= 3.11" in err
    err = _one_line_error(with_env(tmp_path, "--python", _fake_python(tmp_path, "3.12", venv_ok=False), "true"))
    assert "cannot create virtual environments" in err and "apt-get install python3.12-venv" in err


def _wheelhouse(folder: Path, leave_out: str) -> Path:
    """Empty stand-ins named like the wheels a venv-torch install needs, but for ``leave_out``."""
    folder.mkdir()
    p = hera_env.plan()
    for req in p.requirements + [p.torch, f"torchrec=={p.pair.torchrec}"]:
        name = hera_env.req_name(req).replace("-", "_")
        if name != leave_out.replace("-", "_"):
            (folder / f"{name}-1.0-py3-none-any.whl").write_bytes(b"")
    return folder


def test_wheelhouse_missing_a_package_is_a_one_line_error(tmp_path):
    wh = _wheelhouse(tmp_path / "wh", "seaborn")
    err = _one_line_error(with_env(tmp_path, "--wheelhouse", str(wh), "true", env={"HERA_TORCH": "venv"}))
    assert f"the wheelhouse {wh} has no wheel for seaborn" in err and "make-wheelhouse.sh" in err
    assert not (tmp_path / "venv").exists()  # nothing was installed
    # the same rule for the package pip reports missing among the dependencies
    out = "ERROR: Could not find a version that satisfies the requirement filelock\n" \
          "ERROR: No matching distribution found for filelock (from torch==2.13.0+cpu)"
    assert hera_env.missing_from_pip(out) == "filelock"
    assert hera_env.missing_from_pip("Successfully installed x") is None


def test_torch_pairs_table():
    pairs = hera_env.read_pairs()
    first = pairs[0]
    assert (first.torch, first.fbgemm, first.torchrec) == ("2.13.0", "1.8.0", "1.8.0")
    assert {p.minor: p.fbgemm for p in pairs} == {"2.13": "1.8.0", "2.11": "1.6.0", "2.10": "1.5.0", "2.9": "1.4.0"}
    # the tested row is what this test run uses
    assert metadata.version("torch").startswith(first.torch) and metadata.version("fbgemm-gpu-cpu") == first.fbgemm
    assert metadata.version("torchrec") == first.torchrec


def test_install_plan_uses_a_compatible_preinstalled_torch():
    p = hera_env.plan(installed="2.11.0+cu128")
    assert p.torch is None and p.system_site and (p.pair.fbgemm, p.pair.torchrec) == ("1.6.0", "1.6.1")
    assert "fbgemm-gpu-cpu==1.6.0" in p.requirements and "preinstalled torch 2.11.0+cu128" in p.note
    p = hera_env.plan(installed="2.12.1")  # no tested fbgemm-gpu-cpu for it: own torch in the venv
    assert p.torch == "torch==2.13.0+cpu" and not p.system_site and "pairs no fbgemm-gpu-cpu" in p.note
    p = hera_env.plan(installed="2.11.0", force_venv_torch=True)
    assert p.torch == "torch==2.13.0+cpu" and "fbgemm-gpu-cpu==1.8.0" in p.requirements
    assert hera_env.plan(installed=None).torch == "torch==2.13.0+cpu"
    assert hera_env.plan(("snakemake",)).requirements == [r for r in hera_env.plan().requirements
                                                          if not r.startswith("snakemake==")]
    with pytest.raises(hera_env.EnvError, match="built for a preinstalled torch 2.11"):
        hera_env.plan(manifest={"preinstalled_torch": "2.11"}, installed=None)
    assert hera_env.plan(manifest={"preinstalled_torch": "2.11"}, installed="2.11.0").torch is None
    assert hera_env.plan(manifest={"torch": "2.13.0+cpu"}, installed="2.11.0").torch == "torch==2.13.0+cpu"


def _fake_installer(tmp_path, name: str, ok: bool) -> str:
    """A stand-in for uv or python that logs its arguments to ``<name>.calls`` and exits 0 (ok) or 1."""
    p = tmp_path / name
    p.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / (name + ".calls")}\nexit {0 if ok else 1}\n')
    p.chmod(0o755)
    return str(p)


def _calls(tmp_path, name: str) -> list[str]:
    f = tmp_path / f"{name}.calls"
    return f.read_text().splitlines() if f.exists() else []


@pytest.mark.parametrize("uv_ok", [True, False])
def test_installer_uses_uv_with_torch_pinned_and_falls_back_to_pip(tmp_path, uv_ok):
    """uv installs into the venv's interpreter with the venv's torch as a constraint; where it fails once,
    pip installs that and everything after it (uv is not asked again)."""
    log = tmp_path / "install.log"
    python = _fake_installer(tmp_path, "python", ok=True)
    pip = hera_env.Pip(python, log)
    pins = tmp_path / "hera-constraints.txt"
    uv = hera_env.Uv(_fake_installer(tmp_path, "uv", ok=uv_ok), python, log).pinned(pins)
    inst = hera_env.Installer(pip, uv)
    inst.install(["numpy", "pandas"], "the requirements")
    inst.install(["torchrec==1.8.0"], "torchrec", "--no-deps")
    uv_calls, pip_calls = _calls(tmp_path, "uv"), _calls(tmp_path, "python")
    assert uv_calls[0] == f"pip install --python {python} --compile-bytecode --constraint {pins} -q numpy pandas"
    if uv_ok:
        assert len(uv_calls) == 2 and uv_calls[1].endswith("-q --no-deps torchrec==1.8.0") and not pip_calls
        assert inst.uv is not None
    else:
        assert len(uv_calls) == 1 and inst.uv is None
        assert pip_calls == ["-m pip install -q numpy pandas", "-m pip install -q --no-deps torchrec==1.8.0"]
        assert "uv failed installing the requirements: pip installs the rest" in log.read_text()
    # only an install is constrained
    assert hera_env.Uv("uv", "py", log, pins).command(["list"]) == ["uv", "pip", "list", "--python", "py"]


def test_uv_trusts_the_platform_certificates_unless_told_otherwise(tmp_path, monkeypatch):
    """uv is run with the platform's certificate store (both names of the switch) and pip's PIP_CERT bundle, so a
    TLS-intercepting proxy the system trusts does not fail uv where pip works; a user's own choice is kept, and
    pip's environment is left as it is."""
    env = hera_env.uv_environment({"PATH": "/bin", "PIP_CERT": "/etc/ca.pem"})
    assert env["UV_NATIVE_TLS"] == env["UV_SYSTEM_CERTS"] == "1" and env["SSL_CERT_FILE"] == "/etc/ca.pem"
    assert env["PATH"] == "/bin"
    assert "SSL_CERT_FILE" not in hera_env.uv_environment({})
    for mine in ({"UV_NATIVE_TLS": "0"}, {"UV_SYSTEM_CERTS": "false"}, {"SSL_CERT_FILE": "/mine.pem"}):
        assert hera_env.uv_environment(mine) == mine
    # the variables reach the uv process, not pip's
    seen = tmp_path / "env.txt"
    fake = tmp_path / "uv"
    fake.write_text(f'#!/bin/sh\necho "$UV_SYSTEM_CERTS $UV_NATIVE_TLS $SSL_CERT_FILE" >> {seen}\n')
    fake.chmod(0o755)
    for var in ("UV_NATIVE_TLS", "UV_SYSTEM_CERTS", "SSL_CERT_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIP_CERT", "/etc/ca.pem")
    log = tmp_path / "install.log"
    assert hera_env.Uv(str(fake), "py", log).run(["list"], "a listing", check=False)
    assert seen.read_text().split() == ["1", "1", "/etc/ca.pem"]
    assert hera_env.Pip("py", log).environment() is None


def test_installer_is_pip_when_asked_or_offline(tmp_path, monkeypatch):
    """HERA_INSTALLER=pip never installs uv; where pip cannot install uv, there is none (pip does it all)."""
    log = tmp_path / "install.log"
    pip = hera_env.Pip(_fake_installer(tmp_path, "python", ok=False), log)
    monkeypatch.setenv("HERA_INSTALLER", "pip")
    assert hera_env.get_uv(pip, tmp_path) is None and not _calls(tmp_path, "python")
    monkeypatch.setenv("HERA_INSTALLER", "uv")
    assert hera_env.get_uv(pip, tmp_path) is None  # pip could not install uv
    assert _calls(tmp_path, "python") == [f"-m pip install -q {hera_env.UV_REQUIREMENT}"]
    assert hera_env.pin_torch(None, tmp_path) is None


def test_pyproject_lists_every_runtime_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = {hera_env.req_name(d) for d in project["dependencies"]}
    listed |= {hera_env.req_name(d) for ds in project["optional-dependencies"].values() for d in ds}
    needed = {hera_env.req_name(r) for r in hera_env.requirements()}
    assert needed <= listed, needed - listed
    first = hera_env.read_pairs()[0]
    assert f"torch=={first.torch}" in project["dependencies"]
    assert f"fbgemm-gpu-cpu=={first.fbgemm}" in project["dependencies"]
    for mod in ("scipy", "matplotlib", "seaborn", "pyarrow"):
        assert mod in listed


def test_a_venv_without_room_is_a_one_line_error_before_anything_is_installed(tmp_path, monkeypatch):
    """Setup checks the free space where the venv goes before it starts (a full disk otherwise fails half way,
    in pip's words); the venv being replaced counts as free; HERA_SKIP_DISK_CHECK=1 skips the check."""
    free = {"bytes": 10**9}
    monkeypatch.setattr(hera_env.shutil, "disk_usage", lambda path: shutil_usage(free["bytes"]))
    monkeypatch.delenv("HERA_SKIP_DISK_CHECK", raising=False)
    venv = tmp_path / "deep" / "venv"
    with pytest.raises(hera_env.EnvError) as exc:
        hera_env.setup(venv)
    msg = str(exc.value)
    assert f"the venv {venv} needs about 2.5 GB free" in msg and "has 1.00 GB" in msg and "HERA_VENV" in msg
    assert "\n" not in msg and not venv.exists() and not (tmp_path / "deep").exists()
    # a preinstalled torch needs less
    free["bytes"] = 1_500_000_000
    hera_env.check_disk(venv, hera_env.NEEDED_BYTES_PREINSTALLED_TORCH)
    with pytest.raises(hera_env.EnvError, match="has 1.50 GB"):
        hera_env.check_disk(venv, hera_env.NEEDED_BYTES_OWN_TORCH)
    # the old venv's files count as free
    old = tmp_path / "old"
    old.mkdir()
    (old / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (old / "big").write_bytes(b"\0" * 1000)
    free["bytes"] = hera_env.NEEDED_BYTES_OWN_TORCH - 500
    hera_env.check_disk(old, hera_env.NEEDED_BYTES_OWN_TORCH)
    with pytest.raises(hera_env.EnvError, match="needs about 2.5 GB"):
        hera_env.check_disk(tmp_path / "new", hera_env.NEEDED_BYTES_OWN_TORCH)
    hera_env.check_disk(tmp_path / "new", hera_env.NEEDED_BYTES_OWN_TORCH, {"HERA_SKIP_DISK_CHECK": "1"})


def shutil_usage(free: int):
    """What shutil.disk_usage returns, for a file system with ``free`` bytes free."""
    return shutil._ntuple_diskusage(10**12, 10**12 - free, free)


def test_uv_cache_lives_in_the_venv_unless_the_user_chose_one(tmp_path, monkeypatch):
    """uv fills a new venv from a cache inside it (removed after setup), so repeated setups leave nothing in
    ~/.cache/uv; a UV_CACHE_DIR of the user's is kept."""
    log = tmp_path / "install.log"
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    _fake_installer(venv / "bin", "uv", ok=True)
    pip = hera_env.Pip(_fake_installer(tmp_path, "python", ok=True), log)
    monkeypatch.delenv("UV_CACHE_DIR", raising=False)
    monkeypatch.setenv("HERA_INSTALLER", "uv")
    uv = hera_env.get_uv(pip, venv)
    assert uv.cache == venv / ".uv-cache" and uv.environment()["UV_CACHE_DIR"] == str(venv / ".uv-cache")
    assert uv.pinned(tmp_path / "pins.txt").cache == uv.cache
    monkeypatch.setenv("UV_CACHE_DIR", "/mine")
    uv = hera_env.get_uv(pip, venv)
    assert uv.cache is None and uv.environment()["UV_CACHE_DIR"] == "/mine"
