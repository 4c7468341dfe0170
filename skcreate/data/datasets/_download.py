"""Download of the public data sets: checksummed, cached fetch and the archive parsers.

The registry :data:`DATASETS` is plain data (a dict of dicts) so that a test or a user can point an
entry at another URL, e.g. a mirror, without subclassing anything.
"""

import gzip
import hashlib
import io
import json
import os
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import numpy as np
import pandas as pd
from tqdm import tqdm

__all__ = ["ChecksumError", "fetch", "dataset_source", "DATASETS"]

_ALGORITHMS = ("md5", "sha256")
_CHUNK = 1 << 20


class ChecksumError(ValueError):
    """A downloaded or cached file does not have the expected checksum."""


def _file_digests(path, algorithm):
    """Hex digests of ``path`` for ``algorithm`` and sha256, read once."""
    wanted, sha256 = hashlib.new(algorithm), hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            wanted.update(chunk)
            sha256.update(chunk)
    return wanted.hexdigest(), sha256.hexdigest()


def _record_path(dest):
    return dest.with_name(dest.name + ".checksum.json")


def _record_unverified(dest, url, sha256):
    """Remember the sha256 of a file that had no published checksum (trust on first use)."""
    record = _record_path(dest)
    record.write_text(json.dumps({"url": url, "sha256": sha256, "verified": False}, indent=1))
    warnings.warn(
        f"{dest.name} from {url} has no published checksum, so its integrity was not verified. "
        f"Its sha256 {sha256} was recorded in {record}; later uses of the cached file are "
        "checked against it.",
        UserWarning,
        stacklevel=3,
    )


def _cached_file_ok(dest, url, checksum, algorithm):
    """Whether a cached file can be used as is."""
    actual, sha256 = _file_digests(dest, algorithm)
    if checksum is not None:
        return actual == checksum.lower()
    record = _record_path(dest)
    if record.exists():
        return json.loads(record.read_text()).get("sha256") == sha256
    # placed there by hand: accept it, but make the missing verification visible
    _record_unverified(dest, url, sha256)
    return True


def _download(url, tmp, timeout, algorithm, progress):
    """Stream ``url`` into ``tmp``; return the digests of what was written."""
    wanted, sha256 = hashlib.new(algorithm), hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "skcreate"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as f, \
                tqdm(total=response.length, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=PurePosixPath(urlparse(url).path).name, disable=not progress,
                     leave=False) as bar:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                f.write(chunk)
                wanted.update(chunk)
                sha256.update(chunk)
                bar.update(len(chunk))
    except urllib.error.URLError as exc:
        raise OSError(f"Could not download {url}: {exc.reason}") from exc
    return wanted.hexdigest(), sha256.hexdigest()


def fetch(url, dest_dir, checksum=None, algorithm="md5", timeout=60, filename=None,
          progress=False):
    """Download a file once, verify it and return its cached path.

    The file is written to a temporary name in ``dest_dir`` and moved into place only after its
    checksum matched, so an interrupted or corrupted download never looks cached. A cached file is
    verified again before use and downloaded anew if it does not match.

    When ``checksum`` is None (no published checksum exists), the sha256 of the download is written
    to ``<filename>.checksum.json`` next to it and a warning says the file was not verified; the
    cached file is then checked against that record.

    Parameters
    ----------
    url : str
        Address to download (anything :func:`urllib.request.urlopen` accepts).
    dest_dir : str or os.PathLike
        Cache directory, created if needed.
    checksum : str, optional
        Expected hex digest.
    algorithm : {"md5", "sha256"}, default="md5"
        Hash algorithm of ``checksum``.
    timeout : float, default=60
        Seconds to wait for the server on each blocking operation.
    filename : str, optional
        Name of the cached file; by default the last component of the URL path.
    progress : bool, default=False
        Show a download progress bar (tqdm, on stderr).

    Returns
    -------
    pathlib.Path
        Path of the verified file.

    Raises
    ------
    ChecksumError
        If the download does not match ``checksum`` (the file is removed).
    OSError
        If the download fails.

    Examples
    --------
    >>> from skcreate.data.datasets._download import fetch
    >>> path = fetch("https://files.grouplens.org/datasets/movielens/ml-100k.zip",
    ...              "/tmp/cache", checksum="0e33842e24a9c977be4e0107933c0723")  # doctest: +SKIP
    """
    if algorithm not in _ALGORITHMS:
        raise ValueError(f"algorithm must be one of {_ALGORITHMS}, got {algorithm!r}.")
    dest_dir = Path(dest_dir)
    filename = filename or PurePosixPath(urlparse(url).path).name
    if not filename:
        raise ValueError(f"Cannot name the cached file from {url!r}; pass filename=.")
    dest = dest_dir / filename
    if dest.exists():
        if _cached_file_ok(dest, url, checksum, algorithm):
            return dest
        warnings.warn(f"Cached {dest} does not match its checksum; downloading it again.",
                      UserWarning, stacklevel=2)
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=f".{filename}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp)
    try:
        actual, sha256 = _download(url, tmp, timeout, algorithm, progress)
        if checksum is not None and actual != checksum.lower():
            raise ChecksumError(
                f"Checksum mismatch for {url}: expected {algorithm} {checksum.lower()}, got "
                f"{actual}. The download was discarded; the file may have changed upstream or "
                "been corrupted in transit."
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    if checksum is None:
        _record_unverified(dest, url, sha256)
    else:
        _record_path(dest).unlink(missing_ok=True)
    return dest


def _standard_order(frame):
    """Rows by (timestamp, user_id), ties within a user in source order, like shared/data."""
    user_codes = pd.factorize(frame["user_id"], sort=True)[0]
    order = np.lexsort((user_codes, frame["timestamp"].to_numpy()))  # lexsort is stable
    return frame.iloc[order].reset_index(drop=True)


def _zip_member(path, member):
    with zipfile.ZipFile(path) as archive:
        try:
            return archive.read(member)
        except KeyError:
            raise ValueError(
                f"{path} has no member {member!r}; is it the right archive?"
            ) from None


def _parse_movielens(data, sep):
    if sep != "\t":
        # the C parser takes single-character separators only; the python engine is ~10x slower
        data = data.replace(sep.encode(), b"\t")
    frame = pd.read_csv(io.BytesIO(data), sep="\t", header=None,
                        names=["user_id", "item_id", "rating", "timestamp"])
    return _standard_order(frame[["user_id", "item_id", "timestamp", "rating"]])


def parse_movielens_100k(path):
    """Interactions of the official ``ml-100k.zip`` (``ml-100k/u.data``, tab-separated)."""
    return _parse_movielens(_zip_member(path, "ml-100k/u.data"), "\t")


def parse_movielens_100k_items(path):
    """Item metadata of ``ml-100k.zip``: ``item_id, title, genres`` (``|``-joined names).

    ``u.item`` is Latin-1 text, ``|``-separated: id, title, release date, video release date,
    IMDb URL and 19 genre flags in the order of ``u.genre``.
    """
    genres = pd.read_csv(io.BytesIO(_zip_member(path, "ml-100k/u.genre")), sep="|", header=None,
                         names=["genre", "index"], encoding="latin-1").dropna()
    names = genres.sort_values("index")["genre"].to_numpy()
    items = pd.read_csv(io.BytesIO(_zip_member(path, "ml-100k/u.item")), sep="|", header=None,
                        encoding="latin-1")
    flags = items.iloc[:, -len(names):].to_numpy(dtype=bool)
    return pd.DataFrame({
        "item_id": items[0].to_numpy(),
        "title": items[1].to_numpy(),
        "genres": ["|".join(names[row]) for row in flags],
    })


def parse_movielens_1m(path):
    """Interactions of the official ``ml-1m.zip`` (``ml-1m/ratings.dat``, ``::``-separated)."""
    return _parse_movielens(_zip_member(path, "ml-1m/ratings.dat"), "::")


def parse_amazon_5core(path):
    """Interactions of an Amazon 2014 5-core ``reviews_*_5.json.gz`` (one JSON object a line)."""
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            review = json.loads(line)
            try:
                rows.append((review["reviewerID"], review["asin"], review["unixReviewTime"],
                             review["overall"]))
            except KeyError as exc:
                raise ValueError(f"{path}, line {line_no}: review has no field {exc}.") from None
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    # star ratings are whole numbers stored as floats in the source
    frame["rating"] = frame["rating"].astype("int64")
    return _standard_order(frame)


_AMAZON_2014 = "https://snap.stanford.edu/data/amazon/productGraph/categoryFiles/"

#: Data sets known to :func:`skcreate.data.datasets.load_dataset`. ``filename`` is the processed
#: file in the data home; ``url``/``checksum``/``algorithm`` describe the official archive and
#: ``parser`` turns it into the standard frame. ``items`` (optional) names the processed item
#: metadata file and its parser. The Amazon archives have no published checksum (None): their
#: sha256 is recorded on first download instead.
DATASETS = {
    "movielens-100k": {
        "aliases": ("ml-100k",),
        "filename": "ml-100k.csv.gz",
        "url": "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        "checksum": "0e33842e24a9c977be4e0107933c0723",
        "algorithm": "md5",
        "parser": parse_movielens_100k,
        "items": {"filename": "ml-100k-items.csv.gz", "parser": parse_movielens_100k_items},
    },
    "movielens-1m": {
        "aliases": ("ml-1m",),
        "filename": "ml-1m.csv.gz",
        "url": "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
        "checksum": "c4d9eecfca2ab87c1945afe126590906",
        "algorithm": "md5",
        "parser": parse_movielens_1m,
    },
    "amazon-beauty": {
        "aliases": ("beauty",),
        "filename": "amazon-beauty.csv.gz",
        "url": _AMAZON_2014 + "reviews_Beauty_5.json.gz",
        "checksum": None,
        "algorithm": "sha256",
        "parser": parse_amazon_5core,
    },
    "amazon-sports": {
        "aliases": ("sports",),
        "filename": "amazon-sports.csv.gz",
        "url": _AMAZON_2014 + "reviews_Sports_and_Outdoors_5.json.gz",
        "checksum": None,
        "algorithm": "sha256",
        "parser": parse_amazon_5core,
    },
}


def _env_key(name, field):
    return f"SKCREATE_{name.upper().replace('-', '_')}_{field}"


def dataset_source(name):
    """URL and checksum of a data set's archive, after environment overrides.

    ``SKCREATE_<NAME>_URL`` and ``SKCREATE_<NAME>_CHECKSUM`` (``<NAME>`` the canonical name in
    upper case with ``_`` for ``-``, e.g. ``SKCREATE_MOVIELENS_100K_URL``) replace the
    registry's values, for a mirror or a local test server. The checksum keeps the registry's
    algorithm.

    Parameters
    ----------
    name : str
        Canonical name, a key of :data:`DATASETS`.

    Returns
    -------
    url : str
    checksum : str or None
    """
    spec = DATASETS[name]
    url = os.environ.get(_env_key(name, "URL")) or spec["url"]
    checksum = os.environ.get(_env_key(name, "CHECKSUM")) or spec["checksum"]
    return url, checksum
