"""Where downloaded and processed data sets live."""

import os
from pathlib import Path

__all__ = ["get_data_home"]

DATA_HOME_ENV = "SKCREATE_DATA"


def get_data_home(data_home=None):
    """Return the directory that holds skcreate's data sets.

    The first of these that is set wins: the ``data_home`` argument, the ``SKCREATE_DATA``
    environment variable, ``~/skcreate_data``. The directory is not created here; the functions
    that write into it create it when they need to.

    Parameters
    ----------
    data_home : str or os.PathLike, optional
        Explicit directory.

    Returns
    -------
    pathlib.Path
        The directory, with ``~`` expanded.

    Examples
    --------
    >>> from skcreate.data.datasets import get_data_home
    >>> get_data_home("/tmp/my_data").as_posix()
    '/tmp/my_data'
    """
    if data_home is None:
        # an empty variable counts as unset, like most tools treat PATH-style variables
        data_home = os.environ.get(DATA_HOME_ENV) or Path("~") / "skcreate_data"
    return Path(data_home).expanduser()
