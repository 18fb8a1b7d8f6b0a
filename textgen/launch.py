"""Set-up and start-up with nothing but Python 3.11: `python3 -m textgen.launch app|test`.

Runs with the system interpreter and the standard library only. It creates `.venv/` in the
checkout when missing, (re)installs the pinned requirements when they changed since the last
install (a stamp file holds their hash), then replaces itself with the app or the test suite
running inside `.venv/`.

    python3 -m textgen.launch app [streamlit options...]   # http://127.0.0.1:8501
    python3 -m textgen.launch test [pytest options...]      # the whole suite
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
CHROMIUM = Path("/usr/bin/chromium")


def _requirements_hash(files: list[Path]) -> str:
    digest = hashlib.sha256(sys.version.encode())
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()


def ensure_venv(requirements: str) -> None:
    """Create .venv and install `requirements` into it unless the stamp says it is current."""
    files = [ROOT / "requirements.txt"]
    if requirements != "requirements.txt":
        files.append(ROOT / requirements)
    stamp = VENV / f".installed-{requirements.replace('/', '-')}"
    wanted = _requirements_hash(files)
    if PYTHON.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return
    if not PYTHON.exists():
        print(f"launch: creating {VENV.relative_to(ROOT)}/", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    print(f"launch: installing {requirements} into .venv (about 90 s the first time)", flush=True)
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r",
         str(ROOT / requirements)],
        check=True,
    )
    stamp.write_text(wanted + "\n")


def ensure_chromium() -> None:
    """The browser tests drive Debian's Chromium; install it when we can (root with apt-get)."""
    if CHROMIUM.exists():
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("launch: installing Debian's chromium and chromium-driver for the browser tests", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium", "chromium-driver"],
            check=True, env=env, stdout=subprocess.DEVNULL,
        )
    else:
        print(
            "launch: /usr/bin/chromium is missing and cannot be installed without root; "
            "run `sudo apt-get install chromium chromium-driver`, or the browser tests will fail.",
            file=sys.stderr, flush=True,
        )


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("app", "test"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    os.chdir(ROOT)
    if command == "app":
        ensure_venv("requirements.txt")
        args = [str(PYTHON), "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1", *rest]
    else:
        ensure_venv("tests/requirements.txt")
        ensure_chromium()
        args = [str(PYTHON), "-m", "pytest", "-c", "tests/pytest.ini", "--rootdir", ".", *rest]
    os.execv(args[0], args)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
