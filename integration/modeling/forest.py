"""Fast evaluation of a fitted LightGBM model: scores, decision-path credits, what-ifs.

Scoring a million leads asks three things of a booster that its own ``predict``
answers slowly: the raw score, the decision-path (Saabas) attribution of that
score, and the score under several settings of a few columns (the uplift
S-learner's arm indicators). Here the trees are flattened once from
``Booster.dump_model()`` into arrays and evaluated by numba-compiled kernels that
release the GIL: callers may run slices of the rows in threads (``threads=``).

**Which leaf a row reaches.** Walking a tree costs a hard-to-predict branch and a
dependent memory read per level. Instead, a block of rows is tested against every
split of a tree at once (the bit-vector method of QuickScorer, Lucchese et al.
2015): the leaves are numbered left to right, and a row that goes right at a split
can no longer reach the leaves of its left subtree, so it drops their bits. After every
split has been applied, the row's leaf is the lowest bit left. Each split is one
compare-and-mask over contiguous rows, which the compiler vectorizes; trees of more
than 64 leaves are walked instead. With the leaf known, the path credits are the
leaf's tabulated (feature, credit) pairs, and settings of a few columns only change
which of *their* splits' masks apply: a constant per tree and setting.

**LightGBM's rules** (``Tree::NumericalDecision``/``CategoricalDecision`` in its
``tree.h``) are reproduced, so scores equal its ``predict(raw_score=True)`` bit for bit
on x86-64:

* an input with ``|x| <= 1e-35`` reads as 0 (LightGBM drops such values from a row);
* numerical split, missing type ``None``: NaN reads as 0, then ``x <= threshold`` goes
  left; ``Zero``: NaN and 0 take the default side; ``NaN``: NaN takes the default side;
* categorical split: the category ``int(x)`` (truncated) goes left when it is in the
  split's set; NaN, negative codes and codes beyond the set go right;
* the raw score is the sum of the reached leaves' values, tree by tree from 0 (a random
  forest's too: its ``predict(raw_score=True)`` is a sum, only ``predict`` averages).

The arrays are built lazily per booster (`forest_for`) and never pickled.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numba.core import cgutils, types
from numba.extending import intrinsic

__all__ = [
    "Forest",
    "forest_for",
    "path_credits",
    "probability",
    "raw_score",
    "raw_score_settings",
]

ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (a float literal in C++)
INT_LIMIT = 2.0**31  # static_cast<int> beyond this gives INT_MIN on x86-64: "right"
BLOCK = 512  # rows tested against a tree at once (their masks stay in L1)
CHUNK = 16_384  # rows copied to column order at a time
MAX_LEAVES = 64  # leaves a bit mask holds; larger trees are walked

# Split kinds. Plain numerical splits (most) need no care for zero; a categorical split
# whose categories are below 64 tests a bit mask; the general kinds go through `_side`.
PLAIN_NAN_RIGHT = 0
PLAIN_NAN_LEFT = 1
NUMERIC = 2
CATEGORICAL = 3
SMALL_CATEGORICAL = 4

ALL = np.uint64(0xFFFFFFFFFFFFFFFF)


def jit(function: Callable) -> Callable:
    """``numba.njit`` releasing the GIL, cached on disk where a cache can be written.

    numba raises at decoration when it finds no writable cache location (a read-only
    install without a home directory); compiling on every process start is then the
    price, not an error.
    """
    try:
        return numba.njit(nogil=True, cache=True)(function)
    except RuntimeError:
        return numba.njit(nogil=True)(function)


@dataclass(frozen=True)
class Forest:
    """A booster's trees as flat arrays (see the module docstring).

    Tree ``t`` owns the splits ``tree_nodes[t]:tree_nodes[t + 1]`` (its root first) and
    the leaves ``tree_leaves[t]:tree_leaves[t + 1]``, numbered left to right. A child
    ``c >= 0`` is a split (global index), ``c < 0`` the tree's leaf ``~c`` (local index).
    ``keep`` is a split's bit mask of the leaves a row going right can still reach.
    Leaf ``l``'s path credits are ``path_feature``/``path_credit`` at
    ``path_start[l]:path_start[l + 1]``, root first: each the move of the node value
    (``internal_value``) to the child's value on the way, credited to the split's feature.
    """

    tree_nodes: np.ndarray  # (trees + 1,) int64
    tree_leaves: np.ndarray  # (trees + 1,) int64
    kind: np.ndarray  # (splits,) int64, one of the kinds above
    feature: np.ndarray  # (splits,) int64
    threshold: np.ndarray  # (splits,) float64 (numerical)
    nan_left: np.ndarray  # (splits,) bool: where NaN goes (numerical)
    zero_left: np.ndarray  # (splits,) bool: where 0 goes (numerical)
    keep: np.ndarray  # (splits,) uint64
    cat_bits: np.ndarray  # (splits,) uint64: categories going left (small categorical)
    cat_start: np.ndarray  # (splits,) int64 offset into cat_left (categorical)
    cat_size: np.ndarray  # (splits,) int64 categories tabulated from cat_start
    cat_left: np.ndarray  # (sum of cat_size,) bool: the category goes left
    left: np.ndarray  # (splits,) int64
    right: np.ndarray  # (splits,) int64
    leaf_value: np.ndarray  # (leaves,) float64
    cat_features: np.ndarray  # features with small categorical splits
    cat_slot: np.ndarray  # (features,) int64: position in cat_features, or -1
    path_start: np.ndarray  # (leaves + 1,) int64
    path_feature: np.ndarray  # (path steps,) int64
    path_credit: np.ndarray  # (path steps,) float64
    bias: float  # sum of the roots' values
    n_features: int
    average_output: bool
    objective: str

    @property
    def n_trees(self) -> int:
        return int(self.tree_nodes.size - 1)

    @classmethod
    def from_booster(cls, booster: Any) -> Forest:
        """Flatten ``booster`` (a ``lightgbm.Booster``) at its best iteration: the trees
        its ``predict`` uses by default."""
        return cls.from_dump(booster.dump_model())

    @classmethod
    def from_dump(cls, dump: dict[str, Any]) -> Forest:
        """Flatten the output of ``Booster.dump_model()``."""
        if int(dump.get("num_tree_per_iteration", 1)) != 1:
            raise ValueError("only single-output models (binary, regression) are supported")
        fields = (
            "kind", "feature", "threshold", "nan_left", "zero_left", "keep", "cat_bits",
            "cat_start", "cat_size", "left", "right",
        )  # fmt: skip
        nodes: dict[str, list[Any]] = {k: [] for k in fields}
        cat_left: list[bool] = []
        leaves: list[float] = []
        paths: list[list[tuple[int, float]]] = []
        tree_nodes, tree_leaves = [0], [0]
        bias = 0.0

        for tree in dump["tree_info"]:
            root = tree["tree_structure"]
            bias += _value(root)
            first_leaf = len(leaves)
            # Depth-first, left before right: splits in pre-order (root first), leaves
            # numbered left to right. Each entry: node, its path so far, and the slot of
            # the parent's child pointer to fill.
            stack: list[tuple[dict[str, Any], list[tuple[int, float]], tuple[str, int]]] = [
                (root, [], ("", -1))
            ]
            splits: list[int] = []
            while stack:
                node, path, (side, parent) = stack.pop()
                if "split_feature" not in node:
                    if "leaf_coeff" in node:
                        raise ValueError("linear trees are not supported")
                    local = len(leaves) - first_leaf
                    leaves.append(float(node.get("leaf_value", 0.0)))
                    paths.append(path)
                    if parent >= 0:
                        nodes[side][parent] = ~local
                    continue
                index = len(nodes["kind"])
                for column in nodes.values():
                    column.append(0)
                if parent >= 0:
                    nodes[side][parent] = index
                _split(node, index, nodes, cat_left)
                own = float(node["internal_value"])
                feature = int(node["split_feature"])
                splits.append(index)
                left, right = node["left_child"], node["right_child"]
                stack.append((right, [*path, (feature, _value(right) - own)], ("right", index)))
                stack.append((left, [*path, (feature, _value(left) - own)], ("left", index)))
            count = len(leaves) - first_leaf
            if count <= MAX_LEAVES:
                for index in splits:
                    first, last = _leaf_range(nodes["left"], nodes["right"], nodes["left"][index])
                    below = ((1 << (last + 1)) - 1) ^ ((1 << first) - 1)
                    nodes["keep"][index] = ((1 << 64) - 1) ^ below
            tree_nodes.append(len(nodes["kind"]))
            tree_leaves.append(len(leaves))

        ints = ("kind", "feature", "cat_start", "cat_size", "left", "right")
        arrays = {
            k: np.asarray(
                v,
                dtype=np.int64 if k in ints
                else bool if k in ("nan_left", "zero_left")
                else np.uint64 if k in ("keep", "cat_bits")
                else np.float64,
            )
            for k, v in nodes.items()
        }  # fmt: skip
        lengths = [len(p) for p in paths]
        small = arrays["kind"] == SMALL_CATEGORICAL
        cat_features = np.unique(arrays["feature"][small]).astype(np.int64)
        cat_slot = np.full(int(dump["max_feature_idx"]) + 1, -1, dtype=np.int64)
        cat_slot[cat_features] = np.arange(cat_features.size)
        return cls(
            tree_nodes=np.asarray(tree_nodes, dtype=np.int64),
            tree_leaves=np.asarray(tree_leaves, dtype=np.int64),
            cat_left=np.asarray(cat_left, dtype=bool),
            leaf_value=np.asarray(leaves, dtype=np.float64),
            cat_features=cat_features,
            cat_slot=cat_slot,
            path_start=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            path_feature=np.asarray([f for p in paths for f, _ in p], dtype=np.int64),
            path_credit=np.asarray([c for p in paths for _, c in p], dtype=np.float64),
            bias=bias,
            n_features=int(dump["max_feature_idx"]) + 1,
            average_output=bool(dump.get("average_output", False)),
            objective=str(dump.get("objective", "")),
            **arrays,
        )

    def tables(self) -> tuple[np.ndarray, ...]:
        """The arrays every kernel takes, in their order."""
        return (
            self.tree_nodes, self.tree_leaves, self.kind, self.feature, self.threshold,
            self.nan_left, self.zero_left, self.keep, self.cat_bits, self.cat_start,
            self.cat_size, self.cat_left, self.left, self.right, self.leaf_value,
            self.cat_features, self.cat_slot,
        )  # fmt: skip

    def sigmoid(self) -> float | None:
        """The coefficient of a binary objective's sigmoid (None for other objectives)."""
        name, *options = self.objective.split() or [""]
        if name not in ("binary", "cross_entropy", "xentropy"):
            return None
        for option in options:
            if option.startswith("sigmoid:"):
                return float(option.split(":", 1)[1])
        return 1.0


def _value(node: dict[str, Any]) -> float:
    """A node's value: its internal value, or a leaf's output."""
    if "split_feature" in node:
        return float(node["internal_value"])
    return float(node.get("leaf_value", 0.0))


def _split(node: dict[str, Any], index: int, nodes: dict[str, list[Any]], cat_left: list) -> None:
    """Fill split ``index``'s decision fields from its dump."""
    nodes["feature"][index] = int(node["split_feature"])
    nodes["cat_start"][index] = len(cat_left)
    threshold = node["threshold"]
    if node["decision_type"] == "==":
        categories = [int(c) for c in str(threshold).split("||")]
        table = [False] * (max(categories) + 1)
        for c in categories:
            table[c] = True
        cat_left.extend(table)
        nodes["cat_size"][index] = len(table)
        if len(table) <= 64:
            nodes["kind"][index] = SMALL_CATEGORICAL
            nodes["cat_bits"][index] = sum(1 << c for c in set(categories))
        else:
            nodes["kind"][index] = CATEGORICAL
        return
    if node["decision_type"] != "<=":
        raise ValueError(f"unknown decision type {node['decision_type']!r}")
    threshold = float(threshold)
    missing = node.get("missing_type", "None")
    default_left = bool(node.get("default_left", False))
    at_zero = threshold >= 0.0
    nan_left = default_left if missing in ("Zero", "NaN") else at_zero
    # A plain split: every |x| <= 1e-35 compares with the threshold as 0 does.
    plain = missing != "Zero" and (threshold >= ZERO or threshold < -ZERO)
    if plain:
        nodes["kind"][index] = PLAIN_NAN_LEFT if nan_left else PLAIN_NAN_RIGHT
    else:
        nodes["kind"][index] = NUMERIC
    nodes["threshold"][index] = threshold
    nodes["nan_left"][index] = nan_left
    nodes["zero_left"][index] = default_left if missing == "Zero" else at_zero


def _leaf_range(left: list[int], right: list[int], child: int) -> tuple[int, int]:
    """First and last local leaf under ``child``."""
    first = last = child
    while first >= 0:
        first = left[first]
    while last >= 0:
        last = right[last]
    return ~first, ~last


class PerObject:
    """What ``build`` makes of an object, made once per object (thread-safe) and held
    beside it rather than on it: nothing extra is pickled, and the value goes with the
    object."""

    def __init__(self, build: Callable[[Any], Any]) -> None:
        self._build = build
        self._values: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def __call__(self, key: Any) -> Any:
        with self._lock:
            value = self._values.get(key)
            if value is None:
                value = self._values[key] = self._build(key)
            return value


_FORESTS = PerObject(Forest.from_booster)


def forest_for(booster: Any) -> Forest:
    """The flattened trees of ``booster``, built once per booster object (thread-safe);
    a refitted booster gets its own."""
    return _FORESTS(booster)


def probability(forest: Forest, raw: np.ndarray) -> np.ndarray:
    """P(y = 1) from a binary model's raw score, as LightGBM's ``predict`` converts it (a
    random forest's sum of trees becomes their mean first)."""
    coefficient = forest.sigmoid()
    if coefficient is None:
        raise ValueError(f"objective {forest.objective!r} has no probability")
    raw = np.asarray(raw, dtype=np.float64)
    if forest.average_output and forest.n_trees:
        raw = raw / forest.n_trees
    return 1.0 / (1.0 + np.exp(-coefficient * raw))


@intrinsic
def _lowest_bit(typingctx, bits):
    """Index of the lowest set bit of an unsigned integer (one ``tzcnt``)."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], cgutils.false_bit)

    return bits(bits), codegen


# --- kernels -----------------------------------------------------------------------------
# A jitted helper that takes arrays costs a reference count per array and call: fine once
# per block and tree, ten times the work itself once per row and split. So `_side` takes
# scalars, and the per-row steps are written out in each kernel.


@jit
def _side(x, kind, threshold, nan_left, zero_left, cat_size):
    """1: ``x`` goes left, 0: right, 2 + c: look category c up in the split's table."""
    if kind == PLAIN_NAN_RIGHT:
        return 1 if x <= threshold else 0  # NaN compares false: right
    if kind == PLAIN_NAN_LEFT:
        return 0 if x > threshold else 1  # NaN compares false: left
    if kind == NUMERIC:
        if x != x:
            return 1 if nan_left else 0
        if -ZERO <= x <= ZERO:
            return 1 if zero_left else 0
        return 1 if x <= threshold else 0
    if x != x or x <= -1.0 or x >= INT_LIMIT:
        return 0
    code = int(x)  # truncates, as static_cast<int>
    return 0 if code >= cat_size else code + 2


@jit
def _apply_splits(
    X, a, rows, lo, hi, masks, source, kind, feature, threshold, nan_left, zero_left, keep,
    cat_bits, cat_start, cat_size, cat_left, cat_slot, category,
):  # fmt: skip
    """AND into ``masks[:rows]`` every split ``lo:hi`` of a tree for rows ``a:a + rows``,
    skipping splits on features with ``source >= 0`` (set columns). ``category[c]``: the
    rows' categories of ``cat_features[c]`` as one-bit masks (see `_kernel`)."""
    for j in range(lo, hi):
        f = feature[j]
        if source[f] >= 0:
            continue
        k = kind[j]
        column = X[a : a + rows, f]
        threshold_j = threshold[j]
        keep_j = keep[j]
        if k == PLAIN_NAN_RIGHT:
            for r in range(rows):
                masks[r] &= ALL if column[r] <= threshold_j else keep_j
        elif k == PLAIN_NAN_LEFT:
            for r in range(rows):
                masks[r] &= keep_j if column[r] > threshold_j else ALL
        elif k == SMALL_CATEGORICAL:
            bits = cat_bits[j]
            own = category[cat_slot[f]]
            for r in range(rows):
                masks[r] &= ALL if own[r] & bits else keep_j
        else:
            for r in range(rows):
                side = _side(column[r], k, threshold_j, nan_left[j], zero_left[j], cat_size[j])
                if side > 1:
                    side = cat_left[cat_start[j] + side - 2]
                masks[r] &= ALL if side else keep_j


@jit
def _walk(
    X, i, node, setting, source, kind, feature, threshold, nan_left, zero_left, cat_start,
    cat_size, cat_left, left, right,
):  # fmt: skip
    """The local leaf row ``i`` reaches from split ``node`` (trees too large for a mask);
    a feature with ``source[f] >= 0`` reads ``setting[source[f]]``."""
    while node >= 0:
        f = feature[node]
        x = X[i, f] if source[f] < 0 else setting[source[f]]
        side = _side(x, kind[node], threshold[node], nan_left[node], zero_left[node],
                     cat_size[node])  # fmt: skip
        if side > 1:
            side = cat_left[cat_start[node] + side - 2]
        node = left[node] if side else right[node]
    return ~node


@jit
def _kernel(
    X, start, stop, raw, settings, fixed, forks, credits, path_group, path_start, path_credit,
    source, tree_nodes, tree_leaves, kind, feature, threshold, nan_left, zero_left,
    keep, cat_bits, cat_start, cat_size, cat_left, left, right, leaf_value, cat_features,
    cat_slot,
):  # fmt: skip
    """Raw scores ``raw[i]`` (one per setting) of the rows ``start:stop`` of ``X``, and,
    when ``credits`` has rows, setting 0's path credits ``credits[i, path_group]``.

    ``fixed[t, s]``: the mask of tree t's splits on set columns under setting s;
    ``forks[t]``: whether those differ between the settings.
    """
    n_settings = raw.shape[1]
    with_credits = credits.shape[0] > 0
    masks = np.empty(BLOCK, dtype=np.uint64)
    leaves = np.empty(BLOCK, dtype=np.int64)  # setting 0's leaf per row
    total = np.empty((n_settings, BLOCK))
    category = np.zeros((cat_features.size, BLOCK), dtype=np.uint64)
    for a in range(start, stop, BLOCK):
        rows = min(BLOCK, stop - a)
        total[:, :rows] = 0.0
        # Once per block, each categorical feature's codes as one-bit masks: a split on
        # it is then one AND (a float-to-integer conversion does not vectorize here).
        for c in range(cat_features.size):
            f = cat_features[c]
            if source[f] >= 0:
                continue
            for r in range(rows):
                x = X[a + r, f]
                valid = (x > -1.0) & (x < 64.0)  # NaN is neither
                code = np.uint64(np.int64(x) if valid else 0)
                category[c, r] = (np.uint64(1) << code) if valid else np.uint64(0)
        for t in range(tree_nodes.size - 1):
            lo, hi = tree_nodes[t], tree_nodes[t + 1]
            base = tree_leaves[t]
            if tree_leaves[t + 1] - base > MAX_LEAVES:
                for s in range(n_settings):
                    for r in range(rows):
                        leaf = base + _walk(X, a + r, lo, settings[s], source, kind, feature,
                                            threshold, nan_left, zero_left, cat_start,
                                            cat_size, cat_left, left, right)  # fmt: skip
                        total[s, r] += leaf_value[leaf]
                        if s == 0:
                            leaves[r] = leaf
            else:
                masks[:rows] = ALL
                _apply_splits(X, a, rows, lo, hi, masks, source, kind, feature, threshold,
                              nan_left, zero_left, keep, cat_bits, cat_start, cat_size,
                              cat_left, cat_slot, category)  # fmt: skip
                for s in range(n_settings if forks[t] else 1):
                    both = fixed[t, s]
                    row_total = total[s]
                    for r in range(rows):
                        leaf = base + np.int64(_lowest_bit(masks[r] & both))
                        row_total[r] += leaf_value[leaf]
                        if s == 0:
                            leaves[r] = leaf
                if not forks[t]:
                    for s in range(1, n_settings):
                        row_total = total[s]
                        for r in range(rows):
                            row_total[r] += leaf_value[leaves[r]]
            if with_credits:
                for r in range(rows):
                    leaf = leaves[r]
                    row = credits[a + r]
                    for p in range(path_start[leaf], path_start[leaf + 1]):
                        row[path_group[p]] += path_credit[p]
        for r in range(rows):
            for s in range(n_settings):
                raw[a + r, s] = total[s, r]


# --- the API -------------------------------------------------------------------------------


def _rows(forest: Forest, X: Any, width: int) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError("X must be 2-D")
    if X.shape[1] < width:
        raise ValueError(f"X has {X.shape[1]} columns, the model reads {width}")
    return X


def _run(
    forest: Forest,
    X: np.ndarray,
    settings: np.ndarray,
    source: np.ndarray,
    group: np.ndarray | None,
    n_groups: int,
    threads: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores (n, S) and, with ``group``, setting 0's path credits (n, n_groups)."""
    n = X.shape[0]
    fixed, forks = _fixed_masks(forest, settings, source)
    raw = np.empty((n, settings.shape[0]))
    # A feature without a group is credited to one more column, dropped at the end.
    credits = np.zeros((n if group is not None else 0, n_groups + 1))
    if group is None:
        path_group = np.zeros(0, dtype=np.int64)
    else:
        path_group = np.where(group < 0, n_groups, group)[forest.path_feature]
    paths = (path_group, forest.path_start, forest.path_credit)
    rest = (*paths, source, *forest.tables())

    def run(start: int, stop: int) -> None:
        # Column order: a split reads one column over a block of rows. A row-major X is
        # copied a chunk at a time to keep the copy small.
        if X.flags.f_contiguous:
            _kernel(X, start, stop, raw, settings, fixed, forks, credits, *rest)
            return
        for a in range(start, stop, CHUNK):
            b = min(a + CHUNK, stop)
            part = credits[a:b] if credits.shape[0] else credits
            chunk = np.asfortranarray(X[a:b])
            _kernel(chunk, 0, b - a, raw[a:b], settings, fixed, forks, part, *rest)

    if threads <= 1 or n < 2 * BLOCK * threads:
        run(0, n)
    else:
        bounds = np.linspace(0, n, threads + 1).astype(int)
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(run, bounds[:-1], bounds[1:]))
    return raw, credits[:, :n_groups]


def _fixed_masks(
    forest: Forest, settings: np.ndarray, source: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per tree and setting, the AND of the masks of the splits on set columns that the
    setting sends right; and per tree, whether the settings' masks differ."""
    fixed = np.full((forest.n_trees, settings.shape[0]), ALL, dtype=np.uint64)
    on_set = np.flatnonzero(source[forest.feature] >= 0)
    tree_of = np.searchsorted(forest.tree_nodes, on_set, side="right") - 1
    for j, t in zip(on_set.tolist(), tree_of.tolist(), strict=True):
        for s in range(settings.shape[0]):
            x = float(settings[s, source[forest.feature[j]]])
            side = _side(
                x, int(forest.kind[j]), float(forest.threshold[j]), bool(forest.nan_left[j]),
                bool(forest.zero_left[j]), int(forest.cat_size[j]),
            )  # fmt: skip
            if side > 1:
                side = int(forest.cat_left[forest.cat_start[j] + side - 2])
            if not side:
                fixed[t, s] &= forest.keep[j]
    forks = (fixed != fixed[:, :1]).any(axis=1)
    return fixed, forks


def raw_score(forest: Forest, X: Any, threads: int = 1) -> np.ndarray:
    """The raw score (log-odds of a binary model) per row of ``X``: float (n, features),
    categoricals as their codes (NaN when missing); equals ``predict(raw_score=True)``.

    ``threads``: slices of the rows evaluated at once (the kernels release the GIL).
    """
    X = _rows(forest, X, forest.n_features)
    source = np.full(max(forest.n_features, 1), -1, dtype=np.int64)
    raw, _ = _run(forest, X, np.zeros((1, 0)), source, None, 0, threads)
    return raw[:, 0]


def path_credits(
    forest: Forest,
    X: Any,
    group_of_feature: Sequence[int] | np.ndarray | None = None,
    n_groups: int | None = None,
    threads: int = 1,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Raw score and decision-path (Saabas) credits per group, in one pass.

    Along a row's path every split moves the node value to its child's; the move is
    credited to the group ``group_of_feature[feature]`` of the split's feature (a
    negative group: credited nowhere). The default, identity grouping gives per-feature
    credits, summed in the order of the trees and, within one, from the root down.

    Returns:
        ``(raw, credits, bias)``: raw (n,), credits (n, n_groups), and the sum of the
        roots' values; every row's credits and the bias add up to its raw score when
        every feature has a group.
    """
    if group_of_feature is None:
        group = np.arange(forest.n_features, dtype=np.int64)
    else:
        group = np.asarray(group_of_feature, dtype=np.int64)
    if group.ndim != 1 or group.size < forest.n_features:
        raise ValueError(f"group_of_feature needs {forest.n_features} entries")
    width = int(group.max(initial=-1)) + 1 if n_groups is None else int(n_groups)
    if group.max(initial=-1) >= width:
        raise ValueError("a group index is not below n_groups")
    X = _rows(forest, X, forest.n_features)
    source = np.full(max(forest.n_features, 1), -1, dtype=np.int64)
    raw, credits = _run(forest, X, np.zeros((1, 0)), source, group, width, threads)
    return raw[:, 0], credits, forest.bias


def raw_score_settings(
    forest: Forest,
    X: Any,
    columns: Sequence[int] | np.ndarray,
    settings: Any,
    threads: int = 1,
) -> np.ndarray:
    """Raw scores with the features ``columns`` set to each row of ``settings``.

    ``X`` holds the other features (it may be narrower than the model when the set
    columns are its last). Each tree is evaluated once per row; the settings only
    choose among its leaves, so S settings cost little more than one.

    Args:
        X: (n, ≥ every feature read that is not in ``columns``) float rows.
        columns: the model's feature indices whose value comes from ``settings``.
        settings: (S, len(columns)) values.

    Returns:
        (n, S): column s equals ``predict(raw_score=True)`` of the rows with ``columns``
        set to ``settings[s]``.
    """
    settings = np.ascontiguousarray(settings, dtype=np.float64)
    columns = np.asarray(columns, dtype=np.int64)
    if settings.ndim != 2 or settings.shape[1] != columns.size or settings.shape[0] < 1:
        raise ValueError("settings must be (S >= 1, len(columns))")
    source = np.full(max(forest.n_features, int(columns.max(initial=-1)) + 1), -1, np.int64)
    source[columns] = np.arange(columns.size)
    read = forest.feature[source[forest.feature] < 0]
    X = _rows(forest, X, int(read.max(initial=-1)) + 1)
    raw, _ = _run(forest, X, settings, source, None, 0, threads)
    return raw
