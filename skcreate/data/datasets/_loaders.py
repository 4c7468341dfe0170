"""Reading interaction files and the named benchmark data sets."""

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..interactions import check_column_roles, check_interactions
from ._download import DATASETS, dataset_source, fetch
from ._home import DATA_HOME_ENV, get_data_home

__all__ = ["load_interactions", "load_dataset", "load_item_metadata", "list_datasets"]

_STANDARD = ("user_id", "item_id", "timestamp")
# digits only, no leading zero: such strings survive a round trip through int unchanged
_CANONICAL_INT = r"0|-?[1-9][0-9]*"


def _file_format(path):
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith(".parquet"):
        return "parquet"
    suffix = "".join(path.suffixes) or "(none)"
    raise ValueError(
        f"Cannot read {path}: unsupported suffix {suffix!r}; expected .csv, .csv.gz or .parquet."
    )


def _check_mapping(columns):
    if columns is None:
        return {}
    if not isinstance(columns, Mapping):
        raise TypeError(
            f"columns must be a mapping {{source_name: standard_name}}, got "
            f"{type(columns).__name__}."
        )
    return dict(columns)


def _source_names(target, rename):
    """Names in the file of the column that ends up called ``target``."""
    sources = [src for src, dst in rename.items() if dst == target]
    return sources if sources or target in rename else [target]


def _ids_as_read(ids):
    """Integer ids as int64, any other id (including '007') left a string."""
    if ids.isna().any() or not ids.str.fullmatch(_CANONICAL_INT).all():
        return ids
    try:
        return ids.astype("int64")
    except (OverflowError, ValueError):  # beyond int64: keep the exact text
        return ids


def _read_csv(path, id_sources):
    try:
        header = pd.read_csv(path, nrows=0).columns
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty: expected a header line naming the columns, then "
                         "one line per interaction.") from None
    # read ids as text first, so ids with leading zeros or mixed forms are not mangled
    frame = pd.read_csv(path, dtype={c: "str" for c in id_sources if c in header})
    for col in id_sources:
        if col in frame.columns:
            frame[col] = _ids_as_read(frame[col])
    return frame


def _parse_time_text(frame, time_col, path, file_format):
    """Times stored as text (always in a CSV, sometimes in Parquet): numbers or ISO-8601.

    The column becomes numeric if at least as many of its values read as numbers as read as
    ISO-8601 times, datetime64 otherwise; a value of neither kind is an error that names it and
    its place: the line of a CSV (the header is line 1), the row of a Parquet file.
    """
    times = frame.get(time_col)
    if times is None or not (pd.api.types.is_string_dtype(times) or times.dtype == object):
        return frame
    present = times.notna().to_numpy()  # missing values are check_interactions' to report
    numbers = pd.to_numeric(times, errors="coerce")
    try:
        dates = pd.to_datetime(times, format="ISO8601", errors="coerce")
    except ValueError as exc:  # e.g. several UTC offsets: no single datetime64 dtype holds them
        raise ValueError(f"{path}: time column {time_col!r}: {exc}") from None
    parsed = numbers if numbers.count() >= dates.count() else dates
    bad = np.flatnonzero(present & parsed.isna().to_numpy())
    if len(bad):
        row = bad[0]
        place = f"line {row + 2}" if file_format == "csv" else f"row {row} (0-based)"
        more = f" ({len(bad)} such values in all)" if len(bad) > 1 else ""
        raise ValueError(
            f"{path}: time column {time_col!r} has {times.iloc[row]!r} at {place}, neither a "
            f"number nor an ISO-8601 time{more}.")
    frame[time_col] = parsed
    return frame


def _check_unique_columns(frame, path, what):
    duplicated = list(frame.columns[frame.columns.duplicated()])
    if duplicated:
        raise ValueError(f"{path}: {what} gives several columns the name(s) {duplicated}.")


def load_interactions(path, user_col="user_id", item_col="item_id", time_col="timestamp",
                      columns=None):
    """Read an interactions file into the standard frame.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.csv``, ``.csv.gz`` or ``.parquet`` file with a header.
    user_col, item_col, time_col : str, default="user_id", "item_id", "timestamp"
        Columns (after applying ``columns``) holding the user id, item id and timestamp. They are
        renamed to ``user_id``, ``item_id``, ``timestamp``.
    columns : mapping, optional
        ``{source_name: new_name}`` renames applied first, e.g.
        ``{"uid": "user_id", "ts": "timestamp"}``.

    Returns
    -------
    pandas.DataFrame
        Columns ``user_id``, ``item_id``, ``timestamp`` followed by the file's other columns, in the
        file's row order. Ids keep their type: integer ids are int64, other ids (including
        integers written with leading zeros in a CSV) stay strings. A time column stored as text
        (CSV, or a Parquet string column) is read the same way from both formats: numbers
        become numeric, ISO-8601 times datetime64.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the suffix is not supported, a column is missing, the file is empty (the message names
        the file), ids/timestamps contain missing values, or a text timestamp is neither a number
        nor an ISO-8601 time (the message gives the value and its CSV line, header = line 1, or
        its Parquet row, from 0).
    TypeError
        If timestamps are neither numeric nor datetimes.

    Examples
    --------
    >>> import pandas as pd
    >>> from skcreate.data.datasets import load_interactions
    >>> pd.DataFrame({"uid": [1, 1], "iid": ["a", "b"], "ts": [10, 20]}).to_csv(
    ...     "/tmp/events.csv", index=False)
    >>> load_interactions("/tmp/events.csv", columns={"uid": "user_id", "iid": "item_id",
    ...                                              "ts": "timestamp"})
       user_id item_id  timestamp
    0        1       a         10
    1        1       b         20
    """
    # before reading: two roles on one column would fail deep inside the id parsing
    check_column_roles(user_col, item_col, time_col)
    path = Path(path)
    file_format = _file_format(path)
    if not path.exists():
        raise FileNotFoundError(f"No interactions file at {path}.")
    rename = _check_mapping(columns)
    if file_format == "csv":
        id_sources = _source_names(user_col, rename) + _source_names(item_col, rename)
        frame = _read_csv(path, id_sources)
    else:
        frame = pd.read_parquet(path)
    unknown = [src for src in rename if src not in frame.columns]
    if unknown:
        raise ValueError(
            f"{path}: columns mapping names column(s) {unknown} that the file does not have; "
            f"columns present: {list(frame.columns)}."
        )
    frame = frame.rename(columns=rename)
    _check_unique_columns(frame, path, "the columns mapping")
    frame = _parse_time_text(frame, time_col, path, file_format)
    check_interactions(frame, user_col, item_col, time_col, name=str(path))
    frame = frame.rename(columns=dict(zip((user_col, item_col, time_col), _STANDARD)))
    _check_unique_columns(frame, path, "renaming user_col/item_col/time_col to standard names")
    extras = [c for c in frame.columns if c not in _STANDARD]
    return frame[list(_STANDARD) + extras]


def list_datasets():
    """Names of the data sets :func:`load_dataset` knows.

    Returns
    -------
    list of str
        Canonical names; each also has a short alias (see :func:`load_dataset`).

    Examples
    --------
    >>> from skcreate.data.datasets import list_datasets
    >>> list_datasets()
    ['movielens-100k', 'movielens-1m', 'amazon-beauty', 'amazon-sports']
    """
    return list(DATASETS)


def _resolve(name):
    key = str(name).lower()
    for canonical, spec in DATASETS.items():
        if key == canonical or key in spec["aliases"]:
            return canonical
    valid = [f"{n} (alias {', '.join(s['aliases'])})" for n, s in DATASETS.items()]
    raise ValueError(f"Unknown data set {name!r}; valid names: {'; '.join(valid)}.")


def _write_atomically(frame, target):
    """gzip CSV at ``target``, moved into place only once complete."""
    tmp = target.with_name(f".{target.name}.part")
    try:
        frame.to_csv(tmp, index=False, compression="gzip")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _fetch_archive(canonical, home, progress):
    spec = DATASETS[canonical]
    url, checksum = dataset_source(canonical)
    return fetch(url, home / "raw", checksum=checksum, algorithm=spec["algorithm"],
                 progress=progress)


def _missing(canonical, target, what):
    url = dataset_source(canonical)[0]
    return FileNotFoundError(
        f"{what} of {canonical!r} not found: looked for {target}. Call "
        f"load_dataset({canonical!r}, download=True) to download it from {url}, "
        f"or point data_home= or the {DATA_HOME_ENV} environment variable at a directory "
        f"holding {target.name}."
    )


def load_dataset(name, data_home=None, download=False, progress=False):
    """Load a public sequential-recommendation benchmark as an interactions frame.

    The processed file (``<data_home>/<file>``, gzip CSV with header
    ``user_id,item_id,timestamp[,rating]``, rows sorted by timestamp then user) is read when
    present. Otherwise, with ``download=True``, the official archive is downloaded into
    ``<data_home>/raw``, verified, parsed and the processed file written, together with the item
    metadata where the archive has some (see :func:`load_item_metadata`).

    ============== ======== ====================== ============================================
    name           alias    processed file         source
    ============== ======== ====================== ============================================
    movielens-100k ml-100k  ml-100k.csv.gz         GroupLens ``ml-100k.zip`` (md5 checked)
    movielens-1m   ml-1m    ml-1m.csv.gz           GroupLens ``ml-1m.zip`` (md5 checked)
    amazon-beauty  beauty   amazon-beauty.csv.gz   McAuley 2014 ``reviews_Beauty_5.json.gz``
    amazon-sports  sports   amazon-sports.csv.gz   McAuley 2014
                                                   ``reviews_Sports_and_Outdoors_5.json.gz``
    ============== ======== ====================== ============================================

    No checksum is published for the Amazon files: their download is not verified; the sha256
    computed on first download is recorded in ``<file>.checksum.json`` next to the cached archive
    (with a warning) and later uses of the cache are checked against it.

    The data stay under their providers' terms (MovieLens: research use, no redistribution;
    Amazon reviews: research use); downloading them means accepting those terms.

    ``SKCREATE_<NAME>_URL`` and ``SKCREATE_<NAME>_CHECKSUM`` (e.g.
    ``SKCREATE_MOVIELENS_100K_URL``) point the download at a mirror.

    Parameters
    ----------
    name : str
        A name or alias from the table above (case-insensitive).
    data_home : str or os.PathLike, optional
        Data directory; see :func:`get_data_home` (argument, ``SKCREATE_DATA``,
        ``~/skcreate_data``).
    download : bool, default=False
        Download the data set when the processed file is missing.
    progress : bool, default=False
        Show a progress bar while downloading.

    Returns
    -------
    pandas.DataFrame
        Columns ``user_id``, ``item_id``, ``timestamp`` (int unix seconds) and ``rating`` where
        the source has one. MovieLens ids are ints, Amazon ids the original reviewer ids and ASINs.

    Raises
    ------
    ValueError
        If ``name`` is unknown, or a downloaded archive fails its checksum.
    FileNotFoundError
        If the processed file is missing and ``download=False``.

    Examples
    --------
    >>> from skcreate.data.datasets import load_dataset
    >>> X = load_dataset("ml-100k", download=True)  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (100000, 4)
    """
    canonical = _resolve(name)
    spec = DATASETS[canonical]
    home = get_data_home(data_home)
    target = home / spec["filename"]
    if not target.exists():
        if not download:
            raise _missing(canonical, target, "Data set")
        home.mkdir(parents=True, exist_ok=True)
        archive = _fetch_archive(canonical, home, progress)
        if "items" in spec:
            _write_atomically(spec["items"]["parser"](archive), home / spec["items"]["filename"])
        _write_atomically(spec["parser"](archive), target)
    return load_interactions(target)


def load_item_metadata(name, data_home=None, download=False, progress=False):
    """Item metadata of a data set that has some (MovieLens-100K: titles and genres).

    Reads ``<data_home>/<name>-items.csv.gz`` (``item_id,title,genres``, genres ``|``-joined),
    which :func:`load_dataset` writes when it downloads the data set. With ``download=True`` a
    missing file is made from the cached archive, downloading it if needed.

    Parameters
    ----------
    name : str
        A data set name or alias with item metadata (``movielens-100k``).
    data_home : str or os.PathLike, optional
        Data directory; see :func:`get_data_home`.
    download : bool, default=False
        Download the archive when the metadata file is missing.
    progress : bool, default=False
        Show a progress bar while downloading.

    Returns
    -------
    pandas.DataFrame
        Columns ``item_id``, ``title``, ``genres``.

    Raises
    ------
    ValueError
        If ``name`` is unknown or has no item metadata.
    FileNotFoundError
        If the file is missing and ``download=False``.

    Examples
    --------
    >>> from skcreate.data.datasets import load_item_metadata
    >>> items = load_item_metadata("ml-100k", download=True)  # doctest: +SKIP
    >>> items.loc[items.item_id == 50, "title"].item()  # doctest: +SKIP
    'Star Wars (1977)'
    """
    canonical = _resolve(name)
    spec = DATASETS[canonical]
    if "items" not in spec:
        with_items = [n for n, s in DATASETS.items() if "items" in s]
        raise ValueError(f"Data set {canonical!r} has no item metadata; data sets with item "
                         f"metadata: {with_items}.")
    home = get_data_home(data_home)
    target = home / spec["items"]["filename"]
    if not target.exists():
        if not download:
            raise _missing(canonical, target, "Item metadata")
        home.mkdir(parents=True, exist_ok=True)
        archive = _fetch_archive(canonical, home, progress)
        _write_atomically(spec["items"]["parser"](archive), target)
    return pd.read_csv(target, keep_default_na=False)
