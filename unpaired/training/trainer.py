"""The one training loop. It knows no GAN mathematics: the model declares its networks, parameter groups
and phases (``TranslationMethod``); the trainer does devices, seeds, Adam, the learning-rate schedule,
image pools, mixed precision, statistics, samples and checkpoints.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from pathlib import Path
from typing import Dict, Optional

import torch
from torch.utils.data import DataLoader

from .. import runfolder
from ..config import RunConfig
from ..data.sources import complete_config
from ..models import get_model
from ..models.base import StepContext, set_requires_grad
from ..nn.init import init_weights
from . import checkpoint as ckpt
from . import distributed
from .distributed import resolve_device  # noqa: F401  (re-exported: the trainer's device rules)
from .pool import ImagePool
from .samples import SampleWriter
from .stats import StatsWriter, peak_memory_gb

log = logging.getLogger("unpaired")


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or Inf; training stopped without writing a checkpoint."""


def lr_factor(step: int, total: int, decay_fraction: float) -> float:
    """Constant, then linear to 0 over the last ``decay_fraction`` of the steps (CycleGAN's ``linear``
    policy with n_epochs = n_epochs_decay when 0.5; U-GAT-IT's decay from the halfway iteration)."""
    decay_steps = int(round(total * decay_fraction))
    if decay_steps == 0:
        return 1.0
    return 1.0 - max(0, step - (total - decay_steps)) / decay_steps


class Trainer:
    def __init__(self, cfg: RunConfig, run_dir: Path, *, resume: bool = False, progress: bool = True,
                 dataset=None):
        """``dataset``: the training set, already made; default: made from ``cfg`` here (where ``data.root`` is
        set), before anything is written, so that bad data is refused without leaving a run folder behind."""
        self.cfg, self.run_dir, self.progress = cfg, Path(run_dir), progress
        t = cfg.train
        self.dist, self.device = distributed.setup(t.device)  # one process: DistInfo(0, 1, 0)
        self.batch_per_rank = distributed.per_rank_batch(t.batch_size, self.dist)
        # Everything that can refuse the run comes before the first write: a refused run leaves no folder behind.
        complete_config(cfg)  # settings the data decides (multi-domain: the domain names), checked against it
        if dataset is None and cfg.data.root:  # without data.root: batches come from the caller (train_step)
            from ..data import train_dataset

            dataset = train_dataset(cfg)
        self._dataset = dataset
        if t.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        seed_everything(t.seed)

        spec = get_model(cfg.model_name)
        method = init_weights(spec.build(cfg.model, cfg.loss), t.init, t.init_gain).to(self.device)
        self.method = distributed.prepare_method(method, self.dist, self.device, t.sync_batchnorm)
        if t.channels_last:
            self.method.to(memory_format=torch.channels_last)
        if self.dist.rank:  # own dropout/noise streams per process; rank 0 keeps the single-process ones
            seed_everything(distributed.rank_seed(t.seed, self.dist.rank))
        self.optimizers = {
            name: torch.optim.Adam(params, lr=t.lr, betas=(t.beta1, t.beta2), weight_decay=t.weight_decay,
                                   fused=self.device.type in ("cpu", "cuda"))  # one kernel for all parameters
            for name, params in self.method.parameter_groups().items()
        }
        fp16 = t.precision == "fp16"
        if fp16 and self.device.type != "cuda":
            raise RuntimeError("train.precision=fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
        self.scalers = {name: torch.amp.GradScaler(self.device.type, enabled=fp16) for name in self.optimizers}
        self.pools = {dom: ImagePool(t.pool_size, seed=distributed.rank_seed(t.seed * 1000 + i, self.dist.rank))
                      for i, dom in enumerate(self.method.pooled_domains)}
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.dist.is_main:
            _log_to_file(self.run_dir / "log.txt")
            runfolder.clean_temp_files(self.run_dir)  # left by a kill during a write
        self.step = 0
        if resume:
            self._resume()
        elif self.dist.is_main:
            runfolder.write_config(self.run_dir, cfg)
        if t.compile:  # in place: parameter names, state dicts and checkpoints stay those of the eager modules
            for name in ("generators", "discriminators"):
                for module in getattr(self.method, name).values():
                    module.compile()
        self._print_summary()

    # ------------------------------------------------------------------------------------------------------

    def _autocast(self):
        p = self.cfg.train.precision
        if p == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16 if p == "bf16" else torch.float16)

    def _pool(self, domain: str, images: torch.Tensor) -> torch.Tensor:
        return self.pools[domain](images) if domain in self.pools else images

    def train_step(self, batch: Dict[str, torch.Tensor], stats: Optional[StatsWriter] = None) -> Dict[str, float]:
        """One optimisation step: ``prepare`` then each due phase (zero grads, freeze the others, loss,
        backward, optimiser step, post-step hook)."""
        t = self.cfg.train
        factor = lr_factor(self.step, t.steps, t.decay_fraction)
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = t.lr * factor
        ctx = StepContext(batch=batch, pool=self._pool, step=self.step, total_steps=t.steps, seed=t.seed)
        phases = self.method.phases()
        networks = self._networks(phases)
        set_requires_grad(networks.values(), True)
        with self._autocast():
            self.method.prepare(ctx)
        values = {"Progress/lr": t.lr * factor}
        for phase in phases:
            if self.step % phase.every != phase.every - 1:
                continue
            opt, scaler = self.optimizers[phase.optimizer], self.scalers[phase.optimizer]
            opt.zero_grad(set_to_none=True)
            for name, module in networks.items():
                set_requires_grad([module], name in phase.trainable)
            with self._autocast():
                out = phase.loss(ctx)
            # one small all-reduce (several processes): logged values are global-batch means, and a NaN on any
            # process stops all of them at the same step
            scalars = torch.stack([v.detach().float().reshape(()) for v in (out.total, *out.terms.values())])
            total, *terms = distributed.mean_over_ranks(scalars, self.dist).tolist()
            if not math.isfinite(total):
                listed = ", ".join(f"{k}={v:.4g}" for k, v in zip(out.terms, terms))
                last = runfolder.latest_checkpoint(self.run_dir)
                raise NonFiniteLossError(
                    f"step {self.step + 1}: the {phase.name} loss is {total} ({listed}). Training stopped "
                    f"before this step changed any checkpoint; last good checkpoint: {last or 'none yet'}. "
                    f"Try a lower train.lr or train.precision=fp32.")
            scaler.scale(out.total).backward()
            distributed.average_gradients((p for g in opt.param_groups for p in g["params"]), self.dist)
            scaler.step(opt)
            scaler.update()
            if phase.after_step is not None:
                phase.after_step()
            values[f"Loss/{phase.name}/total"] = total
            values.update((f"Loss/{phase.name}/{k}", v) for k, v in zip(out.terms, terms))
        set_requires_grad(networks.values(), True)
        self.step += 1
        if stats is not None:
            for k, v in values.items():
                stats.add(k, v)
        return values

    def _networks(self, phases) -> Dict[str, torch.nn.Module]:
        """Name -> module of the generators, the discriminators and every other network a phase trains."""
        names = dict.fromkeys(("generators", "discriminators"))
        for phase in phases:
            names.update(dict.fromkeys(phase.trainable))
        networks = {}
        for name in names:
            module = getattr(self.method, name, None)
            if not isinstance(module, torch.nn.Module):
                raise ValueError(f"a phase of {type(self.method).__name__} trains {name!r}, which is not a network "
                                 f"of the model (trainable names its nn.Module attributes)")
            networks[name] = module
        return networks

    # ------------------------------------------------------------------------------------------------------

    def make_loader(self) -> DataLoader:
        from ..data import EndlessSampler, train_dataset

        d = self.cfg.data
        dataset = self._dataset if self._dataset is not None else train_dataset(self.cfg)  # ModelSpec.dataset's kind
        b = self.batch_per_rank  # process r takes block r of each global batch (see training/distributed.py)
        sampler = EndlessSampler(start=self.step * b, rank=self.dist.rank, world_size=self.dist.world_size, block=b)
        return DataLoader(dataset, batch_size=b, sampler=sampler, num_workers=d.num_workers,
                          pin_memory=d.pin_memory and self.device.type == "cuda", drop_last=True,
                          persistent_workers=d.num_workers > 0,
                          prefetch_factor=d.prefetch_factor if d.num_workers > 0 else None)

    def to_device(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """The tensors of a loader batch on the training device (NHWC with ``train.channels_last``)."""
        fmt = torch.channels_last if self.cfg.train.channels_last else torch.preserve_format
        return {k: v.to(self.device, non_blocking=True, memory_format=fmt if v.dim() == 4 else torch.preserve_format)
                for k, v in batch.items() if torch.is_tensor(v)}

    def fit(self, until: Optional[int] = None) -> Path:
        """Train until ``train.steps`` (or stop early after step ``until``, with a checkpoint there);
        returns the last checkpoint's path."""
        t = self.cfg.train
        end = min(t.steps, until) if until else t.steps
        if self.step >= end:
            log.info("already trained %d of %d steps; nothing to do", self.step, t.steps)
            return runfolder.latest_checkpoint(self.run_dir)
        main = self.dist.is_main  # process 0 alone writes samples, statistics, logs and checkpoints
        loader = self.make_loader()
        samples = SampleWriter(self.run_dir, self.cfg, self.device) if main else None
        stats = StatsWriter(self.run_dir) if main else None
        bar = _progress(self.progress and main, total=t.steps, initial=self.step)
        tick, tick_step = time.time(), self.step
        last = None
        try:
            for batch in loader:
                self.train_step(self.to_device(batch), stats)
                step = self.step
                bar.update(1)
                if main and (step % t.log_every == 0 or step == t.steps):
                    stats.add("Timing/sec_per_step", (time.time() - tick) / max(1, step - tick_step))
                    mem = peak_memory_gb(self.device)
                    if mem is not None:
                        stats.add("Resources/peak_gpu_mem_gb", mem)
                    tick, tick_step = time.time(), step
                    means = stats.flush(step)
                    bar.set_postfix_str(_short(means))
                    log.info("step %d/%d %s", step, t.steps, _short(means, 8))
                if main and (step % t.sample_every == 0 or step == t.steps):
                    grid = samples.write(self.method, step)
                    stats.image("samples", grid, step)
                if main and t.eval_every and (step % t.eval_every == 0 or step == t.steps):
                    for k, v in self.evaluate().items():
                        stats.add(k, v)
                    stats.flush(step)
                if step % t.checkpoint_every == 0 or step == end:
                    last = self.save()
                if step >= end:
                    break
        finally:
            bar.close()
            if stats is not None:
                stats.close()
        return last

    def evaluate(self) -> Dict[str, float]:
        """Score the current generators on the first ``train.eval_images`` test images of each direction
        (multi-domain: of each domain, translated to every other domain; tags ``Eval/to_<domain>/...``)."""
        from ..metrics.evaluate import evaluate

        t = self.cfg.train
        view = _GeneratorView(self.method, self.cfg)
        self.method.eval()
        try:
            rows = evaluate(view, Path(self.cfg.data.root), metrics=[m.strip() for m in t.eval_metrics.split(",")],
                            feature_extractor=t.eval_feature_extractor, limit=t.eval_images, device=self.device)
        finally:
            self.method.train()
        return {f"Eval/{row['direction'].replace(' ', '_')}/{k}": float(v) for row in rows for k, v in row.items()
                if isinstance(v, float) and k != "seconds"}

    # ------------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """The training state; with several processes (a collective call: every process must make it), process 0's
        also holds every process's pools and RNG states under ``ranks``."""
        own = {"pools": {k: p.state_dict() for k, p in self.pools.items()}, "rng": ckpt.rng_state()}
        ranks = distributed.gather_to_main(own, self.dist)
        state = {
            "step": self.step,
            "method": self.method.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
            **own,
            "config": self.cfg.to_dict(),
        }
        if self.dist.enabled and ranks is not None:
            state["ranks"] = ranks
        return state

    def save(self) -> Optional[Path]:
        """Write a checkpoint and the generators (process 0; every process must call it); returns its path."""
        state = self.state_dict()
        if not self.dist.is_main:
            return None
        try:
            runfolder.check_finite(state["method"], f"the weights at step {self.step}")
        except runfolder.NonFiniteWeightsError as e:
            last = runfolder.latest_checkpoint(self.run_dir)
            raise NonFiniteLossError(f"{e}: training stopped without writing a checkpoint; last good checkpoint: "
                                     f"{last or 'none yet'}. Try a lower train.lr or train.precision=fp32.") from None
        path = runfolder.write_run(self.run_dir, self.cfg, state, self.method.generators,
                                   keep=self.cfg.train.keep_checkpoints)
        log.info("saved %s", path)
        return path

    def _resume(self) -> None:
        state = None
        for path in reversed(runfolder.list_checkpoints(self.run_dir)):  # newest first; a damaged one is skipped
            try:
                state = runfolder.load_training_state(path, map_location=self.device) \
                    if runfolder.checkpoint_intact(path) else None
            except RuntimeError as e:
                log.warning("%s", e)
            if state is not None:
                break
            log.warning("%s: damaged or truncated; resuming from an older checkpoint", path)
        if state is None:  # e.g. killed during the first checkpoint write: config.yaml alone
            log.warning("--resume: %s holds no intact checkpoint; starting at step 0", self.run_dir / "checkpoints")
            return
        self.method.load_state_dict(state["method"])
        self.step = int(state["step"])
        if "optimizers" not in state:  # an imported run (runfolder.write_run without a trainer): weights only
            log.info("resumed the weights of %s (step %d); fresh optimisers, pools and random streams", path,
                     self.step)
            return
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in self.scalers.items():
            s.load_state_dict(state["scalers"][k])
        own = distributed.rank_state(state, self.dist)
        if own is None:
            log.warning("process %d: the checkpoint was written by fewer processes; this one starts with empty "
                        "image pools and fresh random streams", self.dist.rank)
        else:
            for k, p in self.pools.items():
                p.load_state_dict(own["pools"][k], device=self.device)
            ckpt.set_rng_state({k: (v.cpu() if torch.is_tensor(v) else v) for k, v in own["rng"].items()})
        log.info("resumed from %s (step %d)", path, self.step)

    def _print_summary(self) -> None:
        for name in ("generators", "discriminators"):
            for key, module in getattr(self.method, name).items():
                n = sum(p.numel() for p in module.parameters())
                log.info("%s[%s]: %s, %.2f M parameters", name, key, type(module).__name__, n / 1e6)
        t = self.cfg.train
        log.info("device %s, precision %s, channels_last %s, compile %s, run folder %s", self.device, t.precision,
                 t.channels_last, t.compile, self.run_dir)
        if self.dist.enabled:
            log.info("%d processes, global batch %d (%d per process)", self.dist.world_size, t.batch_size,
                     self.batch_per_rank)


class _GeneratorView:
    """What ``metrics.evaluate`` needs of a Translator, over the generators being trained (multi-domain: the
    domain names and one-hot target labels too)."""

    def __init__(self, method, cfg):
        self.method = method
        self.cards = {d: runfolder.ModelCard.for_config(cfg, d) for d in method.generators}
        self.domains = cfg.model.domain_names() if hasattr(cfg.model, "domain_names") else None

    def generator(self, direction: Optional[str] = None):
        return self.method.generators[direction or next(iter(self.method.generators))]

    def label_for(self, target: str) -> torch.Tensor:
        from ..data import target_label

        return target_label(self.domains, [target])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _short(means: Dict[str, float], n: int = 4) -> str:
    keys = [k for k in means if k.startswith("Loss/") and k.endswith("/total")][:n]
    return " ".join(f"{k.split('/')[1]}={means[k]:.3f}" for k in keys if not math.isnan(means[k]))


def _progress(enabled: bool, total: int, initial: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True)


def _log_to_file(path: Path) -> None:
    for h in list(log.handlers):  # one run folder at a time
        if isinstance(h, logging.FileHandler):
            log.removeHandler(h)
            h.close()
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
