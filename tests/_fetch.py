"""Fetching reference files from PyPI for tests (cached between runs).

The references (conlleval.pl from the seqeval sdist, word-vector files from the
gensim wheel) are never copied into this repository: tests download them with
pip into a cache directory and skip, naming pip's error, when that fails.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def cache_dir(pytestconfig, name):
    cache = getattr(pytestconfig, "cache", None)
    if cache is not None:
        return Path(cache.mkdir(name))
    d = Path(tempfile.gettempdir()) / "tapegrad-test-cache" / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def pip_download(dest, attempts):
    """Run `pip download` variants until one leaves a file in dest; returns (path or None, log)."""
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    log = []
    for args in attempts:
        tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".dl-"))
        try:
            r = subprocess.run([sys.executable, "-m", "pip", "download", *args, "-d", str(tmp)],
                               capture_output=True, text=True, timeout=300, env=env)
            files = sorted(tmp.iterdir())
            if r.returncode == 0 and files:
                target = dest / files[0].name
                os.replace(files[0], target)
                return target, log
            errors = [ln for ln in r.stderr.splitlines() if ln.startswith("ERROR")] or r.stderr.splitlines()[-1:]
            log.append(f"pip download {' '.join(args)}: exit {r.returncode}, {' '.join(errors)[-300:]}")
        except (OSError, subprocess.TimeoutExpired) as e:
            log.append(f"pip download {' '.join(args)} -> {e}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return None, log
