"""Downloading dataset files: atomically, with progress, and with one sentence saying where to put the
files by hand when there is no network; archives are extracted without unsafe paths or links."""

from __future__ import annotations

import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path, PurePosixPath

from ..errors import InputError
from ..progress import OptionalProgress, report, scaled

DOWNLOAD_TIMEOUT_S = 20.0


def download(url: str, dest: Path, label: str, hint_dir: Path, progress: OptionalProgress = None) -> None:
    """Fetch ``url`` into ``dest`` (atomically), or raise an InputError saying what to do; ``progress``
    hears the bytes received (as a fraction of the announced size, when the server announces one)."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"Could not create the data directory {dest.parent}: {exc}.") from exc
    tmp = dest.with_name(dest.name + ".part")
    try:
        with (
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response,
            open(tmp, "wb") as out,
        ):
            headers = getattr(response, "headers", None)
            total = int(headers.get("Content-Length") or 0) if headers is not None else 0
            received = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                received += len(chunk)
                report(progress, received / total if total else 0.0,
                       f"downloading {label}: {received / 1e6:.1f}" + (f" of {total / 1e6:.1f} MB" if total else " MB"))
        os.replace(tmp, dest)
    except urllib.error.HTTPError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(
            f"Could not download {label} from {url} (HTTP {exc.code}); put the files in {hint_dir} instead."
        ) from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(
            f"Could not download {label} from {url} (no network?); put the files in {hint_dir} instead."
        ) from exc


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a .tar.gz into ``dest``, refusing absolute paths, '..', links and devices."""
    dest_resolved = dest.resolve()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if member.name.startswith(("/", "\\")) or ".." in parts:
                    raise InputError(
                        f"Refusing to extract {archive.name}: it contains the unsafe path '{member.name}'."
                    )
                target = dest.joinpath(*parts) if parts else dest
                if not target.resolve().is_relative_to(dest_resolved):
                    raise InputError(
                        f"Refusing to extract {archive.name}: it contains the unsafe path '{member.name}'."
                    )
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = tar.extractfile(member)
                    if source is None:
                        continue
                    with source, open(target, "wb") as out:
                        shutil.copyfileobj(source, out, length=1 << 20)
                # links, devices and fifos are skipped on purpose
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise InputError(f"Could not extract {archive}: {exc}.") from exc


def download_archive(url: str, root: Path, label: str, hint_dir: Path, progress: OptionalProgress = None) -> None:
    """Download a .tar.gz into ``root``, extract it there and delete the archive."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"Could not create the data directory {root}: {exc}.") from exc
    handle, name = tempfile.mkstemp(suffix=".tar.gz", dir=root)
    os.close(handle)
    archive = Path(name)
    try:
        download(url, archive, label, hint_dir, scaled(progress, 0.0, 0.9))
        report(progress, 0.9, f"unpacking {label}")
        safe_extract(archive, root)
    finally:
        archive.unlink(missing_ok=True)
