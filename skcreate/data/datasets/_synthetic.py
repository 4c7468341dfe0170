"""Synthetic interactions in which the order of events carries signal."""

import numbers

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

__all__ = ["make_interactions"]

# a clash with the user's history is redrawn from popularity this many times before falling back
# to the smallest unused item id; with any realistic catalogue the fallback almost never runs
_MAX_REDRAWS = 8


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}.")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}.")
    return int(value)


def _check_real(name, value, low, high=np.inf):
    # an infinite mean length or exponent breaks the sampling with a raw numpy error
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not np.isfinite(value) or not low <= value <= high:
        bounds = f"in [{low}, {high}]" if np.isfinite(high) else f">= {low}"
        raise ValueError(f"{name} must be a finite number {bounds}, got {value!r}.")
    return float(value)


def _check_rng(random_state):
    """A numpy Generator from an int, None, RandomState or Generator (kept as is)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    # seeding a Generator from the RandomState keeps int seeds and RandomState objects reproducible
    return np.random.default_rng(check_random_state(random_state).randint(0, 2**32, size=4))


def _sample(cdf, size, rng):
    """Indices drawn from a normalised cumulative distribution."""
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(cdf) - 1)


def _smallest_unused(history):
    """Per row, the smallest non-negative id absent from a row of distinct ids."""
    ordered = np.sort(history, axis=1)
    gaps = ordered != np.arange(history.shape[1])
    # with distinct ids, the first position where the sorted ids skip a value is the answer
    return np.where(gaps.any(axis=1), gaps.argmax(axis=1), history.shape[1])


def make_interactions(n_users=1000, n_items=500, n_communities=10, mean_length=20, *,
                      min_length=3, items_per_community=None, n_successors=3, noise=0.1,
                      popularity_exponent=1.0, start_time=1_577_836_800, duration=365 * 86_400,
                      random_state=None):
    """Generate sequential interactions with community and item-to-item structure.

    Items have a Zipf-like popularity. Each community owns a route: a popularity-sampled subset
    of ``items_per_community`` items in a random cyclic order. Every user belongs to one community,
    starts on a popular item of its route and then, at each step, moves 1 to ``n_successors``
    places forward along the route (shorter steps more likely), or with probability ``noise``
    jumps to an item drawn from the global popularity. This is a sparse, community-specific
    Markov chain, so the last item predicts the next one far better than popularity does. A user
    never interacts twice with the same item (as in the 5-core benchmarks), so recommenders that
    filter seen items can still hit every target.

    Each user is active over a random window of 5 % to 50 % of the global period, so sequences
    interleave in time and a global temporal split leaves many warm test users. Timestamps are
    integer seconds, strictly increasing within a user.

    Parameters
    ----------
    n_users : int, default=1000
        Number of users, ids ``0..n_users-1``.
    n_items : int, default=500
        Catalogue size, ids ``0..n_items-1`` (not every item need occur).
    n_communities : int, default=10
        Number of user communities.
    mean_length : float, default=20
        Mean number of events per user (geometric tail above ``min_length``).
    min_length : int, default=3
        Minimum number of events per user.
    items_per_community : int, optional
        Length of each community's route; default ``min(n_items, 2 * n_items // n_communities)``
        (at least ``n_successors + 1``).
    n_successors : int, default=3
        Number of possible next items of an item within a community.
    noise : float, default=0.1
        Probability of a popularity jump instead of a route step.
    popularity_exponent : float, default=1.0
        Exponent of the Zipf-like item popularity (0 = uniform).
    start_time : int, default=1577836800
        Start of the global period, unix seconds (2020-01-01).
    duration : int, default=31536000
        Length of the global period in seconds (one year).
    random_state : int, numpy.random.Generator, numpy.random.RandomState or None
        Seed or generator; the same int gives the same frame.

    Returns
    -------
    pandas.DataFrame
        Columns ``user_id``, ``item_id``, ``timestamp`` (all int64), sorted by timestamp, then
        user.

    Raises
    ------
    ValueError
        If a parameter is out of range; the message names it.

    Examples
    --------
    >>> from skcreate.data.datasets import make_interactions
    >>> X = make_interactions(n_users=100, n_items=50, random_state=0)
    >>> list(X.columns)
    ['user_id', 'item_id', 'timestamp']
    >>> bool(X.groupby("user_id").size().min() >= 3)
    True
    """
    n_users = _check_int("n_users", n_users, 1)
    n_communities = _check_int("n_communities", n_communities, 1)
    min_length = _check_int("min_length", min_length, 1)
    n_items = _check_int("n_items", n_items, max(min_length, 2))
    mean_length = _check_real("mean_length", mean_length, min_length)
    n_successors = _check_int("n_successors", n_successors, 1)
    noise = _check_real("noise", noise, 0.0, 1.0)
    popularity_exponent = _check_real("popularity_exponent", popularity_exponent, 0.0)
    start_time = _check_int("start_time", start_time, -(2**62))
    duration = _check_int("duration", duration, 1)
    if items_per_community is None:
        if n_successors >= n_items:
            raise ValueError(
                f"n_successors must be smaller than n_items ({n_items}), got {n_successors}."
            )
        items_per_community = min(n_items, max(2 * n_items // n_communities, n_successors + 1))
    route_len = _check_int("items_per_community", items_per_community, n_successors + 1)
    if route_len > n_items:
        raise ValueError(
            f"items_per_community must be <= n_items ({n_items}), got {items_per_community}."
        )
    rng = _check_rng(random_state)

    # popularity by a random rank, so item ids carry no information
    popularity = (1.0 + rng.permutation(n_items)) ** -popularity_exponent
    popularity /= popularity.sum()
    if np.count_nonzero(popularity) < route_len:
        # a steep exponent underflows the tail to zero, leaving too few items to draw routes from
        raise ValueError(
            f"popularity_exponent={popularity_exponent:g} is too large for n_items={n_items}: "
            f"only {np.count_nonzero(popularity)} items keep a non-zero popularity, fewer than "
            f"items_per_community={route_len}.")
    popularity_cdf = np.cumsum(popularity)
    popularity_cdf /= popularity_cdf[-1]

    routes = np.stack([
        rng.permuted(rng.choice(n_items, route_len, replace=False, p=popularity))
        for _ in range(n_communities)
    ])
    communities = np.arange(n_communities)
    # place of every item on every route; items off a route join it at a random place
    place = rng.integers(0, route_len, size=(n_communities, n_items), dtype=np.int32)
    place[communities[:, None], routes] = np.arange(route_len)
    step_p = 0.5 ** np.arange(n_successors)
    step_cdf = np.cumsum(step_p / step_p.sum())

    community = rng.integers(0, n_communities, size=n_users)
    lengths = min_length - 1 + rng.geometric(1.0 / (mean_length - min_length + 1), size=n_users)
    lengths = np.minimum(lengths, n_items)  # no repeated item, so no longer than the catalogue
    max_len = int(lengths.max())
    if duration < max_len:
        raise ValueError(
            f"duration must be at least the longest sequence ({max_len} events) since timestamps "
            f"are integer seconds strictly increasing within a user; got {duration}."
        )

    items = np.full((n_users, max_len), -1, dtype=np.int64)
    # first item: popularity-weighted on the user's own route; offsetting each route's cdf by
    # its community index lets one searchsorted serve all communities
    route_cdf = np.cumsum(popularity[routes], axis=1)
    route_cdf /= route_cdf[:, -1:]
    flat_cdf = (route_cdf + communities[:, None]).ravel()
    first = np.searchsorted(flat_cdf, rng.random(n_users) + community, side="right")
    first = np.minimum(first - community * route_len, route_len - 1)
    items[:, 0] = routes[community, first]

    for t in range(1, max_len):
        rows = np.flatnonzero(lengths > t)
        group = community[rows]
        steps = 1 + _sample(step_cdf, len(rows), rng)
        proposal = routes[group, (place[group, items[rows, t - 1]] + steps) % route_len]
        jump = rng.random(len(rows)) < noise
        proposal[jump] = _sample(popularity_cdf, int(jump.sum()), rng)
        pending = np.arange(len(rows))
        for attempt in range(_MAX_REDRAWS + 1):
            clash = (items[rows[pending], :t] == proposal[pending, None]).any(axis=1)
            pending = pending[clash]
            if pending.size == 0:
                break
            if attempt < _MAX_REDRAWS:
                proposal[pending] = _sample(popularity_cdf, pending.size, rng)
        else:
            proposal[pending] = _smallest_unused(items[rows[pending], :t])
        items[rows, t] = proposal

    # timestamps: exponential gaps spread over each user's window; "+ position" makes them
    # strictly increasing after flooring to whole seconds
    window = np.clip(np.floor(rng.uniform(0.05, 0.5, n_users) * duration), lengths, duration)
    start = start_time + np.floor(rng.random(n_users) * (duration - window + 1))
    positions = np.arange(max_len + 1)
    gaps = rng.exponential(size=(n_users, max_len + 1)) * (positions <= lengths[:, None])
    elapsed = np.cumsum(gaps, axis=1)
    share = elapsed[:, :max_len] / elapsed[np.arange(n_users), lengths][:, None]
    times = (start[:, None] + np.floor(share * (window - lengths)[:, None])).astype(np.int64)
    times += positions[:max_len]

    mask = positions[:max_len] < lengths[:, None]
    user_ids = np.repeat(np.arange(n_users, dtype=np.int64), lengths)
    item_ids, times = items[mask], times[mask]
    order = np.lexsort((user_ids, times))
    return pd.DataFrame({
        "user_id": user_ids[order],
        "item_id": item_ids[order],
        "timestamp": times[order],
    })
