"""A run's network shape (engine.network_shape.NetworkShape), kept with the run as the store document
"network": written by the recorder when the run starts, read by every page that shows a stored run, so
that none of them loads a dataset or builds a network."""
from __future__ import annotations

from dataclasses import replace

from lth_core.engine.network_shape import NetworkShape
from lth_core.runs.store import RunStore, StoreError

NETWORK_DOC = "network"


def stored_network(store: RunStore, run_id: str, *, compute: bool = True) -> tuple[NetworkShape | None, str]:
    """(the run's network shape, "") from the store. A run recorded before runs kept it gets it computed
    once from its config and dataset (with `compute`) and kept; where that fails (its dataset file is gone,
    its config never fitted its data) this returns (None, why), one line, and never raises for it."""
    doc = store.doc(run_id, NETWORK_DOC)
    if doc is not None:
        try:
            return NetworkShape.from_dict(doc), ""
        except ValueError:
            pass  # a document of another format: computed again below
    if not compute:
        return None, "the run's network shape is not stored with it"
    config = store.get_run(run_id).config
    try:
        from lth_core.engine.lottery import make_plan, network_shape

        shape = network_shape(make_plan(config.replace(device="cpu")))
    except Exception as exc:  # noqa: BLE001 - any reason at all: the page says it and shows the rest
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, ("this run was recorded before runs kept their network's shape, and it cannot be worked out "
                      f"now: {text}")
    shape = replace(shape, config={**shape.config, "device": config.device})  # cpu only to plan it here
    try:
        store.put_doc(run_id, NETWORK_DOC, shape.to_dict())
    except StoreError:
        pass  # a full disk or a read-only store: shown all the same, and computed again next time
    return shape, ""
