"""A mergeable profile of one scored day: per column counts, range, moments and a histogram.

Built from the Arrow batches the scoring loop already holds (never a second read), one
batch at a time in bounded memory, and merged exactly: shards profile their rows and the
commit adds them up. What "exact" means here:

* counts (rows, NULLs, NaNs), min, max, histogram bins and category counts are integers
  or order statistics, so a merged profile equals the whole day's bit for bit;
* mean and standard deviation merge with Chan's parallel algorithm (count, mean, sum of
  squared deviations), equal to the whole day's within floating-point rounding (1e-9
  relative is the contract; summation order is all that differs).

Numeric histograms use bins that do not depend on the data: the top 16 bits of a value's
IEEE-754 double (sign, exponent and 4 mantissa bits), i.e. 16 bins per power of two, about
6 % wide. Any two profiles (today, yesterday, training) therefore compare bin for bin,
and a drift check groups these fine bins into coarse ones by the baseline's quantiles
(``drift.py``). Computing a bin is a shift of the value's bits: cheap enough to profile
every row.

Strings and booleans keep exact counts of up to ``MAX_TRACKED_CATEGORIES`` values per
column (more go to ``other``; merging is exact while a day holds no more distinct values
than that). What is stored with a day keeps the top ``STORED_CATEGORIES``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

BIN_SHIFT = 48  # keep sign (1) + exponent (11) + 4 mantissa bits of a float64
BIN_COUNT = 1 << (64 - BIN_SHIFT)
BIN_OFFSET = BIN_COUNT // 2  # signed 16-bit prefix → 0..65535
MAX_TRACKED_CATEGORIES = 1000
STORED_CATEGORIES = 50
# A category longer than this is counted under its first characters and a hash of the whole
# (still one key per value): a day's profile is written as literals in its transaction, and
# free text (reviews, addresses) of thousands of characters would push that script past
# BigQuery's query-length limit.
CATEGORY_CHARS = 100

NUMERIC = "numeric"
CATEGORICAL = "categorical"
OTHER = "other"  # counted (rows, NULLs) but not summarised: dates, bytes, nested values
FEATURE = "feature"
PREDICTION = "prediction"


def column_kind(arrow_type: pa.DataType) -> str:
    """How a column of ``arrow_type`` is profiled: ``numeric``, ``categorical`` or ``other``."""
    import pyarrow.types as pat

    if pat.is_integer(arrow_type) or pat.is_floating(arrow_type) or pat.is_decimal(arrow_type):
        return NUMERIC
    if pat.is_string(arrow_type) or pat.is_large_string(arrow_type) or pat.is_boolean(arrow_type):
        return CATEGORICAL
    return OTHER


def bin_of(value: float) -> int:
    """The fine bin holding ``value`` (as the profile computes it for every row)."""
    import struct

    return (struct.unpack("<q", struct.pack("<d", value))[0] >> BIN_SHIFT) + BIN_OFFSET


def bin_lower_bound(code: int) -> float:
    """The value whose bits start bin ``code``: its lower edge for positive values, its edge
    nearest zero for negative ones. Sorting bins by it sorts them by value."""
    import struct

    bits = ((code - BIN_OFFSET) << BIN_SHIFT) & 0xFFFFFFFFFFFFFFFF
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


@dataclass
class ColumnProfile:
    """What one column held on one day (or one shard of it)."""

    name: str
    role: str  # "feature" or "prediction"
    kind: str  # "numeric", "categorical" or "other"
    rows: int = 0
    nulls: int = 0
    nans: int = 0
    count: int = 0  # values summarised: rows - NULLs - NaNs
    min: float | None = None
    max: float | None = None
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean
    bins: dict[int, int] = field(default_factory=dict)  # numeric: bin code → rows
    categories: dict[str, int] = field(default_factory=dict)  # categorical: value → rows
    other: int = 0  # categorical values beyond those tracked
    _dense: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def std(self) -> float | None:
        """Population standard deviation of the summarised values (None without any)."""
        if self.kind != NUMERIC or not self.count:
            return None
        return (self.m2 / self.count) ** 0.5

    @property
    def null_fraction(self) -> float:
        """NULLs and NaNs over rows: both are values the day does not have."""
        return (self.nulls + self.nans) / self.rows if self.rows else 0.0

    # -- accumulating ------------------------------------------------------------------------
    def add(self, values: pa.Array | pa.ChunkedArray) -> None:
        """Add one batch's values of this column; vectorised, no per-row Python."""
        self.rows += len(values)
        self.nulls += values.null_count
        if self.kind == NUMERIC:
            self._add_numeric(values)
        elif self.kind == CATEGORICAL:
            self._add_categories(values)

    def _add_numeric(self, values: pa.Array | pa.ChunkedArray) -> None:
        import numpy as np
        import pyarrow.compute as pc

        if values.null_count:
            values = pc.drop_null(values)
        x = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
        total = x.sum()
        if not np.isfinite(total):
            nan = np.isnan(x)
            nans = int(nan.sum())
            if nans:
                self.nans += nans
                x = x[~nan]
                total = x.sum()
        n = len(x)
        if not n:
            return
        mean = float(total) / n
        deviation = x - mean
        # einsum's own loop, not BLAS: a BLAS dot starts a thread per core, which on a busy
        # worker made profiling 6x slower; and the sum must not depend on BLAS kernels.
        m2 = float(np.einsum("i,i->", deviation, deviation))
        self._merge_moments(n, float(x.min()), float(x.max()), mean, m2)
        codes = (x.view(np.int64) >> BIN_SHIFT) + BIN_OFFSET
        counts = np.bincount(codes, minlength=BIN_COUNT)
        if self._dense is None:
            self._dense = counts
        else:
            self._dense += counts

    def _add_categories(self, values: pa.Array | pa.ChunkedArray) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        if pa.types.is_boolean(values.type) or pa.types.is_large_string(values.type):
            values = values.cast(pa.string())
        counted = pc.value_counts(values.drop_null() if values.null_count else values)
        keys = [key if len(key) <= CATEGORY_CHARS else category_key(key) for key in counted.field("values").to_pylist()]
        counts = counted.field("counts").to_pylist()
        self.count += sum(counts)
        self._merge_categories(dict(zip(keys, counts)), 0)

    def _merge_moments(self, n: int, low: float, high: float, mean: float, m2: float) -> None:
        """Chan et al.'s pairwise update of (count, mean, M2), plus min and max."""
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total
        self.min = low if self.min is None else min(self.min, low)
        self.max = high if self.max is None else max(self.max, high)

    def _merge_categories(self, counts: Mapping[str, int], other: int) -> None:
        self.other += other
        for value, n in counts.items():
            if value in self.categories or len(self.categories) < MAX_TRACKED_CATEGORIES:
                self.categories[value] = self.categories.get(value, 0) + n
            else:
                self.other += n

    def _settle(self) -> None:
        """Fold the dense bin counts into the sparse ``bins`` (before reading or merging)."""
        import numpy as np

        if self._dense is not None:
            for code in np.flatnonzero(self._dense):
                self.bins[int(code)] = self.bins.get(int(code), 0) + int(self._dense[code])
            self._dense = None

    # -- combining ---------------------------------------------------------------------------
    def merge(self, other: ColumnProfile) -> ColumnProfile:
        """This column's profile over both parts; neither input changes."""
        if (other.name, other.kind) != (self.name, self.kind):
            from airflow_provider_somlier.errors import ProfileMismatchError

            raise ProfileMismatchError(
                f"cannot merge the profile of {other.name!r} ({other.kind}) into {self.name!r} ({self.kind})"
            )
        self._settle()
        other._settle()
        merged = ColumnProfile(
            name=self.name, role=self.role, kind=self.kind, rows=self.rows + other.rows,
            nulls=self.nulls + other.nulls, nans=self.nans + other.nans, count=self.count, min=self.min,
            max=self.max, mean=self.mean, m2=self.m2, bins=dict(self.bins), categories=dict(self.categories),
            other=self.other,
        )
        if self.kind == NUMERIC and other.count:
            merged._merge_moments(other.count, other.min, other.max, other.mean, other.m2)
        elif self.kind == CATEGORICAL:
            merged.count += other.count
            merged._merge_categories(other.categories, other.other)
        for code, n in other.bins.items():
            merged.bins[code] = merged.bins.get(code, 0) + n
        return merged

    def to_dict(self, *, max_categories: int | None = None) -> dict[str, Any]:
        """A JSON-able form; ``max_categories`` keeps the most frequent ones, the rest go to ``other``."""
        self._settle()
        categories, other = self.categories, self.other
        if max_categories is not None and len(categories) > max_categories:
            ranked = sorted(categories.items(), key=lambda item: (-item[1], item[0]))
            categories = dict(ranked[:max_categories])
            other += sum(n for _, n in ranked[max_categories:])
        return {
            "name": self.name, "role": self.role, "kind": self.kind, "rows": self.rows, "nulls": self.nulls,
            "nans": self.nans, "count": self.count, "min": self.min, "max": self.max, "mean": self.mean,
            "m2": self.m2, "bins": {str(code): n for code, n in sorted(self.bins.items())},
            "categories": dict(sorted(categories.items(), key=lambda item: (-item[1], item[0]))), "other": other,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnProfile:
        return cls(
            name=data["name"], role=data["role"], kind=data["kind"], rows=int(data["rows"]),
            nulls=int(data["nulls"]), nans=int(data["nans"]), count=int(data["count"]), min=data["min"],
            max=data["max"], mean=float(data["mean"]), m2=float(data["m2"]),
            bins={int(code): int(n) for code, n in data.get("bins", {}).items()},
            categories={str(k): int(n) for k, n in data.get("categories", {}).items()}, other=int(data.get("other", 0)),
        )

    def histogram(self) -> dict[int, int]:
        """Numeric bin code → rows (the fixed bins described in the module docstring)."""
        self._settle()
        return dict(self.bins)


@dataclass
class DayProfile:
    """The profile of every feature and prediction column of one day (or one shard of it)."""

    rows: int = 0
    columns: dict[str, ColumnProfile] = field(default_factory=dict)

    @classmethod
    def for_schema(cls, roles: Mapping[str, tuple[str, pa.DataType]]) -> DayProfile:
        """An empty profile of the columns ``name → (role, arrow type)``, in that order."""
        return cls(columns={
            name: ColumnProfile(name=name, role=role, kind=column_kind(arrow_type))
            for name, (role, arrow_type) in roles.items()
        })

    def add(self, rows: int, columns: Mapping[str, pa.Array | pa.ChunkedArray]) -> None:
        """Add one batch of ``rows`` rows; ``columns`` holds each profiled column's values."""
        self.rows += rows
        for name, values in columns.items():
            self.columns[name].add(values)

    def merge(self, other: DayProfile) -> DayProfile:
        """The profile of both parts (shards of one day, or several days of a baseline)."""
        if not self.columns:
            return DayProfile(rows=self.rows + other.rows, columns=dict(other.columns))
        if other.columns and list(other.columns) != list(self.columns):
            from airflow_provider_somlier.errors import ProfileMismatchError

            raise ProfileMismatchError(
                f"cannot merge profiles of different columns: {list(self.columns)} and {list(other.columns)}"
            )
        merged = {name: column.merge(other.columns[name]) if name in other.columns else column
                  for name, column in self.columns.items()}
        return DayProfile(rows=self.rows + other.rows, columns=merged)

    def to_dict(self, *, max_categories: int | None = None) -> dict[str, Any]:
        return {"rows": self.rows, "columns": [c.to_dict(max_categories=max_categories) for c in self.columns.values()]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DayProfile:
        columns = [ColumnProfile.from_dict(c) for c in data["columns"]]
        return cls(rows=int(data["rows"]), columns={c.name: c for c in columns})


def merge_all(profiles: Iterable[DayProfile]) -> DayProfile:
    """Merge any number of profiles (an empty iterable gives an empty profile)."""
    merged = DayProfile()
    for profile in profiles:
        merged = merged.merge(profile)
    return merged


def profile_table(table: pa.Table | pa.RecordBatch, roles: Mapping[str, str], batch_rows: int = 100_000) -> DayProfile:
    """Profile the columns ``name → role`` of an in-memory Arrow table (training frames, tests)."""
    import pyarrow as pa

    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    profile = DayProfile.for_schema({name: (role, table.schema.field(name).type) for name, role in roles.items()})
    for batch in table.to_batches(max_chunksize=batch_rows):
        profile.add(batch.num_rows, {name: batch.column(name) for name in roles})
    return profile


def category_key(value: str) -> str:
    """The key a category value is counted under: itself, or when longer than ``CATEGORY_CHARS``
    its beginning, an ellipsis and 12 hex digits of its SHA-256 (the same value, the same key)."""
    if len(value) <= CATEGORY_CHARS:
        return value
    import hashlib

    return f"{value[:CATEGORY_CHARS - 13]}…{hashlib.sha256(value.encode()).hexdigest()[:12]}"
