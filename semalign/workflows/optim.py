"""Learning-rate schedules by name and the AdamW optimizer with clipping."""

from __future__ import annotations

from collections.abc import Callable

import optax

from semalign.config import TrainConfig
from semalign.registry import Registry

ScheduleFn = Callable[[TrainConfig, int, int], optax.Schedule]


def _constant(cfg: TrainConfig, total: int, per_epoch: int) -> optax.Schedule:
    del total, per_epoch
    return optax.constant_schedule(cfg.lr)


def _cosine(cfg: TrainConfig, total: int, per_epoch: int) -> optax.Schedule:
    del per_epoch
    return optax.cosine_decay_schedule(cfg.lr, decay_steps=max(total, 1))


def _exponential(cfg: TrainConfig, total: int, per_epoch: int) -> optax.Schedule:
    del total
    steps = cfg.decay_steps or max(per_epoch, 1)
    return optax.exponential_decay(cfg.lr, transition_steps=steps, decay_rate=cfg.decay_rate)


SCHEDULES: Registry[ScheduleFn] = Registry("schedule")
SCHEDULES.register("constant", _constant)
SCHEDULES.register("cosine", _cosine)
SCHEDULES.register("exponential", _exponential)


def warmup_steps(cfg: TrainConfig, total: int) -> int:
    """Explicit warm-up, or 5 % of all steps."""
    return cfg.warmup_steps if cfg.warmup_steps is not None else int(0.05 * total)


def learning_rate(cfg: TrainConfig, steps_per_epoch: int) -> optax.Schedule:
    """Linear warm-up from 0, then the named schedule over the remaining steps."""
    total = cfg.epochs * steps_per_epoch
    warm = warmup_steps(cfg, total)
    main = SCHEDULES.get(cfg.schedule)(cfg, max(total - warm, 1), steps_per_epoch)
    if warm == 0:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, cfg.lr, warm), main], [warm])


def _in_trunk(params):
    """``params``' tree of bools: True under the model's ``encoder`` (the trunk)."""
    import jax

    def first(path) -> bool:
        return bool(path) and getattr(path[0], "key", getattr(path[0], "name", None)) == "encoder"

    return jax.tree_util.tree_map_with_path(lambda path, _: first(path), params)


def optimizer(cfg: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """AdamW (decoupled weight decay on matrices only) after global-norm clipping.

    ``cfg.encoder_lr_scale`` scales the trunk's updates (a smaller learning rate for a
    pretrained encoder); ``cfg.freeze_encoder`` gives the trunk no update at all (and no
    optimizer state), and the clip then measures the head's gradients only.
    """

    def decay_mask(params):
        import jax

        return jax.tree.map(lambda p: getattr(p, "ndim", 0) >= 2, params)

    parts = [optax.clip_by_global_norm(cfg.clip_norm)] if cfg.clip_norm > 0 else []
    parts.append(
        optax.adamw(
            learning_rate(cfg, steps_per_epoch), weight_decay=cfg.weight_decay, mask=decay_mask
        )
    )
    if cfg.encoder_lr_scale != 1.0 and not cfg.freeze_encoder:
        parts.append(optax.masked(optax.scale(cfg.encoder_lr_scale), _in_trunk))
    tx = optax.chain(*parts)
    if not cfg.freeze_encoder:
        return tx

    def labels(params):
        import jax

        return jax.tree.map(lambda t: "trunk" if t else "head", _in_trunk(params))

    return optax.multi_transform({"trunk": optax.set_to_zero(), "head": tx}, labels)
