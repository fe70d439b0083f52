"""The DN warnings of collection: what the provider rules could not decide, and dates that disagree.

For every collected location, before it is journalled, two kinds of rows join the failures table (they are
warnings: the dates are kept and the location is committed):

- ``radiometry-rule``: a date whose harmonisation rule took a stated default because the item's metadata could
  not decide (:class:`seco.radiometry.providers.ShiftDecision` ``warning``; also stored as ``dn_warning``);
- ``radiometry-inconsistent``: a date whose dark-object DN sit about 1000 DN away from the location's other
  dates (:func:`seco.radiometry.consistency.check_dates`), the signature of a wrong provider flag.

``seco store check`` runs the same consistency check on a finished store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from seco.collect.records import Failure, LocationResult
from seco.radiometry.consistency import ConsistencyConfig, check_dates

RULE_WARNING = "radiometry-rule"
INCONSISTENT = "radiometry-inconsistent"
RADIOMETRY_KINDS = (RULE_WARNING, INCONSISTENT)
_DEFAULT = ConsistencyConfig()


def radiometry_failures(r: LocationResult, bands: Sequence[str],
                        config: ConsistencyConfig = _DEFAULT) -> list[Failure]:
    """The radiometry warnings of one collected location (none unless ``r.status == "ok"``).

    Args:
        r: a worker's result, with ``images`` (T, C, H, W) in the order of ``bands``.
        bands: the store's bands.
        config: the consistency settings (the check is skipped when ``bands`` lacks ``config.bands``).
    """
    if r.status != "ok" or r.images is None or r.valid is None or r.dates_meta is None:
        return []
    out = []
    for t, m in enumerate(r.dates_meta):
        if r.valid[t] and m and m.get("dn_warning"):
            out.append(Failure(r.task.id, t, m.get("item_id"), None, RULE_WARNING,
                               f"rule {m.get('dn_rule')}: {m['dn_warning']}"))
    if all(b in bands for b in config.bands):
        idx = [list(bands).index(b) for b in config.bands]
        for f in check_dates(r.images, r.valid, idx, config):
            m = r.dates_meta[f.date] or {}
            out.append(Failure(
                r.task.id, f.date, m.get("item_id"), None, INCONSISTENT,
                f"{f.kind}: dark-object DN {f.statistic:.0f} vs {f.reference:.0f} on the other dates "
                f"({f.difference:+.0f}, {100 * f.clipped:.1f} % at DN 1) after rule {m.get('dn_rule')}; check the "
                "item with `seco catalog inspect` and recollect or drop the date"))
    return out


def describe_warnings(faults: Mapping[str, int]) -> str | None:
    """The summary line of the radiometry warnings counted in ``faults`` (kind -> rows), ``None`` when none."""
    n_rule, n_bad = faults.get(RULE_WARNING, 0), faults.get(INCONSISTENT, 0)
    if not n_rule and not n_bad:
        return None
    return (f"radiometry warnings (dates kept, see the failures table): {n_bad} date(s) ~1000 DN off their "
            f"location's other dates ({INCONSISTENT}), {n_rule} decided by a default ({RULE_WARNING})")
