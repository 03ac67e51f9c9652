"""The conformance checks: plain functions returning :class:`CheckResult` (no pytest needed)."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from .._api import default_registry, unpack
from .._compose import ComposedPacker, split_composition
from .._errors import FedpackError, PackingError
from .._names import NAME_PATTERN, normalize_name
from .._packer import ParameterPacker
from .._registry import PackerRegistry
from .._typing import NDArrays
from ..checks import describe
from ..frame import MAGIC, Frame, encode_frame, is_frame, read_frame
from ._samples import ForeignPacker, compare_values, compare_weights, example_weights

__all__ = ["CHECKS", "CheckResult", "Outcome", "run_checks"]

Outcome = Literal["passed", "failed", "skipped"]
ExtrasFactory = Callable[[NDArrays], Sequence[Any]]
OptionsFactory = Callable[[NDArrays], dict[str, Any]]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one conformance check of one packer."""

    #: The packer, as it was asked for (name, or the class's name).
    packer: str
    #: The check, e.g. ``round_trip[framed]`` (see :data:`CHECKS`).
    check: str
    #: ``passed``, ``failed`` or ``skipped``.
    outcome: Outcome
    #: Why: what was checked, what failed and where, or why the check does not apply.
    reason: str

    @property
    def passed(self) -> bool:
        """The check passed."""
        return self.outcome == "passed"

    @property
    def failed(self) -> bool:
        """The check failed."""
        return self.outcome == "failed"

    @property
    def skipped(self) -> bool:
        """The check did not apply (no example extras, N/A for this packer...)."""
        return self.outcome == "skipped"

    def to_dict(self) -> dict[str, str]:
        """The result as a JSON-ready dict."""
        return asdict(self)


class _Failure(Exception):
    """Raised inside a check to fail it with a reason."""


class _Skip(Exception):
    """Raised inside a check to skip it with a reason."""


@dataclass
class _Target:
    cls: type[ParameterPacker[Any]]
    label: str
    asked: str | None
    registry: PackerRegistry
    expected_name: str
    make_extras: ExtrasFactory
    make_options: OptionsFactory
    tolerance: float | None
    explicit_tolerance: bool = False
    transforms_weights: bool = False

    def tolerance_for(self, packer: ParameterPacker[Any]) -> float | None:
        """The tolerance to check ``packer`` against.

        The one given to the checks, else the one ``packer`` declares (per instance, e.g. set
        by its options), else the class's.
        """
        if self.explicit_tolerance:
            return self.tolerance
        declared = getattr(packer, "lossy_tolerance", self.tolerance)
        return declared if declared is None else float(declared)

    def extras_tolerance(self, packer: ParameterPacker[Any]) -> float | None:
        """The tolerance for the extra data: only for packers that declare ``lossy_extras``."""
        return self.tolerance_for(packer) if getattr(packer, "lossy_extras", False) else None

    def packer(self, weights: NDArrays, *, framed: bool) -> ParameterPacker[Any]:
        options = self.make_options(weights)
        try:
            if issubclass(self.cls, ComposedPacker):
                return self.registry.get_packer(self.expected_name, framed=framed, **options)
            return self.cls(framed=framed, **options)
        except Exception as exc:
            raise _Failure(
                f"{self.cls.__qualname__}(framed={framed}, **{options!r}) raised {exc!r}"
            ) from exc

    def samples(self) -> Iterator[tuple[str, NDArrays, list[Any]]]:
        """``(set name, weights, extras)`` for every weight set the packer has extras for."""
        found = False
        for set_name, weights in example_weights().items():
            try:
                extras = list(self.make_extras(weights))
            except Exception as exc:
                raise _Failure(f"example extras for weights {set_name!r} raised {exc!r}") from exc
            if extras:
                found = True
                yield set_name, weights, extras
        if not found:
            raise _Skip(
                "no example extras: define example_extras(weights) on the packer class "
                "(or pass extras= to the checks)"
            )


# -- the checks --------------------------------------------------------------------------------


def _check_name(target: _Target) -> str:
    name = target.cls.name
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise _Failure(f"{target.cls.__qualname__}.name: expected [a-z0-9_]+, found {name!r}")
    asked = target.asked
    if asked is not None and "+" not in asked and normalize_name(asked) != name:
        raise _Failure(f"asked for {target.asked!r}, the registry returned a class named {name!r}")
    return f"name {name!r} is [a-z0-9_]+"


def _check_metadata(target: _Target) -> str:
    if issubclass(target.cls, ComposedPacker):
        raise _Skip("a composition has no distribution of its own")
    rows = [row for row in target.registry.list_packers() if row.name == target.cls.name]
    loaded = [row for row in rows if row.state == "loaded"]
    if not loaded:
        raise _Skip("not registered in a registry: no metadata to check")
    row = loaded[0]
    if row.distribution is None:
        raise _Skip("registered in-process: no distribution metadata")
    if not row.distribution or not row.version or row.version == "unknown":
        raise _Failure(
            f"list_packers(): expected a distribution and a version, found "
            f"{row.distribution!r} {row.version!r}"
        )
    return f"provided by {row.distribution}=={row.version} (entry point {row.entry_point})"


def _round_trip(target: _Target, *, framed: bool) -> str:
    count = 0
    for set_name, weights, extras in target.samples():
        packer = target.packer(weights, framed=framed)
        for index, extra in enumerate(extras):
            where = f"weights {set_name!r}, example extra #{index}"
            before_weights = [w.copy() for w in weights]
            before_extra = copy.deepcopy(extra)
            packed = _call(where, "pack_parameters", packer.pack_parameters, weights, extra)
            _check_payload(packed, where)
            if compare_weights(before_weights, weights, None) or compare_values(
                before_extra, extra
            ):
                raise _Failure(f"{where}: pack_parameters modified its input")
            result = _call(where, "unpack_parameters", packer.unpack_parameters, packed)
            got_weights, got_extra = _pair(result, where)
            reason = compare_weights(weights, got_weights, target.tolerance_for(packer))
            reason = reason or compare_values(
                extra, got_extra, tolerance=target.extras_tolerance(packer)
            )
            if reason:
                raise _Failure(f"{where}: round trip changed the data: {reason}")
            count += 1
    layout = "framed" if framed else "FL4Health (framed=False)"
    return f"{count} payloads round-tripped in the {layout} layout"


def _check_frame(target: _Target) -> str:
    count = 0
    for set_name, weights, extras in target.samples():
        framed = target.packer(weights, framed=True)
        unframed = target.packer(weights, framed=False)
        for index, extra in enumerate(extras):
            where = f"weights {set_name!r}, example extra #{index}"
            packed = _call(where, "pack_parameters", framed.pack_parameters, weights, extra)
            _check_payload(packed, where)
            if not packed or not is_frame(packed[-1]):
                raise _Failure(f"{where}: the framed payload does not end in a fedpack frame")
            frame = read_frame(packed)
            if frame.packer != target.cls.name:
                raise _Failure(
                    f"{where}: the frame names packer {frame.packer!r}, expected "
                    f"{target.cls.name!r}"
                )
            result = _call(where, "fedpack.unpack", unpack, packed, registry=target.registry)
            name, got_weights, got_extra = result
            if name != target.expected_name:
                raise _Failure(
                    f"{where}: fedpack.unpack returned name {name!r}, expected "
                    f"{target.expected_name!r}"
                )
            reason = compare_weights(weights, got_weights, target.tolerance_for(framed))
            reason = reason or compare_values(
                extra, got_extra, tolerance=target.extras_tolerance(framed)
            )
            if reason:
                raise _Failure(f"{where}: fedpack.unpack returned other data: {reason}")
            plain = _call(where, "pack_parameters", unframed.pack_parameters, weights, extra)
            if plain and is_frame(plain[-1]):
                raise _Failure(f"{where}: the framed=False payload ends in a fedpack frame")
            count += 1
    return f"{count} framed payloads name {target.cls.name!r} and fedpack.unpack dispatches them"


def _check_no_copies(target: _Target) -> str:
    if target.transforms_weights:
        raise _Skip("N/A: the packer declares transforms_weights = True (new weight arrays)")
    count = 0
    for set_name, weights, extras in target.samples():
        for framed in (True, False):
            packer = target.packer(weights, framed=framed)
            where = f"weights {set_name!r}, framed={framed}"
            packed = _call(where, "pack_parameters", packer.pack_parameters, weights, extras[0])
            for index, weight in enumerate(weights):
                if index >= len(packed) or packed[index] is not weight:
                    raise _Failure(
                        f"{where}: pack_parameters copied weight {index} (the payload must "
                        "hold the caller's array objects; set transforms_weights = True if "
                        "the packer encodes the weights)"
                    )
            got, _ = _pair(
                _call(where, "unpack_parameters", packer.unpack_parameters, packed), where
            )
            for index, weight in enumerate(got):
                if index >= len(packed) or weight is not packed[index]:
                    raise _Failure(f"{where}: unpack_parameters copied weight {index}")
            count += 1
    return f"{count} payloads hold the weight objects themselves, both ways"


def _check_malformed(target: _Target, *, framed: bool) -> str:
    strict = 0
    lenient = 0
    for set_name, weights, extras in target.samples():
        packer = target.packer(weights, framed=framed)
        where = f"weights {set_name!r}"
        packed = _call(where, "pack_parameters", packer.pack_parameters, weights, extras[0])
        foreign = ForeignPacker(framed=framed).pack_parameters(weights, [np.arange(3)])
        must = _framed_variants(packed, weights, foreign) if framed else _unframed_must(packed)
        may = _lenient_variants(packed, weights, foreign, framed=framed)
        for label, payload in must:
            _expect_packing_error(packer, payload, f"{where}, {label}", strict=True)
            strict += 1
        for label, payload in may:
            _expect_packing_error(packer, payload, f"{where}, {label}", strict=False)
            lenient += 1
    return (
        f"{strict} malformed payloads raised PackingError; {lenient} more raised PackingError "
        "or unpacked (undetectable without a frame), none raised another exception"
    )


def _check_bad_input(target: _Target) -> str:
    count = 0
    for set_name, weights, extras in target.samples():
        packer = target.packer(weights, framed=True)
        where = f"weights {set_name!r}"
        bad_weights: list[tuple[str, object]] = [
            ("model_weights a bare array", np.zeros(3)),
            ("model_weights None", None),
            ("model_weights holding a list", [[1.0, 2.0]]),
            ("model_weights holding an object array", [np.array([{}], dtype=object)]),
        ]
        for label, value in bad_weights:
            _expect_error(f"{where}, {label}", packer.pack_parameters, value, extras[0])
            count += 1
        _expect_error(
            f"{where}, additional_parameters=object()", packer.pack_parameters, weights, object()
        )
        _expect_error(f"{where}, unpack_parameters(None)", packer.unpack_parameters, None)
        _expect_error(f"{where}, unpack_parameters('abc')", packer.unpack_parameters, "abc")
        count += 3
    return f"{count} bad inputs raised PackingError"


def _stress_weights() -> dict[str, NDArrays]:
    """Weights that test a lossy packer's declared bound: outliers, wide ranges, odd sizes."""
    rng = np.random.default_rng(20240613)
    spiky = rng.standard_normal(70001).astype(np.float32)
    spiky[::997] *= 1000.0
    ramp = np.linspace(-3.0, 5.0, 1001)
    return {
        "outliers": [spiky, rng.standard_normal((33, 17)).astype(np.float32) * 1e-3],
        "ranges": [
            ramp,
            (rng.standard_normal(513) * 1e-30).astype(np.float64),
            (rng.standard_normal(129) * 1e4).astype(np.float16),
            np.full(7, -2.5, dtype=np.float32),
            np.zeros((3, 3), dtype=np.float32),
            np.array(3.25, dtype=np.float32),
        ],
        "mixed": [rng.standard_normal((5, 3, 2)).astype(np.float32), np.arange(5, dtype=np.int64)],
    }


def _check_lossy_bound(target: _Target) -> str:
    if target.tolerance is None:
        next(target.samples())  # skipped, as every check that packs, without example extras
        return "lossless (no lossy_tolerance): every round trip compares exactly"
    count = 0
    worst = 0.0
    declared: set[float] = set()
    for set_name, weights in _stress_weights().items():
        try:
            extras = list(target.make_extras(weights))
        except Exception as exc:
            raise _Failure(f"example extras for weights {set_name!r} raised {exc!r}") from exc
        if not extras:
            continue
        packer = target.packer(weights, framed=True)
        tolerance = target.tolerance_for(packer)
        if not (isinstance(tolerance, float) and 0.0 < tolerance < 1.0):
            raise _Failure(
                f"lossy_tolerance: expected a number in (0, 1) (relative to max|x|), "
                f"found {tolerance!r}"
            )
        declared.add(tolerance)
        where = f"stress weights {set_name!r}"
        packed = _call(where, "pack_parameters", packer.pack_parameters, weights, extras[0])
        got, _ = _pair(_call(where, "unpack_parameters", packer.unpack_parameters, packed), where)
        reason = compare_weights(weights, got, tolerance)
        if reason:
            raise _Failure(f"{where}: {reason}")
        for want, have in zip(weights, got, strict=True):
            if want.dtype.kind == "f" and want.size:
                peak = float(np.max(np.abs(want.astype(np.float64))))
                error = float(np.max(np.abs(have.astype(np.float64) - want.astype(np.float64))))
                if peak > 0:
                    worst = max(worst, error / (tolerance * peak))
        count += 1
    if not count:
        raise _Skip("no example extras for the stress weights")
    bound = ", ".join(f"{t:g}" for t in sorted(declared))
    return (
        f"{count} stress payloads (outliers, wide ranges, float16/32/64) within the declared "
        f"tolerance {bound} x max|x|; the worst error used {worst:.0%} of it"
    )


#: The checks, in order: ``name -> function(target)``.
CHECKS: dict[str, Callable[[_Target], str]] = {
    "name": _check_name,
    "metadata": _check_metadata,
    "round_trip[framed]": lambda t: _round_trip(t, framed=True),
    "round_trip[unframed]": lambda t: _round_trip(t, framed=False),
    "frame": _check_frame,
    "no_copies": _check_no_copies,
    "malformed[framed]": lambda t: _check_malformed(t, framed=True),
    "malformed[unframed]": lambda t: _check_malformed(t, framed=False),
    "bad_input": _check_bad_input,
    "lossy_bound": _check_lossy_bound,
}


# -- malformed payloads --------------------------------------------------------------------------

Variants = list[tuple[str, object]]


def _framed_variants(packed: NDArrays, weights: NDArrays, foreign: NDArrays) -> Variants:
    """Payloads a framed packer must reject with PackingError."""
    frame = read_frame(packed)
    body = packed[-1]
    out: Variants = [
        ("empty list", []),
        ("frame dropped (truncated)", packed[:-1]),
        ("array appended after the frame (extended)", [*packed, np.zeros(1)]),
        ("array inserted before the frame (extended)", [*packed[:-1], np.zeros(1), body]),
        ("another packer's payload", foreign),
        ("a list never packed (the weights)", list(weights)),
        ("a list never packed (one float array)", [np.arange(4.0)]),
        ("a bare array", np.arange(4.0)),
        ("None", None),
        ("frame body byte flipped (checksum)", [*packed[:-1], _flip(body, len(body) - 2)]),
        ("frame magic damaged", [*packed[:-1], _flip(body, 0)]),
        ("frame version changed", [*packed[:-1], _flip(body, len(MAGIC))]),
        ("frame truncated", [*packed[:-1], body[:-3].copy()]),
        (
            "frame names another packer",
            [*packed[:-1], encode_frame(Frame("fedpack_testing_other", *_rest(frame)))],
        ),
    ]
    if len(packed) > 1:
        out.append(("first array dropped (truncated)", packed[1:]))
    if len(packed) > 1:
        out.append(("an object array inside", [np.array([None], dtype=object), *packed[1:]]))
    return out


def _unframed_must(packed: NDArrays) -> Variants:
    """Payloads a framed=False packer must reject too (checked before any split)."""
    framed = [*packed, encode_frame(Frame("fedpack_testing_other", (("weights", len(packed)),)))]
    return [
        ("a framed payload", framed),
        ("a bare array", np.arange(4.0)),
        ("None", None),
        ("an object array inside", [*packed, np.array([None], dtype=object)]),
    ]


def _lenient_variants(
    packed: NDArrays, weights: NDArrays, foreign: NDArrays, *, framed: bool
) -> Variants:
    """Payloads that may unpack (a valid-looking split), but never raise another exception."""
    out: Variants = []
    arrays = packed[:-1] if framed else packed
    tail = packed[-1:] if framed else []
    if not framed:
        out += [
            ("empty list", []),
            ("last array dropped (truncated)", packed[:-1]),
            ("first array dropped (truncated)", packed[1:]),
            ("array appended (extended)", [*packed, np.zeros(1)]),
            ("another packer's payload", foreign),
            ("a list never packed (the weights)", list(weights)),
        ]
    garbage = [np.array(["garbage"]), np.zeros((2, 2, 2), dtype=np.complex64), np.array(np.inf)]
    for index in range(min(len(arrays), 24)):
        for bad in garbage:
            payload = [*arrays[:index], bad, *arrays[index + 1 :], *tail]
            out.append((f"array {index} replaced by {describe(bad)}", payload))
    if framed:
        frame = read_frame(packed)
        counts = list(frame.sections)
        for i in range(len(counts) - 1):
            for delta in (1, -1):
                moved = counts.copy()
                (a, ca), (b, cb) = moved[i], moved[i + 1]
                if ca - delta < 0 or cb + delta < 0:
                    continue
                moved[i], moved[i + 1] = (a, ca - delta), (b, cb + delta)
                tampered = Frame(frame.packer, tuple(moved), frame.options, frame.meta)
                out.append((f"frame section counts {moved}", [*arrays, encode_frame(tampered)]))
        if frame.meta:
            garbled = {key: "garbage" for key in frame.meta}
            tampered = Frame(frame.packer, frame.sections, frame.options, garbled)
            out.append(("frame meta garbled", [*arrays, encode_frame(tampered)]))
    return out


def _rest(frame: Frame) -> tuple[Any, ...]:
    return (frame.sections, frame.options, frame.meta)


def _flip(array: Any, index: int) -> Any:
    flipped = np.array(array, copy=True)
    flipped[index] ^= 0x5A
    return flipped


# -- helpers -------------------------------------------------------------------------------------


def _call(where: str, what: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return func(*args, **kwargs)
    except Exception as exc:
        raise _Failure(f"{where}: {what} raised {exc!r} on valid input") from exc


def _pair(result: object, where: str) -> tuple[Any, Any]:
    if not isinstance(result, tuple) or len(result) != 2:
        raise _Failure(
            f"{where}: unpack_parameters must return (weights, extra), found {result!r:.80}"
        )
    return result[0], result[1]


def _check_payload(packed: object, where: str) -> None:
    if not isinstance(packed, list) or not all(isinstance(a, np.ndarray) for a in packed):
        raise _Failure(f"{where}: pack_parameters must return a list of numpy arrays")
    for index, array in enumerate(packed):
        if array.dtype.hasobject:
            raise _Failure(f"{where}: payload array {index} has object dtype {array.dtype}")


def _expect_packing_error(
    packer: ParameterPacker[Any], payload: object, where: str, *, strict: bool
) -> None:
    try:
        packer.unpack_parameters(payload)  # type: ignore[arg-type]
    except PackingError:
        return
    except Exception as exc:
        raise _Failure(f"{where}: raised {exc!r} instead of fedpack.PackingError") from exc
    if strict:
        raise _Failure(f"{where}: unpacked without error; expected fedpack.PackingError")


def _expect_error(where: str, func: Callable[..., Any], *args: Any) -> None:
    try:
        func(*args)
    except PackingError:
        return
    except Exception as exc:
        raise _Failure(f"{where}: raised {exc!r} instead of fedpack.PackingError") from exc
    raise _Failure(f"{where}: accepted; expected fedpack.PackingError")


# -- running -------------------------------------------------------------------------------------


def run_checks(
    packer: str | type[ParameterPacker[Any]],
    *,
    extras: ExtrasFactory | None = None,
    options: OptionsFactory | None = None,
    tolerance: float | None = None,
    registry: PackerRegistry | None = None,
    checks: Sequence[str] | None = None,
) -> list[CheckResult]:
    """Run the conformance checks against a packer; one :class:`CheckResult` per check.

    :param packer: a registered name (``"int8"``, ``"scaffold+clipping_bit"``) or a packer class
        (registered in a private registry for the ``fedpack.unpack`` check if ``registry``
        does not provide it).
    :param extras: ``weights -> [extra, ...]``, valid extra data for these weights; default the
        class's :meth:`~fedpack.ParameterPacker.example_extras`. Without any, the checks that
        pack are reported ``skipped: no example extras``.
    :param options: ``weights -> {option: value}`` for the constructor; default the class's
        :meth:`~fedpack.ParameterPacker.example_options`.
    :param tolerance: overrides the packer's :attr:`~fedpack.ParameterPacker.lossy_tolerance`
        (else the instance's, which may depend on its options, else the class's).
    :param registry: where names are looked up (default: the process-wide registry).
    :param checks: a subset of :data:`CHECKS` (default: all).

    Never raises for a broken packer: a packer that fails to load gets one failed ``load``
    result; any exception inside a check fails that check with the exception as the reason.
    """
    selected = list(CHECKS) if checks is None else list(checks)
    unknown = [name for name in selected if name not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; the checks are {list(CHECKS)}")
    label = packer if isinstance(packer, str) else getattr(packer, "name", repr(packer))
    try:
        target = _target(packer, extras, options, tolerance, registry)
    except Exception as exc:
        return [CheckResult(str(label), "load", "failed", f"{type(exc).__name__}: {exc}")]
    results: list[CheckResult] = []
    for name in selected:
        try:
            reason = CHECKS[name](target)
        except _Skip as skip:
            results.append(CheckResult(target.label, name, "skipped", str(skip)))
        except _Failure as failure:
            results.append(CheckResult(target.label, name, "failed", str(failure)))
        except Exception as exc:  # a bug in the packer surfacing in an unexpected place
            results.append(CheckResult(target.label, name, "failed", f"raised {exc!r}"))
        else:
            results.append(CheckResult(target.label, name, "passed", reason))
    return results


def _target(
    packer: str | type[ParameterPacker[Any]],
    extras: ExtrasFactory | None,
    options: OptionsFactory | None,
    tolerance: float | None,
    registry: PackerRegistry | None,
) -> _Target:
    asked: str | None = None
    if isinstance(packer, str):
        asked = packer
        registry = registry or default_registry()
        cls = registry.get_packer_class(packer)
    elif isinstance(packer, type) and issubclass(packer, ParameterPacker):
        cls = packer
        registry = _registry_for(cls, registry)
    else:
        raise TypeError(f"expected a packer name or class, found {describe(packer)}")
    if issubclass(cls, ComposedPacker):
        if asked is None or normalize_name(asked) == cls.name:
            raise TypeError("the generic 'compose' class has no parts; check 'a+b' instead")
        parts = [registry.get_packer_class(part) for part in split_composition(asked)]
    else:
        parts = [cls]
    expected = "+".join(part.name for part in parts) if asked and "+" in asked else cls.name
    make_extras, make_options = example_factories(registry, asked or cls.name, cls)
    tolerances = [p.lossy_tolerance for p in parts if p.lossy_tolerance is not None]
    return _Target(
        cls=cls,
        label=normalize_name(asked) if asked else expected,
        asked=asked,
        registry=registry,
        expected_name=expected,
        make_extras=extras or make_extras,
        make_options=options or make_options,
        tolerance=(max(tolerances) if tolerances else None) if tolerance is None else tolerance,
        explicit_tolerance=tolerance is not None,
        transforms_weights=any(part.transforms_weights for part in parts),
    )


def example_factories(
    registry: PackerRegistry, name: str, cls: type[ParameterPacker[Any]]
) -> tuple[ExtrasFactory, OptionsFactory]:
    """The example extras and options of packer ``name``: a composition's from its parts'.

    A composition's extras are tuples of its parts' (the longest list, the others cycled);
    its options hold each part's under the part's name.
    """
    if not issubclass(cls, ComposedPacker) or "+" not in name:
        return cls.example_extras, cls.example_options
    parts = {part: registry.get_packer_class(part) for part in split_composition(name)}

    def make_extras(weights: NDArrays) -> list[Any]:
        lists = [list(part.example_extras(weights)) for part in parts.values()]
        if not all(lists):
            return []
        longest = max(len(values) for values in lists)
        cycled = [list(itertools.islice(itertools.cycle(v), longest)) for v in lists]
        return [tuple(combo) for combo in zip(*cycled, strict=True)]

    def make_options(weights: NDArrays) -> dict[str, Any]:
        found = {name: part.example_options(weights) for name, part in parts.items()}
        return {name: options for name, options in found.items() if options}

    return make_extras, make_options


def _registry_for(
    cls: type[ParameterPacker[Any]], registry: PackerRegistry | None
) -> PackerRegistry:
    candidate = registry or default_registry()
    try:
        if candidate.get_packer_class(cls.name) is cls:
            return candidate
    except FedpackError:
        pass
    private = PackerRegistry(autoload=False)
    private.register(cls)
    return private
