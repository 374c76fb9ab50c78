"""Set up Hera's Python environment (``with-env.sh``) and build wheelhouses for offline installs
(``make-wheelhouse.sh``). Standard library only: it runs under the interpreter the venv is made from.

    python3 workflow/scripts/hera_env.py setup --venv .venv [--wheelhouse DIR] [--without NAME,...]
    python3 workflow/scripts/hera_env.py wheelhouse [--python 3.12] [--preinstalled-torch 2.11] DIR

torch, fbgemm-gpu-cpu and torchrec come from ``workflow/envs/torch-pairs.txt`` (one row per torch release,
with the FBGEMM and TorchRec releases built for it); everything else from ``workflow/envs/requirements.txt``.

- **preinstalled torch**: when the interpreter (not a venv's) already has a torch release the table lists,
  the venv is made with ``--system-site-packages`` and uses it (and any other package already there); only
  the matching fbgemm-gpu-cpu, torchrec (``--no-deps``) and what is missing are installed.
  ``HERA_TORCH=venv`` installs the table's first torch into the venv instead.
- **otherwise** the CPU build ``torch==<first row>+cpu`` is installed: first from pip's configured sources
  (a mirror, a local wheel folder), then from ``HERA_TORCH_INDEX`` (default: the PyTorch CPU index). It is
  never replaced silently by PyPI's plain ``torch``, the multi-GB CUDA build.
- **wheelhouse** (``--wheelhouse DIR``): every install is ``pip --no-index --find-links DIR``; ``DIR`` is built
  by the ``wheelhouse`` command for a chosen Python version and platform, and its ``hera-wheelhouse.json``
  says which torch it was made for. A package it lacks is a one-line error naming the package.

- **installer**: a new venv (no wheelhouse, no preinstalled torch) is filled by uv's pip interface where it
  works: uv is installed into the venv with pip, torch's wheel is fetched by ``pip download`` (pip's configured
  sources, as above) and installed by uv, then the requirements with the venv's torch pinned
  (``<venv>/hera-constraints.txt``), so uv can never swap it; installs compile bytecode (``Uv``). On the 2-core
  VM this takes ~1.1 min from a cold uv cache instead of pip's ~2.5 min. uv is told to trust the platform's
  certificate store as pip does (``uv_environment``). Unless ``UV_CACHE_DIR`` is set, uv's cache lives inside
  the venv while it is filled (uv hard-links the venv's files from it, so it costs no space of its own) and is
  removed at the end: creating venvs again and again leaves nothing behind in ``~/.cache/uv`` (one venv each
  time left ~1.1 GB there, until the disk was full). Where uv cannot be had or fails (no
  route to PyPI, only a pip-configured mirror), pip installs the rest, exactly as before. ``HERA_INSTALLER=pip``
  uses pip alone.

- **disk**: a new venv needs about 2.5 GB free where it goes (1.2 GB with a preinstalled torch; torch alone is
  0.75 GB installed); with less, setup stops before it starts with a one-line error naming the place and both
  figures, instead of failing half way through with pip's "No space left on device".
  ``HERA_SKIP_DISK_CHECK=1`` skips the check.

Errors are one line (``hera-env: error: ...``) with pip's full output in ``<venv>/hera-install.log``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENVS = ROOT / "workflow" / "envs"
PAIRS = ENVS / "torch-pairs.txt"
REQUIREMENTS = ENVS / "requirements.txt"
MANIFEST = "hera-wheelhouse.json"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: uv (its pip interface) installs a new venv where it works (module doc, "installer").
UV_REQUIREMENT = "uv>=0.9"
#: Free bytes a new venv needs where it goes, with its own torch and with a preinstalled one (the venv of
#: torch 2.13.0 CPU and the requirements is 1.9 GB on disk; the torch wheel is fetched beside it first).
NEEDED_BYTES_OWN_TORCH = 2_500_000_000
NEEDED_BYTES_PREINSTALLED_TORCH = 1_200_000_000
#: Needed to install the hera package itself (editable, without build isolation: works offline).
BUILD_REQUIREMENTS = ["setuptools>=70.1"]
#: Platforms a Linux x86-64 wheelhouse accepts (newest first).
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux_2_12_x86_64", "manylinux2010_x86_64"]
#: Packages that depend on torch: downloaded without dependencies so a wheelhouse for a preinstalled torch
#: does not pull another torch in; their other dependencies are read from their metadata.
TORCH_DEPENDENTS = ("fbgemm-gpu-cpu", "tensordict", "torchmetrics", "torchrec")


class EnvError(Exception):
    """A one-line explanation of why the environment could not be set up."""


@dataclass(frozen=True)
class Pair:
    """One row of the torch table."""

    torch: str
    fbgemm: str
    torchrec: str
    tested: str

    @property
    def minor(self) -> str:
        return minor(self.torch)


def minor(version: str) -> str:
    """``2.11.0+cu128`` → ``2.11``."""
    parts = re.split(r"[.+]", version)
    return ".".join(parts[:2])


def norm(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def req_name(line: str) -> str:
    """The distribution name of a requirement line (``tritonclient[http]>=2`` → ``tritonclient``)."""
    return norm(re.split(r"[\[<>=!~;\s]", line.strip(), maxsplit=1)[0])


def read_pairs(path: Path = PAIRS) -> list[Pair]:
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 3)
        rows.append(Pair(parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else ""))
    if not rows:
        raise EnvError(f"{path} lists no torch release")
    return rows


def pair_for(torch_version: str, pairs: list[Pair] | None = None) -> Pair | None:
    """The table row of a torch release (by major.minor), or None."""
    return next((p for p in (pairs or read_pairs()) if p.minor == minor(torch_version)), None)


def requirements(without: tuple[str, ...] = (), path: Path = REQUIREMENTS) -> list[str]:
    """Requirement lines of ``requirements.txt`` (no comments), leaving out the names in ``without``."""
    skip = {norm(n) for n in without}
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and req_name(line) not in skip:
            out.append(line)
    return out


def preinstalled_torch() -> str | None:
    """The torch version this interpreter already has, if a venv made from it can see it (not in a venv)."""
    if sys.prefix != sys.base_prefix or importlib.util.find_spec("torch") is None:
        return None
    from importlib import metadata

    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class Plan:
    """What :func:`setup` installs."""

    pair: Pair
    torch: str | None  # requirement for torch, None = use the preinstalled one
    system_site: bool
    requirements: list[str]
    note: str


def plan(without: tuple[str, ...] = (), manifest: dict | None = None, installed: str | None = None,
         force_venv_torch: bool = False) -> Plan:
    """Decide torch and the package list (see the module docstring)."""
    pairs = read_pairs()
    reqs = requirements(without) + BUILD_REQUIREMENTS
    if manifest is not None and manifest.get("preinstalled_torch"):
        want = manifest["preinstalled_torch"]
        if installed is None or minor(installed) != minor(want):
            raise EnvError(f"the wheelhouse was built for a preinstalled torch {want}, but {sys.executable} has "
                           f"{'no torch' if installed is None else 'torch ' + installed}: rebuild it with "
                           "make-wheelhouse.sh for this Python")
        installed, force_venv_torch = want, False
    elif manifest is not None:
        installed = None  # the wheelhouse carries its own torch
    if installed and not force_venv_torch:
        pair = pair_for(installed, pairs)
        if pair is not None:
            return Plan(pair, None, True, reqs + [f"fbgemm-gpu-cpu=={pair.fbgemm}"],
                        f"using the preinstalled torch {installed} with fbgemm-gpu-cpu {pair.fbgemm}, "
                        f"torchrec {pair.torchrec} ({pair.tested})")
        note = (f"torch {installed} is installed but {PAIRS.name} pairs no fbgemm-gpu-cpu with it: installing "
                f"torch {pairs[0].torch} (CPU build) into the venv")
    else:
        note = f"installing torch {pairs[0].torch} (CPU build) into the venv"
    pair = pairs[0]
    return Plan(pair, f"torch=={pair.torch}+cpu", False, reqs + [f"fbgemm-gpu-cpu=={pair.fbgemm}"], note)


# ------------------------------------------------------------------------------------------- wheelhouse
def wheel_names(folder: Path) -> set[str]:
    """Normalised distribution names of the wheels in ``folder``."""
    return {norm(p.name.split("-", 1)[0]) for p in folder.glob("*.whl")}


def missing_wheels(folder: Path, names: list[str]) -> list[str]:
    """The requirements (by name) that have no wheel in ``folder``."""
    have = wheel_names(folder)
    return [n for n in names if req_name(n) not in have]


def missing_from_pip(output: str) -> str | None:
    """The package pip could not find (``No matching distribution found for X``), if that is why it failed."""
    m = re.search(r"No matching distribution found for ([^\s]+)", output)
    return req_name(m.group(1)) if m else None


def read_manifest(folder: Path) -> dict | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise EnvError(f"{path} is not valid JSON: rebuild the wheelhouse with make-wheelhouse.sh") from None


# ------------------------------------------------------------------------------------------------ pip
class Pip:
    """pip of one interpreter, output into a log file, failures as one-line :class:`EnvError`."""

    def __init__(self, python: str, log: Path, wheelhouse: Path | None = None):
        self.python, self.log, self.wheelhouse = python, log, wheelhouse

    def source(self) -> list[str]:
        return ["--no-index", "--find-links", str(self.wheelhouse)] if self.wheelhouse else []

    def command(self, args: list[str]) -> list[str]:
        return [self.python, "-m", "pip", *args]

    def environment(self) -> dict[str, str] | None:
        """The environment of the install commands (None: this process's)."""
        return None

    def run(self, args: list[str], what: str, check: bool = True) -> bool:
        cmd = self.command(args)
        with open(self.log, "a") as f:
            f.write("$ " + " ".join(cmd) + "\n")
            f.flush()
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env=self.environment())
            f.write(proc.stdout)
        if proc.returncode == 0 or not check:
            return proc.returncode == 0
        name = missing_from_pip(proc.stdout)
        if name and self.wheelhouse:
            raise EnvError(f"the wheelhouse {self.wheelhouse} has no wheel for {name} (needed by {what}): rebuild "
                           f"it with workflow/scripts/make-wheelhouse.sh (pip's output: {self.log})")
        if name:
            raise EnvError(f"pip found no distribution for {name} (needed by {what}); see {self.log}")
        last = (proc.stdout.strip().splitlines() or ["no output"])[-1]
        raise EnvError(f"pip failed installing {what}: {last} (see {self.log})")

    def install(self, reqs: list[str], what: str, *extra: str) -> None:
        self.run(["install", "-q", *self.source(), *extra, *reqs], what)


class Uv(Pip):
    """uv's pip interface installing into the venv of ``python`` (same log; an install names ``constraints``,
    the venv's torch, so uv never replaces it). Used with ``check=False`` only: where it fails, pip goes on.
    Installs compile bytecode as pip's do: uv leaves it out by default, and where ``PYTHONDONTWRITEBYTECODE`` is
    set (as on our VMs) nothing writes it later, so every process would compile torch and TorchRec afresh on
    import (``import torchrec`` 12.2 s instead of 4.0 on the 2-core VM)."""

    def __init__(self, uv: str, python: str, log: Path, constraints: Path | None = None,
                 cache: Path | None = None):
        super().__init__(python, log)
        self.uv, self.constraints, self.cache = uv, constraints, cache

    def command(self, args: list[str]) -> list[str]:
        install = args[:1] == ["install"]
        pin = ["--constraint", str(self.constraints)] if self.constraints and install else []
        compiled = ["--compile-bytecode"] if install else []
        return [self.uv, "pip", *args[:1], "--python", self.python, *compiled, *pin, *args[1:]]

    def pinned(self, constraints: Path) -> Uv:
        return Uv(self.uv, self.python, self.log, constraints, self.cache)

    def environment(self) -> dict[str, str]:
        env = uv_environment(os.environ)
        if self.cache is not None:
            env["UV_CACHE_DIR"] = str(self.cache)
        return env


#: uv's switches for the platform's certificate store: ``UV_NATIVE_TLS`` up to uv 0.12, ``UV_SYSTEM_CERTS``
#: from 0.13 (each version ignores the other's name).
UV_TLS_SWITCHES = ("UV_NATIVE_TLS", "UV_SYSTEM_CERTS")


def uv_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` for uv, trusting what pip trusts. pip verifies with the system's CA bundle (and ``PIP_CERT``);
    uv by default only with the root certificates built into it, so behind a TLS-intercepting proxy whose CA
    the system trusts it fails ("invalid peer certificate: UnknownIssuer", seen on our CI VMs) where pip works.
    Unless the user chose already (either switch or ``SSL_CERT_FILE`` set), uv is told to use the platform's
    store, and pip's ``PIP_CERT`` bundle where one is set."""
    env = dict(environ)
    if not any(k in env for k in (*UV_TLS_SWITCHES, "SSL_CERT_FILE")):
        env.update({k: "1" for k in UV_TLS_SWITCHES})
        if env.get("PIP_CERT"):
            env["SSL_CERT_FILE"] = env["PIP_CERT"]
    return env


def get_uv(pip: Pip, venv: Path) -> Uv | None:
    """uv, installed into ``venv`` with pip (None where that fails, or with ``HERA_INSTALLER=pip``)."""
    if os.environ.get("HERA_INSTALLER", "uv") == "pip":
        return None
    if not pip.run(["install", "-q", UV_REQUIREMENT], "uv", check=False):
        return None
    uv = venv / "bin" / "uv"
    cache = None if os.environ.get("UV_CACHE_DIR") else venv / ".uv-cache"
    return Uv(str(uv), pip.python, pip.log, cache=cache) if uv.is_file() else None


def pin_torch(uv: Uv | None, venv: Path) -> Uv | None:
    """``uv`` with the venv's torch written to ``<venv>/hera-constraints.txt`` as its constraint (None: none)."""
    if uv is None:
        return None
    out = subprocess.run([uv.python, "-c", "from importlib.metadata import version; print(version('torch'))"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=False)
    if out.returncode != 0 or not out.stdout.strip():
        return None
    path = venv / "hera-constraints.txt"
    path.write_text(f"torch=={out.stdout.strip()}\n")
    return uv.pinned(path)


class Installer:
    """Installs with uv while it works, else (and from then on) with pip; the failures are pip's errors."""

    def __init__(self, pip: Pip, uv: Uv | None):
        self.pip, self.uv = pip, uv

    def install(self, reqs: list[str], what: str, *extra: str) -> None:
        if self.uv is not None:
            if self.uv.run(["install", "-q", *extra, *reqs], what, check=False):
                return
            with open(self.pip.log, "a") as f:
                f.write(f"[hera-env] uv failed installing {what}: pip installs the rest\n")
            self.uv = None
        self.pip.install(reqs, what, *extra)


def install_torch(pip: Pip, spec: str, uv: Uv | None = None) -> None:
    """The CPU build of torch: wheelhouse; else pip's configured sources, then ``HERA_TORCH_INDEX``. With
    ``uv``, pip only fetches the wheel from there and uv installs it (pip installs it where uv fails)."""
    if pip.wheelhouse:
        pip.install([spec], spec)
        return
    index = os.environ.get("HERA_TORCH_INDEX", TORCH_CPU_INDEX)
    if uv is not None:
        with tempfile.TemporaryDirectory(prefix="hera-torch-") as tmp:
            fetch = ["download", "-q", "--no-deps", "-d", tmp, spec]
            if pip.run(fetch, spec, check=False) or (index and pip.run([*fetch, "--extra-index-url", index],
                                                                       spec, check=False)):
                wheel = sorted(Path(tmp).glob("torch-*.whl"))
                if wheel and (uv.run(["install", "-q", str(wheel[0])], spec, check=False)
                              or pip.run(["install", "-q", str(wheel[0])], spec, check=False)):
                    return
    if pip.run(["install", "-q", spec], spec, check=False):
        return
    if index and pip.run(["install", "-q", "--extra-index-url", index, spec], spec, check=False):
        return
    raise EnvError(f"{spec} (the CPU build of torch) was found neither through pip's configured sources nor "
                   f"at HERA_TORCH_INDEX={index or '(empty)'}: set HERA_TORCH_INDEX to a reachable copy of the "
                   f"PyTorch CPU index, or install from a wheelhouse (--wheelhouse DIR); see {pip.log}")


def check_disk(venv: Path, needed: int, environ: Mapping[str, str] = os.environ) -> None:
    """One-line :class:`EnvError` where the file system that will hold ``venv`` has less than ``needed`` bytes
    free (an existing venv there counts as free: setup replaces it). ``HERA_SKIP_DISK_CHECK=1`` skips it."""
    if environ.get("HERA_SKIP_DISK_CHECK") == "1":
        return
    place = venv
    while not place.exists() and place != place.parent:
        place = place.parent
    free = shutil.disk_usage(place).free
    if venv.is_dir() and (venv / "pyvenv.cfg").is_file():
        free += sum(f.stat().st_size for f in venv.rglob("*") if f.is_file() and not f.is_symlink())
    if free < needed:
        raise EnvError(f"the venv {venv} needs about {needed / 1e9:.1f} GB free on its file system, which has "
                       f"{free / 1e9:.2f} GB: free some space there or set HERA_VENV to a place with more "
                       "(HERA_SKIP_DISK_CHECK=1 skips this check)")


def setup(venv: Path, wheelhouse: Path | None = None, without: tuple[str, ...] = ()) -> str:
    """Create ``venv`` and install Hera into it; returns a one-line summary."""
    manifest = None
    if wheelhouse is not None:
        if not wheelhouse.is_dir():
            raise EnvError(f"wheelhouse {wheelhouse} is not a directory (build it with "
                           "workflow/scripts/make-wheelhouse.sh)")
        manifest = read_manifest(wheelhouse)
        without = tuple(without) + tuple((manifest or {}).get("without", []))
    present = set((manifest or {}).get("present", []))
    p = plan(without, manifest, preinstalled_torch(), os.environ.get("HERA_TORCH") == "venv")
    if wheelhouse is not None:
        need = p.requirements + ([p.torch] if p.torch else []) + [f"torchrec=={p.pair.torchrec}"]
        missing = [m for m in missing_wheels(wheelhouse, need) if req_name(m) not in present]
        if missing:
            raise EnvError(f"the wheelhouse {wheelhouse} has no wheel for {missing[0]}"
                           + (f" (nor for {', '.join(missing[1:])})" if missing[1:] else "")
                           + ": rebuild it with workflow/scripts/make-wheelhouse.sh")
    check_disk(venv, NEEDED_BYTES_OWN_TORCH if p.torch else NEEDED_BYTES_PREINSTALLED_TORCH)
    print(f"[with-env] {p.note}", file=sys.stderr)
    if venv.exists():
        if not (venv / "pyvenv.cfg").is_file() and any(venv.iterdir()):
            raise EnvError(f"{venv} exists and is not a virtual environment: set HERA_VENV to another place")
        shutil.rmtree(venv)
    site = ["--system-site-packages"] if p.system_site else []
    subprocess.run([sys.executable, "-m", "venv", *site, str(venv)], check=True)
    log = venv / "hera-install.log"
    pip = Pip(str(venv / "bin" / "python"), log, wheelhouse)
    # uv for a venv of its own (a wheelhouse is offline; a preinstalled torch lives outside the venv, where uv's
    # view of what is installed is not pip's)
    uv = get_uv(pip, venv) if wheelhouse is None and not p.system_site else None
    if p.torch:
        install_torch(pip, p.torch, uv)
    inst = Installer(pip, pin_torch(uv, venv))
    inst.install(p.requirements, "the requirements (workflow/envs/requirements.txt)")
    inst.install([f"torchrec=={p.pair.torchrec}"], "torchrec", "--no-deps")
    inst.install(["-e", str(ROOT)], "the hera package", "--no-deps", "--no-build-isolation")
    check = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import torch, fbgemm_gpu, torchrec; print(torch.__version__, torchrec.__version__)"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check.returncode != 0:
        last = (check.stdout.strip().splitlines() or ["no output"])[-1]
        raise EnvError(f"torch, fbgemm_gpu and torchrec do not import together in {venv}: {last}")
    torch_v, torchrec_v = check.stdout.split()[-2:]
    if uv is not None and uv.cache is not None:  # the venv's files stay (hard links); the cache goes
        shutil.rmtree(uv.cache, ignore_errors=True)
    how = "uv" if inst.uv is not None else "pip"
    return f"torch {torch_v}, fbgemm-gpu-cpu {p.pair.fbgemm}, torchrec {torchrec_v} in {venv} (installed with {how})"


def _requires(wheel: Path) -> list[str]:
    """``Requires-Dist`` entries of a wheel without their markers (extras and other platforms left out)."""
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode()
    out = []
    for line in text.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        req, _, marker = line[len("Requires-Dist:"):].strip().partition(";")
        if any(k in marker for k in ("extra", "win32", "Windows", "darwin", "Darwin")):
            continue
        out.append(req.strip())  # other markers (python_version) dropped: a superset is harmless
    return out


def build_wheelhouse(folder: Path, python: str, preinstalled: str | None = None,
                     without: tuple[str, ...] = (), platforms: list[str] = PLATFORMS,
                     present: tuple[str, ...] = ()) -> dict:
    """Download every wheel Hera needs for CPython ``python`` (``3.12``) on Linux x86-64 into ``folder``.

    ``present``: packages the target already has (with a preinstalled torch, the venv sees them): their wheels
    are left out to keep the folder small.

    torch-dependent packages come without dependencies (their other dependencies from their metadata), so a
    wheelhouse for a preinstalled torch carries no torch. A dependency that only exists as a source
    distribution is built into a wheel here (it must be pure Python).
    """
    folder.mkdir(parents=True, exist_ok=True)
    pairs = read_pairs()
    pair = pairs[0] if preinstalled is None else pair_for(preinstalled, pairs)
    if pair is None:
        raise EnvError(f"torch {preinstalled} is not in {PAIRS}: no tested fbgemm-gpu-cpu for it")
    log = folder / "make-wheelhouse.log"
    pip = Pip(sys.executable, log)
    target = ["--only-binary=:all:", "--python-version", python, "--implementation", "cp",
              "--abi", "cp" + python.replace(".", ""), "--abi", "abi3", "--abi", "none",
              *[a for p in platforms for a in ("--platform", p)]]
    stack = [f"fbgemm-gpu-cpu=={pair.fbgemm}", f"torchrec=={pair.torchrec}"]
    reqs = requirements(without)
    nodeps = [r for r in reqs if req_name(r) in TORCH_DEPENDENTS] + stack
    deps = [r for r in reqs if req_name(r) not in TORCH_DEPENDENTS] + BUILD_REQUIREMENTS
    if preinstalled is None:  # the CPU build of torch, from pip's sources or the PyTorch CPU index
        spec = f"torch=={pair.torch}+cpu"
        if not pip.run(["download", "-q", "--no-deps", *target, "-d", str(folder), spec], spec, check=False):
            index = os.environ.get("HERA_TORCH_INDEX", TORCH_CPU_INDEX)
            pip.run(["download", "-q", "--no-deps", *target, "--extra-index-url", index, "-d", str(folder), spec],
                    spec)
    pip.run(["download", "-q", "--no-deps", *target, "-d", str(folder), *nodeps], "the torch-dependent packages")
    for w in folder.glob("*.whl"):  # torch's own dependencies, and the torch-dependents' other ones
        name = req_name(w.name.split("-", 1)[0])
        if name == "torch" or (name in TORCH_DEPENDENTS and name != "torchrec"):
            deps += [r for r in _requires(w) if req_name(r) not in ("torch", "fbgemm-gpu", "fbgemm-gpu-cpu")]
    built: list[str] = []
    for _ in range(20):  # resolve; build a wheel for each dependency that has only a source distribution
        ok = pip.run(["download", "-q", *target, "--find-links", str(folder), "-d", str(folder), *deps],
                     "the requirements", check=False)
        if ok:
            break
        m = re.findall(r"Could not find a version that satisfies the requirement ([^\s]+)", log.read_text())
        if not m:  # another failure: say it (one line)
            pip.run(["download", "-q", *target, "--find-links", str(folder), "-d", str(folder), *deps],
                    "the requirements")
            break
        spec = m[-1]
        if req_name(spec) in built:
            raise EnvError(f"{spec} has no wheel for Python {python} and building one did not help (see {log})")
        with tempfile.TemporaryDirectory() as tmp:
            pip.run(["download", "-q", "--no-deps", "--no-binary=:all:", "-d", tmp, spec], spec)
            pip.run(["wheel", "-q", "--no-deps", "-w", tmp, *[str(s) for s in Path(tmp).iterdir()]], spec)
            wheels = [w for w in Path(tmp).glob("*.whl") if w.name.endswith("-py3-none-any.whl")
                      or w.name.endswith("-py2.py3-none-any.whl")]
            if not wheels:
                raise EnvError(f"{spec} has no wheel for Python {python} and is not pure Python: build it on "
                               "the target machine")
            for w in wheels:
                shutil.copy(w, folder)
        built.append(req_name(spec))
    gone = {norm(n) for n in present}
    for w in folder.glob("*.whl"):
        if req_name(w.name.split("-", 1)[0]) in gone:
            w.unlink()
    manifest = {"python": python, "platforms": platforms, "torch": None if preinstalled else f"{pair.torch}+cpu",
                "preinstalled_torch": preinstalled and minor(preinstalled), "fbgemm-gpu-cpu": pair.fbgemm,
                "torchrec": pair.torchrec, "without": sorted(norm(w) for w in without),
                "present": sorted(gone),
                "built_from_source": built, "wheels": sorted(p.name for p in folder.glob("*.whl"))}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


# ------------------------------------------------------------------------------------------------ CLI
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hera_env.py", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup", help="create the venv and install Hera into it")
    s.add_argument("--venv", type=Path, required=True)
    s.add_argument("--wheelhouse", type=Path)
    s.add_argument("--without", default="", help="comma-separated packages to leave out (e.g. snakemake)")
    w = sub.add_parser("wheelhouse", help="download every wheel Hera needs into DIR (for an offline install)")
    w.add_argument("dir", type=Path)
    w.add_argument("--python", default="%d.%d" % sys.version_info[:2],
                   help="target CPython X.Y (default: this one)")
    w.add_argument("--preinstalled-torch", help="the torch release already on the target (e.g. 2.11): leave torch "
                                                "out, take its fbgemm-gpu-cpu and torchrec from the table")
    w.add_argument("--without", default="", help="comma-separated packages to leave out (e.g. snakemake)")
    w.add_argument("--present", default="", help="comma-separated packages the target already has (with "
                                                 "--preinstalled-torch): their wheels are left out")
    args = ap.parse_args(argv)
    without = tuple(n for n in args.without.split(",") if n.strip())
    try:
        if args.cmd == "setup":
            print(f"[with-env] {setup(args.venv, args.wheelhouse, without)}", file=sys.stderr)
        else:
            if not re.fullmatch(r"3\.\d+", args.python):
                raise EnvError(f"--python must be a CPython version like 3.12, not {args.python!r}")
            present = tuple(n for n in args.present.split(",") if n.strip())
            if present and not args.preinstalled_torch:
                raise EnvError("--present needs --preinstalled-torch (only then does the venv see the target's "
                               "packages)")
            m = build_wheelhouse(args.dir, args.python, args.preinstalled_torch, without, present=present)
            size = sum(p.stat().st_size for p in args.dir.glob("*.whl"))
            print(f"[make-wheelhouse] {len(m['wheels'])} wheels, {size / 1e6:.0f} MB, for CPython {m['python']} in "
                  f"{args.dir} (torch: {m['torch'] or 'preinstalled ' + str(m['preinstalled_torch'])})")
    except EnvError as exc:
        print(f"hera-env: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
