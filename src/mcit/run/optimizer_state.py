"""Optimiser state by parameter name, so that it can be saved without pickle and checked on load.

`torch.optim` state dicts key each parameter's state by its position in the optimiser's groups
(an integer) and keep tuples (AdamW's betas) in the groups. `by_name` replaces the positions by
parameter names (string keys, as `split_state` needs; a checkpoint is then readable and a
mismatch is caught), and `by_position` maps a saved state back onto a live optimiser, refusing
one whose parameters differ and restoring tuples that JSON turned into lists.
"""

from __future__ import annotations

from typing import Any

import torch

from mcit.core.errors import UserError


def parameter_names(optimizer: torch.optim.Optimizer, network: torch.nn.Module) -> list[str]:
    """The names of the optimiser's parameters in its own order (group by group)."""
    names = {id(p): n for n, p in network.named_parameters()}
    order = []
    for group in optimizer.param_groups:
        for p in group["params"]:
            if id(p) not in names:
                raise ValueError("the optimiser holds a parameter that is not part of the model")
            order.append(names[id(p)])
    return order


def by_name(state: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """`optimizer.state_dict()` with parameter names instead of positions."""
    return {
        "state": {names[i]: dict(values) for i, values in state["state"].items()},
        "param_groups": [{**{k: v for k, v in group.items() if k != "params"},
                          "params": [names[i] for i in group["params"]]} for group in state["param_groups"]],
    }


def by_position(saved: dict[str, Any], optimizer: torch.optim.Optimizer, names: list[str], where: str) -> dict[str, Any]:
    """The state dict to load into `optimizer` (whose parameters are `names`) from a `by_name` state."""
    saved_names = [n for group in saved["param_groups"] for n in group["params"]]
    if saved_names != names or len(saved["param_groups"]) != len(optimizer.param_groups):
        missing = sorted(set(names) ^ set(saved_names))
        example = f" (e.g. {missing[0]})" if missing else ""
        raise UserError(f"{where}: the saved optimiser state is for other parameters{example}; "
                        "resume with the configuration the run was started with")
    position = {n: i for i, n in enumerate(names)}
    groups = []
    for group, live in zip(saved["param_groups"], optimizer.param_groups):
        restored = {k: (tuple(v) if isinstance(live.get(k), tuple) and isinstance(v, list) else v)
                    for k, v in group.items() if k != "params"}
        groups.append({**restored, "params": [position[n] for n in group["params"]]})
    return {"state": {position[n]: dict(values) for n, values in saved["state"].items()}, "param_groups": groups}
